//! Partition groups of real openraft nodes over real partition directories
//! in a tempdir, connected by the in-process network.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use openraft::BasicNode;
use sluice_protocol::batch::{BatchBuilder, BatchIter, NewRecord};

use super::memnet::MemNetwork;
use super::{ReplicatedPartition, ReplicationConfig, ReplicationError, Response};
use crate::log::{FileSystem, LogConfig, PartitionLog, StdFs};
use crate::partition::{Acks, Partition};

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_age: None,
        retention_age: None,
        max_timestamp_ahead: None,
        ..LogConfig::default()
    }
}

/// One batch holding `values`.
fn batch(values: &[String]) -> BytesMut {
    let mut b = BatchBuilder::new();
    for v in values {
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

/// Every batch of the segment files of `dir`, in order: (base offset,
/// leader epoch, values). An independent reader: the protocol's iterator
/// over the raw file bytes.
fn read_dir(dir: &Path) -> Vec<(u64, i32, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for bytes in segment_bytes(dir) {
        for b in BatchIter::new(&bytes) {
            let (h, raw) = b.expect("valid batch");
            let batch =
                sluice_protocol::batch::RecordBatch::new(bytes::Bytes::copy_from_slice(raw))
                    .expect("batch");
            let values = batch
                .records()
                .map(|r| {
                    r.expect("record")
                        .value
                        .map(|v| v.to_vec())
                        .unwrap_or_default()
                })
                .collect();
            out.push((h.base_offset as u64, h.partition_leader_epoch, values));
        }
    }
    out
}

/// The contents of the `.log` files of `dir`, oldest first.
fn segment_bytes(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

fn values_of(dir: &Path) -> Vec<Vec<u8>> {
    read_dir(dir).into_iter().flat_map(|(_, _, v)| v).collect()
}

struct Cluster {
    net: MemNetwork,
    _root: tempfile::TempDir,
    dirs: HashMap<u64, PathBuf>,
    nodes: HashMap<u64, ReplicatedPartition>,
    members: BTreeMap<u64, BasicNode>,
    fs: Arc<dyn FileSystem>,
    log_config: LogConfig,
}

impl Cluster {
    async fn new(ids: &[u64]) -> Cluster {
        Self::with(ids, Arc::new(StdFs), log_config()).await
    }

    async fn with(ids: &[u64], fs: Arc<dyn FileSystem>, log_config: LogConfig) -> Cluster {
        let root = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            net: MemNetwork::new(),
            dirs: ids
                .iter()
                .map(|&id| (id, root.path().join(format!("n{id}")).join("t-0")))
                .collect(),
            _root: root,
            nodes: HashMap::new(),
            members: ids
                .iter()
                .map(|&id| (id, BasicNode::new(format!("n{id}"))))
                .collect(),
            fs,
            log_config,
        };
        for &id in ids {
            c.start(id).await;
        }
        for &id in ids {
            c.node(id)
                .initialize(c.members.clone())
                .await
                .expect("initialize");
        }
        c
    }

    async fn start(&mut self, id: u64) {
        let dir = self.dirs[&id].clone();
        let (log, _) = PartitionLog::open_with(Arc::clone(&self.fs), &dir, self.log_config.clone())
            .expect("open log");
        let partition = Arc::new(Partition::new(log));
        let (rp, _) = ReplicatedPartition::open(
            partition,
            id,
            ReplicationConfig::default(),
            self.net.factory(id),
        )
        .await
        .expect("open replica");
        self.net.register(id, rp.raft().clone());
        self.nodes.insert(id, rp);
    }

    async fn stop(&mut self, id: u64) {
        self.net.unregister(id);
        if let Some(rp) = self.nodes.remove(&id) {
            rp.shutdown().await.expect("shutdown");
        }
    }

    fn node(&self, id: u64) -> &ReplicatedPartition {
        &self.nodes[&id]
    }

    /// Waits until one of `among` leads with every other of them agreeing.
    async fn leader(&self, among: &[u64]) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for &id in among {
                let n = self.node(id);
                if n.is_leader() && among.iter().all(|o| self.node(*o).leader() == Some(id)) {
                    return id;
                }
            }
            assert!(Instant::now() < deadline, "no leader among {among:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every node of `ids` has high watermark `hw`.
    async fn wait_hw(&self, ids: &[u64], hw: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for id in ids {
            let mut rx = self.node(*id).partition().subscribe();
            while *rx.borrow_and_update() != hw {
                let left = deadline.saturating_duration_since(Instant::now());
                let changed = tokio::time::timeout(left, rx.changed()).await;
                assert!(
                    matches!(changed, Ok(Ok(()))),
                    "node {id}: high watermark {} never became {hw}",
                    self.node(*id).partition().log.high_watermark()
                );
            }
        }
    }
}

async fn produce(
    rp: &ReplicatedPartition,
    tag: &str,
    n: usize,
    acks: Acks,
) -> Result<(Response, Vec<String>), ReplicationError> {
    let values: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let r = rp.append(batch(&values), acks).await?;
    Ok((r, values))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_appends_are_byte_identical_on_every_replica() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let leader = c.leader(&[1, 2, 3]).await;
    let mut expected = Vec::new();
    let mut next = 0;
    for i in 0..30 {
        let (r, values) = produce(c.node(leader), &format!("a{i}"), 1 + i % 4, Acks::All)
            .await
            .expect("append");
        assert_eq!(r.base_offset, next, "offsets are contiguous");
        assert_eq!(r.last_offset, next + values.len() as u64 - 1);
        next = r.last_offset + 1;
        // Committed: the leader's high watermark covers it at the answer.
        assert!(c.node(leader).partition().log.high_watermark() > r.last_offset);
        expected.extend(values.into_iter().map(String::into_bytes));
    }
    c.wait_hw(&[1, 2, 3], next).await;
    let term = c.node(leader).leader_epoch() as i32;
    let reference = segment_bytes(&c.dirs[&leader]);
    assert!(reference.len() > 1, "the test spans several segments");
    for id in [1, 2, 3] {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
        let batches = read_dir(&c.dirs[&id]);
        assert!(
            batches.iter().all(|(_, epoch, _)| *epoch == term),
            "leader epoch stamped"
        );
        assert_eq!(values_of(&c.dirs[&id]), expected);
    }
    // A follower refuses appends and names the leader.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|&i| i != leader)
        .expect("follower");
    match produce(c.node(follower), "f", 1, Acks::All).await {
        Err(ReplicationError::NotLeader { leader: l }) => assert_eq!(l, Some(leader)),
        other => panic!("a follower appended: {other:?}"),
    }
    assert_eq!(c.node(leader).in_sync().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_acknowledged_appends_and_the_old_leader_converges() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let old = c.leader(&all).await;
    let mut acked = Vec::new();
    for i in 0..10 {
        let (_, v) = produce(c.node(old), &format!("before{i}"), 3, Acks::All)
            .await
            .expect("append");
        acked.extend(v);
    }
    // Cut the leader off, then give it a tail nobody else gets (acks=leader
    // answers after its local append): a divergent tail.
    c.net.isolate(&[old], &all);
    for i in 0..3 {
        produce(c.node(old), &format!("lost{i}"), 2, Acks::Leader)
            .await
            .expect("local append");
    }
    let old_end = c.node(old).partition().log.next_offset();
    c.stop(old).await;
    c.net.heal();
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
    let new = c.leader(&rest).await;
    for i in 0..10 {
        let (_, v) = produce(c.node(new), &format!("after{i}"), 2, Acks::All)
            .await
            .expect("append");
        acked.extend(v);
    }
    let acked: Vec<Vec<u8>> = acked.into_iter().map(String::into_bytes).collect();
    let end = c.node(new).partition().log.next_offset();
    c.wait_hw(&rest, end).await;
    for &id in &rest {
        assert_eq!(
            values_of(&c.dirs[&id]),
            acked,
            "node {id}: every ack exactly once"
        );
    }
    // The old leader comes back: its divergent tail goes, it converges.
    assert!(old_end > 30, "the old leader had a tail");
    c.start(old).await;
    c.wait_hw(&all, end).await;
    let reference = segment_bytes(&c.dirs[&new]);
    for id in all {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
    }
    assert_eq!(values_of(&c.dirs[&old]), acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_leader_never_acknowledges_acks_all() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let old = c.leader(&all).await;
    produce(c.node(old), "first", 1, Acks::All)
        .await
        .expect("append");
    c.net.isolate(&[old], &all);
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
    let pending = {
        let rp = c.node(old);
        let values = vec!["minority".to_owned()];
        rp.append(batch(&values), Acks::All)
    };
    let majority = async {
        let new = c.leader(&rest).await;
        produce(c.node(new), "majority", 1, Acks::All)
            .await
            .expect("majority append");
        new
    };
    // The minority append must not complete while the majority elects a
    // leader and commits; after the heal it fails (or never answers).
    tokio::pin!(pending);
    let new = tokio::select! {
        r = &mut pending => panic!("the minority leader answered: {r:?}"),
        new = majority => new,
    };
    c.net.heal();
    if let Ok(r) = tokio::time::timeout(Duration::from_secs(3), pending).await {
        assert!(r.is_err(), "the minority leader acknowledged: {r:?}");
    }
    let end = c.node(new).partition().log.next_offset();
    c.wait_hw(&all, end).await;
    let values = values_of(&c.dirs[&new]);
    assert_eq!(values, vec![b"first-0".to_vec(), b"majority-0".to_vec()]);
    assert_eq!(values_of(&c.dirs[&old]), values);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_retained_log_installs_a_snapshot() {
    let config = LogConfig {
        retention_bytes: Some(2048),
        ..log_config()
    };
    let all = [1, 2, 3];
    let mut c = Cluster::with(&all, Arc::new(StdFs), config).await;
    let leader = c.leader(&all).await;
    for i in 0..5 {
        produce(c.node(leader), &format!("early{i}"), 2, Acks::All)
            .await
            .expect("append");
    }
    let lagging = all.into_iter().find(|&i| i != leader).expect("follower");
    c.wait_hw(&[lagging], 10).await;
    c.stop(lagging).await;
    for i in 0..60 {
        produce(c.node(leader), &format!("late{i}"), 3, Acks::All)
            .await
            .expect("append");
    }
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != lagging).collect();
    let end = c.node(leader).partition().log.next_offset();
    c.wait_hw(&rest, end).await;
    for &id in &rest {
        let out = c
            .node(id)
            .retain(std::time::SystemTime::now())
            .await
            .expect("retain");
        let m = c.node(id).raft().metrics().borrow().clone();
        assert!(
            out.segments > 0,
            "node {id}: retention deleted nothing: {m:?}"
        );
    }
    let start = c.node(leader).partition().log.log_start_offset();
    assert!(
        start > 10,
        "the lagging replica's next record is gone from the leader"
    );

    c.start(lagging).await;
    c.wait_hw(&all, end).await;
    let log = &c.node(lagging).partition().log;
    assert_eq!(log.next_offset(), end);
    assert!(
        log.log_start_offset() >= start,
        "the replica restarted at the snapshot"
    );
    let theirs: Vec<_> = read_dir(&c.dirs[&leader])
        .into_iter()
        .filter(|(base, _, _)| *base >= log.log_start_offset())
        .collect();
    assert_eq!(read_dir(&c.dirs[&lagging]), theirs);
    // And it keeps following.
    produce(c.node(leader), "after", 1, Acks::All)
        .await
        .expect("append");
    c.wait_hw(&all, end + 1).await;
    assert_eq!(
        values_of(&c.dirs[&lagging]).last(),
        Some(&b"after-0".to_vec())
    );
}
