//! One log, two protocols: records written through the native protocol
//! (by `sluice produce`, and as a batch with headers) read the same through
//! Kafka clients, and records written by a Kafka client read the same
//! through the native protocol — offsets, keys, values, headers and
//! timestamps.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{python, run_clients};
use sluice_tests::{TestBroker, create_topic};

fn cli_binary() -> std::path::PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

/// Every record of partition 0 through the native protocol, as the JSON
/// the Kafka clients' `consume` prints.
async fn native_records(b: &TestBroker, topic: &str) -> Vec<Value> {
    let mut c = b.connect().await;
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let r = c
            .fetch(
                0,
                0,
                1 << 20,
                vec![FetchPartition {
                    topic: topic.into(),
                    partition: 0,
                    offset,
                    max_bytes: 1 << 20,
                }],
            )
            .await
            .unwrap();
        if r[0].records.is_empty() {
            return out;
        }
        let mut bytes: Bytes = r[0].records.clone();
        while !bytes.is_empty() {
            let batch = RecordBatch::split_first(&mut bytes).unwrap();
            for rec in batch.records() {
                let rec = rec.unwrap();
                let s =
                    |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
                let headers: Vec<Value> = rec
                    .headers()
                    .map(|h| {
                        let (k, v) = h.unwrap();
                        json!([k, s(&v)])
                    })
                    .collect();
                out.push(json!({
                    "offset": rec.offset,
                    "key": s(&rec.key),
                    "value": s(&rec.value),
                    "headers": headers,
                    "timestamp": rec.timestamp,
                }));
                offset = rec.offset as u64 + 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_records_read_the_same_through_kafka_clients() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "x", 1, TopicConfig::default()).await;
    // `sluice produce`: keys and values, the client's timestamps.
    let mut child = Command::new(cli_binary())
        .args(["--broker", &b.addr.to_string(), "produce", "x"])
        .args(["--key-separator", "=", "--partition", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lines: String = (0..30).map(|i| format!("k{i}=cli-{i}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    // A batch with headers, null keys and values, explicit timestamps.
    let mut builder = BatchBuilder::new();
    for i in 0..10i64 {
        let v = format!("hdr-{i}");
        builder.push(&NewRecord {
            timestamp: 1_600_000_000_000 + i,
            key: (i % 2 == 0).then_some(b"even".as_slice()),
            value: (i != 3).then_some(v.as_bytes()),
            headers: &[("trace", Some(b"abc".as_slice())), ("n", None)],
        });
    }
    let batch = builder.finish();
    c.produce(Acks::Leader, 5000, &[("x", 0, &batch)])
        .await
        .unwrap()
        .unwrap();

    let native = native_records(&b, "x").await;
    assert_eq!(native.len(), 40);
    assert_eq!(native[0]["key"], "k0");
    assert_eq!(native[33]["value"], Value::Null);
    let addr = b.kafka_addr.unwrap().to_string();
    for client in ["confluent", "kafka-python", "aiokafka"] {
        let out = run_clients(&py, &["consume", client, &addr, "x", "40"]);
        let kafka: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(kafka, native, "{client}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_client_records_read_the_same_through_the_native_protocol() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "y", 1, TopicConfig::default()).await;
    let addr = b.kafka_addr.unwrap().to_string();
    // confluent-kafka: keys, values, a header per record, its timestamps.
    run_clients(&py, &["produce", &addr, "y", "none", "25"]);
    let kafka: Vec<Value> = serde_json::from_str(&run_clients(
        &py,
        &["consume", "confluent", &addr, "y", "25"],
    ))
    .unwrap();
    let native = native_records(&b, "y").await;
    assert_eq!(native, kafka);
    for (i, r) in native.iter().enumerate() {
        assert_eq!(r["offset"], i);
        assert_eq!(r["key"], format!("k{i}"));
        assert_eq!(r["value"], format!("none-{i}"));
        assert_eq!(r["headers"], json!([["h", i.to_string()]]));
    }
    // And the CLI prints them with the same offsets, keys and timestamps.
    let out = Command::new(cli_binary())
        .args(["--broker", &b.addr.to_string(), "consume", "y"])
        .args([
            "--from-beginning",
            "--count",
            "25",
            "--format",
            "%o %k %v %T",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let want: String = kafka
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}\n",
                r["offset"],
                r["key"].as_str().unwrap(),
                r["value"].as_str().unwrap(),
                r["timestamp"]
            )
        })
        .collect();
    assert_eq!(text, want);
}
