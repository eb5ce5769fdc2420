//! Topic creation is refused, with a clear error, beyond the broker-wide
//! partition limit (`max_partitions`) and below the segment size and age
//! floors; under a low open-file limit the broker lowers its partition and
//! connection limits so that neither partitions nor connections take it
//! past the limit.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::TestBroker;

fn topic(name: &str, partitions: u32, config: TopicConfig) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions,
        config,
        replication_factor: None,
    }
}

#[tokio::test]
async fn create_topics_beyond_the_limits_is_refused() {
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("broker.toml");
    std::fs::write(&path, "max_partitions = 4\n").unwrap();
    let broker = TestBroker::start_with_args(&["--config", path.to_str().unwrap()]);
    let mut conn = broker.connect().await;
    let r = conn
        .create_topics(vec![
            topic("a", 3, TopicConfig::default()),
            topic("b", 2, TopicConfig::default()),
            topic(
                "tiny",
                1,
                TopicConfig {
                    segment_bytes: Some(4096),
                    ..TopicConfig::default()
                },
            ),
            topic(
                "hasty",
                1,
                TopicConfig {
                    segment_ms: Some(10),
                    ..TopicConfig::default()
                },
            ),
            topic("c", 1, TopicConfig::default()),
        ])
        .await
        .unwrap();
    let got: Vec<(ErrorCode, String)> = r
        .results
        .iter()
        .map(|t| (t.error_code, t.message.clone().unwrap_or_default()))
        .collect();
    assert_eq!(got[0].0, ErrorCode::None);
    assert_eq!(got[1].0, ErrorCode::InvalidPartitions, "{got:?}");
    assert!(got[1].1.contains("max_partitions"), "{got:?}");
    assert_eq!(got[2].0, ErrorCode::InvalidConfig);
    assert!(got[2].1.contains("segment_bytes"), "{got:?}");
    assert_eq!(got[3].0, ErrorCode::InvalidConfig);
    assert!(got[3].1.contains("segment_ms"), "{got:?}");
    assert_eq!(got[4].0, ErrorCode::None, "{got:?}");
    let meta = conn.metadata(None).await.unwrap();
    let names: Vec<&str> = meta.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
}

/// The process's open descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Under an open-file limit of 600, a broker (3 descriptors per partition,
/// 256 kept in reserve) holds 86 partitions and 86 connections: it says so
/// at start, refuses partitions past 86 naming the open-file limit, and
/// closes connections past 86 on arrival, so a flood of them never leaves
/// it without a descriptor to accept one (an `accept` failing `EMFILE`,
/// every new client left unanswered in the listen queue). Without the
/// lowering, the second topic is created and the flood takes the broker
/// past its limit.
#[tokio::test]
async fn a_low_open_file_limit_lowers_the_partition_and_connection_limits() {
    const LIMIT: u64 = 600;
    let broker = TestBroker::start_with_open_file_limit(LIMIT, &[]);
    let log = broker.log();
    assert!(
        log.contains("lowered to fit")
            && log.contains("max_partitions=86")
            && log.contains("max_connections=86"),
        "{log}"
    );
    let mut conn = broker.connect().await;
    let r = conn
        .create_topics(vec![
            topic("a", 80, TopicConfig::default()),
            topic("b", 20, TopicConfig::default()),
        ])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    assert_eq!(
        r.results[1].error_code,
        ErrorCode::InvalidPartitions,
        "{r:?}"
    );
    let message = r.results[1].message.clone().unwrap_or_default();
    assert!(message.contains("open-file limit of 600"), "{message}");
    // The partitions made are served: a record to the last one reads back.
    let produced = conn
        .produce(
            Acks::Leader,
            5000,
            &[("a", 79, &sluice_tests::batch_of(&["last"]))],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        produced.partitions[0].error_code,
        ErrorCode::None,
        "{produced:?}"
    );
    let read = sluice_tests::read_partition(&mut conn, "a", 79, 0).await;
    assert_eq!(read.len(), 1, "{read:?}");
    drop(conn);

    // A flood of connections: those past the limit are closed on arrival.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(std::net::TcpStream::connect(broker.addr).unwrap());
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let fds = open_fds(broker.pid());
    assert!(
        fds > 80 * 3 && (fds as u64) < LIMIT - 100,
        "{fds} descriptors open"
    );
    let log = broker.log();
    assert!(!log.contains("accept failed"), "{}", broker.log_tail(20));
    assert!(
        log.contains("connection limit reached"),
        "{}",
        broker.log_tail(20)
    );
    drop(flood);
    // Then served again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut conn = broker.connect().await;
        match conn.metadata(None).await {
            Ok(m) => {
                assert_eq!(m.topics.len(), 1, "{m:?}");
                break;
            }
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
