//! sarama, the Go client library (1.22, as Debian packages it), against the
//! Kafka listener of a real broker and of a 3-node cluster: a topic's whole
//! life through its admin client (create, list, describe, configs
//! described and altered, partitions added, records deleted, the cluster
//! described, the topic deleted), an idempotent producer with each codec it
//! can send (zstd needs Produce v7, which this sarama does not send, and is
//! refused as Kafka refuses it), partition consumers and offsets, and
//! consumer groups: one member reading and committing, then two sharing the
//! partitions after a rebalance.
//!
//! sarama is a Kafka implementation of its own (not librdkafka, not Java's
//! client) and sends older versions of most APIs than the other clients
//! tested (Produce v3, Fetch v4, Metadata v0 and v5, OffsetCommit v2). The
//! program is `tests/kafka_clients/go/sarama_life`, built by `go` in GOPATH
//! mode (installed by `.ci/run`); skipped without it unless
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::TestBroker;
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{dense_acknowledged_offsets, run_program, sarama_program};

/// Records the program sends with each of none, gzip, snappy and lz4.
const PER_CODEC: usize = 20;
const CODECS: [&str; 4] = ["none", "gzip", "snappy", "lz4"];

/// Kafka's error codes the program reports.
const TOPIC_ALREADY_EXISTS: i64 = 36;
const INVALID_TOPIC: i64 = 17;
const UNKNOWN_TOPIC_OR_PARTITION: i64 = 3;
const INVALID_PARTITIONS: i64 = 37;
const UNSUPPORTED_COMPRESSION_TYPE: i64 = 76;

fn life(
    brokers: &str,
    topic: &str,
    replication_factor: u32,
    dir: &std::path::Path,
) -> Option<Value> {
    let bin = sarama_program("sarama_life", dir)?;
    let out = run_program(&bin, &[brokers, topic, &replication_factor.to_string()]);
    Some(serde_json::from_str(&out).unwrap())
}

/// What every run asserts, on one broker or a cluster of `brokers`.
fn check_life(r: &Value, topic: &str, brokers: usize) {
    assert_eq!(r["client"], "sarama", "{r}");
    assert_eq!(r["create"], Value::Null, "{r}");
    assert_eq!(r["create_again"], json!(TOPIC_ALREADY_EXISTS), "{r}");
    assert_eq!(r["create_invalid"], json!(INVALID_TOPIC), "{r}");
    assert_eq!(r["listed"]["partitions"], json!(3), "{r}");
    assert_eq!(r["listed"]["retention.ms"], json!("3600000"), "{r}");
    assert_eq!(
        r["described"],
        json!({topic: [0, 3], format!("{topic}-missing"): [UNKNOWN_TOPIC_OR_PARTITION, 0]}),
        "{r}"
    );
    assert_eq!(r["cluster"][0], json!(brokers), "{r}");

    // Every acknowledged record has its own offset, dense from 0 in each
    // partition; the partitions end there, and the partition consumers
    // read exactly those records, with keys, values and headers as sent.
    let (mut ends, total) = dense_acknowledged_offsets(&r["sent"]);
    assert_eq!(total, CODECS.len() * PER_CODEC, "{r}");
    for p in ["0", "1", "2"] {
        ends.entry(p).or_insert(json!(0));
    }
    assert_eq!(r["latest"], Value::Object(ends.clone()), "{r}");
    assert_eq!(r["earliest"], json!({"0": 0, "1": 0, "2": 0}), "{r}");
    assert_eq!(r["by_time_1"], json!({"0": 0, "1": 0, "2": 0}), "{r}");
    let mut consumed: Vec<String> = r["consumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let value = m[3].as_str().unwrap().to_owned();
            let (codec, i) = value.split_once('-').unwrap();
            assert_eq!(m[2], json!(format!("k{i}")), "{m}");
            assert_eq!(m[4], json!([["codec", codec]]), "{m}");
            value
        })
        .collect();
    consumed.sort();
    let mut want: Vec<String> = CODECS
        .iter()
        .flat_map(|c| (0..PER_CODEC).map(move |i| format!("{c}-{i}")))
        .collect();
    want.sort();
    assert_eq!(consumed, want);
    assert_eq!(r["zstd"], json!(UNSUPPORTED_COMPRESSION_TYPE), "{r}");

    // The group: stable with its member, then empty, its commits at each
    // partition's end.
    assert_eq!(
        r["describe_group_live"],
        json!(["Stable", "consumer", 1]),
        "{r}"
    );
    assert_eq!(r["group_read"], json!(CODECS.len() * PER_CODEC), "{r}");
    assert_eq!(r["describe_group"], "Empty", "{r}");
    assert_eq!(r["groups"][format!("{topic}-g")], "consumer", "{r}");
    assert_eq!(r["committed"], Value::Object(ends), "{r}");
    // Two members: the first held all three partitions, rejoined when the
    // second came, and they split the partitions between them.
    let mut split: Vec<u64> = r["two_members"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|claims| assert!(!claims.as_array().unwrap().is_empty(), "{r}"))
        .flat_map(|claims| {
            claims
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap())
        })
        .collect();
    split.sort_unstable();
    assert_eq!(split, vec![0, 1, 2], "{r}");
    assert!(r["first_member_generations"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["two_members_described"], json!(["Stable", 2]), "{r}");

    // Partitions added (never fewer), records deleted.
    assert_eq!(r["create_partitions"], Value::Null, "{r}");
    assert_eq!(
        r["create_partitions_fewer"],
        json!(INVALID_PARTITIONS),
        "{r}"
    );
    assert_eq!(r["partitions_after"], json!(4), "{r}");
    assert_eq!(r["delete_records"], json!([0, 1]), "{r}");
    assert_eq!(r["earliest_0_after_delete"], json!(1), "{r}");

    // Configs: the one set at creation is not a default; AlterConfigs sets
    // the whole set, so what it leaves out goes back to its default.
    assert_eq!(
        r["configs"],
        json!({
            "cleanup.policy": ["delete", true],
            "retention.bytes": ["-1", true],
            "retention.ms": ["3600000", false],
        }),
        "{r}"
    );
    assert_eq!(r["alter_config"], Value::Null, "{r}");
    assert_eq!(
        r["configs_after_alter"],
        json!({
            "cleanup.policy": ["delete", true],
            "retention.bytes": ["1048576", false],
            "retention.ms": ["604800000", true],
        }),
        "{r}"
    );
    assert!(
        r["alter_unknown_config"]
            .as_str()
            .unwrap()
            .contains("no.such.config"),
        "{r}"
    );

    assert_eq!(r["delete"], Value::Null, "{r}");
    assert_eq!(r["delete_again"], json!(UNKNOWN_TOPIC_OR_PARTITION), "{r}");
    assert_eq!(
        r["described_after_delete"],
        json!(UNKNOWN_TOPIC_OR_PARTITION),
        "{r}"
    );
}

#[test]
fn sarama_takes_a_topic_through_its_whole_life() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start();
    let addr = b.kafka_addr.unwrap().to_string();
    let Some(r) = life(&addr, "sr", 1, dir.path()) else {
        return;
    };
    check_life(&r, "sr", 1);
}

#[test]
fn sarama_takes_a_replicated_topic_through_its_whole_life_on_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    let addrs: Vec<String> = c
        .nodes
        .iter()
        .map(|n| n.kafka_addr.unwrap().to_string())
        .collect();
    let Some(r) = life(&addrs.join(","), "sr3", 3, dir.path()) else {
        return;
    };
    check_life(&r, "sr3", 3);
}
