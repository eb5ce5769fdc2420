//! The partition log's side of idempotent producers: checking an append's
//! batches against the producer table (under the log's lock, no I/O),
//! recording them, and keeping the table across restarts — `.snapshot`
//! files written at roll and clean shutdown, rebuilt at open from the newest
//! good snapshot plus the batches after it, pruned by retention and
//! truncation.

use std::time::SystemTime;

use super::LogError;
use super::config::LogConfig;
use super::partition::{LogState, PartitionLog};
use crate::producer::snapshot::{self, file_name, parse_file_name};
use crate::producer::state::{
    BatchIdentity, BatchMeta, ProducerEntry, ProducerStates, SeqCheck, SeqError,
};

/// A batch of an idempotent producer in an append being made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdempotentBatch {
    /// Byte position in the append.
    pub(crate) position: usize,
    /// Offset of its first record relative to the append's first.
    pub(crate) delta: u64,
    /// Producer id, epoch, sequences.
    pub(crate) id: BatchIdentity,
}

/// Checks an append's idempotent batches, each in order (a later batch of
/// the same producer must follow the earlier one of the same append).
/// `Ok(None)`: append them. `Ok(Some((first, last)))`: every batch of the
/// append (`count` in all) is a duplicate; the original offsets run from
/// `first.first_offset` to `last.last_offset`. A mix of new and duplicate
/// batches is refused as out of order.
pub(crate) fn check_append(
    producers: &ProducerStates,
    batches: &[IdempotentBatch],
    count: u32,
) -> Result<Option<(BatchMeta, BatchMeta)>, LogError> {
    let mut dups: Option<(BatchMeta, BatchMeta)> = None;
    let mut new = 0usize;
    for (i, b) in batches.iter().enumerate() {
        let fail = |source| LogError::Sequence {
            position: b.position,
            source,
        };
        // Epochs compare as Kafka compares them, signed: a negative one is
        // older than any held (Kafka: INVALID_PRODUCER_EPOCH), and than
        // the first a producer id gets (0).
        if b.id.epoch < 0 {
            return Err(fail(SeqError::Fenced {
                producer_id: b.id.producer_id,
                epoch: b.id.epoch,
                current: producers
                    .get(b.id.producer_id)
                    .map_or(0, |e| e.epoch.max(0)),
            }));
        }
        if b.id.first_seq < 0 {
            return Err(fail(SeqError::OutOfOrder {
                producer_id: b.id.producer_id,
                epoch: b.id.epoch,
                expected: 0,
                found: b.id.first_seq,
            }));
        }
        let earlier = batches
            .get(..i)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|e| e.id.producer_id == b.id.producer_id);
        let check = match earlier {
            Some(e) => {
                let next = BatchIdentity {
                    first_seq: e.id.last_seq(),
                    records: 2,
                    ..e.id
                }
                .last_seq();
                let follows = (b.id.epoch == e.id.epoch && b.id.first_seq == next)
                    || (b.id.epoch > e.id.epoch && b.id.first_seq == 0);
                if b.id.epoch < e.id.epoch {
                    return Err(fail(SeqError::Fenced {
                        producer_id: b.id.producer_id,
                        epoch: b.id.epoch,
                        current: e.id.epoch,
                    }));
                }
                if !follows {
                    return Err(fail(SeqError::OutOfOrder {
                        producer_id: b.id.producer_id,
                        epoch: b.id.epoch,
                        expected: if b.id.epoch == e.id.epoch { next } else { 0 },
                        found: b.id.first_seq,
                    }));
                }
                // Follows an earlier batch of this append: new if that one
                // is, else a duplicate only if the table says so too.
                match producers.check(&b.id) {
                    Ok(SeqCheck::Duplicate(m)) => SeqCheck::Duplicate(m),
                    _ => SeqCheck::Append,
                }
            }
            None => producers.check(&b.id).map_err(fail)?,
        };
        match check {
            SeqCheck::Append => new += 1,
            SeqCheck::Duplicate(m) => {
                dups = Some(match dups {
                    None => (m, m),
                    Some((first, _)) => (first, m),
                });
            }
        }
        if new > 0 && dups.is_some() {
            return Err(fail(SeqError::MixedRetry));
        }
    }
    match dups {
        Some(_) if batches.len() != count as usize => Err(LogError::Sequence {
            position: 0,
            source: SeqError::MixedRetry,
        }),
        d => Ok(d),
    }
}

/// Records the batches of an append that starts at `base_offset`, made at
/// `now_ms` by the broker's clock (the producer's last activity, which
/// expiry measures; the producer's own timestamps are not trusted for it).
pub(crate) fn record_append(
    producers: &mut ProducerStates,
    batches: &[IdempotentBatch],
    base_offset: u64,
    config: &LogConfig,
    now_ms: i64,
) {
    if batches.is_empty() {
        return;
    }
    let limits = config.producer_limits();
    for b in batches {
        let first_offset = base_offset + b.delta;
        let meta = BatchMeta {
            epoch: b.id.epoch,
            first_seq: b.id.first_seq,
            last_seq: b.id.last_seq(),
            first_offset,
            last_offset: first_offset + u64::from(b.id.records) - 1,
            timestamp: now_ms,
        };
        producers.record(b.id.producer_id, meta, &limits);
    }
}

impl PartitionLog {
    /// What this partition holds for a producer id (for tests and tools).
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.state.lock().producers.get(producer_id).cloned()
    }

    /// Every producer id this partition holds, with its entry, by id.
    pub fn producer_states(&self) -> Vec<(i64, ProducerEntry)> {
        let mut all: Vec<(i64, ProducerEntry)> = self
            .state
            .lock()
            .producers
            .iter()
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Number of producer ids this partition holds.
    pub fn producer_count(&self) -> usize {
        self.state.lock().producers.len()
    }

    /// The highest `f(id)` over the producer ids this partition holds.
    pub fn max_producer_id(&self, f: impl Fn(i64) -> Option<i64>) -> Option<i64> {
        self.state
            .lock()
            .producers
            .iter()
            .filter_map(|(pid, _)| f(*pid))
            .max()
    }

    /// Forgets producers idle longer than the log's
    /// [`LogConfig::producer_id_expiration`] as of `now` (by their newest
    /// batch's timestamp); returns how many. Takes the lock briefly, no I/O.
    pub fn expire_producers(&self, now: SystemTime) -> usize {
        let now_ms = super::partition::unix_millis(now);
        let limits = self.config.producer_limits();
        self.state.lock().producers.expire(now_ms, &limits)
    }

    /// Writes the snapshot `bytes` of the producer table as of `offset`
    /// (atomically, synced), then deletes all but the newest two. A failure
    /// is logged and ignored: recovery rebuilds from an older snapshot and
    /// the log.
    pub(crate) fn write_producer_snapshot(&self, offset: u64, bytes: &[u8]) {
        let name = file_name(offset);
        if let Err(e) = super::io::write_file_atomically(&*self.fs, &self.dir, &name, bytes) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write a producer state snapshot");
            return;
        }
        let mut offsets = self.snapshot_offsets();
        offsets.sort_unstable();
        let keep_from = offsets.len().saturating_sub(2);
        for old in offsets.get(..keep_from).unwrap_or_default() {
            self.remove_snapshot(*old);
        }
    }

    /// Writes the snapshot taken at the last roll, if it is not written
    /// yet. Runs on maintenance threads (before retention, so the batches a
    /// deleted segment held are covered by a snapshot first).
    pub(crate) fn write_pending_producer_snapshot(&self) {
        let _snapshot = self.snapshot_lock.lock();
        let pending = self.state.lock().pending_snapshot.take();
        if let Some((offset, bytes)) = pending {
            self.write_producer_snapshot(offset, &bytes);
        }
    }

    /// Saves the producer table as of the log end (clean shutdown, with no
    /// append in flight).
    pub(crate) fn snapshot_producers_now(&self) {
        let _snapshot = self.snapshot_lock.lock();
        let (offset, bytes) = {
            let mut state = self.state.lock();
            // The newer snapshot below covers the one the last roll took.
            state.pending_snapshot = None;
            let end = state.end.offset;
            (end, snapshot::encode(end, &state.producers))
        };
        self.write_producer_snapshot(offset, &bytes);
    }

    /// Offsets of the snapshot files in the directory.
    fn snapshot_offsets(&self) -> Vec<u64> {
        self.fs
            .list_dir(&self.dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect()
    }

    fn remove_snapshot(&self, offset: u64) {
        let path = self.dir.join(file_name(offset));
        if let Err(e) = self.fs.remove_file(&path) {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a producer state snapshot");
        }
    }

    /// Deletes every snapshot (the log is reset empty).
    pub(crate) fn remove_producer_snapshots(&self) {
        for o in self.snapshot_offsets() {
            self.remove_snapshot(o);
        }
    }

    /// Deletes snapshots past `end` (after a truncation), and below the log
    /// start except the newest one (after retention).
    pub(crate) fn prune_producer_snapshots(&self, end: u64) {
        let mut offsets = self.snapshot_offsets();
        offsets.sort_unstable();
        let log_start = self.log_start_offset();
        let newest_valid = offsets.iter().rev().find(|&&o| o <= end).copied();
        for o in offsets {
            if o > end || (o < log_start && Some(o) != newest_valid) {
                self.remove_snapshot(o);
            }
        }
    }

    /// At open: the producer table from the newest readable snapshot at or
    /// below the log end (damaged ones and ones past the end are deleted),
    /// then every batch after it; then expiry. Returns the number of
    /// batches scanned.
    pub(crate) fn load_producers(&self, state: &mut LogState) -> Result<usize, LogError> {
        let end = state.end.offset;
        let mut offsets = self.snapshot_offsets();
        offsets.sort_unstable();
        let mut table = None;
        for &o in offsets.iter().rev() {
            if o > end {
                self.remove_snapshot(o);
                continue;
            }
            let path = self.dir.join(file_name(o));
            let read = super::io::read_file(&*self.fs, &path)
                .map_err(|e| e.to_string())
                .and_then(|b| b.ok_or_else(|| "gone".to_owned()))
                .and_then(|b| snapshot::decode(&b));
            match read {
                Ok((at, t)) if at == o => {
                    table = Some((at, t));
                    break;
                }
                Ok(_) => {
                    tracing::warn!(file = %path.display(), "snapshot offset disagrees with its name; ignoring it")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring a damaged producer state snapshot");
                    self.remove_snapshot(o);
                }
            }
        }
        let (from, mut producers) = table.unwrap_or_default();
        let limits = self.config.producer_limits();
        // Batches found in the log count as active now: the broker's clock
        // at their append is not stored, and a producer's own timestamps
        // are not trusted for expiry.
        let now_ms = super::partition::unix_millis(SystemTime::now());
        let mut scanned = 0;
        for seg in &state.segments {
            if seg.next_offset() <= from || seg.next_offset() == seg.base_offset() {
                continue;
            }
            let file = seg.file()?;
            let (mut position, _, _) = seg.batch_start_at_or_before(from.max(seg.base_offset()));
            loop {
                let h = super::segment::read_header(&*file, position, seg.size())
                    .map_err(|e| LogError::io("read", seg.log_path(), e))?;
                let Some(h) = h else { break };
                position += h.total_len() as u64;
                let (first, last) = (h.base_offset as u64, h.last_offset() as u64);
                if last < from || h.producer_id < 0 {
                    continue;
                }
                scanned += 1;
                let id = BatchIdentity {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    first_seq: h.base_sequence,
                    records: u32::try_from(h.record_count).unwrap_or(0),
                };
                let meta = BatchMeta {
                    epoch: h.producer_epoch,
                    first_seq: h.base_sequence,
                    last_seq: id.last_seq(),
                    first_offset: first,
                    last_offset: last,
                    timestamp: now_ms,
                };
                producers.record(h.producer_id, meta, &limits);
            }
            if seg.is_sealed() {
                seg.release();
            }
        }
        producers.expire(now_ms, &limits);
        state.producers = producers;
        Ok(scanned)
    }
}
