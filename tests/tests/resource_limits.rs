//! Topic creation is refused, with a clear error, beyond the broker-wide
//! partition limit (`max_partitions`) and below the segment size and age
//! floors.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
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
