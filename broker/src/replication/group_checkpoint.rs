//! Compaction of the group-state topic ([`GROUP_STATE_TOPIC`]) by
//! checkpoint, so that neither its partitions nor a new coordinator's load
//! grow without bound.
//!
//! - **Checkpoint (coordinator only).** When this node has loaded
//!   group-state partition `p` in its current term and the partition's log
//!   has grown since the start of its latest checkpoint by more than
//!   `max(offsets_snapshot_bytes, 2 × that checkpoint's size)`, it writes a
//!   new one: under the offset store's gate held exclusively
//!   ([`OffsetStore::with_live_state`]: no commit, group record, group
//!   deletion or forgotten topic is between its append and its update of
//!   memory), the live state of the partition's groups is appended through
//!   the partition's Raft group with acks=all, as one or more batches of at
//!   most [`PART_BYTES`], each starting with a [`CheckpointMarker`] record.
//!   The offset of the first marker is the checkpoint start `C`: the
//!   records from `C` on restate every live key, so replaying `[C, end)`
//!   rebuilds what replaying the whole log does.
//! - **Purge (every replica).** Each replica scans its own log, up to the
//!   high watermark (so only committed records), for markers, incrementally
//!   ([`Scan`]: at most [`SCAN_BYTES_PER_TICK`] per tick, remembering where
//!   it stopped). Once it has read every part of a checkpoint newer than
//!   the one it last purged below, it calls
//!   [`ReplicatedPartition::compact_below`]: a Raft snapshot capped below
//!   `C` (a follower that installs it restarts its log at or below `C`, so
//!   it still receives the whole checkpoint), a purge of the Raft log up to
//!   it, and the deletion of the segments wholly below it.
//! - **Load.** A new coordinator reads its log from the log start, which is
//!   at or below the latest checkpoint start: it sees a whole checkpoint
//!   and everything after it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;

use super::controller::Cluster;
use super::group_state::{GROUP_STATE_TOPIC, WRITE_TIMEOUT, partition_of, partitions};
use super::manager::ReplicaManager;
use super::partition::ReplicatedPartition;
use crate::error::BrokerError;
use crate::log::{LogError, PartitionLog};
use crate::offsets::{
    CheckpointMarker, OffsetRecord, OffsetStore, decode_record, encode_batch, next_batch,
};
use crate::partition::Acks;
use crate::service::Service;

/// How often the group-state partitions are scanned.
const TICK: Duration = Duration::from_millis(100);
/// Most bytes of log one partition's scan reads per tick.
pub const SCAN_BYTES_PER_TICK: u64 = 4 << 20;
/// Most bytes of records (keys and values) in one checkpoint batch: well
/// within a replicated entry's limit.
pub const PART_BYTES: usize = 1 << 20;
/// Wait after a compaction that could not purge before trying again.
const PURGE_RETRY: Duration = Duration::from_secs(1);

/// One `(key, value)` offsets-log record (`None`: a tombstone).
type Record = (Vec<u8>, Option<Vec<u8>>);

/// A complete checkpoint found in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Offset of its first marker: the checkpoint start.
    pub start: u64,
    /// Bytes of log scanned before it (the [`Scan`]'s running count).
    pub start_bytes: u64,
    /// Bytes from its first batch to the end of its last one.
    pub size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    marker: CheckpointMarker,
    start: u64,
    start_bytes: u64,
}

/// How far one replica has scanned its group-state partition's log for
/// checkpoint markers, and what it found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The next offset to scan (a batch boundary).
    next: u64,
    /// Bytes of batches scanned so far.
    bytes: u64,
    /// A checkpoint whose parts are being read.
    pending: Option<Pending>,
    /// The latest complete checkpoint.
    latest: Option<Found>,
    /// The checkpoint start the log was last compacted below.
    purged: u64,
    /// A checkpoint this node wrote that the scan has not reached yet.
    awaiting: Option<u64>,
    /// No compaction is tried before this instant.
    retry_at: Option<tokio::time::Instant>,
}

impl Scan {
    /// Takes in the batch at `base` of `len` bytes whose first record is
    /// `marker` (if it is a checkpoint marker). A checkpoint is complete
    /// once its parts were read in order; other batches may lie between
    /// them.
    pub fn batch(&mut self, base: u64, len: u64, marker: Option<CheckpointMarker>) {
        let start_bytes = self.bytes;
        self.bytes += len;
        match (marker, self.pending.as_mut()) {
            (None, _) => {}
            (Some(m), _) if m.part == 0 => {
                self.pending = Some(Pending {
                    marker: m,
                    start: base,
                    start_bytes,
                })
            }
            (Some(m), Some(p))
                if (m.term, m.started_at, m.parts)
                    == (p.marker.term, p.marker.started_at, p.marker.parts)
                    && m.part == p.marker.part + 1 =>
            {
                p.marker.part = m.part;
            }
            // A part out of order: that checkpoint is incomplete.
            (Some(_), _) => self.pending = None,
        }
        if let Some(p) = self.pending.filter(|p| p.marker.part + 1 == p.marker.parts) {
            self.latest = Some(Found {
                start: p.start,
                start_bytes: p.start_bytes,
                size: self.bytes - p.start_bytes,
            });
            self.pending = None;
        }
    }

    /// The latest complete checkpoint scanned.
    pub fn latest(&self) -> Option<Found> {
        self.latest
    }

    /// Bytes of log scanned since the start of the latest checkpoint (all
    /// of it when there is none).
    pub fn bytes_since_checkpoint(&self) -> u64 {
        self.bytes - self.latest.map_or(0, |f| f.start_bytes)
    }

    /// Whether a new checkpoint is due: the log grew by more than
    /// `max(threshold, 2 × the latest checkpoint's size)` since its start.
    pub fn due(&self, threshold: u64) -> bool {
        let size = self.latest.map_or(0, |f| f.size);
        self.bytes_since_checkpoint() > threshold.max(2 * size)
    }

    /// Scans `log` from where the last call stopped up to its high
    /// watermark, reading at most `budget` bytes. Starts over from the log
    /// start when the log no longer holds the next offset (its start moved
    /// past it: a snapshot was installed). Blocking.
    pub fn scan(&mut self, log: &PartitionLog, budget: u64) -> Result<(), BrokerError> {
        if self.next < log.log_start_offset() || self.next > log.next_offset() {
            *self = Scan {
                next: log.log_start_offset(),
                purged: self.purged,
                awaiting: self.awaiting,
                ..Scan::default()
            };
        }
        let mut read = 0u64;
        while self.next < log.high_watermark() && read < budget {
            let slice = log.read(self.next, (budget - read).clamp(1, 1 << 20))?;
            if slice.len == 0 {
                break;
            }
            let mut bytes = slice
                .read_bytes()
                .map_err(|e| LogError::io("read", log.dir(), e))?;
            read += bytes.len() as u64;
            let before = self.next;
            let mut expected = slice.first_offset;
            while let Some(batch) = next_batch(&mut bytes, expected, log.dir()) {
                let h = batch.header();
                expected = h.next_offset() as u64;
                let (base, next) = (h.base_offset as u64, h.next_offset() as u64);
                if next <= self.next {
                    continue;
                }
                let marker = batch.records().next().and_then(|r| r.ok()).and_then(|r| {
                    match decode_record(r.key.as_deref()?, r.value.as_deref()) {
                        Ok(OffsetRecord::Checkpoint(m)) => Some(m),
                        _ => None,
                    }
                });
                self.batch(base, h.total_len() as u64, marker);
                self.next = next;
            }
            if self.next == before {
                break;
            }
        }
        Ok(())
    }
}

/// Splits a checkpoint's records into parts of at most `part_bytes` of
/// keys and values (at least one record each, at least one part), each
/// led by its marker: part `i` of `n` of the checkpoint `(term,
/// started_at)`.
pub fn checkpoint_parts(
    records: Vec<Record>,
    term: u64,
    started_at: u64,
    part_bytes: usize,
) -> Vec<Vec<Record>> {
    let mut parts: Vec<Vec<Record>> = vec![Vec::new()];
    let mut size = 0usize;
    for r in records {
        let len = r.0.len() + r.1.as_ref().map_or(0, Vec::len) + 16;
        if size + len > part_bytes && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(p) = parts.last_mut() {
            p.push(r);
        }
    }
    let n = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let marker = CheckpointMarker {
                term,
                started_at,
                part: i as u32,
                parts: n,
            };
            std::iter::once((CheckpointMarker::key(), Some(marker.encode())))
                .chain(part)
                .collect()
        })
        .collect()
}

fn refused(code: ErrorCode, message: String) -> BrokerError {
    BrokerError::Request { code, message }
}

/// Writes a checkpoint of group-state partition `p` (of `n`) through
/// `replica`, if this node still coordinates its groups in `term`; returns
/// its start. Blocking (holds the offset store's gate exclusively while
/// the parts are appended).
fn write_checkpoint(
    store: &OffsetStore,
    manager: &ReplicaManager,
    replica: &ReplicatedPartition,
    (p, n, term): (u32, u32, u64),
    runtime: &tokio::runtime::Handle,
) -> Result<u64, BrokerError> {
    store.with_live_state(
        |g| partition_of(g, n) == p,
        |records| {
            let coordinating = replica.is_leader()
                && replica.leader_epoch() == term
                && manager.group_loads.is_loaded(p, term);
            if !coordinating {
                return Err(refused(
                    ErrorCode::NotCoordinator,
                    "no longer coordinating the partition".into(),
                ));
            }
            let started_at = replica.partition().log.high_watermark();
            let mut start = None;
            for part in checkpoint_parts(records, term, started_at, PART_BYTES) {
                let batch = encode_batch(&part);
                let appended = runtime.block_on(async {
                    tokio::time::timeout(WRITE_TIMEOUT, replica.append(batch, Acks::All)).await
                });
                match appended {
                    Ok(Ok(r)) if !r.rejected => {
                        start.get_or_insert(r.base_offset);
                    }
                    Ok(Ok(_)) => {
                        return Err(refused(
                            ErrorCode::StorageError,
                            "the group-state partition refused a checkpoint part".into(),
                        ));
                    }
                    Ok(Err(e)) => return Err(refused(ErrorCode::StorageError, e.to_string())),
                    Err(_) => {
                        return Err(refused(
                            ErrorCode::RequestTimedOut,
                            format!("checkpoint part not committed within {WRITE_TIMEOUT:?}"),
                        ));
                    }
                }
            }
            start.ok_or_else(|| refused(ErrorCode::Unknown, "empty checkpoint".into()))
        },
    )
}

/// Cluster mode, for as long as the broker runs: every [`TICK`], for each
/// group-state partition this node hosts, scans its log for checkpoints,
/// writes a checkpoint when this node coordinates the partition and one is
/// due, and compacts the partition below its latest checkpoint.
pub async fn run(service: Weak<Service>, manager: Arc<ReplicaManager>, cluster: Arc<Cluster>) {
    let mut scans: HashMap<u32, Scan> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(svc) = service.upgrade() else { return };
        let Some(n) = partitions(&cluster) else {
            continue;
        };
        for p in 0..n {
            let Some(replica) = manager.replica(GROUP_STATE_TOPIC, p) else {
                scans.remove(&p);
                continue;
            };
            let scan = scans.entry(p).or_default();
            step(&svc, &manager, &replica, (p, n), scan).await;
        }
    }
}

async fn step(
    svc: &Arc<Service>,
    manager: &Arc<ReplicaManager>,
    replica: &Arc<ReplicatedPartition>,
    (p, n): (u32, u32),
    scan: &mut Scan,
) {
    let part = Arc::clone(replica.partition());
    let mut s = std::mem::take(scan);
    let scanned = crate::service::blocking(move || {
        let r = s.scan(&part.log, SCAN_BYTES_PER_TICK);
        (s, r)
    })
    .await;
    match scanned {
        Ok((s, r)) => {
            *scan = s;
            if let Err(e) = r {
                tracing::warn!(partition = p, error = %e, "could not scan a group-state partition");
                return;
            }
        }
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "could not scan a group-state partition");
            return;
        }
    }
    if let (Some(w), Some(f)) = (scan.awaiting, scan.latest) {
        if f.start >= w {
            scan.awaiting = None;
        }
    }
    let term = replica.leader_epoch();
    let coordinating = replica.is_leader() && manager.group_loads.is_loaded(p, term);
    if coordinating && scan.awaiting.is_none() && scan.due(svc.config.offsets_snapshot_bytes) {
        let store = Arc::clone(&svc.offsets);
        let (m, r) = (Arc::clone(manager), Arc::clone(replica));
        let runtime = tokio::runtime::Handle::current();
        let written = crate::service::blocking(move || {
            write_checkpoint(&store, &m, &r, (p, n, term), &runtime)
        })
        .await;
        match written {
            Ok(Ok(start)) => {
                scan.awaiting = Some(start);
                tracing::info!(partition = p, start, "wrote a group-state checkpoint");
            }
            Ok(Err(e)) => {
                tracing::warn!(partition = p, error = %e, "could not write a group-state checkpoint")
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "could not write a group-state checkpoint")
            }
        }
    }
    let Some(found) = scan.latest.filter(|f| f.start > scan.purged) else {
        return;
    };
    if scan
        .retry_at
        .is_some_and(|t| tokio::time::Instant::now() < t)
    {
        return;
    }
    match replica.compact_below(found.start).await {
        Ok(Some(below)) => {
            scan.purged = found.start;
            scan.retry_at = None;
            tracing::debug!(
                partition = p,
                checkpoint = found.start,
                below,
                "compacted a group-state partition"
            );
        }
        Ok(None) => scan.retry_at = Some(tokio::time::Instant::now() + PURGE_RETRY),
        Err(e) => {
            scan.retry_at = Some(tokio::time::Instant::now() + PURGE_RETRY);
            tracing::warn!(partition = p, error = %e, "could not compact a group-state partition");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use parking_lot::Mutex;
    use proptest::prelude::*;

    use super::*;
    use crate::log::{FlushPolicy, LogConfig, StdFs};
    use crate::offsets::{GroupLog, OffsetsConfig, Replayed};
    use sluice_protocol::wire::offset_commit::CommitPartition;

    /// A group log in memory: every record appended, in order.
    #[derive(Debug, Default)]
    struct VecLog(Mutex<Vec<Record>>);

    impl GroupLog for VecLog {
        fn append(&self, _group: &str, records: &[Record]) -> Result<(), BrokerError> {
            self.0.lock().extend_from_slice(records);
            Ok(())
        }
    }

    fn store() -> (tempfile::TempDir, Arc<OffsetStore>, Arc<VecLog>) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()).unwrap();
        let log = Arc::new(VecLog::default());
        store.use_replicated(Arc::clone(&log) as Arc<dyn GroupLog>);
        (dir, Arc::new(store), log)
    }

    /// Writes a checkpoint of every group into `log` as the coordinator
    /// does (parts of at most `part_bytes`); returns its start.
    fn checkpoint(store: &OffsetStore, log: &VecLog, part_bytes: usize) -> usize {
        store.with_live_state(
            |_| true,
            |records| {
                let mut log = log.0.lock();
                let start = log.len();
                for part in checkpoint_parts(records, 7, start as u64, part_bytes) {
                    log.extend(part);
                }
                start
            },
        )
    }

    type State = (
        HashMap<(String, String, u32), (u64, String)>,
        HashMap<String, Vec<u8>>,
    );

    fn replay(records: &[Record]) -> State {
        let mut r = Replayed::default();
        for (i, (k, v)) in records.iter().enumerate() {
            r.apply(i as i64, k, v.as_deref());
        }
        let offsets = r.offsets.into_iter().map(|(k, (o, m, _))| (k, (o, m)));
        (offsets.collect(), r.groups)
    }

    fn memory(store: &OffsetStore) -> State {
        let mut offsets = HashMap::new();
        for (g, _, _, _) in store.all() {
            for (t, p, o, m) in store.group(&g) {
                offsets.insert((g.clone(), t, p), (o, m));
            }
        }
        (offsets, store.group_records().into_iter().collect())
    }

    fn commit(store: &OffsetStore, g: u8, t: u8, p: u32, offset: u64) {
        let entry = CommitPartition {
            topic: format!("t{t}"),
            partition: p,
            offset,
            metadata: format!("m{offset}"),
        };
        store.commit(&format!("g{g}"), &[entry]).unwrap();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Commit(u8, u8, u32, u64),
        DeleteGroup(u8),
        StoreGroup(u8, Option<u8>),
        ForgetTopic(u8),
        Checkpoint(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4u8, 0..3u8, 0..4u32, 0..1000u64).prop_map(|(g, t, p, o)| Op::Commit(g, t, p, o)),
            1 => (0..4u8).prop_map(Op::DeleteGroup),
            2 => (0..4u8, proptest::option::of(0..255u8)).prop_map(|(g, v)| Op::StoreGroup(g, v)),
            1 => (0..3u8).prop_map(Op::ForgetTopic),
            2 => (1..200usize).prop_map(Op::Checkpoint),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the commits, tombstones and group records before and
        /// after them, replaying the log from any checkpoint start rebuilds
        /// what replaying it from the start does, which is what the
        /// coordinator holds in memory.
        #[test]
        fn replaying_from_a_checkpoint_equals_replaying_from_the_start(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            let (_dir, store, log) = store();
            let mut starts = Vec::new();
            for op in ops {
                match op {
                    Op::Commit(g, t, p, o) => commit(&store, g, t, p, o),
                    Op::DeleteGroup(g) => {
                        store.delete_group(&format!("g{g}")).unwrap();
                    }
                    Op::StoreGroup(g, v) => {
                        store.store_group(&format!("g{g}"), v.map(|v| vec![0, 1, v])).unwrap()
                    }
                    Op::ForgetTopic(t) => {
                        store.forget_topics(|n| n != format!("t{t}")).unwrap();
                    }
                    Op::Checkpoint(part_bytes) => starts.push(checkpoint(&store, &log, part_bytes)),
                }
            }
            starts.push(checkpoint(&store, &log, 64));
            let records = log.0.lock().clone();
            let whole = replay(&records);
            prop_assert_eq!(&whole, &memory(&store));
            for start in starts {
                prop_assert_eq!(&replay(&records[start..]), &whole, "from {}", start);
            }
        }
    }

    /// Commits racing checkpoints: each checkpoint holds the gate, so no
    /// commit lands in the log before a checkpoint and in memory after it
    /// (the checkpoint would restate the older value).
    #[test]
    fn commits_racing_checkpoints_replay_to_what_memory_holds() {
        let (_dir, store, log) = store();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..3u8)
            .map(|w| {
                let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        commit(&store, w, (i % 2) as u8, (i % 3) as u32, i);
                        if i % 50 == 0 {
                            store
                                .store_group(&format!("g{w}"), Some(vec![0, 1, i as u8]))
                                .unwrap();
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        let mut starts = Vec::new();
        for _ in 0..300 {
            starts.push(checkpoint(&store, &log, 40));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let records = log.0.lock().clone();
        let whole = replay(&records);
        assert_eq!(whole, memory(&store));
        for start in starts {
            assert_eq!(replay(&records[start..]), whole, "from {start}");
        }
    }

    fn marker(term: u64, started_at: u64, part: u32, parts: u32) -> Option<CheckpointMarker> {
        Some(CheckpointMarker {
            term,
            started_at,
            part,
            parts,
        })
    }

    #[test]
    fn a_checkpoint_counts_once_all_its_parts_were_read_in_order() {
        let mut s = Scan::default();
        s.batch(0, 100, None);
        s.batch(1, 50, marker(1, 1, 0, 3));
        s.batch(5, 10, None); // a racing write between parts
        s.batch(6, 50, marker(1, 1, 1, 3));
        assert_eq!(s.latest(), None, "incomplete");
        s.batch(9, 50, marker(1, 1, 2, 3));
        assert_eq!(
            s.latest(),
            Some(Found {
                start: 1,
                start_bytes: 100,
                size: 160
            })
        );
        assert_eq!(s.bytes_since_checkpoint(), 160);
        // Parts of another checkpoint, or out of order: not complete.
        s.batch(12, 50, marker(2, 12, 0, 2));
        s.batch(13, 50, marker(1, 1, 1, 2));
        s.batch(14, 50, marker(2, 12, 1, 2));
        assert_eq!(s.latest().map(|f| f.start), Some(1));
        s.batch(15, 50, marker(3, 15, 0, 1));
        assert_eq!(s.latest().map(|f| f.start), Some(15));
        assert_eq!(s.bytes_since_checkpoint(), 50);
        // Due once the log grew past max(threshold, 2 × the checkpoint).
        assert!(!s.due(100));
        s.batch(16, 60, None);
        assert!(s.due(100) && !s.due(110));
        assert!(s.due(0) && !Scan::default().due(0));
    }

    #[test]
    fn parts_stay_within_their_size_and_each_starts_with_its_marker() {
        let records: Vec<Record> = (0..10u8)
            .map(|i| (vec![i; 10], Some(vec![i; 14])))
            .collect();
        let parts = checkpoint_parts(records.clone(), 4, 9, 100);
        assert_eq!(parts.len(), 5, "40 bytes a record, two per part");
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(
                decode_record(&part[0].0, part[0].1.as_deref()),
                Ok(OffsetRecord::Checkpoint(CheckpointMarker {
                    term: 4,
                    started_at: 9,
                    part: i as u32,
                    parts: 5
                }))
            );
        }
        let rest: Vec<Record> = parts
            .into_iter()
            .flat_map(|p| p.into_iter().skip(1))
            .collect();
        assert_eq!(rest, records);
        let empty = checkpoint_parts(Vec::new(), 1, 0, 100);
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].len(), 1, "the marker alone");
    }

    /// The scan of a real log, a little per call: finds the checkpoint's
    /// start and size in bytes, and starts over when the log start passes
    /// where it stopped.
    #[test]
    fn the_scan_finds_checkpoints_in_the_log_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 4096,
            flush: FlushPolicy::BeforeAck,
            ..LogConfig::default()
        };
        let (log, _) = PartitionLog::open(dir.path().join("gs-0"), config).unwrap();
        let append = |records: &[Record]| {
            let mut b = encode_batch(records);
            let len = b.len() as u64;
            let info = log.append(&mut b).unwrap();
            log.flush_to(info.next_offset).unwrap();
            (info.base_offset, len)
        };
        let commit = |i: u64| {
            let key = crate::offsets::encode_key("g", "t", (i % 5) as u32);
            append(&[(key, Some(crate::offsets::encode_value(i, "", 1)))])
        };
        for i in 0..100 {
            commit(i);
        }
        let parts = checkpoint_parts(
            (0..5u32)
                .map(|p| {
                    (
                        crate::offsets::encode_key("g", "t", p),
                        Some(vec![0, 1, 1, 0]),
                    )
                })
                .collect(),
            3,
            100,
            30,
        );
        assert!(parts.len() > 1);
        let mut start = None;
        let mut size = 0;
        for part in &parts {
            let (base, len) = append(part);
            start.get_or_insert(base);
            size += len;
        }
        for i in 0..20 {
            commit(i);
        }
        let mut s = Scan::default();
        let mut calls = 0;
        while s.next < log.high_watermark() {
            s.scan(&log, 1).unwrap();
            calls += 1;
            assert!(calls < 1000);
        }
        assert!(calls > 1, "read a little per call ({calls})");
        let found = s.latest().expect("the checkpoint");
        assert_eq!((Some(found.start), found.size), (start, size));
        assert!(s.bytes_since_checkpoint() > size);
        // The log restarts past the scan (a snapshot was installed).
        let at = log.next_offset() + 10;
        log.reset_to(at).unwrap();
        s.scan(&log, 1 << 20).unwrap();
        assert_eq!((s.next, s.latest()), (at, None));
    }
}
