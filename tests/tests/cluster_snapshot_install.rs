//! A node that was down while retention deleted, on the other replicas,
//! the log it needs installs the partition's snapshot when it returns: it
//! restarts its log at the snapshot's offset, then follows the leader, and
//! holds the same batches as the leader from there.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::batch_sized_now as batch;
use sluice_tests::cluster::{TestCluster, partition_dir, segment_batches as batches};

const WAIT: Duration = Duration::from_secs(60);

/// The offset after the last batch of partition directory `name` under
/// `dir`, and the base offset of its first segment (from the file names:
/// a log just restarted at a snapshot has an empty segment there).
fn end_and_start(dir: &Path, name: &str) -> (i64, i64) {
    let Some(d) = partition_dir(dir, name) else {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_while_its_log_was_retained_away_installs_a_snapshot() {
    let mut c = TestCluster::start_with(3, "maintenance_interval_ms = 100\n");
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        retention_bytes: Some(128 << 10),
        ..TopicConfig::default()
    };
    c.create_replicated("snap", 1, 3, config).await;

    let all = [1, 2, 3];
    let mut leader = 0;
    for i in 0..4 {
        leader = c
            .produce_through_leader(
                &all,
                "snap",
                &batch(&format!("early{i}"), 4, 500),
                &[],
                WAIT,
            )
            .await
            .0;
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
        leader = c
            .produce_through_leader(
                &live,
                "snap",
                &batch(&format!("late{i}"), 4, 2000),
                &[],
                WAIT,
            )
            .await
            .0;
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
    c.produce_through_leader(&all, "snap", &batch("after", 1, 10), &[], WAIT)
        .await;
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
