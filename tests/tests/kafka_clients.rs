//! Kafka's own clients against the Kafka listener of a real broker: kcat
//! (metadata, produce, consume from beginning to end), confluent-kafka
//! (AdminClient; an idempotent acks=all producer with every codec and its
//! delivery reports), kafka-python and aiokafka (produce, consume), each
//! client reading what the others wrote.
//!
//! Needs kcat and the Python of `SLUICE_KAFKA_PYTHON` (installed by
//! `.ci/run`); skipped without them unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use serde_json::Value;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{kcat, python, run_clients, run_kcat};
use sluice_tests::{TestBroker, create_topic};

fn kafka_addr(b: &TestBroker) -> String {
    b.kafka_addr.unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_metadata_produces_and_consumes_from_beginning_to_end() {
    if !kcat() {
        return;
    }
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "kc", 3, TopicConfig::default()).await;
    let addr = kafka_addr(&b);

    let meta = run_kcat(&["-b", &addr, "-L"], b"");
    assert!(meta.contains("topic \"kc\" with 3 partitions"), "{meta}");
    assert!(meta.contains(&format!("broker 0 at {addr}")), "{meta}");

    let input: String = (0..200).map(|i| format!("key{i}:value-{i}\n")).collect();
    run_kcat(
        &["-b", &addr, "-P", "-t", "kc", "-p", "1", "-K:"],
        input.as_bytes(),
    );
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "kc",
            "-p",
            "1",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %k %s\n",
        ],
        b"",
    );
    let want: String = (0..200)
        .map(|i| format!("{i} key{i} value-{i}\n"))
        .collect();
    assert_eq!(out, want);
    // The other partitions are empty: kcat reaches their end at once.
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "kc",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    assert_eq!(out, "");
}

/// confluent-kafka's AdminClient creates a topic naming configs whose one
/// value is what Sluice does (`cleanup.policy=delete`,
/// `message.timestamp.type=CreateTime`), reads them back, is told why a
/// compacted topic is refused, validates a creation without creating,
/// reads the broker's settings, and deletes the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_admin_client_creates_and_deletes_topics() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let out = run_clients(&py, &["admin", &kafka_addr(&b), "made-by-admin"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partitions"], 3, "{out}");
    assert_eq!(v["exists_after_delete"], false, "{out}");
    // Configs naming what Sluice does are taken; DescribeConfigs lists them.
    assert_eq!(
        v["described"],
        serde_json::json!({
            "cleanup.policy": ["delete", true],
            "message.timestamp.type": ["CreateTime", true],
            "retention.ms": ["3600000", false],
        }),
        "{out}"
    );
    assert_eq!(v["validated_only_exists"], false, "{out}");
    assert_eq!(
        v["broker"],
        serde_json::json!({
            "log.cleanup.policy": ["delete", true],
            "auto.create.topics.enable": ["false", true],
        }),
        "{out}"
    );
    assert_eq!(v["compacted"][0], "INVALID_CONFIG", "{out}");
    assert!(
        v["compacted"][1]
            .as_str()
            .is_some_and(|m| m.contains("does not compact")),
        "{out}"
    );
    // The native protocol sees the deletion too.
    let mut c = b.connect().await;
    let topics = c.metadata(None).await.unwrap();
    assert!(topics.topics.iter().all(|t| t.name != "made-by-admin"));
}

/// A topic created with a manual replica assignment (what some provisioning
/// tools always send): on a single broker, every partition on node 0 is
/// taken as the count it gives, and so are partitions added with one each;
/// an assignment naming another broker, or not one per partition added, is
/// refused with Kafka's `INVALID_REPLICA_ASSIGNMENT`, nothing created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_replica_assignment_onto_the_single_broker_is_taken() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let out = run_clients(&py, &["create-assigned", &kafka_addr(&b), "assigned"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["assigned"], "created", "{out}");
    assert_eq!(
        v["assigned-elsewhere"], "INVALID_REPLICA_ASSIGNMENT",
        "{out}"
    );
    assert_eq!(v["to 5"], "created", "{out}");
    assert_eq!(v["to 7"], "INVALID_REPLICA_ASSIGNMENT", "{out}");
    assert_eq!(v["partitions"], serde_json::json!([0, 1, 2, 3, 4]), "{out}");
    assert_eq!(v["listed"], serde_json::json!(["assigned"]), "{out}");
}

/// confluent-kafka's AdminClient `list_offsets`: by timestamp it gets the
/// record inside a lingered batch, with its timestamp, and the largest
/// timestamp (-3) the record that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_finds_records_by_time_inside_a_batch() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "by-time", 1, TopicConfig::default()).await;
    let out = run_clients(&py, &["list-offsets", &kafka_addr(&b), "by-time"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["earliest"], serde_json::json!([0, -1]), "{out}");
    assert_eq!(v["latest"], serde_json::json!([5, -1]), "{out}");
    assert_eq!(v["max_timestamp"], serde_json::json!([3, 90]), "{out}");
    assert_eq!(v["at_plus_30"], serde_json::json!([1, 50]), "{out}");
}

/// Transactions are not served: a transactional producer learns so at once
/// from FindCoordinator, with a fatal error carrying the broker's message,
/// instead of retrying until its own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_producer_fails_at_once_with_a_fatal_error() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let out = run_clients(&py, &["txn", &kafka_addr(&b)]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let err = &v["error"];
    assert_eq!(err["fatal"], true, "{out}");
    assert!(
        err["text"]
            .as_str()
            .is_some_and(|t| t.contains("transactions are not supported")),
        "{out}"
    );
    assert!(v["seconds"].as_f64().unwrap() < 10.0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_with_every_codec_gets_its_offsets_and_every_client_reads_them() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "codecs", 1, TopicConfig::default()).await;
    let addr = kafka_addr(&b);
    let mut next = 0u64;
    let mut values = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let out = run_clients(&py, &["produce", &addr, "codecs", codec, "50"]);
        let reports: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(reports.len(), 50, "{codec}");
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r["offset"], next, "{codec}: {r}");
            assert_eq!(r["value"], format!("{codec}-{i}"));
            values.push(format!("{codec}-{i}"));
            next += 1;
        }
    }
    for (scenario, tag) in [("kp-produce", "kp"), ("aio-produce", "aio")] {
        let out = run_clients(&py, &[scenario, &addr, "codecs", "20"]);
        let reports: Vec<Value> = serde_json::from_str(&out).unwrap();
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r["offset"], next, "{scenario}: {r}");
            values.push(format!("{tag}-{i}"));
            next += 1;
        }
    }
    let n = values.len().to_string();
    let mut seen = Vec::new();
    for client in ["confluent", "kafka-python", "aiokafka"] {
        let out = run_clients(&py, &["consume", client, &addr, "codecs", &n]);
        let records: Vec<Value> = serde_json::from_str(&out).unwrap();
        let got: Vec<(u64, String)> = records
            .iter()
            .map(|r| {
                (
                    r["offset"].as_u64().unwrap(),
                    r["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(u64, String)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.clone()))
            .collect();
        assert_eq!(got, want, "{client}");
        seen.push(records);
    }
    // Keys, headers and timestamps read the same through every client.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}
