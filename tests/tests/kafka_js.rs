//! KafkaJS (2.2.4, pinned in `tests/kafka_clients/js`) against the Kafka
//! listener of a real broker: its admin client creates a topic, its producer
//! writes with and without gzip, idempotent or not, a group consumer reads
//! everything from the beginning and commits, and two group consumers split
//! a topic's partitions. `@platformatic/kafka` (1.35.0, pinned there too),
//! a client that fetches by topic id, does a whole round trip.
//!
//! Needs `node` and `npm ci` in `tests/kafka_clients/js` (done by
//! `.ci/run`); skipped without them unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use serde_json::{Value, json};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{kafkajs, platformatic_kafka, run_js, run_js_script};
use sluice_tests::{TestBroker, create_topic};

fn kafka_addr(b: &TestBroker) -> String {
    b.kafka_addr.unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_admin_creates_a_topic_the_native_protocol_sees() {
    if !kafkajs() {
        return;
    }
    let b = TestBroker::start();
    let out = run_js(&["admin", &kafka_addr(&b), "made-by-kafkajs", "3"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["created"], true, "{out}");
    assert_eq!(v["partitions"], 3, "{out}");
    assert_eq!(v["listed"], true, "{out}");
    let mut c = b.connect().await;
    let topics = c.metadata(None).await.unwrap();
    let t = topics
        .topics
        .iter()
        .find(|t| t.name == "made-by-kafkajs")
        .expect("topic visible natively");
    assert_eq!(t.partitions.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_produces_plain_gzip_and_idempotent_then_a_group_consumer_reads_and_commits() {
    if !kafkajs() {
        return;
    }
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "js", 1, TopicConfig::default()).await;
    let addr = kafka_addr(&b);
    let mut next = 0u64;
    let mut want = Vec::new();
    for (codec, idempotent) in [("none", "0"), ("gzip", "0"), ("none", "1"), ("gzip", "1")] {
        let out = run_js(&["produce", &addr, "js", codec, "20", idempotent]);
        let reports: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(reports.len(), 2, "{out}");
        for r in &reports {
            assert_eq!(r["errorCode"], 0, "{codec}/{idempotent}: {out}");
            assert_eq!(r["baseOffset"], next, "{codec}/{idempotent}: {out}");
            next += r["count"].as_u64().unwrap();
        }
        for i in 0..20 {
            want.push(json!({
                "partition": 0,
                "offset": want.len(),
                "key": format!("k{i}"),
                "value": format!("js-{codec}-{i}"),
            }));
        }
    }
    assert_eq!(next, 80);
    let out = run_js(&["group-consume", &addr, "js", "gjs", "80"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["records"], Value::Array(want), "{out}");
    assert_eq!(
        v["committed"],
        json!([{"partition": 0, "offset": 80}]),
        "{out}"
    );
    // The commit is the group's, seen by the native protocol too.
    let fetched = c.offset_fetch("gjs", None).await.unwrap();
    assert_eq!(fetched.partitions[0].offset, Some(80), "{fetched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kafkajs_consumers_in_one_group_split_the_partitions() {
    if !kafkajs() {
        return;
    }
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "jpair", 4, TopicConfig::default()).await;
    let out = run_js(&["group-pair", &kafka_addr(&b), "jpair", "gpair"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let a: Vec<u64> = serde_json::from_value(v["a"].clone()).unwrap();
    let bb: Vec<u64> = serde_json::from_value(v["b"].clone()).unwrap();
    assert!(!a.is_empty() && !bb.is_empty(), "{out}");
    let mut all: Vec<u64> = a.iter().chain(&bb).copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3], "{out}");
}

/// `@platformatic/kafka` creates a topic, produces to both partitions with
/// acks=all, and a group consumer reads everything from the earliest
/// offset (by topic id, Fetch v13+) and commits. The topic id it saw is the
/// one Metadata gives, and the commit is the group's, seen natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platformatic_kafka_round_trips_through_a_group_fetching_by_topic_id() {
    if !platformatic_kafka() {
        return;
    }
    let b = TestBroker::start();
    let out = run_js_script(
        "platformatic.mjs",
        &["round-trip", &kafka_addr(&b), "plat", "gplat", "10"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut want = Vec::new();
    for partition in 0..2 {
        for offset in 0..5 {
            let i = offset * 2 + partition;
            want.push(json!({
                "partition": partition,
                "offset": offset,
                "key": format!("k{i}"),
                "value": format!("plat-{i}"),
                "h": format!("v{i}"),
            }));
        }
    }
    assert_eq!(v["records"], Value::Array(want), "{out}");
    assert_eq!(
        v["committed"],
        json!([{"partition": 0, "offset": 5}, {"partition": 1, "offset": 5}]),
        "{out}"
    );
    // The id is Metadata's, in the usual text form.
    let mut s = std::net::TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    let mut req = sluice_protocol::kafka::metadata::MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let m: sluice_protocol::kafka::metadata::MetadataResponse =
        sluice_tests::kafka::call(&mut s, 12, &mut req);
    let id = m.topics[0].topic_id;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    assert_eq!(v["topicId"], text.as_str(), "{out}");
    let mut c = b.connect().await;
    let fetched = c.offset_fetch("gplat", None).await.unwrap();
    let mut offsets: Vec<_> = fetched
        .partitions
        .iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, vec![(0, Some(5)), (1, Some(5))], "{fetched:?}");
}
