//! Retention: deleting whole sealed segments, oldest first, by age and by
//! size; and deleting records from the log's start up to an offset.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LogError;
use super::format::{LOG_START_FILE, LogStart};
use super::io::write_file_atomically;
use super::partition::{LogState, PartitionLog};
use super::segment::Segment;

/// What one retention pass deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetainOutcome {
    /// Segments deleted.
    pub segments: usize,
    /// Bytes of record batches deleted.
    pub bytes: u64,
}

impl PartitionLog {
    /// Deletes sealed segments, oldest first, while the oldest one is expired
    /// (its newest record timestamp is older than `retention_age` before
    /// `now`) or the log without it is still at least `retention_bytes`, or
    /// it lies wholly below the log start ([`PartitionLog::raise_log_start`]).
    ///
    /// The active segment and segments holding offsets at or above the high
    /// watermark are never deleted. The log start offset moves to the first
    /// remaining segment. Readers holding a deleted segment's file (a
    /// [`super::LogSlice`]) keep reading it until they drop it.
    pub fn retain(&self, now: SystemTime) -> Result<RetainOutcome, LogError> {
        self.retain_below(now, u64::MAX)
    }

    /// Whether [`PartitionLog::retain`] would delete a segment now (its
    /// oldest segment is sealed, below the high watermark, and expired,
    /// beyond the size limit, or wholly below a raised log start).
    pub fn retention_due(&self, now: SystemTime) -> bool {
        self.retention_point(now).is_some()
    }

    /// The offset [`PartitionLog::retain`] would delete the log below now:
    /// the end of the last segment it would delete (the base offset of the
    /// first one it would keep), or `None` when it would delete nothing. A
    /// replicated partition keeps its Raft log from there on, so that a
    /// replica that falls behind receives every record the others keep.
    pub fn retention_point(&self, now: SystemTime) -> Option<u64> {
        let state = self.state.lock();
        if state.offline.is_some() {
            return None;
        }
        let doomed = self.doomed(&state, now, u64::MAX, false);
        doomed
            .checked_sub(1)
            .and_then(|last| state.segments.get(last))
            .map(|s| s.next_offset())
    }

    /// How many segments, oldest first, retention deletes now: sealed,
    /// wholly below `limit` and the high watermark, and expired, beyond the
    /// size limit or wholly below the log start (`all`: whatever the
    /// settings); never the active one.
    fn doomed(&self, state: &LogState, now: SystemTime, limit: u64, all: bool) -> usize {
        let hw = self.high_watermark().min(limit);
        let retention = self.retention();
        let mut total: u64 = state.segments.iter().map(|s| s.size()).sum();
        let mut count = 0;
        for seg in state
            .segments
            .iter()
            .take(state.segments.len().saturating_sub(1))
        {
            if !seg.is_sealed() || seg.next_offset() > hw {
                break;
            }
            // Records deleted past its end (`raise_log_start`): it goes
            // whatever the settings.
            let below_start = seg.next_offset() <= self.log_start_offset();
            if !(all || below_start || retention.deletes(seg, total, now)) {
                break;
            }
            total -= seg.size();
            count += 1;
        }
        count
    }

    /// [`PartitionLog::retain`] that also keeps every segment holding
    /// offsets at or above `limit` (a replicated log keeps what its Raft
    /// log still refers to).
    pub fn retain_below(&self, now: SystemTime, limit: u64) -> Result<RetainOutcome, LogError> {
        self.delete_oldest(now, limit, false)
    }

    /// Deletes every sealed segment wholly below `limit` and the high
    /// watermark, whatever the retention settings (the active segment is
    /// never deleted): a group-state partition drops what its latest
    /// checkpoint restates. The log start offset moves to the first
    /// remaining segment.
    pub fn delete_below(&self, limit: u64) -> Result<RetainOutcome, LogError> {
        self.delete_oldest(SystemTime::now(), limit, true)
    }

    /// Deletes the records below `offset` (Kafka's DeleteRecords): the log
    /// start offset moves up to it, so readers get
    /// [`LogError::OffsetOutOfRange`] below it and the earliest offset is
    /// `offset`; the sealed segments wholly below it are deleted, and a
    /// segment it cuts stays on disk with its records below `offset`
    /// unreadable. The new start is in the log-start-offset file (written
    /// atomically, synced) before readers go by it, so it holds after a
    /// crash. An `offset` at or below the log start changes nothing; one
    /// past the high watermark is refused with `OffsetOutOfRange`. Returns
    /// the log start offset afterwards. Blocking; serialised with flushes.
    pub fn delete_records_before(&self, offset: u64) -> Result<u64, LogError> {
        self.move_log_start(offset, true)
    }

    /// [`PartitionLog::delete_records_before`] that leaves the segments
    /// wholly below the new start on disk, for a later retention pass
    /// ([`PartitionLog::retention_point`] counts them): a replicated
    /// partition deletes segments only once its Raft log no longer refers
    /// to them.
    pub fn raise_log_start(&self, offset: u64) -> Result<u64, LogError> {
        self.move_log_start(offset, false)
    }

    fn move_log_start(&self, offset: u64, delete: bool) -> Result<u64, LogError> {
        let _flush = self.flush_lock.lock();
        if let Some(refused) = self.refusal(&self.state.lock()) {
            return Err(refused);
        }
        let (start, hw) = (self.log_start_offset(), self.high_watermark());
        if offset > hw {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: start,
                log_end: self.next_offset(),
                high_watermark: hw,
            });
        }
        if offset <= start {
            return Ok(start);
        }
        write_file_atomically(
            &*self.fs,
            &self.dir,
            LOG_START_FILE,
            &LogStart { offset }.encode(),
        )
        .map_err(|e| LogError::io("write log start offset in", &self.dir, e))?;
        self.log_start.fetch_max(offset, Ordering::AcqRel);
        tracing::info!(dir = %self.dir.display(), offset, "deleted records below offset");
        if delete {
            self.delete_oldest(SystemTime::now(), offset, true)?;
        }
        Ok(self.log_start_offset())
    }

    /// Seals the active segment when retention deletes it by age: it is the
    /// only segment left (so after a pass that deleted the sealed segments,
    /// the next seals the active one), nothing was appended to it for the
    /// retention age, and it holds records, all below the high watermark,
    /// the newest older than the retention age. Retention then deletes it
    /// as any sealed segment (a replicated log's, once its Raft log lets it
    /// go). Kafka deletes such a segment too, after rolling a new empty
    /// one; without this, a partition that gets no more appends would keep
    /// its last records past their retention for good. The roll's producer table is kept for the
    /// upkeep to write, as an append's roll keeps it. Skipped (returns
    /// false) while appends are in flight or the log is closing, deleted or
    /// offline: the next pass tries again.
    pub(crate) fn roll_expired_active(&self, now: SystemTime) -> Result<bool, LogError> {
        let retention = self.retention();
        let mut state = self.state.lock();
        if state.offline.is_some() || state.closing || state.deleted || !state.pending.is_idle() {
            return Ok(false);
        }
        // Only the last segment left: retention deletes oldest first, so
        // while an older one stays (not expired, a replica's Raft log still
        // holding it) the active one would not go, and sealing it would
        // only make another segment each pass. Records without a timestamp
        // (-1) are not taken as expired here. And only a segment nothing
        // was appended to for the retention age (across restarts: its
        // file's modification time): records stamped long ago (a backfill)
        // are not deleted as they arrive.
        let Some(age) = retention.age else {
            return Ok(false);
        };
        let active = state.active();
        let idle = now
            .duration_since(active.last_append())
            .is_ok_and(|d| d > age);
        if state.segments.len() > 1
            || active.size() == 0
            || !idle
            || active.max_timestamp().is_none_or(|ts| ts < 0)
            || state.end.offset > self.high_watermark()
            || !retention.expired(active, now)
        {
            return Ok(false);
        }
        let base = state.end.offset;
        self.roll(&mut state)?;
        let bytes = crate::producer::snapshot::encode(base, &state.producers);
        state.pending_snapshot = Some((base, bytes));
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled the active segment: its records are past their retention");
        Ok(true)
    }

    fn delete_oldest(
        &self,
        now: SystemTime,
        limit: u64,
        all: bool,
    ) -> Result<RetainOutcome, LogError> {
        let mut outcome = RetainOutcome::default();
        self.write_pending_producer_snapshot();
        let deleted = {
            let mut state = self.state.lock();
            if state.offline.is_some() {
                // An offline log is left as it is (it may have been opened
                // offline because its files are damaged).
                return Ok(outcome);
            }
            let doomed = self.doomed(&state, now, limit, all);
            let deleted: Vec<Segment> = state.segments.drain(..doomed).collect();
            // Their entries go with them (uncounting them at once).
            if let Some(first) = state.segments.front().map(Segment::base_offset) {
                state.open_sealed.retain(|e| e.base >= first);
            }
            for seg in &deleted {
                outcome.segments += 1;
                outcome.bytes += seg.size();
            }
            if let Some(first) = state.segments.front() {
                // Never down: records may have been deleted past the first
                // segment's base (`delete_records_before`).
                self.log_start
                    .fetch_max(first.base_offset(), Ordering::AcqRel);
            }
            deleted
        };
        let mut first_error = None;
        if !deleted.is_empty() {
            self.prune_producer_snapshots(self.next_offset());
        }
        for seg in deleted {
            tracing::info!(segment = %seg.log_path().display(), "retention deletes segment");
            if let Err(e) = seg.delete(&*self.fs) {
                tracing::error!(error = %e, "retention could not delete a segment");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }
}

/// A log's retention: by age (of a segment's newest record) and by size
/// (of the whole log), each if set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delete a sealed segment whose newest record is older than this.
    pub age: Option<Duration>,
    /// Delete the oldest sealed segment while the log without it is still
    /// at least this large.
    pub bytes: Option<u64>,
}

impl Retention {
    /// Whether `oldest` (sealed, below the high watermark) goes, in a log
    /// of `total` bytes at `now`.
    fn deletes(&self, oldest: &Segment, total: u64, now: SystemTime) -> bool {
        let expired = self.expired(oldest, now);
        let oversized = self
            .bytes
            .is_some_and(|limit| total - oldest.size() >= limit);
        expired || oversized
    }

    /// Whether `segment`'s newest record is older than the retention age
    /// at `now`.
    fn expired(&self, segment: &Segment, now: SystemTime) -> bool {
        match (self.age, segment.max_timestamp()) {
            (Some(age), Some(ts)) => {
                let newest = UNIX_EPOCH + Duration::from_millis(ts.max(0) as u64);
                now.duration_since(newest).is_ok_and(|d| d > age)
            }
            _ => false,
        }
    }
}
