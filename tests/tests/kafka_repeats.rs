//! Requests that name the same thing many times get answers in proportion
//! to what they describe, not to the request: DescribeConfigs and
//! OffsetFetch answer each resource, group and partition once, ListOffsets
//! refuses a partition named twice (`INVALID_REQUEST`, as Kafka does),
//! CreateTopics refuses a topic named twice (neither entry is created,
//! answered once) and, validating only as creating, a name colliding with
//! one before it, AlterConfigs refuses a resource named twice, DeleteRecords
//! answers a partition named twice once, and more resources or groups than
//! `max_partitions_per_request` are refused.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::admin::{
    CreatableTopic, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResource, DescribeConfigsResponse, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopic,
};
use sluice_protocol::kafka::offsets::{
    OffsetFetchGroup, OffsetFetchRequest, OffsetFetchResponse, OffsetFetchTopic,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

const CAP: usize = 50;

fn broker() -> (TestBroker, tempfile::NamedTempFile) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "max_partitions_per_request = {CAP}").unwrap();
    let path = f.path().display().to_string();
    let b = TestBroker::start_with_args(&["--config", &path]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "rep", 3, TopicConfig::default()).await;
    });
    (b, f)
}

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn resource(resource_type: i8, name: &str) -> DescribeConfigsResource {
    DescribeConfigsResource {
        resource_type,
        resource_name: name.to_owned(),
        configuration_keys: None,
    }
}

#[test]
fn describe_configs_answers_each_resource_once_and_refuses_too_many() {
    let (b, _config) = broker();
    let mut s = connect(&b);
    // 1000 × the topic and 1000 × this broker: two answers.
    let mut resources = Vec::new();
    for _ in 0..1000 {
        resources.push(resource(RESOURCE_TOPIC, "rep"));
        resources.push(resource(RESOURCE_BROKER, "0"));
    }
    let mut req = DescribeConfigsRequest {
        resources,
        include_synonyms: false,
        include_documentation: false,
    };
    let r: DescribeConfigsResponse = call(&mut s, 4, &mut req);
    assert_eq!(r.results.len(), 2, "{:?}", r.results.len());
    assert_eq!(r.results[0].resource_name, "rep");
    assert_eq!(r.results[1].resource_type, RESOURCE_BROKER);
    assert!(
        r.results
            .iter()
            .all(|x| x.error_code == 0 && !x.configs.is_empty())
    );

    // More distinct resources than the cap: each refused, none described,
    // the reason said once.
    let mut req = DescribeConfigsRequest {
        resources: (0..=CAP)
            .map(|i| resource(RESOURCE_TOPIC, &format!("t{i}")))
            .collect(),
        include_synonyms: false,
        include_documentation: false,
    };
    let r: DescribeConfigsResponse = call(&mut s, 4, &mut req);
    assert_eq!(r.results.len(), CAP + 1);
    assert!(
        r.results
            .iter()
            .all(|x| x.error_code == code::INVALID_REQUEST && x.configs.is_empty())
    );
    let said = r
        .results
        .iter()
        .filter(|x| x.error_message.is_some())
        .count();
    assert_eq!(said, 1);
    assert!(
        r.results[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("max_partitions_per_request")
    );
}

#[test]
fn offset_fetch_answers_each_group_and_partition_once() {
    let (b, _config) = broker();
    let mut s = connect(&b);
    let group = |id: &str, topics: Option<Vec<OffsetFetchTopic>>| OffsetFetchGroup {
        group_id: id.to_owned(),
        member_id: None,
        member_epoch: -1,
        topics,
    };
    let rep = |partitions: Vec<i32>| {
        Some(vec![OffsetFetchTopic {
            name: "rep".into(),
            partition_indexes: partitions,
        }])
    };
    // v8: one group named 500 times, each asking for partition 1 ten times.
    let mut req = OffsetFetchRequest {
        groups: (0..500).map(|_| group("g", rep(vec![1; 10]))).collect(),
        require_stable: false,
    };
    let r: OffsetFetchResponse = call(&mut s, 8, &mut req);
    assert_eq!(r.groups.len(), 1, "{r:?}");
    let parts: Vec<_> = r.groups[0]
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .collect();
    assert_eq!(parts.len(), 1, "{r:?}");
    assert_eq!(
        (parts[0].partition_index, parts[0].committed_offset),
        (1, -1)
    );
    // v1: partitions 0 and 2 named 1000 times each.
    let mut req = OffsetFetchRequest {
        groups: vec![group("g", rep([0, 2].repeat(1000)))],
        require_stable: false,
    };
    let r: OffsetFetchResponse = call(&mut s, 1, &mut req);
    let parts: Vec<i32> = r.groups[0]
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(parts, [0, 2]);
    // Negative indexes are answered too (no offset), each once, as Kafka
    // answers every partition asked for; they were left out.
    let mut req = OffsetFetchRequest {
        groups: vec![group("g", rep(vec![-1, 0, -5, 99, -1]))],
        require_stable: false,
    };
    for v in [1, 5, 8] {
        let r: OffsetFetchResponse = call(&mut s, v, &mut req);
        let mut parts: Vec<(i32, i64, i16)> = r.groups[0]
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p.committed_offset, p.error_code))
            .collect();
        parts.sort_unstable();
        assert_eq!(
            parts,
            [(-5, -1, 0), (-1, -1, 0), (0, -1, 0), (99, -1, 0)],
            "v{v}"
        );
    }
    // More distinct groups than the cap: every one refused.
    let mut req = OffsetFetchRequest {
        groups: (0..=CAP).map(|i| group(&format!("g{i}"), None)).collect(),
        require_stable: false,
    };
    let r: OffsetFetchResponse = call(&mut s, 8, &mut req);
    assert_eq!(r.groups.len(), CAP + 1);
    assert!(
        r.groups
            .iter()
            .all(|g| g.error_code == code::INVALID_REQUEST),
        "{r:?}"
    );
    // More distinct partitions than the cap in all: each refused.
    let mut req = OffsetFetchRequest {
        groups: vec![group("g", rep((0..=CAP as i32).collect()))],
        require_stable: false,
    };
    let r: OffsetFetchResponse = call(&mut s, 1, &mut req);
    let parts: Vec<_> = r.groups[0]
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .collect();
    assert_eq!(parts.len(), CAP + 1);
    assert!(parts.iter().all(|p| p.error_code == code::INVALID_REQUEST));
}

#[test]
fn list_offsets_refuses_a_partition_named_twice() {
    let (b, _config) = broker();
    let mut s = connect(&b);
    let at = |partition_index, timestamp| ListOffsetsPartition {
        partition_index,
        current_leader_epoch: -1,
        timestamp,
    };
    let mut req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![
            ListOffsetsTopic {
                name: "rep".into(),
                partitions: vec![at(0, EARLIEST), at(1, LATEST), at(0, 0)],
            },
            ListOffsetsTopic {
                name: "rep".into(),
                partitions: vec![at(2, LATEST)],
            },
        ],
    };
    let r: ListOffsetsResponse = call(&mut s, 5, &mut req);
    let codes: Vec<(i32, i16)> = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            (0, code::INVALID_REQUEST),
            (1, 0),
            (0, code::INVALID_REQUEST),
            (2, 0)
        ]
    );
}

#[test]
fn create_topics_refuses_a_topic_named_twice_and_creates_neither() {
    let (b, _config) = broker();
    let mut s = connect(&b);
    let topic = |name: &str, partitions| CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    let mut req = CreateTopicsRequest {
        topics: vec![topic("twice", 1), topic("once", 1), topic("twice", 2)],
        timeout_ms: 10_000,
        validate_only: false,
    };
    let r: CreateTopicsResponse = call(&mut s, 5, &mut req);
    let codes: Vec<(&str, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code))
        .collect();
    // Answered once (librdkafka refuses an answer naming a topic twice).
    assert_eq!(codes, [("twice", code::INVALID_REQUEST), ("once", 0)]);
    assert_eq!(
        r.topics[0].error_message.as_deref(),
        Some("Duplicate topic name.")
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let names: Vec<String> = rt.block_on(async {
        let mut c = b.connect().await;
        c.metadata(None)
            .await
            .unwrap()
            .topics
            .into_iter()
            .map(|t| t.name)
            .collect()
    });
    assert!(names.iter().any(|n| n == "once"), "{names:?}");
    assert!(!names.iter().any(|n| n == "twice"), "{names:?}");
}

/// Two names of one request that differ only in '.' and '_': the second is
/// refused (`INVALID_TOPIC_EXCEPTION`), and `validate_only` answers what the
/// creation then does, creating nothing.
#[test]
fn create_topics_validates_colliding_names_as_it_creates_them() {
    let (b, _config) = broker();
    let mut s = connect(&b);
    let topic = |name: &str| CreatableTopic {
        name: name.into(),
        num_partitions: 1,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    let names = |b: &TestBroker| -> Vec<String> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut c = b.connect().await;
            let mut names: Vec<String> = c
                .metadata(None)
                .await
                .unwrap()
                .topics
                .into_iter()
                .map(|t| t.name)
                .filter(|n| n != "rep")
                .collect();
            names.sort();
            names
        })
    };
    let mut answers = Vec::new();
    for validate_only in [true, false] {
        let mut req = CreateTopicsRequest {
            topics: vec![topic("eu.orders"), topic("eu_orders"), topic("eu-orders")],
            timeout_ms: 10_000,
            validate_only,
        };
        let r: CreateTopicsResponse = call(&mut s, 5, &mut req);
        let codes: Vec<(String, i16)> = r
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("eu.orders".to_owned(), 0),
                ("eu_orders".to_owned(), code::INVALID_TOPIC_EXCEPTION),
                ("eu-orders".to_owned(), 0)
            ],
            "validate_only {validate_only}: {r:?}"
        );
        let message = r.topics[1].error_message.as_deref().unwrap_or_default();
        assert!(
            message.contains("collides with topic \"eu.orders\""),
            "{message}"
        );
        answers.push(names(&b));
    }
    assert_eq!(
        answers,
        [
            Vec::new(),
            vec!["eu-orders".to_owned(), "eu.orders".to_owned()]
        ]
    );
}

/// AlterConfigs and IncrementalAlterConfigs naming a topic twice refuse it
/// at each mention and change nothing (both entries applied, the second
/// winning, before), as Kafka refuses it; another resource goes on.
#[test]
fn alter_configs_refuses_a_resource_named_twice() {
    use sluice_protocol::kafka::alter_configs::{
        AlterConfigsRequest, AlterConfigsResource, AlterConfigsResponse, AlterableConfig,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, OP_SET,
    };
    let (b, _config) = broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "other", 1, TopicConfig::default()).await;
    });
    let mut s = connect(&b);
    let retention = |name: &str, ms: &str| AlterConfigsResource {
        resource_type: RESOURCE_TOPIC,
        resource_name: name.into(),
        configs: vec![AlterableConfig {
            name: "retention.ms".into(),
            operation: OP_SET,
            value: Some(ms.into()),
        }],
    };
    let resources = vec![
        retention("rep", "111111"),
        retention("other", "333333"),
        retention("rep", "222222"),
    ];
    let answers = |outcome: sluice_protocol::kafka::alter_configs::AlterConfigsOutcome| {
        outcome
            .responses
            .into_iter()
            .map(|r| (r.resource_name, r.error_code))
            .collect::<Vec<_>>()
    };
    let want = vec![
        ("rep".to_owned(), code::INVALID_REQUEST),
        ("other".to_owned(), code::NONE),
        ("rep".to_owned(), code::INVALID_REQUEST),
    ];
    let mut req = AlterConfigsRequest {
        resources: resources.clone(),
        validate_only: false,
    };
    let r: AlterConfigsResponse = call(&mut s, 1, &mut req);
    assert_eq!(answers(r.0), want);
    let mut req = IncrementalAlterConfigsRequest {
        resources,
        validate_only: false,
    };
    let r: IncrementalAlterConfigsResponse = call(&mut s, 1, &mut req);
    assert_eq!(answers(r.0), want);
    let retention_of = |name: &str| {
        let mut req = DescribeConfigsRequest {
            resources: vec![resource(RESOURCE_TOPIC, name)],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(&mut connect(&b), 4, &mut req);
        r.results[0]
            .configs
            .iter()
            .find(|c| c.name == "retention.ms")
            .and_then(|c| c.value.clone())
    };
    assert_eq!(
        retention_of("rep").as_deref(),
        Some("604800000"),
        "unchanged"
    );
    assert_eq!(retention_of("other").as_deref(), Some("333333"));
}

/// DeleteRecords naming a partition twice deletes up to its last entry's
/// offset and answers it once (twice, one answer per entry, before), as
/// Kafka does.
#[test]
fn delete_records_answers_a_partition_named_twice_once_with_its_last_offset() {
    use sluice_protocol::kafka::delete_records::{
        DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsResponse, DeleteRecordsTopic,
    };
    let (b, _config) = broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        let batch = sluice_tests::batch_of(&["a", "b", "c", "d", "e"]);
        for p in 0..2 {
            c.produce(sluice_client::Acks::Leader, 5000, &[("rep", p, &batch)])
                .await
                .unwrap()
                .unwrap();
        }
    });
    let mut s = connect(&b);
    let part = |partition_index, offset| DeleteRecordsPartition {
        partition_index,
        offset,
    };
    let mut req = DeleteRecordsRequest {
        topics: vec![
            DeleteRecordsTopic {
                name: "rep".into(),
                partitions: vec![part(0, 4), part(1, 1), part(0, 2)],
            },
            DeleteRecordsTopic {
                name: "rep".into(),
                partitions: vec![part(1, 3)],
            },
        ],
        timeout_ms: 5000,
    };
    let r: DeleteRecordsResponse = call(&mut s, 2, &mut req);
    let got: Vec<(&str, i32, i16, i64)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.as_str(),
                    p.partition_index,
                    p.error_code,
                    p.low_watermark,
                )
            })
        })
        .collect();
    assert_eq!(got, [("rep", 0, 0, 2), ("rep", 1, 0, 3)], "{r:?}");
}

/// A CreateTopics config given without a value is refused
/// (`INVALID_CONFIG`, nothing created), as Kafka's controller refuses it;
/// it was taken as the default.
#[test]
fn create_topics_refuses_a_config_without_a_value() {
    use sluice_protocol::kafka::admin::ConfigEntry;
    let (b, _config) = broker();
    let mut s = connect(&b);
    let mut req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "nulled".into(),
            num_partitions: 1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: vec![ConfigEntry {
                name: "retention.ms".into(),
                value: None,
            }],
        }],
        timeout_ms: 10_000,
        validate_only: false,
    };
    let r: CreateTopicsResponse = call(&mut s, 5, &mut req);
    assert_eq!(r.topics[0].error_code, code::INVALID_CONFIG, "{r:?}");
    assert!(
        r.topics[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("retention.ms")),
        "{r:?}"
    );
    assert!(!b.data_dir.join("nulled-0").exists());
}
