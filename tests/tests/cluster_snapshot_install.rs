//! A node that was down while retention deleted, on the other replicas,
//! the log it needs installs the partition's snapshot when it returns: it
//! restarts its log at the snapshot's offset, then follows the leader, and
//! holds the same batches as the leader from there.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::TestCluster;

const WAIT: Duration = Duration::from_secs(60);

/// A batch of `n` records of `len` bytes stamped now.
fn batch(tag: &str, n: usize, len: usize) -> bytes::BytesMut {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut v = format!("{tag}:{i}").into_bytes();
        v.resize(len.max(v.len()), b'-');
        b.push(&NewRecord {
            timestamp: now,
            key: None,
            value: Some(&v),
            headers: &[],
        });
    }
    b.finish()
}

/// The partition directory `name` under `dir`.
fn find_dir(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
            if let Some(f) = find_dir(&p, name) {
                return Some(f);
            }
        }
    }
    None
}

/// (base offset, length, next offset) of every batch in the segments of partition
/// directory `name` under `dir`, in offset order (read independently of the
/// broker, from the files).
fn batches(dir: &Path, name: &str) -> Vec<(i64, usize, i64)> {
    let Some(d) = find_dir(dir, name) else {
        return Vec::new();
    };
    let mut logs: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for p in logs {
        let mut bytes = bytes::Bytes::from(std::fs::read(p).unwrap_or_default());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            let h = b.header();
            out.push((h.base_offset, h.total_len(), h.next_offset()));
        }
    }
    out
}

/// The offset after the last batch of partition directory `name` under
/// `dir`, and the base offset of its first segment (from the file names:
/// a log just restarted at a snapshot has an empty segment there).
fn end_and_start(dir: &Path, name: &str) -> (i64, i64) {
    let Some(d) = find_dir(dir, name) else {
        return (0, 0);
    };
    let mut bases: Vec<i64> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort();
    let start = bases.first().copied().unwrap_or(0);
    let mut end = bases.last().copied().unwrap_or(0);
    if let Some((_, _, next)) = batches(dir, name).last() {
        end = end.max(*next);
    }
    (end, start)
}

async fn leader_seen_by(c: &TestCluster, id: u64, topic: &str) -> Option<u64> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    m.topics.first()?.partitions.first()?.leader
}

/// Produces `records` with acks=all through whichever live node leads,
/// until it is acknowledged; returns the leader.
async fn produce(c: &TestCluster, live: &[u64], topic: &str, records: &[u8]) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no acknowledged produce");
        for &id in live {
            let Some(l) = leader_seen_by(c, id, topic).await else {
                continue;
            };
            if !live.contains(&l) {
                continue;
            }
            let mut conn = c.node(l).connect().await;
            if let Ok(Some(r)) = conn
                .produce(Acks::All, 10_000, &[(topic, 0, records)])
                .await
            {
                if r.partitions[0].error_code == ErrorCode::None {
                    return l;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_while_its_log_was_retained_away_installs_a_snapshot() {
    let mut c = TestCluster::start_with(3, "maintenance_interval_ms = 100\n");
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        retention_bytes: Some(128 << 10),
        ..TopicConfig::default()
    };
    let r = c
        .node(1)
        .connect()
        .await
        .create_topics(vec![NewTopic {
            name: "snap".into(),
            partitions: 1,
            config,
            replication_factor: Some(3),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");

    let all = [1, 2, 3];
    let mut leader = 0;
    for i in 0..4 {
        leader = produce(&c, &all, "snap", &batch(&format!("early{i}"), 4, 500)).await;
    }
    // Every replica holds the early batches before one of them stops.
    let follower = all.into_iter().find(|&n| n != leader).unwrap();
    let deadline = Instant::now() + WAIT;
    while batches(&c.node(follower).data_dir, "snap-0").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the follower never held the early batches"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.kill(follower);
    let live: Vec<u64> = all.into_iter().filter(|&n| n != follower).collect();

    // Far more than the retention keeps, so the early segments go.
    for i in 0..120 {
        leader = produce(&c, &live, "snap", &batch(&format!("late{i}"), 4, 2000)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let first = batches(&c.node(leader).data_dir, "snap-0")
            .first()
            .map(|b| b.0);
        if first.is_some_and(|f| f > 16) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never deleted the early segments on the leader (first batch {first:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    c.restart(follower);
    let deadline = Instant::now() + WAIT;
    loop {
        let theirs = batches(&c.node(leader).data_dir, "snap-0");
        let mine = batches(&c.node(follower).data_dir, "snap-0");
        let (my_end, start) = end_and_start(&c.node(follower).data_dir, "snap-0");
        let (their_end, _) = end_and_start(&c.node(leader).data_dir, "snap-0");
        let tail: Vec<_> = theirs.iter().copied().filter(|b| b.0 >= start).collect();
        if start > 16 && my_end == their_end && mine == tail {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the returning node {follower} did not converge by a snapshot: \
             its batches from {start} ({} of them, last {:?}), the leader's last {:?}",
            mine.len(),
            mine.last(),
            theirs.last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And it keeps following.
    produce(&c, &all, "snap", &batch("after", 1, 10)).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let theirs = batches(&c.node(leader).data_dir, "snap-0");
        let mine = batches(&c.node(follower).data_dir, "snap-0");
        if mine.last().is_some() && mine.last() == theirs.last() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node stopped following after the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
