//! The replicated produce path keeps what a single broker does: a topic
//! with a fixed codec stores every batch in it (on every replica), and each
//! replica's partition counters count what its log appended.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::batch::Compression;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::{TopicCompression, TopicConfig};
use sluice_tests::cluster::TestCluster;
use sluice_tests::{batch_sized, http_get, sample};

const WAIT: Duration = Duration::from_secs(30);

/// Partition 0's leader as node `id`'s Metadata names it.
async fn leader_seen_by(c: &TestCluster, id: u64, topic: &str) -> Option<u64> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    m.topics.first()?.partitions.first()?.leader
}

/// The codec of every batch in node `id`'s first segment file of
/// partition 0 of `topic` (followers serve no fetches: read the file).
fn codecs_on(c: &TestCluster, id: u64, topic: &str) -> Vec<Compression> {
    let path = find_log(&c.node(id).data_dir, &format!("{topic}-0")).unwrap();
    let mut bytes = bytes::Bytes::from(std::fs::read(path).unwrap());
    let mut out = Vec::new();
    while let Ok(b) = RecordBatch::split_first(&mut bytes) {
        out.push(b.header().compression());
    }
    out
}

/// The first segment file of partition directory `name` under `dir`.
fn find_log(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p.join(format!("{:020}.log", 0)));
            }
            if let Some(found) = find_log(&p, name) {
                return Some(found);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_codec_and_the_partition_counters_hold_in_a_cluster() {
    let c = TestCluster::start(3);
    let config = TopicConfig {
        compression: Some(TopicCompression::Zstd),
        ..TopicConfig::default()
    };
    let r = c
        .node(1)
        .connect()
        .await
        .create_topics(vec![NewTopic {
            name: "z".into(),
            partitions: 1,
            config,
            replication_factor: Some(3),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");

    let plain = batch_sized("p", 20, 100);
    let lz4 = compress_batch(&batch_sized("l", 20, 100), Codec::new(Compression::Lz4)).unwrap();
    let mut both = plain.to_vec();
    both.extend_from_slice(&lz4);
    // Produce through whichever node leads (leadership may move once
    // while the group forms).
    let deadline = Instant::now() + WAIT;
    let leader = loop {
        assert!(Instant::now() < deadline, "no acknowledged produce");
        let Some(l) = leader_seen_by(&c, 1, "z").await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut conn = c.node(l).connect().await;
        let r = conn
            .produce(Acks::All, 5000, &[("z", 0, &both)])
            .await
            .unwrap()
            .unwrap();
        if r.partitions[0].error_code == ErrorCode::None {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The leader serves zstd batches only.
    let mut conn = c.node(leader).connect().await;
    let resp = conn
        .fetch(
            0,
            0,
            4 << 20,
            vec![FetchPartition {
                topic: "z".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    let mut bytes = resp[0].records.clone();
    let mut n = 0;
    while !bytes.is_empty() {
        let b = RecordBatch::split_first(&mut bytes).unwrap();
        assert_eq!(b.header().compression(), Compression::Zstd);
        n += 1;
    }
    assert_eq!(n, 2);

    // Every replica stored them as zstd and counted 40 records.
    let series = |name: &str| format!("{name}{{topic=\"z\",partition=\"0\"}}");
    c.wait_until(WAIT, "every replica to count 40 records", |c| {
        (1..=3).all(|id| {
            let (_, text) = http_get(c.node(id).metrics_addr.unwrap(), "/metrics");
            sample(&text, &series("sluice_partition_records_appended_total")) == Some(40.0)
        })
    });
    for id in 1..=3 {
        let (_, text) = http_get(c.node(id).metrics_addr.unwrap(), "/metrics");
        let bytes = sample(&text, &series("sluice_partition_appended_bytes_total")).unwrap();
        assert!(bytes > 0.0, "node {id}");
        assert_eq!(
            sample(&text, &series("sluice_partition_offline")),
            Some(0.0),
            "node {id}"
        );
        assert_eq!(
            codecs_on(&c, id, "z"),
            [Compression::Zstd, Compression::Zstd],
            "node {id}"
        );
    }
}
