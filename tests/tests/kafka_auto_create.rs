//! Topics created on first use (`auto_create_topics`, Kafka's
//! `auto.create.topics.enable`): a Kafka client's Metadata request that
//! names a topic which does not exist and allows its creation (every
//! request before version 4; from 4 the request says) creates it with the
//! broker's default partition count and replication factor, and the answer
//! describes it. Off (the default), or not allowed by the request, the
//! answer is `UNKNOWN_TOPIC_OR_PARTITION` and nothing is created; a name
//! that can never be a topic is `INVALID_TOPIC_EXCEPTION`. Real clients:
//! kcat produces to a new topic and reads it back, on one broker and
//! through a follower of a 3-node cluster, where the topic gets the
//! cluster's default replication factor; kafka-python's and aiokafka's
//! producers create the topics they produce to.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::admin::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResponse, RESOURCE_BROKER,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{call, kcat, python, run_clients, run_kcat};
use sluice_tests::{TestBroker, broker_creating_topics as broker};

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Metadata of `names` at `version`; each topic's name, error code and
/// partition count, in the answer's order.
fn metadata(
    s: &mut TcpStream,
    version: i16,
    names: &[&str],
    allow: bool,
) -> Vec<(String, i16, usize)> {
    let mut req = MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some((*n).to_owned()),
                })
                .collect(),
        ),
        allow_auto_topic_creation: allow,
        ..MetadataRequest::default()
    };
    let r: MetadataResponse = call(s, version, &mut req);
    r.topics
        .into_iter()
        .map(|t| {
            assert!(
                t.error_code != code::NONE || t.partitions.iter().all(|p| p.leader_id == 0),
                "every partition of a created topic is led by this broker: {t:?}"
            );
            (t.name.unwrap_or_default(), t.error_code, t.partitions.len())
        })
        .collect()
}

/// The topic names of an all-topics Metadata answer, sorted.
fn all_topics(s: &mut TcpStream) -> Vec<String> {
    let mut req = MetadataRequest {
        topics: None,
        ..MetadataRequest::default()
    };
    let r: MetadataResponse = call(s, 12, &mut req);
    let mut names: Vec<String> = r.topics.into_iter().filter_map(|t| t.name).collect();
    names.sort();
    names
}

fn row(name: &str, error: i16, partitions: usize) -> (String, i16, usize) {
    (name.to_owned(), error, partitions)
}

#[test]
fn a_metadata_request_creates_the_topics_it_names_when_it_allows_it() {
    let (b, _f) = broker(true);
    let mut s = connect(&b);
    // Not allowed by the request: nothing is created.
    assert_eq!(
        metadata(&mut s, 12, &["quiet"], false),
        vec![row("quiet", code::UNKNOWN_TOPIC_OR_PARTITION, 0)]
    );
    assert!(all_topics(&mut s).is_empty());
    // Allowed: created with the default partition count, and described.
    assert_eq!(
        metadata(&mut s, 12, &["orders", "orders"], true),
        vec![row("orders", code::NONE, 3)]
    );
    // Before version 4 a request cannot say, and allows it.
    assert_eq!(
        metadata(&mut s, 1, &["old-client"], false),
        vec![row("old-client", code::NONE, 3)]
    );
    // Names that can never be topics (the broker's own, Kafka's internal
    // ones), next to one that exists and one created by this request.
    assert_eq!(
        metadata(
            &mut s,
            9,
            &[
                "__sluice_reserved",
                "__transaction_state",
                "a/b",
                "..",
                "orders",
                "fresh"
            ],
            true
        ),
        vec![
            row("__sluice_reserved", code::INVALID_TOPIC_EXCEPTION, 0),
            row("__transaction_state", code::INVALID_TOPIC_EXCEPTION, 0),
            row("a/b", code::INVALID_TOPIC_EXCEPTION, 0),
            row("..", code::INVALID_TOPIC_EXCEPTION, 0),
            row("orders", code::NONE, 3),
            row("fresh", code::NONE, 3),
        ]
    );
    // Two names that collide in metric names: the first is created.
    assert_eq!(
        metadata(&mut s, 12, &["dot.ted", "dot_ted"], true),
        vec![
            row("dot.ted", code::NONE, 3),
            row("dot_ted", code::INVALID_TOPIC_EXCEPTION, 0),
        ]
    );
    // Another name starting with `__` is an ordinary topic (Debezium's
    // heartbeat topics), as in Kafka.
    assert_eq!(
        metadata(&mut s, 12, &["__debezium-heartbeat.inventory"], true),
        vec![row("__debezium-heartbeat.inventory", code::NONE, 3)]
    );
    assert_eq!(
        all_topics(&mut s),
        vec![
            "__debezium-heartbeat.inventory",
            "dot.ted",
            "fresh",
            "old-client",
            "orders"
        ]
    );
    // Asking again changes nothing: the topics are described as they are.
    assert_eq!(
        metadata(&mut s, 12, &["orders"], true),
        vec![row("orders", code::NONE, 3)]
    );
    // The created topics are ordinary ones: kept across a restart.
    drop(s);
    let mut b = b;
    b.stop();
    b.restart();
    let mut s = connect(&b);
    assert_eq!(
        all_topics(&mut s),
        vec![
            "__debezium-heartbeat.inventory",
            "dot.ted",
            "fresh",
            "old-client",
            "orders"
        ]
    );
    // The broker says it creates topics.
    let mut req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: RESOURCE_BROKER,
            resource_name: "0".to_owned(),
            configuration_keys: Some(vec!["auto.create.topics.enable".to_owned()]),
        }],
        include_synonyms: false,
        include_documentation: false,
    };
    let r: DescribeConfigsResponse = call(&mut s, 4, &mut req);
    let value = r.results[0].configs[0].value.as_deref();
    assert_eq!(value, Some("true"), "{r:?}");
}

#[test]
fn without_auto_create_topics_a_metadata_request_creates_nothing() {
    let (b, _f) = broker(false);
    let mut s = connect(&b);
    assert_eq!(
        metadata(&mut s, 12, &["orders"], true),
        vec![row("orders", code::UNKNOWN_TOPIC_OR_PARTITION, 0)]
    );
    assert_eq!(
        metadata(&mut s, 0, &["orders"], true),
        vec![row("orders", code::UNKNOWN_TOPIC_OR_PARTITION, 0)]
    );
    assert!(all_topics(&mut s).is_empty());
}

#[test]
fn kcat_produces_to_a_topic_that_did_not_exist() {
    if !kcat() {
        return;
    }
    let (b, _f) = broker(true);
    let addr = b.kafka_addr.unwrap().to_string();
    let input: String = (0..50).map(|i| format!("value-{i}\n")).collect();
    run_kcat(
        &["-b", &addr, "-P", "-t", "first-use", "-p", "2"],
        input.as_bytes(),
    );
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "first-use",
            "-p",
            "2",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    assert_eq!(out, input);
    let meta = run_kcat(&["-b", &addr, "-L", "-t", "first-use"], b"");
    assert!(
        meta.contains("topic \"first-use\" with 3 partitions"),
        "{meta}"
    );
}

#[test]
fn python_producers_create_the_topics_they_produce_to() {
    let Some(py) = python() else { return };
    let (b, _f) = broker(true);
    let addr = b.kafka_addr.unwrap().to_string();
    for (scenario, topic) in [
        ("kp-produce", "from-kafka-python"),
        ("aio-produce", "from-aiokafka"),
    ] {
        let out = run_clients(&py, &[scenario, &addr, topic, "3"]);
        let offsets: serde_json::Value = serde_json::from_str(&out).unwrap();
        let offsets: Vec<u64> = offsets
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(offsets, vec![0, 1, 2], "{scenario}: {out}");
    }
    let mut s = connect(&b);
    assert_eq!(
        all_topics(&mut s),
        vec!["from-aiokafka", "from-kafka-python"]
    );
}

#[test]
fn a_cluster_creates_a_topic_on_first_use_with_its_default_replication_factor() {
    if !kcat() {
        return;
    }
    let c = TestCluster::start_with_kafka_config(
        3,
        "auto_create_topics = true\ndefault_replication_factor = 3\n",
    );
    let leader = c.wait_for_leader(Duration::from_secs(30));
    // Asked of a node that is not the controller's leader.
    let asked = (1..=3).find(|&id| id != leader).unwrap();
    let addr = c.node(asked).kafka_addr.unwrap().to_string();
    let input: String = (0..20).map(|i| format!("r{i}\n")).collect();
    run_kcat(
        &["-b", &addr, "-P", "-t", "spread", "-X", "acks=all"],
        input.as_bytes(),
    );
    for id in 1..=3 {
        c.wait_until(Duration::from_secs(30), "every node has the topic", |c| {
            c.topic(id, "spread").is_some()
        });
    }
    let meta = run_kcat(&["-b", &addr, "-L", "-t", "spread"], b"");
    assert!(
        meta.contains("topic \"spread\" with 1 partitions"),
        "{meta}"
    );
    let topic = c.topic(asked, "spread").unwrap();
    let mut replicas: Vec<u64> = topic["replicas"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    replicas.sort_unstable();
    assert_eq!(replicas, vec![1, 2, 3], "{topic}");
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "spread",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    assert_eq!(out, input);
}
