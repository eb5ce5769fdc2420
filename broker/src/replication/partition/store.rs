//! openraft's log storage over the partition log: data entries are the
//! record batches in the segment files, the [`RaftIndex`] maps Raft
//! indexes to their Kafka offset ranges.

// openraft's `StorageError` (large) is the error type its storage traits
// require; the helpers here pass it along unchanged.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use parking_lot::Mutex;
use sluice_protocol::batch::{
    BatchError, BatchHeader, peek_offset_and_len, set_base_offset, set_partition_leader_epoch,
};
use tokio::sync::{mpsc, oneshot};

use super::PartitionRaft;
use super::format::{EntryKind, IndexRecord};
use super::index::RaftIndex;
use super::payload::{FileRange, Part, Records, Request, Response};
use crate::log::LogError;
use crate::partition::Partition;

/// A storage error for openraft.
pub(crate) fn store_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::new(
        ErrorSubject::Logs,
        verb,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

/// Waiters for the leader's local append of its own proposals: where it
/// landed, or why the log refused it.
pub(crate) type Waiters = Mutex<HashMap<u64, oneshot::Sender<Result<Response, LogError>>>>;

/// Whether the log refused an append on its content (the same on every
/// replica, nothing written) rather than failed to store it.
fn is_refusal(e: &LogError) -> bool {
    matches!(
        e,
        LogError::InvalidBatch { .. }
            | LogError::EmptyBatch { .. }
            | LogError::TransactionBatch { .. }
            | LogError::EmptyAppend
            | LogError::AppendTooLarge { .. }
            | LogError::OffsetSpaceExhausted { .. }
            | LogError::Sequence { .. }
    )
}

/// What the log storage, its readers and the state machine share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) node_id: u64,
    pub(crate) partition: Arc<Partition>,
    pub(crate) index: Mutex<RaftIndex>,
    pub(crate) waiters: Waiters,
    /// Snapshots include no entry holding an offset at or above this Kafka
    /// offset (the retention point, or a group-state partition's latest
    /// checkpoint start; the highest asked for); `None`:
    /// snapshots are built at the last applied entry.
    pub(crate) snapshot_cap: Mutex<Option<u64>>,
    /// True from opening until openraft has read its initial state (see
    /// [`Shared::opened`]): meanwhile a data entry is read as no records.
    /// openraft reads entries then only for their log ids and memberships
    /// (its search for the last membership walks the whole log after the
    /// last membership entry, 64 entries at a time) and to re-apply
    /// committed ones, which the state machine does from the Raft index,
    /// not from the payload. Reading each data entry's file ranges instead
    /// (opening sealed segments, reading batch headers) made a restart take
    /// seconds per partition with a long retained Raft log.
    pub(crate) opening: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// openraft has read its initial state: entries are read whole from
    /// now on. Called before the Raft core can replicate or serve anything.
    pub(crate) fn opened(&self) {
        self.opening
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Entries `range` of the Raft log, data entries as file ranges of the
    /// segments (while [`Shared::opening`], as no records). Blocking (reads
    /// batch headers).
    fn entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<PartitionRaft>>, StorageError<u64>> {
        let recs: Vec<(u64, IndexRecord, Option<_>)> = {
            let index = self.index.lock();
            let start = start.max(index.first());
            let end = end.min(index.end());
            (start..end)
                .filter_map(|i| {
                    let r = index.get(i)?;
                    Some((i, r, index.membership(i).cloned()))
                })
                .collect()
        };
        let opening = self.opening.load(std::sync::atomic::Ordering::Acquire);
        let mut out = Vec::with_capacity(recs.len());
        for (i, r, m) in recs {
            let log_id = LogId::new(openraft::CommittedLeaderId::new(r.term, r.leader), i);
            let payload = match r.kind {
                EntryKind::Blank => EntryPayload::Blank,
                EntryKind::Membership => match m {
                    Some(m) => EntryPayload::Membership(m),
                    None => {
                        return Err(store_err(
                            ErrorVerb::Read,
                            format!("no membership for entry {i}"),
                        ));
                    }
                },
                // What was refused is replayed as no records: refused again.
                // So is an entry that stored nothing (retried duplicates).
                EntryKind::Rejected => {
                    EntryPayload::Normal(Request::whole(Records::Inline(bytes::Bytes::new())))
                }
                EntryKind::Data if r.next == r.base || opening => {
                    EntryPayload::Normal(Request::whole(Records::Inline(bytes::Bytes::new())))
                }
                EntryKind::Data => EntryPayload::Normal(self.read_entry(r.base, r.next)?),
            };
            out.push(Entry { log_id, payload });
        }
        Ok(out)
    }

    /// The stored records of offsets `base..next` as file ranges, one part
    /// per segment file they are in (blocking: reads batch headers).
    fn read_entry(&self, base: u64, next: u64) -> Result<Request, StorageError<u64>> {
        let mut ranges = Vec::new();
        let mut at = base;
        while at < next {
            let slice = self
                .partition
                .log
                .read_appended_upto(at, next)
                .map_err(|e| store_err(ErrorVerb::Read, e))?;
            let file = slice
                .file
                .ok_or_else(|| store_err(ErrorVerb::Read, "empty entry"))?;
            at = slice.next_offset;
            ranges.push(FileRange {
                file,
                position: slice.position,
                len: slice.len,
            });
        }
        Ok(match ranges.len() {
            1 => Request::whole(Records::File(ranges.remove(0))),
            _ => Request {
                parts: ranges
                    .iter()
                    .map(|r| Part {
                        len: r.len,
                        origin: None,
                    })
                    .collect(),
                records: Records::Files(ranges),
            },
        })
    }

    /// Stamps and appends one part at the log end `end` (moved past it when
    /// stored). `proposed_here`: this node proposed the part (it is its
    /// leader's first store of it), so this append runs the idempotent
    /// producer checks and decides what every replica stores; any other
    /// replica stores what it is given, as the proposer stored it (entries
    /// are replicated from the proposer's segments: a duplicate it did not
    /// write, or a part it refused, reaches them as no records).
    /// `Ok(Err(_))`: the log refused the part on its content (nothing
    /// written); `Err(_)`: it failed to store it (the log is offline).
    fn append_part(
        &self,
        buf: &mut [u8],
        end: &mut u64,
        term: u64,
        proposed_here: bool,
    ) -> Result<Result<Response, LogError>, StorageError<u64>> {
        let log = &self.partition.log;
        let appended = stamp(buf, *end, term)
            .map_err(|e| LogError::InvalidBatch {
                position: 0,
                source: e,
            })
            .and_then(|()| {
                if proposed_here {
                    log.append_replica(*end, buf)
                } else {
                    log.append_replica_copy(*end, buf)
                }
            });
        match appended {
            Ok(info) => {
                if !info.duplicate {
                    *end = info.next_offset;
                    // The partition's traffic counters, as a single
                    // broker's append keeps them.
                    let c = &self.partition.counters;
                    let n = (info.last_offset + 1).saturating_sub(info.base_offset);
                    c.records_appended.fetch_add(n, AtomicOrdering::Relaxed);
                    c.bytes_appended
                        .fetch_add(buf.len() as u64, AtomicOrdering::Relaxed);
                }
                Ok(Ok(Response {
                    base_offset: info.base_offset,
                    last_offset: info.last_offset,
                    rejected: false,
                }))
            }
            Err(e) if is_refusal(&e) => Ok(Err(e)),
            Err(e) => {
                // A failed write takes the log offline: say so.
                self.partition.refresh_offline();
                Err(store_err(ErrorVerb::Write, e))
            }
        }
    }

    /// Writes `entries` to the segments and the index (page cache).
    /// Returns the Kafka log end after them. Blocking.
    fn write(&self, entries: Vec<Entry<PartitionRaft>>) -> Result<u64, StorageError<u64>> {
        // Only the storage task writes: read the ends, write the segments
        // without the lock, then add the index records under it.
        let (mut end, first_idx) = {
            let index = self.index.lock();
            (index.kafka_end(), index.end())
        };
        let mut records = Vec::with_capacity(entries.len());
        let mut memberships = Vec::new();
        for (n, entry) in entries.into_iter().enumerate() {
            if entry.log_id.index != first_idx + n as u64 {
                return Err(store_err(
                    ErrorVerb::Write,
                    format!(
                        "entry {} is not next ({})",
                        entry.log_id.index,
                        first_idx + n as u64
                    ),
                ));
            }
            let term = entry.log_id.leader_id.term;
            let leader = entry.log_id.leader_id.node_id;
            let kind = match entry.payload {
                EntryPayload::Blank => EntryKind::Blank,
                EntryPayload::Membership(m) => {
                    memberships.push((entry.log_id.index, m));
                    EntryKind::Membership
                }
                EntryPayload::Normal(req) => {
                    let Request {
                        records: bytes,
                        parts,
                    } = req;
                    let mut buf = bytes
                        .into_mut()
                        .map_err(|e| store_err(ErrorVerb::Write, e))?;
                    let whole = [Part {
                        len: buf.len() as u64,
                        origin: None,
                    }];
                    // Decoding and the proposer keep parts and bytes in
                    // step; should they not be, the entry is one part.
                    let parts = match parts.iter().try_fold(0u64, |a, p| a.checked_add(p.len)) {
                        Some(n) if n == buf.len() as u64 && !parts.is_empty() => &parts[..],
                        _ => &whole[..],
                    };
                    let base = end;
                    let mut stored = false;
                    let mut at = 0usize;
                    for part in parts {
                        let len = usize::try_from(part.len).unwrap_or(usize::MAX);
                        let chunk = buf.get_mut(at..at.saturating_add(len)).unwrap_or_default();
                        at = at.saturating_add(len);
                        let local = part.origin.filter(|o| o.node == self.node_id);
                        let result = self.append_part(chunk, &mut end, term, local.is_some())?;
                        stored |= result.is_ok();
                        if let Some(tx) = local.and_then(|o| self.waiters.lock().remove(&o.seq)) {
                            let _ = tx.send(result);
                        }
                    }
                    // Refused as a whole only when no part was taken.
                    let kind = if stored {
                        EntryKind::Data
                    } else {
                        EntryKind::Rejected
                    };
                    records.push(IndexRecord {
                        term,
                        leader,
                        kind,
                        base,
                        next: end,
                    });
                    continue;
                }
            };
            records.push(IndexRecord {
                term,
                leader,
                kind,
                base: end,
                next: end,
            });
        }
        self.index
            .lock()
            .append(&records, memberships)
            .map_err(|e| store_err(ErrorVerb::Write, e))?;
        Ok(end)
    }
}

/// Stamps `baseOffset` (contiguous from `base`) and `partitionLeaderEpoch`
/// (`term`) into every batch of `buf`. The CRC covers neither. A buffer
/// that is not whole batches is left for the log's validation to refuse.
fn stamp(buf: &mut [u8], base: u64, term: u64) -> Result<(), BatchError> {
    let epoch = i32::try_from(term).unwrap_or(i32::MAX);
    let mut at = 0usize;
    let mut offset = base;
    while at < buf.len() {
        let rest = buf.get_mut(at..).unwrap_or_default();
        let (_, len) = peek_offset_and_len(rest)?;
        let h = BatchHeader::parse(rest)?;
        set_base_offset(rest, offset as i64)?;
        set_partition_leader_epoch(rest, epoch)?;
        offset += u64::try_from(h.last_offset_delta).unwrap_or(0) + 1;
        at += len;
    }
    Ok(())
}

/// One pending flush: the Kafka end to make durable and openraft's callback.
struct FlushItem {
    kafka_end: u64,
    callback: LogFlushed<PartitionRaft>,
}

/// openraft's log storage of one partition group (cheap to clone; clones
/// are its readers).
#[derive(Clone)]
pub struct LogStore {
    pub(crate) shared: Arc<Shared>,
    flushes: mpsc::UnboundedSender<FlushItem>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("node", &self.shared.node_id)
            .finish()
    }
}

impl LogStore {
    /// A store over `shared`; starts its flush task (group commit: the
    /// segments through the log flusher, the index files with one
    /// `fdatasync` each, then the callbacks in order).
    pub(crate) fn new(shared: Arc<Shared>) -> LogStore {
        let (tx, mut rx) = mpsc::unbounded_channel::<FlushItem>();
        let log = Arc::clone(&shared.partition.log);
        let for_task = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let end = batch.iter().map(|b| b.kafka_end).max().unwrap_or(0);
                let handles = for_task.index.lock().sync_handles();
                let index_sync = tokio::task::spawn_blocking(move || {
                    handles.iter().try_for_each(|f| f.sync_data())
                });
                let log_result = log.flush_to_async(end).await;
                if log_result.is_err() {
                    // A failed fsync takes the log offline.
                    for_task.partition.refresh_offline();
                }
                let index_result = index_sync
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)));
                let result = match (log_result, index_result) {
                    (Err(e), _) => Err(io::Error::other(e)),
                    (_, Err(e)) => Err(e),
                    _ => Ok(()),
                };
                if result.is_ok() {
                    // The index records of every offset below `end` are
                    // synced now: checkpoints may vouch for them.
                    log.cap_checkpoints(end);
                }
                for item in batch {
                    let r = result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| io::Error::new(e.kind(), e.to_string()));
                    item.callback.log_io_completed(r);
                }
            }
        });
        LogStore {
            shared,
            flushes: tx,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError<u64>> + Send + 'static,
) -> Result<T, StorageError<u64>> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(store_err(ErrorVerb::Write, e)))
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    use std::ops::Bound;
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e + 1,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<PartitionRaft> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<PartitionRaft>>, StorageError<u64>> {
        let (start, end) = bounds(&range);
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.entries(start, end)).await
    }
}

impl RaftLogStorage<PartitionRaft> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<PartitionRaft>, StorageError<u64>> {
        let index = self.shared.index.lock();
        let last_purged_log_id = index.meta.purged;
        let last_log_id = index
            .last()
            .map(|(i, r)| LogId::new(openraft::CommittedLeaderId::new(r.term, r.leader), i))
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        // Readers serve replication: never before the initial state is
        // read, and whole entries always.
        self.shared.opened();
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let shared = Arc::clone(&self.shared);
        let vote = *vote;
        blocking(move || {
            let mut index = shared.index.lock();
            let mut meta = index.meta.clone();
            meta.vote = Some(vote);
            index
                .save_meta(meta)
                .map_err(|e| store_err(ErrorVerb::Write, e))
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.shared.index.lock().meta.vote)
    }

    async fn save_committed(
        &mut self,
        _committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Not kept: after a restart the leader tells followers again, and
        // re-applying committed entries only moves the high watermark.
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(None)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<PartitionRaft>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<PartitionRaft>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let shared = Arc::clone(&self.shared);
        let kafka_end = blocking(move || shared.write(entries)).await?;
        self.flushes
            .send(FlushItem {
                kafka_end,
                callback,
            })
            .map_err(|_| store_err(ErrorVerb::Write, "flush task stopped"))
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let mut index = shared.index.lock();
            let cut = index.get(log_id.index).map(|r| r.base);
            index
                .truncate_from(log_id.index)
                .map_err(|e| store_err(ErrorVerb::Delete, e))?;
            if let Some(cut) = cut {
                shared
                    .partition
                    .log
                    .truncate_to(cut)
                    .map_err(|e| store_err(ErrorVerb::Delete, e))?;
                shared.partition.wake_all();
            }
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            shared
                .index
                .lock()
                .purge(log_id)
                .map_err(|e| store_err(ErrorVerb::Delete, e))
        })
        .await
    }
}
