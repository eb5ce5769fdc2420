//! Authorized operations (KIP-430) on the Kafka listener: asked for, they
//! are every operation of the resource type, as Kafka answers without an
//! authorizer (kafka-python 2.x decodes them whenever it asks and failed on
//! the "not asked for" value); not asked for, they are that value.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::groups::{DescribeGroupsRequest, DescribeGroupsResponse};
use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

const NOT_ASKED: i32 = i32::MIN;

#[test]
fn authorized_operations_are_all_of_the_resource_when_asked_for() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "ops", 1, TopicConfig::default()).await;
    });
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for version in 8..=12 {
        for asked in [false, true] {
            let mut req = MetadataRequest {
                topics: Some(vec![
                    MetadataRequestTopic {
                        topic_id: [0; 16],
                        name: Some("ops".into()),
                    },
                    MetadataRequestTopic {
                        topic_id: [0; 16],
                        name: Some("absent".into()),
                    },
                ]),
                allow_auto_topic_creation: false,
                include_cluster_authorized_operations: asked && version <= 10,
                include_topic_authorized_operations: asked,
            };
            let r: MetadataResponse = call(&mut s, version, &mut req);
            let ops: Vec<i32> = r
                .topics
                .iter()
                .map(|t| t.topic_authorized_operations)
                .collect();
            let want = if asked { 3576 } else { NOT_ASKED };
            assert_eq!(ops, vec![want, want], "v{version} asked {asked}");
            if version <= 10 {
                let want = if asked { 8096 } else { NOT_ASKED };
                assert_eq!(r.cluster_authorized_operations, want, "v{version}");
            }
        }
    }
    for version in 3..=5 {
        for asked in [false, true] {
            let mut req = DescribeGroupsRequest {
                groups: vec!["g".into()],
                include_authorized_operations: asked,
            };
            let r: DescribeGroupsResponse = call(&mut s, version, &mut req);
            let want = if asked { 328 } else { NOT_ASKED };
            assert_eq!(r.groups[0].authorized_operations, want, "v{version}");
        }
    }
}
