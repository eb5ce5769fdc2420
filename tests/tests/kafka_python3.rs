//! kafka-python 3 against the Kafka listener of a real broker: a topic's
//! whole life through its producer, consumer and admin client (create,
//! produce with every codec, a group reading and committing, the group's
//! offsets listed, altered, reset and deleted, partition offsets by spec and
//! time, topic configs described, altered and reset, partitions added,
//! records deleted, producers, log dirs and the cluster described, the
//! group and the topic deleted), and what Sluice does not have (the
//! metadata quorum, transactions) refused rather than left hanging.
//!
//! kafka-python 3 negotiates newer versions of most APIs than kafka-python
//! 2.0, which the other Kafka tests drive. Needs the Python of
//! `SLUICE_KAFKA_PYTHON3` (installed by `.ci/run`); skipped without it
//! unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use serde_json::{Value, json};
use sluice_tests::TestBroker;
use sluice_tests::kafka::{dense_acknowledged_offsets, python3_kafka, run_script};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const PER_CODEC: usize = 20;

#[test]
fn kafka_python_3_takes_a_topic_through_its_whole_life() {
    let Some(python) = python3_kafka() else {
        return;
    };
    let b = TestBroker::start();
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_script(&python, "kafka_python3.py", &["lifecycle", &addr, "kp3"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert!(r["client"].as_str().unwrap().starts_with("3."), "{r}");

    assert_eq!(r["create"], json!([0]), "{r}");
    assert_eq!(
        r["create_again"],
        json!({"error": "TopicAlreadyExistsError"}),
        "{r}"
    );

    // Every acknowledged record has its own offset, dense from 0 in each
    // partition, and the group read exactly those, with keys, values and
    // headers as sent.
    let (ends, total) = dense_acknowledged_offsets(&r["sent"]);
    assert_eq!(total, CODECS.len() * PER_CODEC);
    let mut consumed: Vec<(String, String)> = r["consumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let value = m[3].as_str().unwrap().to_owned();
            let codec = value.split('-').next().unwrap().to_owned();
            let i = value.rsplit('-').next().unwrap();
            assert_eq!(m[2], json!(format!("k{i}")), "{m}");
            assert_eq!(m[4], json!([["codec", codec]]), "{m}");
            (codec, value)
        })
        .collect();
    consumed.sort();
    let mut want: Vec<(String, String)> = CODECS
        .iter()
        .flat_map(|c| (0..PER_CODEC).map(move |i| (c.to_string(), format!("{c}-{i}"))))
        .collect();
    want.sort();
    assert_eq!(consumed, want);

    // The group: stable while its member reads, then empty, its commits
    // at each partition's end, and every change of them taken.
    assert_eq!(r["describe_group_live"], "Stable", "{r}");
    assert!(
        r["groups"].as_array().unwrap().contains(&json!("kp3-g")),
        "{r}"
    );
    assert_eq!(r["describe_group"], "Empty", "{r}");
    assert_eq!(r["committed"], Value::Object(ends.clone()), "{r}");
    let mut altered = ends.clone();
    altered.insert("0".into(), json!(1));
    assert_eq!(r["after_alter"], Value::Object(altered), "{r}");
    assert_eq!(r["reset"], json!({"1": 0}), "{r}");
    assert_eq!(r["delete_offsets"], json!({"2": "NoError"}), "{r}");
    assert_eq!(r["after_offset_changes"], json!({"0": 1, "1": 0}), "{r}");

    assert_eq!(r["latest"], Value::Object(ends), "{r}");
    assert_eq!(r["earliest"], json!({"0": 0, "1": 0, "2": 0}), "{r}");
    assert_eq!(r["by_time_0"], json!({"0": 0, "1": 0, "2": 0}), "{r}");

    // Topic configs: only the one set at creation is "modified"; an
    // altered one reads back as dynamic, and a reset one as the default.
    assert_eq!(
        r["configs_modified"],
        json!({"retention.ms": "3600000"}),
        "{r}"
    );
    assert_eq!(
        r["configs_after_alter"],
        json!({
            "retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"],
            "retention.bytes": ["1048576", "DYNAMIC_TOPIC_CONFIG"],
        }),
        "{r}"
    );
    assert_eq!(
        r["configs_after_reset"],
        json!({
            "retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"],
            "retention.bytes": ["-1", "DEFAULT_CONFIG"],
        }),
        "{r}"
    );

    assert_eq!(r["partitions_after_create"], json!([0, 1, 2, 3]), "{r}");
    assert_eq!(r["delete_records"], json!({"0": 2}), "{r}");
    assert_eq!(r["earliest_after_delete"], json!({"0": 2}), "{r}");

    // One idempotent producer per codec wrote to every partition (the
    // keys k0..k19 reach all three).
    for p in ["0", "1", "2"] {
        assert_eq!(r["producers"][p], json!(CODECS.len()), "{r}");
    }
    assert_eq!(r["log_dir_topics"], json!(["kp3"]), "{r}");
    assert_eq!(r["cluster_brokers"], json!([addr]), "{r}");

    assert_eq!(
        r["metadata_quorum"],
        json!({"error": "IncompatibleBrokerVersion"}),
        "{r}"
    );
    assert_eq!(
        r["transactions"],
        json!({"error": "TransactionalIdAuthorizationFailedError"}),
        "{r}"
    );
    assert_eq!(r["groups_after_delete"], json!([]), "{r}");
    assert_eq!(r["topics_after_delete"], json!([]), "{r}");
}
