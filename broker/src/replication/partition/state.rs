//! openraft's state machine of a partition group. The partition log is the
//! state: applying a committed entry only moves the high watermark to its
//! end (idempotent, so re-applying after a restart is harmless). A snapshot
//! is the partition's position: {last included log id, membership, Kafka
//! log start, Kafka log end at that entry}.

// openraft's `StorageError` (large) is the error type its storage traits
// require; the helpers here pass it along unchanged.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, ErrorVerb, LogId, RaftSnapshotBuilder,
    StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::PartitionRaft;
use super::format::EntryKind;
use super::index::{SNAPSHOT_FILE, read_json, write_json};
use super::payload::Response;
use super::store::{Shared, store_err};

/// What a partition snapshot holds (JSON in one frame of `raft/snapshot`,
/// and the bytes sent to a follower).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Last entry included, membership and id.
    pub meta: SnapshotMeta<u64, BasicNode>,
    /// The leader's Kafka log start offset when it was built.
    pub log_start: u64,
    /// The Kafka log end just after the last included entry.
    pub kafka_end: u64,
    /// The last included entry that holds records, when no entry after it
    /// up to the last included one does (its end is then `kafka_end`): a
    /// follower holding that same entry (index, term and leader) holds the
    /// same records up to `kafka_end` (Raft's log matching), so it keeps its
    /// log on installing the snapshot instead of restarting it empty.
    /// Absent in snapshots of older builds.
    #[serde(default)]
    pub last_records: Option<RecordsPoint>,
}

/// A Raft entry that holds records, as [`SnapshotRecord::last_records`]
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsPoint {
    /// Its Raft index.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// The node that led that term.
    pub leader: u64,
    /// The Kafka offset just after its records.
    pub next: u64,
}

/// How far back from a snapshot's last entry its last entry with records
/// is looked for (past it, the snapshot names none).
const RECORDS_POINT_LOOKBACK: u64 = 1024;

/// The last entry at or below Raft index `last` that holds records, if the
/// entries after it up to `last` hold none and it is within
/// [`RECORDS_POINT_LOOKBACK`] of `last`.
fn records_point(shared: &Shared, last: Option<LogId<u64>>) -> Option<RecordsPoint> {
    let last = last?.index;
    let index = shared.index.lock();
    (last.saturating_sub(RECORDS_POINT_LOOKBACK)..=last)
        .rev()
        .map_while(|i| index.get(i).map(|r| (i, r)))
        .find(|(_, r)| r.next > r.base)
        .map(|(index, r)| RecordsPoint {
            index,
            term: r.term,
            leader: r.leader,
            next: r.next,
        })
}

/// The state machine of one partition group.
#[derive(Debug)]
pub(crate) struct StateMachine {
    shared: Arc<Shared>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

impl StateMachine {
    /// Starts from the saved snapshot, if any (the applied state is not
    /// saved otherwise: openraft re-applies the committed entries).
    pub(crate) fn new(shared: Arc<Shared>) -> Result<StateMachine, StorageError<u64>> {
        let snap = load_snapshot(&shared)?;
        Ok(StateMachine {
            shared,
            last_applied: snap.as_ref().and_then(|s| s.meta.last_log_id),
            membership: snap.map(|s| s.meta.last_membership).unwrap_or_default(),
        })
    }
}

fn raft_dir(shared: &Shared) -> std::path::PathBuf {
    shared.partition.log.dir().join(super::RAFT_DIR)
}

fn load_snapshot(shared: &Shared) -> Result<Option<SnapshotRecord>, StorageError<u64>> {
    read_json(&*shared.partition.log.fs, &raft_dir(shared), SNAPSHOT_FILE)
        .map_err(|e| store_err(ErrorVerb::Read, e))
}

fn snapshot_of(rec: &SnapshotRecord) -> Result<Snapshot<PartitionRaft>, StorageError<u64>> {
    let bytes = serde_json::to_vec(rec).map_err(|e| store_err(ErrorVerb::Read, e))?;
    Ok(Snapshot {
        meta: rec.meta.clone(),
        snapshot: Box::new(Cursor::new(bytes)),
    })
}

/// Moves the high watermark to `kafka_end` and wakes readers (blocking).
fn advance(shared: &Shared, kafka_end: u64) -> Result<(), StorageError<u64>> {
    shared
        .partition
        .log
        .set_high_watermark(kafka_end)
        .map_err(|e| store_err(ErrorVerb::Write, e))?;
    shared.partition.notify();
    Ok(())
}

/// Builds snapshots of a partition group.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    shared: Arc<Shared>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

impl RaftSnapshotBuilder<PartitionRaft> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<PartitionRaft>, StorageError<u64>> {
        let shared = Arc::clone(&self.shared);
        let last = self.last_applied;
        let membership = self.membership.clone();
        tokio::task::spawn_blocking(move || {
            let cap = *shared.snapshot_cap.lock();
            let Some((last, kafka_end)) = snapshot_point(&shared, last, &membership, cap) else {
                // No capped snapshot newer than the saved one: openraft
                // ignores a snapshot that is not newer than its own.
                return current_or_empty(&shared);
            };
            if cap.is_some() && load_snapshot(&shared)?.is_some_and(|s| s.meta.last_log_id >= last)
            {
                return current_or_empty(&shared);
            }
            let rec = SnapshotRecord {
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: membership,
                    snapshot_id: last.map_or_else(
                        || "empty".to_owned(),
                        |l| format!("{}-{}", l.leader_id.term, l.index),
                    ),
                },
                log_start: shared.partition.log.log_start_offset(),
                kafka_end,
                last_records: records_point(&shared, last).filter(|p| p.next == kafka_end),
            };
            write_json(
                &*shared.partition.log.fs,
                &raft_dir(&shared),
                SNAPSHOT_FILE,
                &rec,
            )
            .map_err(|e| store_err(ErrorVerb::Write, e))?;
            snapshot_of(&rec)
        })
        .await
        .unwrap_or_else(|e| Err(store_err(ErrorVerb::Write, e)))
    }
}

/// Where a snapshot of a state machine that applied up to `last` with
/// `membership` ends: its last included log id and the Kafka log end just
/// after it. Without a cap, the last applied entry. With a cap (a
/// group-state partition's checkpoint start, or the retention point), the last applied entry whose
/// offsets are all below the cap, provided the membership in force is not
/// newer than that entry (else `None`: no snapshot this time).
pub(crate) fn snapshot_point(
    shared: &Shared,
    last: Option<LogId<u64>>,
    membership: &StoredMembership<u64, BasicNode>,
    cap: Option<u64>,
) -> Option<(Option<LogId<u64>>, u64)> {
    let index = shared.index.lock();
    let Some(cap) = cap else {
        let kafka_end = last
            .and_then(|l| index.get(l.index))
            .map_or(index.meta.purged_kafka_end, |r| r.next);
        return Some((last, kafka_end));
    };
    let (i, r) = index.last_below(cap)?;
    let applied = last.is_some_and(|l| i <= l.index);
    let membership_older = membership.log_id().is_none_or(|m| m.index <= i);
    (applied && membership_older).then(|| {
        (
            Some(LogId::new(CommittedLeaderId::new(r.term, r.leader), i)),
            r.next,
        )
    })
}

/// The saved snapshot, or an empty one (no last log id) if none is saved.
fn current_or_empty(shared: &Shared) -> Result<Snapshot<PartitionRaft>, StorageError<u64>> {
    match load_snapshot(shared)? {
        Some(rec) => snapshot_of(&rec),
        None => Ok(Snapshot {
            meta: SnapshotMeta::default(),
            snapshot: Box::new(Cursor::new(Vec::new())),
        }),
    }
}

impl RaftStateMachine<PartitionRaft> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<PartitionRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let mut end = None;
        {
            let index = self.shared.index.lock();
            for entry in entries {
                let rec = index.get(entry.log_id.index);
                let mut response = Response::default();
                if let Some(r) = rec {
                    end = Some(r.next);
                    if r.next > r.base {
                        response = Response {
                            base_offset: r.base,
                            last_offset: r.next - 1,
                            rejected: false,
                        };
                    }
                    if r.kind == EntryKind::Rejected {
                        response.rejected = true;
                    }
                }
                if let EntryPayload::Membership(m) = entry.payload {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                }
                self.last_applied = Some(entry.log_id);
                out.push(response);
            }
        }
        if let Some(end) = end {
            let shared = Arc::clone(&self.shared);
            tokio::task::spawn_blocking(move || advance(&shared, end))
                .await
                .unwrap_or_else(|e| Err(store_err(ErrorVerb::Write, e)))?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: Arc::clone(&self.shared),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let rec: SnapshotRecord = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| store_err(ErrorVerb::Read, e))?;
        let last = meta
            .last_log_id
            .ok_or_else(|| store_err(ErrorVerb::Write, "snapshot without a last log id"))?;
        let rec = SnapshotRecord {
            meta: meta.clone(),
            ..rec
        };
        let shared = Arc::clone(&self.shared);
        let saved = rec.clone();
        let applied = self.last_applied;
        tokio::task::spawn_blocking(move || {
            let log = &shared.partition.log;
            // openraft keeps the local entries after a snapshot whose last
            // entry this replica holds already; then so does the log.
            // openraft hands this install to the state machine worker and
            // then runs `purge(last)` on the log store without waiting for
            // it: the entry may be purged already. The purge noted whether
            // the index held it.
            let holds = shared.index.lock().holds(last);
            // A replica that holds the snapshot's last entry with records
            // (a leader that was away while the others moved on) holds the
            // same records up to its end: it keeps them, so they stay
            // readable should it lead again. Only what it holds past that
            // end (never committed) goes.
            // It holds that entry when its index has it with the same id,
            // or when it applied past it (its own snapshot, or entries
            // since, cover it): every applied entry was committed, and
            // committed entries are the same on every replica.
            let same_records = !holds
                && rec.last_records.is_some_and(|p| {
                    let index = shared.index.lock();
                    let same_entry = index.get(p.index).is_some_and(|r| {
                        r.term == p.term && r.leader == p.leader && r.next == p.next
                    });
                    let committed_past = index.meta.purged.is_some_and(|l| l.index >= p.index)
                        || applied.is_some_and(|l| l.index >= p.index);
                    p.next == rec.kafka_end
                        && (same_entry || committed_past)
                        && log.log_start_offset() <= rec.kafka_end
                        && log.next_offset() >= rec.kafka_end
                });
            if !holds {
                if same_records {
                    tracing::info!(dir = %log.dir().display(), end = rec.kafka_end,
                        "installing a snapshot whose records this replica holds: keeping its log");
                    log.truncate_to(rec.kafka_end)
                        .map_err(|e| store_err(ErrorVerb::Write, e))?;
                } else {
                    tracing::info!(dir = %log.dir().display(), end = rec.kafka_end,
                        last_records = ?rec.last_records,
                        start = log.log_start_offset(), next = log.next_offset(),
                        "installing a snapshot whose records this replica does not hold: restarting its log empty");
                    // The whole local log goes: it restarts empty at the
                    // snapshot's Kafka end, then catches up from the leader.
                    log.reset_to(rec.kafka_end)
                        .map_err(|e| store_err(ErrorVerb::Write, e))?;
                }
                shared
                    .index
                    .lock()
                    .reset(last, rec.kafka_end)
                    .map_err(|e| store_err(ErrorVerb::Write, e))?;
            }
            write_json(&*log.fs, &raft_dir(&shared), SNAPSHOT_FILE, &saved)
                .map_err(|e| store_err(ErrorVerb::Write, e))?;
            advance(&shared, rec.kafka_end)
        })
        .await
        .unwrap_or_else(|e| Err(store_err(ErrorVerb::Write, e)))?;
        self.last_applied = Some(last);
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<PartitionRaft>>, StorageError<u64>> {
        // openraft asks for it last in reading its initial state, before
        // its core starts (and again when it sends a snapshot).
        self.shared.opened();
        load_snapshot(&self.shared)?
            .as_ref()
            .map(snapshot_of)
            .transpose()
    }
}
