//! What clients see of the cluster, against a single broker (node 0, the
//! only broker, leader of everything): native Metadata version 2 and
//! CreateTopics version 2 with a replication factor, older versions
//! unchanged, and the same facts through the Kafka listener.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::kafka::admin::CreateTopicsResponse as KafkaCreateTopicsResponse;
use sluice_protocol::kafka::admin::{CreatableTopic, CreateTopicsRequest as KafkaCreateTopics};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::metadata::{
    MetadataRequest as KafkaMetadataRequest, MetadataRequestTopic,
    MetadataResponse as KafkaMetadataResponse,
};
use sluice_protocol::wire::create_topics::{
    CreateTopicsRequest, CreateTopicsRequestV1, CreateTopicsResponse, NewTopic, NewTopicV1,
};
use sluice_protocol::wire::metadata::{
    BrokerMetadata, MetadataRequest, MetadataResponse, MetadataResponseV1,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode};
use sluice_tests::{TestBroker, create_topic};

fn new_topic(name: &str, replication_factor: Option<u16>) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions: 2,
        config: TopicConfig::default(),
        replication_factor,
    }
}

#[tokio::test]
async fn native_metadata_names_this_broker_as_node_0_leading_every_partition() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "m", 2, TopicConfig::default()).await;

    assert_eq!(c.negotiated_version(ApiKey::Metadata).await.unwrap(), 3);
    let meta = c.metadata(Some(vec!["m".into()])).await.unwrap();
    assert_eq!(
        meta.brokers,
        [BrokerMetadata {
            id: 0,
            listen: broker.addr.to_string(),
            kafka: broker.kafka_addr.map(|a| a.to_string()),
        }]
    );
    assert!(meta.brokers[0].kafka.is_some());
    let t = &meta.topics[0];
    assert_eq!(t.partitions.len(), 2);
    for p in &t.partitions {
        assert_eq!(p.leader, Some(0));
        assert_eq!(p.leader_epoch, 0);
        assert_eq!(p.replicas, [0]);
        assert_eq!(p.isr, [0]);
    }

    // Version 1 is answered in version 1 (no bytes left over, no brokers).
    let req = MetadataRequest {
        topics: Some(vec!["m".into()]),
    };
    c.send_version(ApiKey::Metadata, 1, &req, &[])
        .await
        .unwrap();
    let (v1, _) = c.recv::<MetadataResponseV1>().await.unwrap();
    assert_eq!(v1, MetadataResponseV1::from(meta.clone()));
    c.send_version(ApiKey::Metadata, 2, &req, &[])
        .await
        .unwrap();
    let (v2, _) = c.recv::<MetadataResponse>().await.unwrap();
    assert_eq!(v2.brokers, meta.brokers);
}

#[tokio::test]
async fn create_topics_takes_replication_factor_1_and_refuses_more() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    let r = c
        .create_topics(vec![
            new_topic("default", None),
            new_topic("one", Some(1)),
            new_topic("three", Some(3)),
            new_topic("zero", Some(0)),
        ])
        .await
        .unwrap();
    let codes: Vec<ErrorCode> = r.results.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::None,
            ErrorCode::None,
            ErrorCode::InvalidReplicationFactor,
            ErrorCode::InvalidReplicationFactor
        ]
    );
    let message = r.results[2].message.as_deref().unwrap();
    assert!(message.contains("1 broker"), "{message}");
    let names: Vec<String> = c
        .metadata(None)
        .await
        .unwrap()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["default", "one"], "refused topics were not created");

    // Version 1 (no replication factor) still creates topics.
    let v1 = CreateTopicsRequestV1 {
        topics: vec![NewTopicV1 {
            name: "old".into(),
            partitions: 1,
            config: TopicConfig::default(),
        }],
    };
    c.send_version(ApiKey::CreateTopics, 1, &v1, &[])
        .await
        .unwrap();
    let (r, _) = c.recv::<CreateTopicsResponse>().await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    // And version 2 sent by hand decodes the factor.
    let v2 = CreateTopicsRequest {
        topics: vec![new_topic("two", Some(2))],
    };
    c.send_version(ApiKey::CreateTopics, 2, &v2, &[])
        .await
        .unwrap();
    let (r, _) = c.recv::<CreateTopicsResponse>().await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::InvalidReplicationFactor);
}

#[test]
fn kafka_metadata_and_create_topics_report_replication() {
    let broker = TestBroker::start();
    let kafka = broker.kafka_addr.unwrap();
    let mut s = std::net::TcpStream::connect(kafka).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let topic = |name: &str, replication_factor| CreatableTopic {
        name: name.into(),
        num_partitions: 2,
        replication_factor,
        ..Default::default()
    };
    let r: KafkaCreateTopicsResponse = sluice_tests::kafka::call(
        &mut s,
        5,
        &mut KafkaCreateTopics {
            topics: vec![topic("k", -1), topic("k1", 1), topic("k3", 3)],
            timeout_ms: 5000,
            validate_only: false,
        },
    );
    let got: Vec<(i16, i16)> = r
        .topics
        .iter()
        .map(|t| (t.error_code, t.replication_factor))
        .collect();
    assert_eq!(
        got,
        [
            (code::NONE, 1),
            (code::NONE, 1),
            (code::INVALID_REPLICATION_FACTOR, -1)
        ]
    );
    assert!(
        r.topics[2]
            .error_message
            .as_deref()
            .unwrap()
            .contains("1 broker")
    );

    for version in [1, 7, 12] {
        let m: KafkaMetadataResponse = sluice_tests::kafka::call(
            &mut s,
            version,
            &mut KafkaMetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some("k".into()),
                }]),
                ..Default::default()
            },
        );
        assert_eq!(m.brokers.len(), 1, "v{version}");
        assert_eq!(m.brokers[0].node_id, 0);
        assert_eq!(m.brokers[0].port, i32::from(kafka.port()));
        let parts = &m.topics[0].partitions;
        assert_eq!(parts.len(), 2);
        for p in parts {
            assert_eq!(p.leader_id, 0, "v{version}");
            assert_eq!(p.replica_nodes, [0]);
            assert_eq!(p.isr_nodes, [0]);
            assert_eq!(p.leader_epoch, 0);
        }
    }
}
