//! A node that was down while retention deleted, on the other replicas,
//! the log it needs installs the partition's snapshot when it returns: it
//! restarts its log at the snapshot's offset, then follows the leader, and
//! holds the same batches as the leader from there. A leader that was down
//! while the others moved on without new records and deleted old segments
//! keeps its records when it returns: they stay readable should it lead
//! again.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_was_away_keeps_its_records_when_it_returns() {
    use sluice_protocol::kafka::admin::RESOURCE_TOPIC;
    use sluice_protocol::kafka::alter_configs::{
        AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, OP_SET,
    };

    let mut c = TestCluster::start_with_kafka_config(3, "maintenance_interval_ms = 100\n");
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        ..TopicConfig::default()
    };
    c.create_replicated("away", 1, 3, config).await;
    let all = [1, 2, 3];
    let mut leader = 0;
    for i in 0..40 {
        leader = c
            .produce_through_leader(&all, "away", &batch(&format!("r{i}"), 4, 2000), &[], WAIT)
            .await
            .0;
    }
    // Every replica holds every batch before the leader stops.
    let deadline = Instant::now() + WAIT;
    while all
        .iter()
        .any(|&n| batches(&c.node(n).data_dir, "away-0").len() < 40)
    {
        assert!(Instant::now() < deadline, "the replicas never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let away = leader;
    c.kill(away);
    let live: Vec<u64> = all.into_iter().filter(|&n| n != away).collect();
    // The others elect a leader (an entry without records in a new term)
    // and, told a smaller retention, delete their oldest segments (their
    // snapshot and Raft log purge stop at the retention point, below the
    // away leader's last entry).
    let mut s = std::net::TcpStream::connect(c.node(live[0]).kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: "away".into(),
            configs: vec![AlterableConfig {
                name: "retention.bytes".into(),
                operation: OP_SET,
                value: Some((128 << 10).to_string()),
            }],
        }],
        validate_only: false,
    };
    let r: IncrementalAlterConfigsResponse = sluice_tests::kafka::call(&mut s, 1, &mut req);
    assert_eq!(r.0.responses[0].error_code, 0, "{r:?}");
    let deadline = Instant::now() + WAIT;
    let end = batches(&c.node(live[0]).data_dir, "away-0")
        .last()
        .unwrap()
        .2;
    while live.iter().any(|&n| {
        batches(&c.node(n).data_dir, "away-0")
            .first()
            .is_none_or(|b| b.0 < 16)
    }) {
        assert!(
            Instant::now() < deadline,
            "retention never ran on the live replicas"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.restart(away);
    // It keeps the records it holds: the same batches up to the end as a
    // live replica, not an empty log there (whether it catches up by
    // entries or by a snapshot whose records it holds).
    let deadline = Instant::now() + WAIT;
    loop {
        let emptied = c.node(away).log().contains("restarting its log empty");
        assert!(!emptied, "node {away} emptied its log");
        let mine = batches(&c.node(away).data_dir, "away-0");
        let theirs = batches(&c.node(live[0]).data_dir, "away-0");
        let from = mine.first().map_or(end, |b| b.0);
        let shared: Vec<_> = theirs.iter().copied().filter(|b| b.0 >= from).collect();
        if mine.last().is_some_and(|b| b.2 == end) && mine == shared {
            assert!(from < end - 16, "only {mine:?} kept");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {away} did not keep its records: \
             its batches {mine:?}, the live ones' {theirs:?}; its log: {:?}",
            c.node(away)
                .log()
                .lines()
                .filter(|l| l.contains("installing a snapshot") || l.contains("reset the log"))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
