//! Consumer groups through the Kafka listener, with Kafka's own clients:
//! kcat's balanced consumer, a confluent-kafka consumer that commits and a
//! second one that resumes from the commit, and two kafka-python (then
//! aiokafka) consumers that split a topic's partitions, one taking over
//! when the other leaves.
//!
//! Needs kcat and the Python of `SLUICE_KAFKA_PYTHON` (installed by
//! `.ci/run`); skipped without them unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use serde_json::{Value, json};
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{kcat, python, run_clients, run_kcat};
use sluice_tests::{TestBroker, batch_of, create_topic};

async fn produce_values(b: &TestBroker, topic: &str, partition: u32, values: &[String]) {
    let mut c = b.connect().await;
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let batch = batch_of(&refs);
    c.produce(Acks::Leader, 5000, &[(topic, partition, &batch)])
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_consumes_in_a_group() {
    if !kcat() {
        return;
    }
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "kg", 2, TopicConfig::default()).await;
    let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    produce_values(&b, "kg", 0, &values[..20]).await;
    produce_values(&b, "kg", 1, &values[20..]).await;
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-G",
            "kcat-group",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
            "kg",
        ],
        b"",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = values.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // The group is known to the coordinator (and empty now kcat left).
    let d = c.describe_groups(vec!["kcat-group".into()]).await.unwrap();
    assert_eq!(d.groups[0].state, "Empty", "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_consumer_commits_in_a_group_and_the_next_one_resumes() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "cg", 1, TopicConfig::default()).await;
    let first: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    produce_values(&b, "cg", 0, &first).await;
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_clients(&py, &["group-commit", &addr, "cg", "g1", "10"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["values"], json!(first));
    assert_eq!(v["committed"], json!({"0": 10}));
    // The native protocol sees the commit.
    let fetched = c.offset_fetch("g1", None).await.unwrap();
    assert_eq!(fetched.partitions[0].offset, Some(10), "{fetched:?}");
    // A new consumer of the group starts after the commit.
    let second: Vec<String> = (0..5).map(|i| format!("b{i}")).collect();
    produce_values(&b, "cg", 0, &second).await;
    let out = run_clients(&py, &["group-commit", &addr, "cg", "g1", "5"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["values"], json!(second));
    assert_eq!(v["committed"], json!({"0": 15}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_partitions_and_one_takes_over_when_the_other_leaves() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "pair", 4, TopicConfig::default()).await;
    let addr = b.kafka_addr.unwrap().to_string();
    for client in ["kafka-python", "aiokafka"] {
        let group = format!("pair-{client}");
        let out = run_clients(&py, &["group-pair", client, &addr, "pair", &group]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["alone"], json!([0, 1, 2, 3]), "{client}: {out}");
        let a = v["split"][0].as_array().unwrap();
        let b2 = v["split"][1].as_array().unwrap();
        assert!(!a.is_empty() && !b2.is_empty(), "{client}: {out}");
        assert_eq!(a.len() + b2.len(), 4, "{client}: {out}");
        assert_eq!(v["after"], json!([0, 1, 2, 3]), "{client}: {out}");
    }
}
