//! Replicated partitions on a 3-node cluster: produce goes through the
//! partition's Raft group, clients find the leader through Metadata from
//! any node, acks=all answers only what a majority holds, and every
//! replica's segment files hold the same batches at the same offsets.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_tests::cluster::TestCluster;
use sluice_tests::{batch_of, read_partition};

const WAIT: Duration = Duration::from_secs(30);

/// Creates `name` with `partitions` partitions on 3 replicas, through `via`.
async fn create_replicated(c: &TestCluster, via: u64, name: &str, partitions: u32) {
    let r = c
        .node(via)
        .connect()
        .await
        .create_topics(vec![NewTopic {
            name: name.into(),
            partitions,
            config: Default::default(),
            replication_factor: Some(3),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
}

/// The leader of `topic`/`partition` as node `id`'s Metadata names it.
async fn leader_seen_by(c: &TestCluster, id: u64, topic: &str, partition: u32) -> Option<u64> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    m.topics
        .first()?
        .partitions
        .iter()
        .find(|p| p.partition == partition)?
        .leader
}

/// Prints each node's log lines of the broker's own modules.
fn dump_logs(c: &TestCluster) {
    for id in 1..=c.nodes.len() as u64 {
        let log = c.node(id).log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("openraft::") && !l.contains("unreachable"))
            .collect();
        eprintln!("--- node {id} log:\n{}", lines.join("\n"));
    }
}

/// Waits until every node of `ids` names the same leader (one of `ids`).
async fn wait_partition_leader(c: &TestCluster, ids: &[u64], topic: &str, partition: u32) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            seen.push(leader_seen_by(c, id, topic, partition).await);
        }
        if let Some(Some(l)) = seen.first() {
            if ids.contains(l) && seen.iter().all(|s| *s == Some(*l)) {
                return *l;
            }
        }
        if Instant::now() > deadline {
            dump_logs(c);
            panic!("no agreed leader of {topic}/{partition} among {ids:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the nodes agree on a leader that is still the leader half a
/// second later: a group that has just formed may hold a second election
/// (every replica initializes it).
async fn wait_stable_leader(c: &TestCluster, ids: &[u64], topic: &str, partition: u32) -> u64 {
    let deadline = Instant::now() + WAIT;
    let mut last = wait_partition_leader(c, ids, topic, partition).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = wait_partition_leader(c, ids, topic, partition).await;
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the leader keeps moving");
        last = now;
    }
}

/// The directory `<name>` somewhere under `dir`.
fn find_dir(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
            if let Some(found) = find_dir(&p, name) {
                return Some(found);
            }
        }
    }
    None
}

/// An independent read of a replica's segment files: every whole,
/// CRC-valid batch as (base offset, partition leader epoch, bytes after
/// the epoch field), in file order.
fn segment_batches(data_dir: &Path, topic: &str, partition: u32) -> Vec<(i64, i32, Bytes)> {
    let Some(dir) = find_dir(data_dir, &format!("{topic}-{partition}")) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let mut bytes = Bytes::from(std::fs::read(&log).unwrap());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            let h = b.header();
            out.push((
                h.base_offset,
                h.partition_leader_epoch,
                b.as_bytes().slice(16..),
            ));
        }
    }
    out
}

/// Waits until every node of `ids` holds the same batches, `batches` of
/// them; returns them.
fn wait_same_segments(
    c: &TestCluster,
    ids: &[u64],
    topic: &str,
    batches: usize,
) -> Vec<(i64, i32, Bytes)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all: Vec<_> = ids
            .iter()
            .map(|&id| segment_batches(&c.node(id).data_dir, topic, 0))
            .collect();
        if all.iter().all(|a| a.len() == batches && *a == all[0]) {
            return all[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "replicas of {topic} differ: {:?} batches",
            all.iter().map(Vec::len).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_produce_goes_through_raft_and_every_replica_holds_the_same_files() {
    let c = TestCluster::start(3);
    create_replicated(&c, 1, "r", 1).await;
    let leader = wait_stable_leader(&c, &[1, 2, 3], "r", 0).await;
    let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();

    // Every node answers Metadata for the topic: all three brokers, the
    // cluster file's listeners, three replicas.
    for id in 1..=3 {
        let m = c
            .node(id)
            .connect()
            .await
            .metadata(Some(vec!["r".into()]))
            .await
            .unwrap();
        let brokers: Vec<(u64, String)> =
            m.brokers.iter().map(|b| (b.id, b.listen.clone())).collect();
        let expected: Vec<(u64, String)> =
            (1..=3).map(|i| (i, c.node(i).addr.to_string())).collect();
        assert_eq!(brokers, expected, "brokers seen by node {id}");
        let p = &m.topics[0].partitions[0];
        let mut replicas = p.replicas.clone();
        replicas.sort_unstable();
        assert_eq!(replicas, [1, 2, 3]);
        assert_eq!(p.leader, Some(leader));
        assert!(p.leader_epoch >= 1, "the epoch is the Raft term");
    }

    // A follower refuses produce and fetch, naming the leader.
    let mut f = c.node(followers[0]).connect().await;
    let refused = f
        .produce(Acks::All, 5000, &[("r", 0, &batch_of(&["x"]))])
        .await
        .unwrap()
        .unwrap();
    let p = &refused.partitions[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderForPartition);
    assert!(
        p.message
            .as_deref()
            .unwrap()
            .contains(&format!("node {leader}")),
        "{p:?}"
    );
    let fetched = f
        .fetch(
            0,
            0,
            1 << 20,
            vec![FetchPartition {
                topic: "r".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    assert_eq!(fetched[0].error_code, ErrorCode::NotLeaderForPartition);

    // acks=all through the leader: contiguous offsets.
    let mut l = c.node(leader).connect().await;
    let mut next = 0;
    for i in 0..20 {
        let values: Vec<String> = (0..3).map(|j| format!("v{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let r = l
            .produce(Acks::All, 10_000, &[("r", 0, &batch_of(&refs))])
            .await
            .unwrap()
            .unwrap();
        let p = &r.partitions[0];
        assert_eq!(p.error_code, ErrorCode::None, "{p:?}");
        assert_eq!(p.base_offset, next);
        next += 3;
    }
    // The leader serves them all, below its high watermark.
    let read = read_partition(&mut l, "r", 0, 0).await;
    assert_eq!(read.len(), 60);
    for (i, (offset, value)) in read.iter().enumerate() {
        assert_eq!(*offset, i as u64);
        assert_eq!(value.as_ref(), format!("v{}-{}", i / 3, i % 3).as_bytes());
    }
    // Every replica's files: the same 20 batches, offsets 0, 3, 6...,
    // stamped with a term.
    let batches = wait_same_segments(&c, &[1, 2, 3], "r", 20);
    for (i, (base, epoch, _)) in batches.iter().enumerate() {
        assert_eq!(*base, 3 * i as i64);
        assert!(*epoch >= 1);
    }
}

/// What the producer task saw: each acknowledged value with its offset
/// and when the acknowledgement came.
#[derive(Default)]
struct Acked {
    records: Vec<(String, u64, Instant)>,
}

/// The leader named by the first node of `addrs` that answers Metadata
/// with one.
async fn find_leader(addrs: &[std::net::SocketAddr], topic: &str) -> Option<u64> {
    for a in addrs {
        let Ok(Ok(mut conn)) = tokio::time::timeout(
            Duration::from_millis(500),
            sluice_client::Connection::connect(*a),
        )
        .await
        else {
            continue;
        };
        let Ok(Ok(m)) = tokio::time::timeout(
            Duration::from_millis(500),
            conn.metadata(Some(vec![topic.into()])),
        )
        .await
        else {
            continue;
        };
        if let Some(l) = m
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .and_then(|p| p.leader)
        {
            return Some(l);
        }
    }
    None
}

/// Produces one-record batches `"{tag}-{i}"` with acks=all to whichever
/// node leads partition 0 of `topic`, never resending a value, until
/// `stop`.
async fn produce_until(
    addrs: Vec<std::net::SocketAddr>,
    topic: &'static str,
    acked: std::sync::Arc<std::sync::Mutex<Acked>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let mut i = 0u64;
    let mut conn: Option<sluice_client::Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            let Some(l) = find_leader(&addrs, topic).await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            conn = sluice_client::Connection::connect(addrs[l as usize - 1])
                .await
                .ok();
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let value = format!("{topic}-{i}");
        i += 1;
        let c = conn.as_mut().unwrap();
        let sent = tokio::time::timeout(
            Duration::from_secs(3),
            c.produce(Acks::All, 2000, &[(topic, 0, &batch_of(&[&value]))]),
        )
        .await;
        match sent {
            Ok(Ok(Some(r))) if r.partitions[0].error_code == ErrorCode::None => {
                let offset = r.partitions[0].base_offset;
                acked
                    .lock()
                    .unwrap()
                    .records
                    .push((value, offset, Instant::now()));
            }
            _ => conn = None,
        }
    }
}

/// SIGKILLs the partition's leader `kills` times (default 20, or
/// `SLUICE_REPL_KILLS`) while a producer sends with acks=all, restarting
/// each killed node. Afterwards every acknowledged record is in the log
/// exactly once at its acknowledged offset, the log is gap-free, and all
/// three replicas' segment files hold the same batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_leader_kills_under_acks_all_lose_nothing_acknowledged() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let kills: usize = std::env::var("SLUICE_REPL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut c = TestCluster::start(3);
    create_replicated(&c, 1, "k", 1).await;
    wait_partition_leader(&c, &[1, 2, 3], "k", 0).await;
    let addrs: Vec<std::net::SocketAddr> = (1..=3).map(|i| c.node(i).addr).collect();
    let acked = Arc::new(std::sync::Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce_until(
        addrs,
        "k",
        Arc::clone(&acked),
        Arc::clone(&stop),
    ));
    let mut failovers = Vec::new();
    for round in 0..kills {
        // Some acknowledged writes on this leader first.
        let before = acked.lock().unwrap().records.len();
        let deadline = Instant::now() + WAIT;
        while acked.lock().unwrap().records.len() < before + 5 {
            assert!(Instant::now() < deadline, "round {round}: no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let leader = wait_partition_leader(&c, &[1, 2, 3], "k", 0).await;
        let killed_at = Instant::now();
        c.kill(leader);
        // The first write acknowledged after the kill (by the new leader).
        let deadline = Instant::now() + WAIT;
        let first = loop {
            if let Some(t) = acked
                .lock()
                .unwrap()
                .records
                .iter()
                .rev()
                .map(|r| r.2)
                .find(|t| *t > killed_at)
            {
                break t;
            }
            if Instant::now() > deadline {
                dump_logs(&c);
                panic!("round {round}: no write acknowledged after killing {leader}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        failovers.push(first - killed_at);
        c.restart(leader);
    }
    let survivors: Vec<u64> = (1..=3).collect();
    wait_partition_leader(&c, &survivors, "k", 0).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();

    // The log as the leader serves it: gap-free, every value once, every
    // acknowledged value at its acknowledged offset.
    let leader = wait_partition_leader(&c, &survivors, "k", 0).await;
    let read = read_partition(&mut c.node(leader).connect().await, "k", 0, 0).await;
    for (i, (offset, _)) in read.iter().enumerate() {
        assert_eq!(*offset, i as u64, "gap-free");
    }
    let mut seen = std::collections::HashMap::new();
    for (offset, value) in &read {
        let v = String::from_utf8(value.to_vec()).unwrap();
        assert!(seen.insert(v, *offset).is_none(), "a value stored twice");
    }
    let acked = std::mem::take(&mut acked.lock().unwrap().records);
    for (value, offset, _) in &acked {
        assert_eq!(seen.get(value), Some(offset), "acknowledged {value} lost");
    }
    // Every replica, the restarted ones included, converges to the same
    // files.
    let batches = wait_same_segments(&c, &[1, 2, 3], "k", read.len());
    for (i, (base, _, _)) in batches.iter().enumerate() {
        assert_eq!(*base, i as i64);
    }
    failovers.sort();
    eprintln!(
        "partition failover (leader SIGKILL -> first acks=all write acknowledged), {} kills: \
         min {} ms, median {} ms, max {} ms; {} records acknowledged, {} stored",
        failovers.len(),
        failovers[0].as_millis(),
        failovers[failovers.len() / 2].as_millis(),
        failovers[failovers.len() - 1].as_millis(),
        acked.len(),
        read.len()
    );
}

/// A partition leader cut off from both other nodes (fault transport)
/// never acknowledges an acks=all write; the majority elects a new leader
/// and goes on; after the heal the old leader drops its uncommitted tail
/// and all three replicas hold the same files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_never_acknowledges_acks_all_and_truncates_after_the_heal() {
    let c = TestCluster::start(3);
    create_replicated(&c, 1, "m", 1).await;
    let old = wait_stable_leader(&c, &[1, 2, 3], "m", 0).await;
    let others: Vec<u64> = (1..=3).filter(|&i| i != old).collect();
    let mut l = c.node(old).connect().await;
    let r = l
        .produce(Acks::All, 10_000, &[("m", 0, &batch_of(&["before"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);

    c.isolate(old);
    // The rules are re-read every 100 ms: once the others elected a new
    // leader, the old leader's rules are in force too (it re-reads them on
    // the same period, and an election takes longer).
    let new = wait_partition_leader(&c, &others, "m", 0).await;
    assert_ne!(new, old);
    // The isolated leader may still believe it leads: whatever it is
    // asked, it does not acknowledge.
    let r = l
        .produce(Acks::All, 1500, &[("m", 0, &batch_of(&["isolated"]))])
        .await
        .unwrap()
        .unwrap();
    let p = &r.partitions[0];
    assert_ne!(
        p.error_code,
        ErrorCode::None,
        "a minority leader acknowledged"
    );
    let mut n = c.node(new).connect().await;
    let r = n
        .produce(Acks::All, 10_000, &[("m", 0, &batch_of(&["majority"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");

    c.heal();
    wait_partition_leader(&c, &[1, 2, 3], "m", 0).await;
    let batches = wait_same_segments(&c, &[1, 2, 3], "m", 2);
    let values: Vec<Bytes> = read_partition(&mut n, "m", 0, 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, [Bytes::from("before"), Bytes::from("majority")]);
    assert!(
        batches[1].1 > batches[0].1,
        "the new leader's term is stamped"
    );
}

/// Produces `n` one-record batches `"{tag}-{i}"` with acks=all to the
/// partition's leader, asserting each is acknowledged. A refusal saying
/// the leader moved (right after the group forms, elections may follow
/// each other) is retried on the leader Metadata names, as clients do.
async fn produce_acked(c: &TestCluster, topic: &str, tag: &str, n: usize) {
    let ids = c.live();
    let mut i = 0;
    let deadline = Instant::now() + WAIT;
    while i < n {
        let leader = wait_partition_leader(c, &ids, topic, 0).await;
        let mut conn = c.node(leader).connect().await;
        let r = conn
            .produce(
                Acks::All,
                10_000,
                &[(topic, 0, &batch_of(&[&format!("{tag}-{i}")]))],
            )
            .await
            .unwrap()
            .unwrap();
        match r.partitions[0].error_code {
            ErrorCode::None => i += 1,
            ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable => {
                assert!(Instant::now() < deadline, "{r:?}");
            }
            _ => panic!("{r:?}"),
        }
    }
}

/// A killed follower does not stop acks=all writes (the other two are a
/// majority) and catches up when it returns; after a full-cluster restart
/// every record is still there and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_kill_and_a_full_restart_keep_every_acknowledged_record() {
    let mut c = TestCluster::start(3);
    create_replicated(&c, 1, "f", 1).await;
    produce_acked(&c, "f", "a", 10).await;
    let leader = wait_partition_leader(&c, &[1, 2, 3], "f", 0).await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    c.kill(follower);
    produce_acked(&c, "f", "b", 10).await;
    c.restart(follower);
    wait_same_segments(&c, &[1, 2, 3], "f", 20);

    for id in 1..=3 {
        c.kill(id);
    }
    for id in 1..=3 {
        c.restart(id);
    }
    produce_acked(&c, "f", "c", 1).await;
    let leader = wait_partition_leader(&c, &[1, 2, 3], "f", 0).await;
    let values: Vec<String> = read_partition(&mut c.node(leader).connect().await, "f", 0, 0)
        .await
        .into_iter()
        .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..10)
        .map(|i| format!("a-{i}"))
        .chain((0..10).map(|i| format!("b-{i}")))
        .chain(["c-0".to_owned()])
        .collect();
    assert_eq!(values, want);
    wait_same_segments(&c, &[1, 2, 3], "f", 21);
}
