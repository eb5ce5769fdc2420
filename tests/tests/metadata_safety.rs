//! The broker never deletes data on ambiguity: a missing `topics.meta` with
//! partition directories present makes it refuse to start (and touch
//! nothing), and a topic deletion interrupted after its directories were
//! marked is finished at the next start.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{
    TestBroker, batch_sized, broker_binary, create_topic, free_port, read_partition,
};

/// Every file under `dir` with its length, sorted.
fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            for (n, len) in tree(&e.path()) {
                out.push((format!("{name}/{n}"), len));
            }
        } else {
            out.push((name, e.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

async fn fill(broker: &TestBroker, topic: &str, partitions: u32) {
    let mut conn = broker.connect().await;
    create_topic(&mut conn, topic, partitions, TopicConfig::default()).await;
    for p in 0..partitions {
        let b = batch_sized(&format!("{topic}{p}"), 10, 100);
        let r = conn
            .produce(Acks::All, 5000, &[(topic, p, &b)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    }
}

#[tokio::test]
async fn missing_topic_metadata_refuses_to_start_and_keeps_the_data() {
    let mut broker = TestBroker::start();
    fill(&broker, "precious", 2).await;
    broker.stop();
    let data = broker.data_dir.clone();
    std::fs::remove_file(data.join("topics.meta")).unwrap();
    let before = tree(&data);
    assert!(
        before
            .iter()
            .any(|(n, len)| n.starts_with("precious-1/") && n.ends_with(".log") && *len > 0)
    );

    // Start the binary by hand: it must exit on its own, with an error.
    let mut child = Command::new(broker_binary())
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(["--metrics-listen", "none", "--kafka-listen", "none"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the broker started (or hung) without topics.meta");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    assert!(stderr.contains("topics.meta is missing"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert_eq!(
        tree(&data),
        before,
        "the refused start changed the data directory"
    );
}

/// A listed partition whose directory is gone refuses the start (its
/// records are lost; starting it empty would hand its offsets out again
/// unnoticed), and changes nothing; once the operator creates the
/// directory empty, the broker starts and the partition begins at 0.
#[tokio::test]
async fn a_missing_partition_directory_refuses_to_start_until_it_is_created() {
    let mut broker = TestBroker::start();
    fill(&broker, "precious", 2).await;
    broker.stop();
    let data = broker.data_dir.clone();
    std::fs::remove_dir_all(data.join("precious-1")).unwrap();
    let before = tree(&data);
    let out = Command::new(broker_binary())
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(["--metrics-listen", "none", "--kafka-listen", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("A partition directory listed in topics.meta is missing"),
        "{stderr}"
    );
    assert!(stderr.contains("precious-1"), "{stderr}");
    assert_eq!(tree(&data), before, "the refused start changed nothing");
    std::fs::create_dir(data.join("precious-1")).unwrap();
    broker.restart();
    let mut conn = broker.connect().await;
    let b = batch_sized("again", 1, 10);
    let r = conn
        .produce(Acks::All, 5000, &[("precious", 1, &b)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].base_offset, 0, "{r:?}");
}

#[tokio::test]
async fn interrupted_topic_deletion_is_finished_at_the_next_start() {
    let mut broker = TestBroker::start();
    fill(&broker, "doomed", 2).await;
    fill(&broker, "kept", 1).await;
    let mut conn = broker.connect().await;
    let kept = read_partition(&mut conn, "kept", 0, 0).await;
    assert_eq!(kept.len(), 10);
    drop(conn);
    broker.kill();
    // The deletion of "doomed" got as far as marking partition 0 when the
    // broker died: topics.meta still lists the topic.
    let data = broker.data_dir.clone();
    std::fs::rename(
        data.join("doomed-0"),
        data.join("doomed-0.0123456789abcdef-delete"),
    )
    .unwrap();
    broker.restart();
    let mut conn = broker.connect().await;
    let meta = conn.metadata(None).await.unwrap();
    let names: Vec<&str> = meta.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(read_partition(&mut conn, "kept", 0, 0).await, kept);
    let left: Vec<String> = tree(&data)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("doomed"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // An ordinary delete leaves no directory behind either.
    let r = conn.delete_topics(vec!["kept".into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    assert!(!tree(&data).iter().any(|(n, _)| n.starts_with("kept")));
}

/// The `.log` files under `dir` with their length and a hash of their bytes.
fn log_files(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (n, bytes.len(), h.finish())
        })
        .collect();
    out.sort();
    out
}

/// Partition 0 of topic `fragile` from `offset`, waiting up to
/// `max_wait_ms` for a byte.
async fn fetch_fragile(
    conn: &mut sluice_client::Connection,
    offset: u64,
    max_wait_ms: u32,
) -> Vec<sluice_client::FetchedPartition> {
    conn.fetch(
        max_wait_ms,
        1,
        4 << 20,
        vec![sluice_protocol::wire::fetch::FetchPartition {
            topic: "fragile".into(),
            partition: 0,
            offset,
            max_bytes: 1 << 20,
        }],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn damaged_flushed_data_takes_the_partition_offline_and_keeps_every_file() {
    use sluice_protocol::wire::topic_config::FlushMode;
    let mut broker = TestBroker::start();
    let mut conn = broker.connect().await;
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        flush: Some(FlushMode::BeforeAck),
        retention_ms: Some(0), // keep everything (the test batches are old)
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "fragile", 1, config).await;
    create_topic(&mut conn, "healthy", 1, TopicConfig::default()).await;
    for i in 0..40 {
        for topic in ["fragile", "healthy"] {
            let b = batch_sized(&format!("{topic}{i}"), 10, 1000);
            let r = conn
                .produce(Acks::All, 5000, &[(topic, 0, &b)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None);
        }
    }
    let healthy = read_partition(&mut conn, "healthy", 0, 0).await;
    drop(conn);
    broker.stop();
    let part = broker.data_dir.join("fragile-0");
    let logs = log_files(&part);
    assert!(logs.len() >= 4, "{logs:?}");
    // Flip a byte in the middle of the second segment, and lose its index
    // so that opening it rescans it.
    let (victim, len, _) = &logs[1];
    let path = part.join(victim);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[len / 2] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(path.with_extension("index")).unwrap();
    let before = log_files(&part);

    broker.restart();
    let mut conn = broker.connect().await;
    let meta = conn.metadata(Some(vec!["fragile".into()])).await.unwrap();
    let p = &meta.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::PartitionOffline);
    let stats = conn.stats().await.unwrap();
    let offline = stats
        .counters
        .iter()
        .find(|c| c.name == "partitions_offline_at_open")
        .map(|c| c.value);
    assert_eq!(offline, Some(1));
    let b = batch_sized("late", 1, 10);
    let r = conn
        .produce(Acks::All, 5000, &[("fragile", 0, &b)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::PartitionOffline);
    // The valid data before the damage is still served, and a read at its
    // end is refused as offline (not answered as the end of the
    // partition, nor out of range, which would move a consumer's
    // position); the other topic is untouched.
    let mut offset = 0;
    let mut readable = 0;
    loop {
        let fetched = fetch_fragile(&mut conn, offset, 0).await;
        let got = sluice_tests::decode_records(&fetched[0].records, offset);
        let Some((last, _)) = got.last() else {
            assert_eq!(fetched[0].error_code, ErrorCode::PartitionOffline);
            break;
        };
        assert_eq!(fetched[0].error_code, ErrorCode::None);
        offset = last + 1;
        readable += got.len() as u64;
    }
    assert!(readable > 0 && readable == p.high_watermark && offset == readable);
    // A long poll there waits its time before the refusal, so that a client
    // that keeps the partition in every fetch does not spin.
    let asked = Instant::now();
    let fetched = fetch_fragile(&mut conn, offset, 600).await;
    assert_eq!(fetched[0].error_code, ErrorCode::PartitionOffline);
    assert!(
        asked.elapsed() >= Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(read_partition(&mut conn, "healthy", 0, 0).await, healthy);
    assert!(broker.log().contains("recovery refused; partition offline"));
    drop(conn);
    broker.stop();
    assert_eq!(log_files(&part), before, "a .log file changed or went");
}
