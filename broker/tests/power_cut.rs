//! Power cuts under a running server (needs `--features fault-injection`).
//!
//! The broker runs over [`CrashFs`], which tracks what was `fdatasync`ed
//! and which directory entries were synced. While clients produce (with
//! `acks=all` to one topic and `acks=leader` to another, both with the
//! default flush policy `never`) and commit offsets, we take crash images:
//! the files a machine could come back with after a power cut at that
//! instant (unsynced bytes dropped, or kept as a random, possibly garbled,
//! prefix). A broker started on each image must hold every `acks=all`
//! record and the last acknowledged committed offset; the `acks=leader`
//! records, which nothing fsynced, are (in some images) lost. Unlike
//! `tests/tests/crash_loop.rs`, whose SIGKILL keeps the page cache, this
//! tells `acks=all` from `acks=leader`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::Server;

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use sluice_broker::config::BrokerConfig;
use sluice_broker::log::FileSystem;
use sluice_broker::log::crash::{CrashFs, Rng};
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;

const BATCHES: usize = 30;
const PER_BATCH: usize = 5;
const IMAGES: u64 = 6;

fn batch(tag: &str, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let v = format!("{tag}-{i}");
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

async fn start(config: BrokerConfig, fs: Option<CrashFs>) -> Server {
    common::start(config, fs.map(|fs| Arc::new(fs) as Arc<dyn FileSystem>)).await
}

/// Every `(offset, value)` of a partition.
async fn read_all(conn: &mut Connection, topic: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    loop {
        let from = out.last().map_or(0, |(o, _)| o + 1);
        let r = conn
            .fetch(
                0,
                0,
                64 << 20,
                vec![FetchPartition {
                    topic: topic.into(),
                    partition: 0,
                    offset: from,
                    max_bytes: 64 << 20,
                }],
            )
            .await
            .unwrap();
        assert_eq!(r[0].error_code, ErrorCode::None, "{topic} from {from}");
        let mut bytes = r[0].records.clone();
        let before = out.len();
        while !bytes.is_empty() {
            let b = RecordBatch::split_first(&mut bytes).unwrap();
            for rec in b.records() {
                let rec = rec.unwrap();
                if rec.offset as u64 >= from {
                    let v = String::from_utf8(rec.value.unwrap().to_vec()).unwrap();
                    out.push((rec.offset as u64, v));
                }
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// What a power cut now could leave of `data_dir`, written to `image`.
fn crash_image(fs: &CrashFs, data_dir: &Path, image: &Path, seed: u64) {
    let mut rng = Rng(seed);
    fs.crash_image(data_dir, image, &mut rng).unwrap();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            fs.crash_image(&entry.path(), &image.join(&name), &mut rng)
                .unwrap();
        } else if name == "topics.meta" {
            // Written (atomically, with fsync) outside the broker's
            // `FileSystem`; created before any record, so it is durable.
            std::fs::copy(entry.path(), image.join(&name)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_records_and_committed_offsets_survive_power_cuts_acks_leader_may_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let fs = CrashFs::new();
    let config = BrokerConfig {
        data_dir: data_dir.clone(),
        // No periodic flushes: only what acks (and commits) fsync is durable.
        maintenance_interval_ms: 3_600_000,
        // Snapshot the committed offsets often, to cut power around them too.
        offsets_snapshot_bytes: 4096,
        ..BrokerConfig::default()
    };
    let server = start(config.clone(), Some(fs.clone())).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    let topics = ["all", "leader"]
        .iter()
        .map(|n| NewTopic {
            name: (*n).into(),
            partitions: 1,
            config: TopicConfig::default(),
            replication_factor: None,
        })
        .collect();
    let r = conn.create_topics(topics).await.unwrap();
    assert!(r.results.iter().all(|t| t.error_code.is_ok()), "{r:?}");

    let mut images = Vec::new();
    let mut acked_all: Vec<(u64, String)> = Vec::new();
    let mut acked_leader = 0;
    let mut last_commit = None;
    for i in 0..BATCHES {
        for (topic, acks) in [("all", Acks::All), ("leader", Acks::Leader)] {
            let tag = format!("{topic}{i}");
            let r = conn
                .produce(acks, 5000, &[(topic, 0, &batch(&tag, PER_BATCH))])
                .await
                .unwrap()
                .unwrap();
            let p = &r.partitions[0];
            assert_eq!(p.error_code, ErrorCode::None);
            if acks == Acks::All {
                for j in 0..PER_BATCH {
                    acked_all.push((p.base_offset + j as u64, format!("{tag}-{j}")));
                }
            } else {
                acked_leader += PER_BATCH;
            }
        }
        for k in 0..5u64 {
            let offset = i as u64 * 10 + k;
            let r = conn
                .offset_commit(
                    "g",
                    vec![CommitPartition {
                        topic: "all".into(),
                        partition: 0,
                        offset,
                        metadata: format!("commit {offset}"),
                    }],
                )
                .await
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None);
            last_commit = Some(offset);
        }
        // A power cut now: everything acknowledged so far is the promise.
        if (i + 1) % (BATCHES / IMAGES as usize) == 0 {
            let seed = images.len() as u64 + 1;
            let image = tmp.path().join(format!("image{seed}"));
            crash_image(&fs, &data_dir, &image, seed);
            images.push((image, acked_all.clone(), acked_leader, last_commit));
        }
    }
    drop(conn);
    server.stop().await;

    let mut lost_leader = Vec::new();
    for (image, acked_all, acked_leader, last_commit) in images {
        let config = BrokerConfig {
            data_dir: image.clone(),
            ..config.clone()
        };
        let server = start(config, None).await;
        let mut conn = Connection::connect(server.addr).await.unwrap();
        let all = read_all(&mut conn, "all").await;
        assert!(
            all.starts_with(&acked_all),
            "{}: acks=all records lost: {} of {} there",
            image.display(),
            all.len(),
            acked_all.len()
        );
        let leader = read_all(&mut conn, "leader").await;
        lost_leader.push(acked_leader - leader.len());
        let r = conn.offset_fetch("g", None).await.unwrap();
        let offsets: Vec<_> = r.partitions.iter().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            [last_commit],
            "{}: last acknowledged commit",
            image.display()
        );
        drop(conn);
        server.stop().await;
    }
    assert!(
        lost_leader.iter().any(|&n| n > 0),
        "acks=leader records never fsynced should be lost in some crash image: {lost_leader:?}"
    );
}

/// A batch of producer `pid` (epoch 0) from sequence `seq`.
fn idempotent_batch(pid: i64, seq: i32, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new().producer(pid, 0, seq);
    for i in 0..n {
        let v = format!("p{pid}-s{}", seq as usize + i);
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

/// After a power cut, every batch an idempotent producer had acknowledged with
/// `acks=all` is still recognised: its retry gets the original offset and
/// stores nothing; and producer ids handed out before the cut are not handed
/// out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_after_a_power_cut_store_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let fs = CrashFs::new();
    let config = BrokerConfig {
        data_dir: data_dir.clone(),
        maintenance_interval_ms: 3_600_000,
        ..BrokerConfig::default()
    };
    let server = start(config.clone(), Some(fs.clone())).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    let r = conn
        .create_topics(vec![NewTopic {
            name: "idem".into(),
            partitions: 1,
            config: TopicConfig {
                // Small segments: rolls (and producer snapshots) happen.
                segment_bytes: Some(65536),
                ..TopicConfig::default()
            },
            replication_factor: None,
        }])
        .await
        .unwrap();
    assert!(r.results[0].error_code.is_ok(), "{r:?}");
    let pid = conn.init_producer_id().await.unwrap().producer_id;

    let mut images = Vec::new();
    let mut acked: Vec<(i32, u64)> = Vec::new();
    for i in 0..BATCHES {
        let seq = (i * 50) as i32;
        let records = idempotent_batch(pid, seq, 50);
        let r = conn
            .produce(Acks::All, 5000, &[("idem", 0, &records)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
        acked.push((seq, r.partitions[0].base_offset));
        if (i + 1) % (BATCHES / IMAGES as usize) == 0 {
            let seed = images.len() as u64 + 100;
            let image = tmp.path().join(format!("idem-image{seed}"));
            crash_image(&fs, &data_dir, &image, seed);
            images.push((image, acked.clone()));
        }
    }
    drop(conn);
    server.stop().await;

    for (image, acked) in images {
        let config = BrokerConfig {
            data_dir: image.clone(),
            ..config.clone()
        };
        let server = start(config, None).await;
        let mut conn = Connection::connect(server.addr).await.unwrap();
        let before = read_all(&mut conn, "idem").await.len();
        assert!(
            before >= acked.len() * 50,
            "{}: acked records lost",
            image.display()
        );
        // The newest five batches are retried (the window a producer can
        // have in flight).
        for &(seq, offset) in acked.iter().rev().take(5) {
            let r = conn
                .produce(
                    Acks::All,
                    5000,
                    &[("idem", 0, &idempotent_batch(pid, seq, 50))],
                )
                .await
                .unwrap()
                .unwrap();
            let p = &r.partitions[0];
            assert_eq!(
                (p.error_code, p.base_offset),
                (ErrorCode::None, offset),
                "{}: retry of sequence {seq}",
                image.display()
            );
        }
        assert_eq!(
            read_all(&mut conn, "idem").await.len(),
            before,
            "{}",
            image.display()
        );
        let fresh = conn.init_producer_id().await.unwrap().producer_id;
        assert!(fresh > pid, "{}: id {fresh} after {pid}", image.display());
        drop(conn);
        server.stop().await;
    }
}
