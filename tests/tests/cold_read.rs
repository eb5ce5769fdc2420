//! A fetch of data that is not in the page cache is detected and read in off
//! the reactor (counted in `cold_reads`), and still returns the right bytes.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::os::fd::AsRawFd;

use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

#[tokio::test]
async fn cold_ranges_are_read_in_before_sending() {
    // Every range is checked for residency, not only those past the hot tail.
    let config = std::env::temp_dir().join(format!("sluice-cold-{}.toml", std::process::id()));
    std::fs::write(&config, "hot_tail_bytes = 0\n").unwrap();
    let broker = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "cold", 1, TopicConfig::default()).await;
    for i in 0..8 {
        // acks=all: the data is written back, so the kernel can drop it.
        let b = batch_sized(&format!("c{i}"), 256, 1000);
        conn.produce(Acks::All, 5000, &[("cold", 0, &b)])
            .await
            .unwrap()
            .unwrap();
    }
    let warm = conn.stats().await.unwrap().get("cold_reads").unwrap();
    let seg = broker
        .data_dir
        .join("cold-0")
        .join(format!("{:020}.log", 0));
    let file = std::fs::File::open(&seg).unwrap();
    nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .unwrap();
    let r = conn
        .fetch(
            0,
            0,
            64 << 20,
            vec![FetchPartition {
                topic: "cold".into(),
                partition: 0,
                offset: 0,
                max_bytes: 64 << 20,
            }],
        )
        .await
        .unwrap();
    assert!(!r[0].records.is_empty());
    let cold = conn.stats().await.unwrap().get("cold_reads").unwrap();
    assert!(
        cold > warm,
        "the dropped range was not detected as cold ({warm} -> {cold})"
    );
    assert_eq!(read_partition(&mut conn, "cold", 0, 0).await.len(), 8 * 256);
}
