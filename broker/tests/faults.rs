//! Disk faults under a running server (needs `--features fault-injection`):
//! disk full, EIO on write and on read, short writes and a failed fsync. Each
//! produce gets a clear error code, the broker stays up and keeps serving
//! reads, no acknowledged record is lost, and after a fault clears the
//! partition accepts writes again where that is safe (not after a failed
//! fsync: that partition stays offline until the broker restarts). The same
//! holds for offset commits, whose log goes through the same file system.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::Server;

use std::sync::Arc;

use bytes::BytesMut;
use sluice_broker::config::BrokerConfig;
use sluice_broker::log::FileSystem;
use sluice_broker::log::fault::{Faults, FaultyFs};
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;

fn batch(tag: &str, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let v = format!("{tag}-{i}-{}", "x".repeat(200));
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

async fn start(dir: &std::path::Path, fs: Option<FaultyFs>) -> Server {
    let config = BrokerConfig {
        data_dir: dir.to_owned(),
        ..BrokerConfig::default()
    };
    common::start(config, fs.map(|fs| Arc::new(fs) as Arc<dyn FileSystem>)).await
}

async fn produce(
    conn: &mut Connection,
    topic: &str,
    acks: Acks,
    b: &[u8],
) -> (ErrorCode, u64, String) {
    let r = conn
        .produce(acks, 5000, &[(topic, 0, b)])
        .await
        .unwrap()
        .unwrap();
    let p = &r.partitions[0];
    (
        p.error_code,
        p.base_offset,
        p.message.clone().unwrap_or_default(),
    )
}

async fn fetch(conn: &mut Connection, topic: &str, offset: u64) -> (ErrorCode, Vec<String>) {
    let r = conn
        .fetch(
            0,
            0,
            64 << 20,
            vec![FetchPartition {
                topic: topic.into(),
                partition: 0,
                offset,
                max_bytes: 64 << 20,
            }],
        )
        .await
        .unwrap();
    let mut values = Vec::new();
    let mut bytes = r[0].records.clone();
    while !bytes.is_empty() {
        let b = RecordBatch::split_first(&mut bytes).unwrap();
        for rec in b.records() {
            let rec = rec.unwrap();
            if rec.offset as u64 >= offset {
                values.push(String::from_utf8(rec.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    (r[0].error_code, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_faults_give_clear_errors_and_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let server = start(dir.path(), Some(FaultyFs::new(Arc::clone(&faults)))).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    let topics = ["full", "eio", "fsync", "other"]
        .iter()
        .map(|n| NewTopic {
            name: (*n).into(),
            partitions: 1,
            config: TopicConfig::default(),
            replication_factor: None,
        })
        .collect();
    let r = conn.create_topics(topics).await.unwrap();
    assert!(
        r.results.iter().all(|t| t.error_code == ErrorCode::None),
        "{r:?}"
    );
    let mut acked: Vec<(&str, u64, usize)> = Vec::new();

    // Disk full in the middle of an append.
    assert_eq!(
        produce(&mut conn, "full", Acks::All, &batch("a", 10))
            .await
            .0,
        ErrorCode::None
    );
    acked.push(("full", 0, 10));
    faults.set_space_left(500);
    let (code, _, msg) = produce(&mut conn, "full", Acks::Leader, &batch("b", 50)).await;
    assert_eq!(code, ErrorCode::DiskFull, "{msg}");
    assert!(msg.contains("No space left"), "{msg}");
    assert_eq!(
        fetch(&mut conn, "full", 0).await.1.len(),
        10,
        "reads go on while the disk is full"
    );
    faults.clear_disk_full();
    let (code, base, _) = produce(&mut conn, "full", Acks::All, &batch("c", 5)).await;
    assert_eq!(
        (code, base),
        (ErrorCode::None, 10),
        "writes resume where the log ended"
    );
    acked.push(("full", 10, 5));

    // EIO on write, then short writes, then EIO on read.
    faults.set_write_eio(true);
    let (code, _, msg) = produce(&mut conn, "eio", Acks::Leader, &batch("d", 5)).await;
    assert_eq!(code, ErrorCode::StorageError, "{msg}");
    faults.set_write_eio(false);
    faults.set_short_writes(true);
    assert_eq!(
        produce(&mut conn, "eio", Acks::All, &batch("e", 40))
            .await
            .0,
        ErrorCode::None
    );
    acked.push(("eio", 0, 40));
    faults.set_short_writes(false);
    faults.set_read_eio(true);
    // A fetch from inside a recent batch finds it in the log's in-memory
    // tail of batch boundaries: no batch header is read, so a failing disk
    // read does not matter (read errors of the header walk are covered by
    // `log::tests::faults::read_errors_are_errors_not_panics`).
    let (code, _) = fetch(&mut conn, "eio", 7).await;
    assert_eq!(code, ErrorCode::None);
    faults.set_read_eio(false);
    assert_eq!(fetch(&mut conn, "eio", 0).await.1.len(), 40);

    // A failed fsync takes that partition offline, for good.
    assert_eq!(
        produce(&mut conn, "fsync", Acks::All, &batch("f", 3))
            .await
            .0,
        ErrorCode::None
    );
    acked.push(("fsync", 0, 3));
    faults.set_fsync_fails(true);
    let (code, _, msg) = produce(&mut conn, "fsync", Acks::All, &batch("g", 3)).await;
    assert_eq!(code, ErrorCode::PartitionOffline, "{msg}");
    faults.set_fsync_fails(false);
    let (code, _, _) = produce(&mut conn, "fsync", Acks::Leader, &batch("h", 3)).await;
    assert_eq!(
        code,
        ErrorCode::PartitionOffline,
        "not writable again until a restart"
    );
    let meta = conn.metadata(Some(vec!["fsync".into()])).await.unwrap();
    assert_eq!(
        meta.topics[0].partitions[0].error_code,
        ErrorCode::PartitionOffline
    );
    assert!(
        fetch(&mut conn, "fsync", 0).await.1.len() >= 3,
        "reads go on"
    );
    // Other partitions are unaffected.
    assert_eq!(
        produce(&mut conn, "other", Acks::All, &batch("i", 2))
            .await
            .0,
        ErrorCode::None
    );
    acked.push(("other", 0, 2));
    drop(conn);
    server.stop().await;

    // After a restart on a healthy disk every acknowledged record is there,
    // and the offline partition is writable again.
    let server = start(dir.path(), None).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    for (topic, base, n) in acked {
        let (code, values) = fetch(&mut conn, topic, base).await;
        assert_eq!(code, ErrorCode::None);
        assert!(
            values.len() >= n,
            "{topic}: {} of {n} records from {base}",
            values.len()
        );
    }
    assert_eq!(
        produce(&mut conn, "fsync", Acks::All, &batch("j", 1))
            .await
            .0,
        ErrorCode::None
    );
    drop(conn);
    server.stop().await;
}

async fn commit_offset(conn: &mut Connection, offset: u64) -> ErrorCode {
    let r = conn
        .offset_commit(
            "g",
            vec![sluice_protocol::wire::offset_commit::CommitPartition {
                topic: "t".into(),
                partition: 0,
                offset,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap();
    r.partitions[0].error_code
}

async fn committed_offset(conn: &mut Connection) -> Option<u64> {
    let r = conn.offset_fetch("g", None).await.unwrap();
    r.partitions.first().and_then(|p| p.offset)
}

/// The committed offsets go through the broker's file system too: disk
/// faults give clear error codes on OffsetCommit, the last acknowledged
/// commit stays, and a failed fsync takes the offsets log offline until a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commits_under_disk_faults_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let server = start(dir.path(), Some(FaultyFs::new(Arc::clone(&faults)))).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    let r = conn
        .create_topics(vec![NewTopic {
            name: "t".into(),
            partitions: 1,
            config: TopicConfig::default(),
            replication_factor: None,
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    assert_eq!(commit_offset(&mut conn, 1).await, ErrorCode::None);

    faults.set_space_left(10);
    assert_eq!(commit_offset(&mut conn, 2).await, ErrorCode::DiskFull);
    assert_eq!(committed_offset(&mut conn).await, Some(1));
    faults.clear_disk_full();
    faults.set_write_eio(true);
    assert_eq!(commit_offset(&mut conn, 3).await, ErrorCode::StorageError);
    faults.set_write_eio(false);
    assert_eq!(commit_offset(&mut conn, 4).await, ErrorCode::None);
    assert_eq!(committed_offset(&mut conn).await, Some(4));

    faults.set_fsync_fails(true);
    assert_eq!(
        commit_offset(&mut conn, 5).await,
        ErrorCode::PartitionOffline
    );
    faults.set_fsync_fails(false);
    assert_eq!(
        commit_offset(&mut conn, 6).await,
        ErrorCode::PartitionOffline
    );
    assert_eq!(committed_offset(&mut conn).await, Some(4));
    drop(conn);
    server.stop().await;

    // A restart on a healthy disk: the last acknowledged commit is there
    // (5 may be too: it was written, only its fsync failed), and commits
    // work again.
    let server = start(dir.path(), None).await;
    let mut conn = Connection::connect(server.addr).await.unwrap();
    let after = committed_offset(&mut conn).await;
    assert!(matches!(after, Some(4 | 5)), "{after:?}");
    assert_eq!(commit_offset(&mut conn, 7).await, ErrorCode::None);
    assert_eq!(committed_offset(&mut conn).await, Some(7));
    drop(conn);
    server.stop().await;
}
