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
/// 256 kept in reserve, an eighth of the rest for sealed segments in use)
/// holds 75 partitions and 76 connections: it says so at start, refuses
/// partitions past 75 naming the open-file limit, and closes connections
/// past 76 on arrival, so a flood of them never leaves
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
            && log.contains("max_partitions=75")
            && log.contains("max_connections=76"),
        "{log}"
    );
    let mut conn = broker.connect().await;
    let r = conn
        .create_topics(vec![
            topic("a", 70, TopicConfig::default()),
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
            &[("a", 69, &sluice_tests::batch_of(&["last"]))],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        produced.partitions[0].error_code,
        ErrorCode::None,
        "{produced:?}"
    );
    let read = sluice_tests::read_partition(&mut conn, "a", 69, 0).await;
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
        fds > 70 * 3 && (fds as u64) < LIMIT - 100,
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

/// Sealed segments in use hold descriptors too (three each), up to 8 per
/// partition for a minute after their last read: over many partitions read
/// from their start that is more than the partitions' own share. Under an
/// open-file limit of 1000 the broker keeps 31 sealed segments open over
/// all partitions (an eighth of what is left after its reserve), so after
/// 24 partitions of 12 segments each were written and read from the start,
/// and two maintenance passes, about that many stay open (each partition
/// may keep the two it read last), not 8 per partition (192).
#[tokio::test]
async fn sealed_segments_open_over_all_partitions_stay_within_the_open_file_limit() {
    use sluice_protocol::wire::topic_config::FlushMode;
    const PARTITIONS: u32 = 24;
    const SEGMENTS: usize = 12;
    let broker = TestBroker::start_with_open_file_limit(1000, &[]);
    let mut conn = broker.connect().await;
    let config = TopicConfig {
        segment_bytes: Some(65_536),
        flush: Some(FlushMode::BeforeAck),
        ..TopicConfig::default()
    };
    let r = conn
        .create_topics(vec![topic("h", PARTITIONS, config)])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    // About 61 KB a batch: a segment each.
    let batch = sluice_tests::batch_sized_now("h", 60, 1000);
    for p in 0..PARTITIONS {
        for _ in 0..SEGMENTS {
            let r = conn
                .produce(Acks::Leader, 10_000, &[("h", p, &batch)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
        }
    }
    for p in 0..PARTITIONS {
        let read = sluice_tests::read_partition(&mut conn, "h", p, 0).await;
        assert_eq!(read.len(), 60 * SEGMENTS, "partition {p}");
    }
    let segments = sluice_tests::segment_file_count(&broker.data_dir, "h-0");
    assert!(segments >= SEGMENTS, "{segments} segments");
    // Two maintenance passes (1 s apart by default).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let metrics = broker.metrics_addr.unwrap();
    let (status, exposition) = sluice_tests::http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    let sample = |name| sluice_tests::sample(&exposition, name).unwrap();
    assert_eq!(sample("sluice_open_sealed_segments_limit"), 31.0);
    let open = sample("sluice_open_sealed_segments");
    assert!(
        open <= f64::from(31 + 2 * PARTITIONS),
        "{open} sealed segments open"
    );
    let fds = open_fds(broker.pid());
    // The active segments (3 each), the sealed ones (at most 3 each), the
    // connections, listeners and the rest.
    let bound = PARTITIONS as usize * 3 + (31 + 2 * PARTITIONS as usize) * 3 + 64;
    assert!(fds < bound, "{fds} descriptors open, bound {bound}");
}
