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
        ..LogConfig::default()
    }
}

/// One batch holding `values`.
fn batch(values: &[String]) -> BytesMut {
    filled(BatchBuilder::new(), values)
}

/// `b` with one record per value, finished.
fn filled<S: AsRef<str>>(mut b: BatchBuilder, values: &[S]) -> BytesMut {
    for v in values {
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(v.as_ref().as_bytes()),
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
    /// A node's own log settings, where not `log_config` (at its next
    /// start).
    node_configs: HashMap<u64, LogConfig>,
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
            node_configs: HashMap::new(),
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
        let config = self
            .node_configs
            .get(&id)
            .unwrap_or(&self.log_config)
            .clone();
        let (log, _) =
            PartitionLog::open_with(Arc::clone(&self.fs), &dir, config).expect("open log");
        let partition = Arc::new(Partition::new(log));
        let (rp, _) = ReplicatedPartition::open(
            partition,
            id,
            ReplicationConfig::default(),
            self.net.factory(id),
        )
        .await
        .expect("open replica");
        self.net
            .register(id, rp.raft().clone(), Arc::clone(rp.heard()));
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

/// A leader whose entries cannot commit (cut off from both followers)
/// appends at most `MAX_UNCOMMITTED` entries of acks=leader requests; the
/// next request waits for a commit, and once the network heals it is
/// answered (appended, or refused if another leader took over meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_uncommitted_entries_wait_for_their_commit() {
    use super::proposer::MAX_UNCOMMITTED;
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    produce(c.node(leader), "first", 1, Acks::All)
        .await
        .expect("append");
    let start = c.node(leader).partition().log.next_offset();
    c.net.isolate(&[leader], &all);
    for i in 0..MAX_UNCOMMITTED {
        produce(c.node(leader), &format!("cut{i}"), 2, Acks::Leader)
            .await
            .expect("a local append within the bound");
    }
    let end = c.node(leader).partition().log.next_offset();
    assert_eq!(end, start + 2 * MAX_UNCOMMITTED as u64);
    // One more waits for a commit that cannot come.
    let late = produce(c.node(leader), "late", 2, Acks::Leader);
    tokio::pin!(late);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut late)
            .await
            .is_err(),
        "answered with {MAX_UNCOMMITTED} entries uncommitted"
    );
    assert_eq!(c.node(leader).partition().log.next_offset(), end);
    // Healed before anyone else took over (the others may have elected a
    // leader meanwhile, then the entries go and the request fails with
    // that): the request is answered either way, not left waiting.
    c.net.heal();
    let answered = tokio::time::timeout(Duration::from_secs(10), late).await;
    assert!(answered.is_ok(), "never answered after the heal");
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
    // Reopened while still cut off, it does not show its uncommitted tail.
    c.start(old).await;
    let hw = c.node(old).partition().log.high_watermark();
    assert!(
        hw <= 30,
        "uncommitted records visible after a restart: {hw}"
    );
    assert_eq!(c.node(old).partition().log.next_offset(), old_end);
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
    // The snapshot ends at or below the leader's log start: the replica
    // receives every record the leader kept, so none is missing should it
    // lead.
    assert!(
        log.log_start_offset() > 10 && log.log_start_offset() <= start,
        "the replica restarted at {}, the leader's log starts at {start}",
        log.log_start_offset()
    );
    let ours: Vec<_> = read_dir(&c.dirs[&lagging])
        .into_iter()
        .filter(|(base, _, _)| *base >= start)
        .collect();
    assert_eq!(ours, read_dir(&c.dirs[&leader]));
    // And it keeps following, whoever leads now: the restarted replica may
    // have called an election while it caught up, on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = c.leader(&all).await;
        match produce(c.node(now), "after", 1, Acks::All).await {
            Ok(_) => break,
            Err(ReplicationError::NotLeader { .. }) if Instant::now() < deadline => {}
            Err(e) => panic!("append: {e:?}"),
        }
    }
    c.wait_hw(&all, end + 1).await;
    assert_eq!(
        values_of(&c.dirs[&lagging]).last(),
        Some(&b"after-0".to_vec())
    );
}

fn single_member() -> BTreeMap<u64, BasicNode> {
    BTreeMap::from([(1, BasicNode::new("n1"))])
}

/// Opens node 1 of a one-replica group over `dir` and waits until it leads.
async fn open_single(
    fs: Arc<dyn FileSystem>,
    dir: &Path,
    net: &MemNetwork,
) -> (ReplicatedPartition, super::OpenReport) {
    let (log, _) = PartitionLog::open_with(fs, dir, log_config()).expect("open log");
    let (rp, report) = ReplicatedPartition::open(
        Arc::new(Partition::new(log)),
        1,
        ReplicationConfig::default(),
        net.factory(1),
    )
    .await
    .expect("open replica");
    net.register(1, rp.raft().clone(), Arc::clone(rp.heard()));
    rp.initialize(single_member()).await.expect("initialize");
    let mut rx = rp.raft().metrics();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !rp.is_leader() {
            rx.changed().await.expect("raft running");
        }
    })
    .await
    .expect("the single replica leads");
    (rp, report)
}

fn records_of(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    read_dir(dir)
        .into_iter()
        .flat_map(|(base, _, values)| {
            values
                .into_iter()
                .enumerate()
                .map(move |(i, v)| (base + i as u64, v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_bytes_past_the_last_index_record_are_cut_at_open() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("t-0");
    let net = MemNetwork::new();
    let (rp, _) = open_single(Arc::new(StdFs), &dir, &net).await;
    for i in 0..5 {
        produce(&rp, &format!("v{i}"), 3, Acks::All)
            .await
            .expect("append");
    }
    rp.shutdown().await.expect("shutdown");
    drop(rp);
    // The last index record is lost (as if the crash came between the
    // segment write and the index write).
    let mut ridx: Vec<PathBuf> = std::fs::read_dir(dir.join("raft"))
        .expect("raft dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ridx"))
        .collect();
    ridx.sort();
    let last = ridx.last().expect("an index file");
    let len = std::fs::metadata(last).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    f.set_len(len - super::format::RECORD_LEN as u64)
        .expect("cut");
    drop(f);

    let net = MemNetwork::new();
    let (rp, report) = open_single(Arc::new(StdFs), &dir, &net).await;
    assert_eq!(report.log_offsets_truncated, 3, "{report:?}");
    assert_eq!(rp.partition().log.next_offset(), 12);
    let (r, _) = produce(&rp, "after", 1, Acks::All).await.expect("append");
    assert_eq!(r.base_offset, 12);
    let values: Vec<Vec<u8>> = records_of(&dir).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values.len(), 13);
    assert_eq!(values.last(), Some(&b"after-0".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_images_keep_every_acks_all_record_and_index_and_log_agree() {
    use crate::log::crash::{CrashFs, Rng};
    let mut rng = Rng(0x5eed_0016_0000_0001);
    for scenario in 0..12 {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("t-0");
        let fs = CrashFs::new();
        let net = MemNetwork::new();
        let (rp, _) = open_single(Arc::new(fs.clone()), &dir, &net).await;
        let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
        for step in 0..(2 + rng.below(12)) {
            let acks = if rng.below(3) == 0 {
                Acks::Leader
            } else {
                Acks::All
            };
            let n = 1 + rng.below(3) as usize;
            let (r, values) = produce(&rp, &format!("s{scenario}-{step}"), n, acks)
                .await
                .expect("append");
            if acks == Acks::All {
                acked.extend(
                    values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (r.base_offset + i as u64, v.into_bytes())),
                );
            }
        }
        let image_root = tempfile::tempdir().expect("tempdir");
        let image = image_root.path().join("t-0");
        fs.crash_image(&dir, &image, &mut rng).expect("image");
        fs.crash_image(&dir.join("raft"), &image.join("raft"), &mut rng)
            .expect("raft image");
        rp.shutdown().await.expect("shutdown");
        drop(rp);

        let net = MemNetwork::new();
        let (rp, report) = open_single(Arc::new(StdFs), &image, &net).await;
        let records = records_of(&image);
        for rec in &acked {
            assert!(
                records.contains(rec),
                "scenario {scenario}: acknowledged {rec:?} lost ({report:?})"
            );
        }
        // The index and the log agree: the next append lands at the log end.
        let end = rp.partition().log.next_offset();
        let (r, _) = produce(&rp, "after", 1, Acks::All)
            .await
            .unwrap_or_else(|e| panic!("scenario {scenario}: append after recovery: {e}"));
        assert_eq!(r.base_offset, end, "scenario {scenario}");
        rp.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_take_no_offsets_and_keep_the_group_alive() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    produce(c.node(leader), "ok", 2, Acks::All)
        .await
        .expect("append");
    for acks in [Acks::All, Acks::Leader] {
        let mut bad = batch(&["x".to_owned()]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // breaks the CRC
        match c.node(leader).append(bad, acks).await {
            Err(ReplicationError::Log(crate::log::LogError::InvalidBatch { .. })) => {}
            other => panic!("{acks:?}: a corrupt batch was not refused: {other:?}"),
        }
        // A timestamp too far ahead of the leader's clock: refused before
        // it is proposed.
        let mut future = BatchBuilder::new();
        future.push(&NewRecord {
            timestamp: i64::MAX / 2,
            key: None,
            value: Some(b"future"),
            headers: &[],
        });
        match c.node(leader).append(future.finish(), acks).await {
            Err(ReplicationError::Log(crate::log::LogError::TimestampTooFarAhead { .. })) => {}
            other => panic!("{acks:?}: a future timestamp was not refused: {other:?}"),
        }
        let garbage = BytesMut::from(
            &b"not a batch at all, just bytes......................................."[..],
        );
        assert!(c.node(leader).append(garbage, acks).await.is_err());
    }
    let (r, _) = produce(c.node(leader), "ok2", 1, Acks::All)
        .await
        .expect("append");
    assert_eq!(r.base_offset, 2, "refused records took no offsets");
    c.wait_hw(&all, 3).await;
    let reference = segment_bytes(&c.dirs[&leader]);
    for id in all {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
    }
}

#[tokio::test]
async fn invalid_timeouts_are_refused_at_open() {
    let root = tempfile::tempdir().expect("tempdir");
    let (log, _) = PartitionLog::open(root.path().join("t-0"), log_config()).expect("open log");
    let config = ReplicationConfig {
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 150,
        ..ReplicationConfig::default()
    };
    let net = MemNetwork::new();
    let r =
        ReplicatedPartition::open(Arc::new(Partition::new(log)), 1, config, net.factory(1)).await;
    assert!(matches!(r, Err(ReplicationError::Config(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_idempotent_batch_is_stored_once_and_answered_with_its_offsets() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    produce(c.node(leader), "plain", 2, Acks::All)
        .await
        .expect("append");
    let idempotent = || {
        let mut b = BatchBuilder::new().producer(7, 0, 0);
        for v in ["i0", "i1", "i2"] {
            b.push(&NewRecord {
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(v.as_bytes()),
                headers: &[],
            });
        }
        b.finish()
    };
    let first = c
        .node(leader)
        .append(idempotent(), Acks::All)
        .await
        .expect("append");
    assert_eq!((first.base_offset, first.last_offset), (2, 4));
    let retry = c
        .node(leader)
        .append(idempotent(), Acks::All)
        .await
        .expect("retry");
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (2, 4),
        "the original offsets"
    );
    let (next, _) = produce(c.node(leader), "after", 1, Acks::All)
        .await
        .expect("append");
    assert_eq!(next.base_offset, 5, "the retry took no offsets");
    c.wait_hw(&all, 6).await;
    let reference = segment_bytes(&c.dirs[&leader]);
    for id in all {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
    }
}

/// Only the leader that proposed an entry judges its producer sequences;
/// the other replicas store what it stored. Here the leader keeps one
/// producer id and its followers many: the leader forgets producer 7 once
/// producer 8 appends, so it takes 7's next batch at any sequence, where
/// the followers, which remember 7, would have refused it as out of
/// sequence and held other offsets than the leader from there on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_store_what_the_leader_stored_whatever_their_producer_tables() {
    let one_producer = LogConfig {
        max_producer_ids: 1,
        ..log_config()
    };
    let mut c = Cluster::with(&[1, 2, 3], Arc::new(StdFs), one_producer).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    for id in all.into_iter().filter(|&i| i != leader) {
        c.stop(id).await;
        c.node_configs.insert(id, log_config());
        c.start(id).await;
    }
    let append = |b: BytesMut| c.node(leader).append(b, Acks::All);
    let mut got = Vec::new();
    got.push(append(idempotent_batch(7, 0, &["a"])).await.expect("7"));
    got.push(append(idempotent_batch(8, 0, &["b"])).await.expect("8"));
    got.push(
        append(idempotent_batch(7, 5, &["c"]))
            .await
            .expect("7 again, forgotten by the leader"),
    );
    got.push(append(batch(&["d".to_owned()])).await.expect("plain"));
    let offsets: Vec<(u64, u64)> = got.iter().map(|r| (r.base_offset, r.last_offset)).collect();
    assert_eq!(offsets, [(0, 0), (1, 1), (2, 2), (3, 3)]);
    c.wait_hw(&all, 4).await;
    let reference = segment_bytes(&c.dirs[&leader]);
    for id in all {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
        assert_eq!(
            values_of(&c.dirs[&id]),
            [b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()],
            "node {id}"
        );
    }
    // A follower remembers producer 7's latest batch as the leader stored
    // it (it takes over the checks should it lead).
    let follower = all.into_iter().find(|&i| i != leader).expect("follower");
    let seven = c
        .node(follower)
        .partition()
        .log
        .producer_state(7)
        .expect("producer 7");
    assert_eq!(seven.batches.back().map(|b| b.first_seq), Some(5));
}

/// The Raft index of the last entry `id` holds (blank and membership
/// entries included).
fn last_index(c: &Cluster, id: u64) -> u64 {
    c.node(id)
        .raft()
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0)
}

/// An idempotent producer's batch: producer `pid`, epoch 0, first sequence
/// `seq`, one record per value.
fn idempotent_batch(pid: i64, seq: i32, values: &[&str]) -> BytesMut {
    filled(BatchBuilder::new().producer(pid, 0, seq), values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_entries_and_keep_their_own_offsets() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    let before = last_index(&c, leader);
    let requests = 80usize;
    let sent: Vec<(Vec<String>, Acks)> = (0..requests)
        .map(|i| {
            let values = (0..1 + i % 3).map(|k| format!("r{i}-{k}")).collect();
            let acks = if i % 4 == 0 { Acks::Leader } else { Acks::All };
            (values, acks)
        })
        .collect();
    let rp = c.node(leader);
    let answers = futures::future::join_all(
        sent.iter()
            .map(|(values, acks)| rp.append(batch(values), *acks)),
    )
    .await;
    let entries = last_index(&c, leader) - before;
    assert!(
        entries < requests as u64 / 4,
        "{requests} requests took {entries} Raft entries"
    );
    let mut expected: Vec<(u64, Vec<u8>)> = Vec::new();
    for ((values, _), answer) in sent.iter().zip(answers) {
        let r = answer.expect("append");
        assert_eq!(r.last_offset - r.base_offset + 1, values.len() as u64);
        expected.extend(
            values
                .iter()
                .enumerate()
                .map(|(k, v)| (r.base_offset + k as u64, v.clone().into_bytes())),
        );
    }
    expected.sort();
    let total = expected.len() as u64;
    // Every request's records at its own offsets, the offsets contiguous.
    assert!(expected.iter().map(|(o, _)| *o).eq(0..total));
    c.wait_hw(&all, total).await;
    let reference = segment_bytes(&c.dirs[&leader]);
    assert!(reference.len() > 1, "entries span segments");
    for id in all {
        assert_eq!(records_of(&c.dirs[&id]), expected, "node {id}");
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_part_refuses_only_its_own_request() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    let rp = c.node(leader);
    // Keeps the proposer busy so that the requests below queue up together.
    let lead = (0..4).map(|i| rp.append(batch(&[format!("lead{i}")]), Acks::All));
    let mut corrupt = batch(&["corrupt".to_owned()]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let parts = vec![
        idempotent_batch(7, 0, &["p0", "p1"]),
        batch(&["plain-a".to_owned()]),
        idempotent_batch(7, 5, &["gap"]), // out of sequence: refused
        corrupt,                          // bad CRC: refused
        idempotent_batch(7, 2, &["p2"]),
        idempotent_batch(7, 0, &["p0", "p1"]), // a retry: its original offsets
        batch(&["plain-b".to_owned()]),
    ];
    let before = last_index(&c, leader);
    let (_, answers) = tokio::join!(
        futures::future::join_all(lead),
        futures::future::join_all(parts.into_iter().map(|b| rp.append(b, Acks::All))),
    );
    let entries = last_index(&c, leader) - before;
    assert!(entries < 11, "11 requests took {entries} Raft entries");
    let got: Vec<Option<(u64, u64)>> = answers
        .iter()
        .map(|a| a.as_ref().ok().map(|r| (r.base_offset, r.last_offset)))
        .collect();
    assert!(matches!(
        answers[2],
        Err(ReplicationError::Log(crate::log::LogError::Sequence { .. }))
    ));
    assert!(matches!(
        answers[3],
        Err(ReplicationError::Log(
            crate::log::LogError::InvalidBatch { .. }
        ))
    ));
    let p0 = got[0].expect("first idempotent batch");
    assert_eq!(p0.1 - p0.0, 1);
    assert_eq!(got[5], Some(p0), "the retry is answered with the original");
    let stored: Vec<(u64, u64)> = [0, 1, 4, 6].iter().filter_map(|&i| got[i]).collect();
    assert_eq!(stored.len(), 4, "{answers:?}");
    let end = c.node(leader).partition().log.next_offset();
    assert_eq!(end, 4 + 2 + 1 + 1 + 1, "refused parts took no offsets");
    c.wait_hw(&all, end).await;
    let records = records_of(&c.dirs[&leader]);
    for (i, value) in [(1, "plain-a"), (4, "p2"), (6, "plain-b")] {
        let (base, _) = got[i].expect("stored");
        assert!(
            records.contains(&(base, value.as_bytes().to_vec())),
            "{value}"
        );
    }
    let reference = segment_bytes(&c.dirs[&leader]);
    for id in all {
        assert_eq!(segment_bytes(&c.dirs[&id]), reference, "node {id} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_answers_every_part_of_merged_entries() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let old = c.leader(&all).await;
    produce(c.node(old), "first", 1, Acks::All)
        .await
        .expect("append");
    c.net.isolate(&[old], &all);
    let before = last_index(&c, old);
    let rp = c.node(old);
    let pending = futures::future::join_all(
        (0..30).map(|i| rp.append(batch(&[format!("minority{i}")]), Acks::All)),
    );
    tokio::pin!(pending);
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
    let majority = async {
        let new = c.leader(&rest).await;
        produce(c.node(new), "majority", 1, Acks::All)
            .await
            .expect("majority append");
        new
    };
    let new = tokio::select! {
        r = &mut pending => panic!("the minority leader answered: {r:?}"),
        new = majority => new,
    };
    assert!(
        last_index(&c, old) - before < 30,
        "the minority leader merged its appends"
    );
    c.net.heal();
    // The old leader's uncommitted entries are cut when it rejoins: every
    // request gets an answer, none of them a success.
    let answers = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("every part answered");
    for a in answers {
        assert!(
            matches!(a, Err(ReplicationError::NotLeader { .. })),
            "{a:?}"
        );
    }
    let end = c.node(new).partition().log.next_offset();
    c.wait_hw(&all, end).await;
    assert_eq!(
        values_of(&c.dirs[&old]),
        vec![b"first-0".to_vec(), b"majority-0".to_vec()]
    );
}

/// The log id of the leader's last entry (an acks=all append's answer
/// comes once it is committed, maybe before the applied metric moves).
fn last_log_id(rp: &ReplicatedPartition) -> openraft::LogId<u64> {
    let m = rp.raft().metrics().borrow().clone();
    openraft::LogId::new(
        openraft::CommittedLeaderId::new(m.current_term, rp.node_id()),
        m.last_log_index.expect("an entry"),
    )
}

/// A group-state partition's compaction: the snapshot is capped at the
/// checkpoint start `C` (its last entry is the one just before `C`, its
/// Kafka end is `C`), the segments wholly below it go, and a replica that
/// was down meanwhile installs it and restarts its log at `C`, so it holds
/// every record from `C` on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_snapshot_ends_before_the_checkpoint_and_a_lagging_replica_restarts_there() {
    let all = [1, 2, 3];
    let mut c = Cluster::new(&all).await;
    let leader = c.leader(&all).await;
    for i in 0..5 {
        produce(c.node(leader), &format!("early{i}"), 2, Acks::All)
            .await
            .expect("append");
    }
    let lagging = all.into_iter().find(|&i| i != leader).expect("follower");
    c.wait_hw(&[lagging], 10).await;
    c.stop(lagging).await;
    let mut before_checkpoint = None;
    for i in 0..30 {
        produce(c.node(leader), &format!("mid{i}"), 3, Acks::All)
            .await
            .expect("append");
        before_checkpoint = Some(Some(last_log_id(c.node(leader))));
    }
    let (r, _) = produce(c.node(leader), "checkpoint", 3, Acks::All)
        .await
        .expect("append");
    let checkpoint = r.base_offset;
    assert_eq!(checkpoint, 100);
    for i in 0..10 {
        produce(c.node(leader), &format!("late{i}"), 3, Acks::All)
            .await
            .expect("append");
    }
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != lagging).collect();
    let end = c.node(leader).partition().log.next_offset();
    c.wait_hw(&rest, end).await;
    for &id in &rest {
        let below = c.node(id).compact_below(checkpoint).await.expect("compact");
        assert_eq!(below, Some(checkpoint), "node {id}");
        let snap: super::SnapshotRecord = super::index::read_json(
            &StdFs,
            &c.dirs[&id].join("raft"),
            super::index::SNAPSHOT_FILE,
        )
        .expect("read")
        .expect("a snapshot");
        assert_eq!(snap.kafka_end, checkpoint, "node {id}");
        assert_eq!(
            Some(snap.meta.last_log_id),
            before_checkpoint,
            "node {id}: the entry just before the checkpoint"
        );
        let m = c.node(id).raft().metrics().borrow().clone();
        assert_eq!(Some(m.snapshot), before_checkpoint);
        assert!(m.last_applied > m.snapshot, "applied past the snapshot");
        // Asked again (after a restart, say): nothing left to do.
        let again = c.node(id).compact_below(checkpoint).await.expect("compact");
        assert_eq!(again, Some(checkpoint), "node {id}");
        let log = &c.node(id).partition().log;
        assert!(
            log.log_start_offset() > 10 && log.log_start_offset() <= checkpoint,
            "node {id}: segments below the checkpoint deleted (start {})",
            log.log_start_offset()
        );
    }
    c.start(lagging).await;
    c.wait_hw(&all, end).await;
    let log = &c.node(lagging).partition().log;
    assert_eq!(
        log.log_start_offset(),
        checkpoint,
        "the replica restarted at the checkpoint"
    );
    let records = records_of(&c.dirs[&lagging]);
    assert_eq!(records.first().map(|r| r.0), Some(checkpoint));
    assert_eq!(
        records.first().map(|r| r.1.clone()),
        Some(b"checkpoint-0".to_vec())
    );
    assert_eq!(records.len() as u64, end - checkpoint);
}

/// A capped snapshot ends at the last applied entry wholly below the cap,
/// and is skipped while the membership in force is newer than that entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_snapshot_point_is_skipped_under_a_newer_membership() {
    let root = tempfile::tempdir().expect("tempdir");
    let net = MemNetwork::new();
    let (rp, _) = open_single(Arc::new(StdFs), &root.path().join("t-0"), &net).await;
    let mut last = Vec::new();
    for i in 0..4 {
        produce(&rp, &format!("b{i}"), 2, Acks::All)
            .await
            .expect("append");
        last.push(last_log_id(&rp));
    }
    let mut rx = rp.raft().metrics();
    while rx.borrow().last_applied < last.last().copied() {
        rx.changed().await.expect("raft running");
    }
    let m = rx.borrow().clone();
    let membership = (*m.membership_config).clone();
    // Offsets 0..8 in four entries of two: the cap 5 ends after the second.
    let point = super::state::snapshot_point(rp.shared(), m.last_applied, &membership, Some(5));
    assert_eq!(point, Some((Some(last[1]), 4)));
    assert_eq!(
        super::state::snapshot_point(rp.shared(), m.last_applied, &membership, None),
        Some((m.last_applied, 8)),
        "uncapped: the last applied entry"
    );
    let newer = openraft::StoredMembership::new(Some(last[2]), membership.membership().clone());
    assert_eq!(
        super::state::snapshot_point(rp.shared(), m.last_applied, &newer, Some(5)),
        None,
        "a membership applied after the point"
    );
    assert_eq!(
        super::state::snapshot_point(rp.shared(), Some(last[0]), &membership, Some(5)),
        None,
        "the point is not applied yet"
    );
    rp.shutdown().await.expect("shutdown");
}

/// A follower whose whole partition directory was lost (a replaced disk)
/// restarts empty: the leader, which had it matching far ahead, starts its
/// search again and brings it back with every record, instead of stopping
/// its own Raft core on the "reverted" log (openraft panics there unless
/// built with `loosen-follower-log-revert`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_lost_its_whole_log_is_brought_back_by_the_leader() {
    let all = [1, 2, 3];
    let mut c = Cluster::new(&all).await;
    let leader = c.leader(&all).await;
    let mut end = 0;
    for i in 0..20 {
        let (r, _) = produce(c.node(leader), &format!("a{i}"), 2, Acks::All)
            .await
            .expect("append");
        end = r.last_offset + 1;
    }
    c.wait_hw(&all, end).await;
    let wiped = all.into_iter().find(|&i| i != leader).expect("follower");
    c.stop(wiped).await;
    std::fs::remove_dir_all(&c.dirs[&wiped]).expect("wipe");
    c.start(wiped).await;
    for i in 0..5 {
        let (r, _) = produce(c.node(leader), &format!("b{i}"), 2, Acks::All)
            .await
            .expect("append after the wipe");
        end = r.last_offset + 1;
    }
    c.wait_hw(&all, end).await;
    assert!(!c.node(leader).core_stopped(), "the leader's core runs");
    assert!(c.node(leader).is_leader());
    assert_eq!(
        values_of(&c.dirs[&wiped]),
        values_of(&c.dirs[&leader]),
        "the wiped follower holds every record again"
    );
}

/// Every replica restarted: while a replica opens, openraft reads its log
/// for memberships and log ids with data entries read as no records; once
/// open they are read whole. A follower that then lost its whole log gets
/// every record, byte for byte, from the restarted leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_restarted_together_serve_whole_entries_once_open() {
    let all = [1, 2, 3];
    let mut c = Cluster::new(&all).await;
    let leader = c.leader(&all).await;
    let mut end = 0;
    for i in 0..200 {
        let (r, _) = produce(c.node(leader), &format!("a{i}"), 2, Acks::All)
            .await
            .expect("append");
        end = r.last_offset + 1;
    }
    c.wait_hw(&all, end).await;
    for id in all {
        c.stop(id).await;
    }
    for id in all {
        c.start(id).await;
        let opening = c
            .node(id)
            .shared()
            .opening
            .load(std::sync::atomic::Ordering::Acquire);
        assert!(!opening, "node {id} reads whole entries once open");
    }
    let leader = c.leader(&all).await;
    let wiped = all.into_iter().find(|&i| i != leader).expect("follower");
    c.stop(wiped).await;
    std::fs::remove_dir_all(&c.dirs[&wiped]).expect("wipe");
    c.start(wiped).await;
    // A loaded machine may move the leadership meanwhile: append where it
    // is now (a refused append stores nothing).
    let mut tries = 0;
    let (r, leader) = loop {
        let leader = c.leader(&all).await;
        match produce(c.node(leader), "b", 2, Acks::All).await {
            Ok((r, _)) => break (r, leader),
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::info!(error = %e, "append after the restart refused; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("append after the restart: {e}"),
        }
    };
    end = r.last_offset + 1;
    c.wait_hw(&all, end).await;
    assert_eq!(values_of(&c.dirs[&wiped]).len(), 402);
    assert_eq!(
        segment_bytes(&c.dirs[&wiped]),
        segment_bytes(&c.dirs[&leader]),
        "the wiped follower holds the leader's bytes"
    );
}

/// A replica whose Raft core stopped on a fatal storage error names no
/// leader and does not claim to lead, where its last metrics would name
/// itself forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_raft_core_stopped_names_no_leader() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("t-0");
    let net = MemNetwork::new();
    let faults = crate::log::fault::Faults::new();
    let fs: Arc<dyn FileSystem> = Arc::new(crate::log::fault::FaultyFs::new(faults.clone()));
    let (rp, _) = open_single(fs, &dir, &net).await;
    produce(&rp, "ok", 1, Acks::All).await.expect("append");
    assert_eq!(rp.leader(), Some(1));
    assert!(!rp.core_stopped());
    faults.set_write_eio(true);
    faults.set_fsync_fails(true);
    let _ = produce(&rp, "eio", 1, Acks::All).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rp.core_stopped() {
        assert!(
            Instant::now() < deadline,
            "the core stops on the storage error"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rp.leader(), None);
    assert!(!rp.is_leader());
    let _ = rp.shutdown().await;
    assert!(
        !rp.core_stopped(),
        "a replica shut down on purpose is not 'stopped'"
    );
}

/// A follower that stops answering leaves the in-sync set once it has been
/// silent for `in_sync_max_silence_ms`, though no entry is appended after
/// it stopped (its matched index stays the leader's last one), and comes
/// back once it answers again and has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_follower_leaves_the_in_sync_set_without_writes() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let leader = c.leader(&[1, 2, 3]).await;
    produce(c.node(leader), "a", 3, Acks::All)
        .await
        .expect("produce");
    let wait_for = |c: &Cluster, want: usize| {
        let isr = c.node(leader).in_sync();
        (isr.len() == want).then_some(isr)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while wait_for(&c, 3).is_none() {
        assert!(Instant::now() < deadline, "{:?}", c.node(leader).in_sync());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = [1, 2, 3]
        .into_iter()
        .find(|&i| i != leader)
        .expect("follower");
    // Its last answer comes before this, at most one heartbeat earlier.
    let stopped = Instant::now();
    c.stop(gone).await;
    let silence = Duration::from_millis(ReplicationConfig::default().in_sync_max_silence_ms);
    let isr = loop {
        if let Some(isr) = wait_for(&c, 2) {
            break isr;
        }
        assert!(
            stopped.elapsed() < silence + Duration::from_secs(5),
            "{:?}",
            c.node(leader).in_sync()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!isr.contains(&gone) && isr.contains(&leader), "{isr:?}");
    // Not well before the silence bound (less a heartbeat and slack): a
    // heartbeat's delay is not an absence.
    assert!(stopped.elapsed() >= silence - Duration::from_millis(500));
    c.start(gone).await;
    let back = Instant::now();
    while wait_for(&c, 3).is_none() {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "{:?}",
            c.node(leader).in_sync()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A follower cut off from the others for many election timeouts, then
/// let back, does not depose the leader the others kept following: while
/// cut off it cannot reach a majority for its pre-vote, so it never raises
/// its term, and the leader's first call after the cut heals finds it
/// willing to follow. (Without the pre-vote it answered that call with the
/// higher term of its lost elections, and the leader stepped down.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_and_let_back_leaves_the_leader_in_place() {
    let c = Cluster::new(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    produce(c.node(leader), "a", 3, Acks::All)
        .await
        .expect("produce");
    let term = c.node(leader).leader_epoch();
    let cut = all.into_iter().find(|&i| i != leader).expect("follower");
    c.net.isolate(&[cut], &all);
    // Several of its election timeouts (150-300 ms, after the leader's
    // lease of 300 ms).
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(
        c.node(cut).leader_epoch(),
        term,
        "the cut-off replica raised its term"
    );
    c.net.heal();
    let (r, _) = produce(c.node(leader), "b", 3, Acks::All)
        .await
        .expect("produce after the heal");
    let end = r.last_offset + 1;
    c.wait_hw(&all, end).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for id in all {
        assert_eq!(c.node(id).leader_epoch(), term, "node {id}: the term moved");
        assert_eq!(
            c.node(id).leader(),
            Some(leader),
            "node {id}: the leader moved"
        );
    }
}
