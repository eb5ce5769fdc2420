//! DeleteRecords through the Kafka listener: the records below an offset
//! (one inside a batch, or the high watermark) are gone for readers —
//! fetches below the new log start are `OFFSET_OUT_OF_RANGE`, the earliest
//! offset is the new start, the segments wholly below it are removed — and
//! stay gone after a restart; DescribeLogDirs tells the smaller size. Offsets past the high watermark or negative,
//! unknown partitions and topics are refused per partition and change
//! nothing. confluent-kafka and aiokafka delete records too, and a
//! confluent-kafka consumer starting below the new start is reset to it.
//! On a 3-node cluster the deletion reaches every replica and outlives a
//! leader kill.
//!
//! The client part needs the Python of `SLUICE_KAFKA_PYTHON` (see
//! `kafka_clients.rs`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_protocol::kafka::delete_records::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsResponse, DeleteRecordsTopic,
    HIGH_WATERMARK,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{call, python, run_clients};
use sluice_tests::{TestBroker, batch_of, batch_sized_now, create_topic, decode_records};

/// Sends one DeleteRecords request for `topic`; returns each partition's
/// (index, low watermark, code).
fn delete(
    s: &mut TcpStream,
    version: i16,
    topic: &str,
    partitions: &[(i32, i64)],
) -> Vec<(i32, i64, i16)> {
    let mut req = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: partitions
                .iter()
                .map(|&(partition_index, offset)| DeleteRecordsPartition {
                    partition_index,
                    offset,
                })
                .collect(),
        }],
        timeout_ms: 10_000,
    };
    let r: DeleteRecordsResponse = call(s, version, &mut req);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].name, topic);
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.low_watermark, p.error_code))
        .collect()
}

async fn earliest(b: &TestBroker, topic: &str, partition: u32) -> u64 {
    let mut c = b.connect().await;
    let r = c
        .list_offsets(vec![ListOffsetsPartition {
            topic: topic.into(),
            partition,
            spec: OffsetSpec::Earliest,
        }])
        .await
        .unwrap();
    r.partitions[0].offset
}

/// Fetches `partition` of "trim" from `offset`: the error code and the
/// offsets of the records at or after `offset`.
async fn fetch_from(b: &TestBroker, partition: u32, offset: u64) -> (ErrorCode, Vec<u64>) {
    let mut c = b.connect().await;
    let f = c
        .fetch(
            0,
            1,
            1 << 20,
            vec![FetchPartition {
                topic: "trim".into(),
                partition,
                offset,
                max_bytes: 64 << 10,
            }],
        )
        .await
        .unwrap();
    let offsets = decode_records(&f[0].records, offset)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    (f[0].error_code, offsets)
}

fn segment_files(b: &TestBroker, partition: u32) -> usize {
    sluice_tests::segment_file_count(&b.data_dir, &format!("trim-{partition}"))
}

/// The bytes of partitions 0 and 1 of "trim" as DescribeLogDirs tells
/// them, asked for by name (v1) and for everything (v4, which also tells
/// the file system's size); the one directory is the data directory.
fn log_dir_sizes(s: &mut TcpStream, b: &TestBroker) -> Vec<i64> {
    use sluice_protocol::kafka::describe_log_dirs::{
        DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResponse,
    };
    let named = Some(vec![DescribableLogDirTopic {
        topic: "trim".into(),
        partitions: vec![0, 1, 7, -1],
    }]);
    let mut sizes = Vec::new();
    for (version, topics) in [(1, named), (4, None)] {
        let mut req = DescribeLogDirsRequest { topics };
        let r: DescribeLogDirsResponse = call(s, version, &mut req);
        assert_eq!(r.results.len(), 1, "{r:?}");
        let dir = &r.results[0];
        assert_eq!(
            std::path::Path::new(&dir.log_dir),
            std::path::absolute(&b.data_dir).unwrap()
        );
        if version >= 4 {
            assert!(
                dir.total_bytes >= dir.usable_bytes && dir.usable_bytes > 0,
                "{dir:?}"
            );
        }
        let trim = dir.topics.iter().find(|t| t.name == "trim").unwrap();
        let got: Vec<(i32, i64)> = trim
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size))
            .collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1], "{r:?}");
        let got: Vec<i64> = got.into_iter().map(|g| g.1).collect();
        if sizes.is_empty() {
            sizes = got;
        } else {
            assert_eq!(sizes, got);
        }
    }
    sizes
}

#[test]
fn records_below_an_offset_are_deleted_and_stay_deleted() {
    let mut b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        let config = TopicConfig {
            segment_bytes: Some(64 << 10),
            ..TopicConfig::default()
        };
        create_topic(&mut c, "trim", 2, config).await;
        // 1,024 records of 1,000 bytes in batches of 16, over some 16
        // segments; 3 records in partition 1.
        for i in 0..64 {
            let batch = batch_sized_now(&format!("r{i}"), 16, 1000);
            let r = c
                .produce(Acks::All, 5000, &[("trim", 0, &batch)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None);
        }
        let r = c
            .produce(Acks::All, 5000, &[("trim", 1, &batch_of(&["a", "b", "c"]))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    });
    let segments = segment_files(&b, 0);
    assert!(segments > 8, "{segments}");
    let s = &mut TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let before = log_dir_sizes(s, &b);
    assert!(before[0] > 1_000_000 && before[1] > 0, "{before:?}");
    // Refusals, at every version: nothing changes.
    for v in 0..=2 {
        let out = delete(s, v, "trim", &[(0, 1025), (9, 1), (-1, 1)]);
        assert_eq!(
            out,
            [
                (0, -1, code::OFFSET_OUT_OF_RANGE),
                (9, -1, code::UNKNOWN_TOPIC_OR_PARTITION),
                (-1, -1, code::UNKNOWN_TOPIC_OR_PARTITION),
            ],
            "v{v}"
        );
        let out = delete(s, v, "trim", &[(0, -2)]);
        assert_eq!(out, [(0, -1, code::OFFSET_OUT_OF_RANGE)], "v{v}");
        let out = delete(s, v, "nope", &[(0, 1)]);
        assert_eq!(out, [(0, -1, code::UNKNOWN_TOPIC_OR_PARTITION)], "v{v}");
    }
    assert_eq!(rt.block_on(earliest(&b, "trim", 0)), 0);
    assert_eq!(segment_files(&b, 0), segments);
    // Below 500, inside the batch of offsets 496..512 (v0); all of
    // partition 1 (up to its high watermark, v2); a lower offset after
    // (v1) changes nothing.
    assert_eq!(delete(s, 0, "trim", &[(0, 500)]), [(0, 500, code::NONE)]);
    assert_eq!(
        delete(s, 2, "trim", &[(1, HIGH_WATERMARK)]),
        [(1, 3, code::NONE)]
    );
    assert_eq!(delete(s, 1, "trim", &[(0, 100)]), [(0, 500, code::NONE)]);
    let check = |b: &TestBroker| {
        rt.block_on(async {
            assert_eq!(earliest(b, "trim", 0).await, 500);
            assert_eq!(earliest(b, "trim", 1).await, 3);
            assert_eq!(fetch_from(b, 0, 499).await.0, ErrorCode::OffsetOutOfRange);
            assert_eq!(fetch_from(b, 0, 0).await.0, ErrorCode::OffsetOutOfRange);
            let (code, offsets) = fetch_from(b, 0, 500).await;
            assert_eq!(code, ErrorCode::None);
            assert_eq!(offsets.first(), Some(&500));
            assert_eq!(fetch_from(b, 1, 2).await.0, ErrorCode::OffsetOutOfRange);
            assert_eq!(fetch_from(b, 1, 3).await, (ErrorCode::None, vec![]));
        })
    };
    check(&b);
    // The segments wholly below offset 500 are gone from the disk.
    let left = segment_files(&b, 0);
    assert!(
        left < segments - 5,
        "{left} of {segments} segment files left"
    );
    // And DescribeLogDirs tells the smaller size.
    let after = log_dir_sizes(s, &b);
    assert!(
        after[0] > 0 && after[0] < before[0] * 3 / 4,
        "{before:?} then {after:?}"
    );
    b.stop();
    b.restart();
    check(&b);

    let Some(python) = python() else { return };
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "clients", 2, TopicConfig::default()).await;
        for p in 0..2 {
            let values: Vec<String> = (0..10).map(|i| format!("p{p}-{i}")).collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let r = c
                .produce(Acks::All, 5000, &[("clients", p, &batch_of(&values))])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None);
        }
    });
    let out = run_clients(
        &python,
        &[
            "delete-records",
            &b.kafka_addr.unwrap().to_string(),
            "clients",
        ],
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["below_4"], 4, "{r}");
    assert_eq!(r["past_end"], "OFFSET_OUT_OF_RANGE", "{r}");
    assert_eq!(r["aiokafka_all_of_1"], json!({"1": 10}), "{r}");
    assert_eq!(r["earliest"], json!([4, 10]), "{r}");
    let want: Vec<Value> = (4..10).map(|i| json!([0, i, format!("p0-{i}")])).collect();
    assert_eq!(r["read"], Value::Array(want), "{r}");
}

/// On a 3-node cluster: the leader deletes records below an offset inside a
/// batch and answers the new start; a follower refuses the request
/// (`NOT_LEADER_OR_FOLLOWER`), while `sluice topic delete-records` given a
/// follower finds the leader; every replica raises its log start and drops
/// the segments wholly below it; after the leader is killed the new leader
/// serves from the new start (fetches below it are out of range), and the
/// old leader, restarted, still holds it.
#[test]
fn a_cluster_deletes_records_on_every_replica() {
    use sluice_tests::cluster::{TestCluster, segment_batches};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = TestCluster::start_with_kafka_config(3, "maintenance_interval_ms = 100\n");
    let wait = Duration::from_secs(60);
    let all = [1, 2, 3];
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        ..TopicConfig::default()
    };
    let leader = rt.block_on(async {
        c.create_replicated("trim", 1, 3, config).await;
        let mut leader = 0;
        // 40 batches of 4 records of 2,000 bytes: offsets 0..160 over
        // some 5 segments.
        for i in 0..40 {
            let batch = batch_sized_now(&format!("r{i}"), 4, 2000);
            leader = c
                .produce_through_leader(&all, "trim", &batch, &[], wait)
                .await
                .0;
        }
        leader
    });
    let batches_on = |c: &TestCluster, n: u64| segment_batches(&c.node(n).data_dir, "trim-0");
    c.wait_until(wait, "every replica holds every batch", |c| {
        all.iter().all(|&n| batches_on(c, n).len() == 40)
    });
    let followers: Vec<u64> = all.into_iter().filter(|&n| n != leader).collect();
    let kafka = |c: &TestCluster, n: u64| {
        let s = TcpStream::connect(c.node(n).kafka_addr.unwrap()).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s
    };
    let s = &mut kafka(&c, followers[0]);
    assert_eq!(
        delete(s, 2, "trim", &[(0, 62)]),
        [(0, -1, code::NOT_LEADER_OR_FOLLOWER)]
    );
    let s = &mut kafka(&c, leader);
    assert_eq!(
        delete(s, 2, "trim", &[(0, 161)]),
        [(0, -1, code::OFFSET_OUT_OF_RANGE)]
    );
    assert_eq!(delete(s, 2, "trim", &[(0, 62)]), [(0, 62, code::NONE)]);
    assert_eq!(delete(s, 1, "trim", &[(0, 10)]), [(0, 62, code::NONE)]);
    assert_eq!(rt.block_on(earliest(c.node(leader), "trim", 0)), 62);
    assert_eq!(
        rt.block_on(fetch_from(c.node(leader), 0, 61)).0,
        ErrorCode::OffsetOutOfRange
    );
    // The CLI, given a follower, finds the leader.
    let cli = sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN");
    let out = std::process::Command::new(cli)
        .arg("--broker")
        .arg(c.node(followers[0]).addr.to_string())
        .args(["topic", "delete-records", "trim", "--before", "64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "partition 0 of topic trim starts at offset 64\n"
    );
    // Every replica drops its segments wholly below 64 (the first one at
    // least), which it does only once its own log start is raised.
    c.wait_until(wait, "every replica drops its first segment", |c| {
        all.iter()
            .all(|&n| batches_on(c, n).first().is_some_and(|b| b.0 > 0))
    });
    for &n in &all {
        let first = batches_on(&c, n)[0].0;
        assert!(
            first <= 64,
            "node {n} dropped records it must keep: first batch {first}"
        );
    }
    c.kill(leader);
    let next = rt.block_on(c.wait_partition_leader(&followers, "trim", wait));
    let (code, offsets) = rt.block_on(fetch_from(c.node(next), 0, 64));
    assert_eq!(code, ErrorCode::None);
    assert_eq!(offsets.first(), Some(&64));
    assert_eq!(
        rt.block_on(fetch_from(c.node(next), 0, 63)).0,
        ErrorCode::OffsetOutOfRange
    );
    assert_eq!(rt.block_on(earliest(c.node(next), "trim", 0)), 64);
    // All of it, on the new leader (up to its high watermark).
    let s = &mut kafka(&c, next);
    assert_eq!(
        delete(s, 2, "trim", &[(0, HIGH_WATERMARK)]),
        [(0, 160, code::NONE)]
    );
    c.restart(leader);
    c.wait_until(wait, "the restarted node holds the new start", |c| {
        let dir = sluice_tests::cluster::partition_dir(&c.node(leader).data_dir, "trim-0");
        dir.and_then(|d| std::fs::read(d.join("log-start-offset.checkpoint")).ok())
            .is_some_and(|b| b.len() == 24 && b[8..16] == 160u64.to_be_bytes())
    });
}

/// A follower elected leader before any maintenance pass of its own raised
/// its log start (the pass is a minute away here) hides the deleted
/// records as soon as it leads: by the time the cluster names it leader,
/// its earliest offset is the deleted one and fetches below it are out of
/// range.
#[test]
fn a_new_leader_hides_deleted_records_before_its_maintenance_pass() {
    use sluice_tests::cluster::TestCluster;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = TestCluster::start_with_kafka_config(3, "maintenance_interval_ms = 60000\n");
    let wait = Duration::from_secs(60);
    let all = [1, 2, 3];
    let leader = rt.block_on(async {
        c.create_replicated("trim", 1, 3, TopicConfig::default())
            .await;
        let mut leader = 0;
        for i in 0..10 {
            let batch = batch_sized_now(&format!("r{i}"), 4, 100);
            leader = c
                .produce_through_leader(&all, "trim", &batch, &[], wait)
                .await
                .0;
        }
        leader
    });
    let mut s = TcpStream::connect(c.node(leader).kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    assert_eq!(delete(&mut s, 2, "trim", &[(0, 22)]), [(0, 22, code::NONE)]);
    c.kill(leader);
    let followers: Vec<u64> = all.into_iter().filter(|&n| n != leader).collect();
    let next = rt.block_on(c.wait_partition_leader(&followers, "trim", wait));
    assert_eq!(rt.block_on(earliest(c.node(next), "trim", 0)), 22);
    assert_eq!(
        rt.block_on(fetch_from(c.node(next), 0, 21)).0,
        ErrorCode::OffsetOutOfRange
    );
}
