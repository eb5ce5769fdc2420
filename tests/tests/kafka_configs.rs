//! DescribeConfigs on the Kafka listener: a topic's settings under Kafka's
//! names, those it was created with told apart from those that follow the
//! broker's defaults, as Kafka's admin tools expect (kafka-python lists
//! only the former by default).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::admin::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResponse, RESOURCE_TOPIC,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

#[test]
fn topic_settings_are_told_apart_from_the_defaults() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        let config = TopicConfig {
            retention_ms: Some(3_600_000),
            ..TopicConfig::default()
        };
        create_topic(&mut c, "conf", 1, config).await;
    });
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for version in 0..=4 {
        let mut req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "conf".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(&mut s, version, &mut req);
        let configs = &r.results[0].configs;
        let get = |name: &str| configs.iter().find(|c| c.name == name).unwrap();
        let set = get("retention.ms");
        assert_eq!(set.value.as_deref(), Some("3600000"), "v{version}");
        assert!(!set.is_default || version >= 1, "v{version}");
        let default = get("segment.bytes");
        if version == 0 {
            assert!(default.is_default);
        } else {
            assert_eq!(
                (set.config_source, default.config_source),
                (1, 5),
                "v{version}"
            );
        }
        if version >= 3 {
            assert_eq!((set.config_type, default.config_type), (5, 3), "v{version}");
            assert_eq!(get("compression.type").config_type, 2);
        }
    }
}
