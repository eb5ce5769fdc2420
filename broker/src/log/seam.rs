//! The partition seam for replication: truncating the log at run time and a
//! high watermark set from outside the log. The follower append that keeps
//! given offsets is [`PartitionLog::append_at`].

use std::sync::atomic::Ordering;

use super::LogError;
use super::config::FlushPolicy;
use super::partition::{LogPoint, PartitionLog};
use super::segment::{Segment, read_header};

impl PartitionLog {
    /// The batch boundary at or before `offset` (the start of the batch
    /// holding it, or `offset` itself at a boundary or the log end), and the
    /// truncation epoch it was resolved in. Batch headers, when needed, are
    /// read without the lock, and checked ([`super::read::walk_to_offset`]):
    /// damage found is [`LogError::Corrupt`], logged with the segment,
    /// unless the log was cut meanwhile (then it is resolved again).
    fn locate(&self, offset: u64) -> Result<(LogPoint, u64), LogError> {
        loop {
            let (file, base, size, epoch, start, first) = {
                let mut state = self.state.lock();
                let offset = offset.min(state.end.offset);
                // Listed before its index or file is opened below (a follower's
                // catch-up reads history as a consumer does).
                let at = state.segment_index(offset);
                state.touch_sealed_at(at);
                let seg = state
                    .segments
                    .get(state.segment_index(offset))
                    .ok_or_else(|| self.offline_error("no segment"))?;
                let point = |offset, position| LogPoint {
                    offset,
                    segment_base: seg.base_offset(),
                    position,
                };
                if offset >= seg.next_offset() {
                    return Ok((point(seg.next_offset(), seg.size()), state.epoch));
                }
                let (start, first, holds) = seg.batch_start_at_or_before(offset);
                if holds {
                    return Ok((point(first, start), state.epoch));
                }
                (
                    seg.file()?,
                    seg.base_offset(),
                    seg.size(),
                    state.epoch,
                    start,
                    first,
                )
            };
            match self.walk_from(&*file, base, (start, first), offset, size)? {
                Ok((position, first)) => {
                    let point = LogPoint {
                        offset: first,
                        segment_base: base,
                        position,
                    };
                    return Ok((point, epoch));
                }
                Err(_) if self.state.lock().epoch != epoch => continue,
                Err(reason) => return Err(self.damaged_segment(base, reason)),
            }
        }
    }

    /// Sets the high watermark from outside the log (a leader that knows
    /// what its followers hold, or a follower told by its leader) and
    /// switches the log to that mode for good: from now on appends and
    /// flushes no longer move it.
    ///
    /// The value is rounded down to a batch boundary and capped at the log
    /// end, or with [`FlushPolicy::BeforeAck`] at the recovery point (never
    /// visible before it is durable). It never moves back, except by
    /// [`PartitionLog::truncate_to`]. Returns the high watermark now in
    /// force.
    pub fn set_high_watermark(&self, offset: u64) -> Result<u64, LogError> {
        loop {
            let target = {
                let mut state = self.state.lock();
                let cap = self.local_visible_end(&state);
                let current = self.visible_end(&state);
                let target = offset.min(cap.offset);
                if target <= current.offset {
                    // Entering the mode keeps the current value.
                    state.external_hw.get_or_insert(current);
                    return Ok(current.offset);
                }
                if target == cap.offset {
                    state.external_hw = Some(cap);
                    self.high_watermark.store(cap.offset, Ordering::Release);
                    return Ok(cap.offset);
                }
                target
            };
            let (point, epoch) = self.locate(target)?;
            let mut state = self.state.lock();
            if state.epoch != epoch {
                continue;
            }
            let current = self.visible_end(&state);
            let point = if point.offset > current.offset {
                point
            } else {
                current
            };
            state.external_hw = Some(point);
            self.high_watermark.store(point.offset, Ordering::Release);
            return Ok(point.offset);
        }
    }

    /// The file range holding exactly the batches of offsets `base..next`,
    /// which one append wrote into one segment, regardless of the high
    /// watermark: what a replication leader sends to its followers before
    /// the records are committed. `base` and `next` must be batch
    /// boundaries of one segment, else [`LogError::OffsetOutOfRange`].
    /// Reads batch headers (blocking I/O); takes the lock only briefly.
    pub fn read_appended(&self, base: u64, next: u64) -> Result<super::LogSlice, LogError> {
        let slice = self.read_appended_upto(base, next)?;
        if slice.next_offset != next {
            return Err(LogError::OffsetOutOfRange {
                requested: base,
                log_start: self.log_start_offset(),
                log_end: self.next_offset(),
                high_watermark: self.high_watermark(),
            });
        }
        Ok(slice)
    }

    /// As [`PartitionLog::read_appended`], for a range that may cross
    /// segments: the batches from `base` up to `next` or to the end of the
    /// segment holding `base`, whichever comes first (the slice's
    /// `next_offset` says where it stopped; at least one batch).
    pub fn read_appended_upto(&self, base: u64, next: u64) -> Result<super::LogSlice, LogError> {
        let out_of_range = || LogError::OffsetOutOfRange {
            requested: base,
            log_start: self.log_start_offset(),
            log_end: self.next_offset(),
            high_watermark: self.high_watermark(),
        };
        loop {
            let (point, epoch) = self.locate(base)?;
            if point.offset != base || next > self.next_offset() || next < base {
                return Err(out_of_range());
            }
            let (file, size, hw) = {
                let mut state = self.state.lock();
                if state.epoch != epoch {
                    continue;
                }
                let at = state.segment_index(point.segment_base);
                state.touch_sealed_at(at);
                let seg = state
                    .segments
                    .get(state.segment_index(point.segment_base))
                    .ok_or_else(|| self.offline_error("no segment"))?;
                (seg.file()?, seg.size(), self.visible_end(&state).offset)
            };
            let mut position = point.position;
            let mut offset = base;
            while offset < next {
                let h = read_header(&*file, position, size)
                    .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                // The segment ends here: the rest is in the next one.
                let Some(h) = h else { break };
                position += h.total_len() as u64;
                offset = h.next_offset() as u64;
            }
            if offset > next || (offset == base && base < next) {
                return Err(out_of_range());
            }
            return Ok(super::LogSlice {
                file: Some(file),
                position: point.position,
                len: position - point.position,
                first_offset: base,
                next_offset: offset,
                high_watermark: hw,
                log_start_offset: self.log_start_offset(),
                bytes_after: 0,
            });
        }
    }

    /// Enters the externally set high watermark mode (see
    /// [`PartitionLog::set_high_watermark`]) with the high watermark at
    /// `offset`, rounded down to a batch boundary and at least the log
    /// start, even below its current value: a replicated log at open, whose
    /// records past the last known commit point may not be committed. Call
    /// it before the log serves readers. Returns the high watermark now in
    /// force.
    pub fn restart_high_watermark(&self, offset: u64) -> Result<u64, LogError> {
        loop {
            let offset = offset.max(self.log_start_offset());
            let (point, epoch) = self.locate(offset)?;
            let mut state = self.state.lock();
            if state.epoch != epoch {
                continue;
            }
            state.external_hw = Some(point);
            self.high_watermark.store(point.offset, Ordering::Release);
            return Ok(point.offset);
        }
    }

    /// The end readers would see if the log set its high watermark itself.
    fn local_visible_end(&self, state: &super::partition::LogState) -> LogPoint {
        if self.config.flush == FlushPolicy::BeforeAck {
            state.durable
        } else {
            state.end
        }
    }

    /// Removes every record at or after `offset` at run time (a follower
    /// discarding a divergent tail): the log end becomes the start of the
    /// batch holding `offset` (`offset` itself at a batch boundary), across
    /// segments and indexes. Returns the new log end.
    ///
    /// Later segments are deleted, the one holding the new end is cut back
    /// and becomes the active segment. The high watermark and the recovery
    /// point move back with the end when they were past it; the
    /// recovery-point checkpoint is lowered *before* any file is cut, so a
    /// crash never trusts data written after the truncation. Appends in
    /// flight finish first. Readers holding an old file handle
    /// ([`super::LogSlice`]) stay safe: a deleted segment stays readable
    /// through it, and a cut one reads short (end of file) past the cut.
    /// An `offset` below the log start is refused with
    /// [`LogError::OffsetOutOfRange`].
    pub fn truncate_to(&self, offset: u64) -> Result<u64, LogError> {
        // No flush runs meanwhile: a flush's snapshot could reach past the
        // new end; nor does a snapshot write (its table may hold batches
        // this cuts, and it could land after the prune below).
        let _flush = self.flush_lock.lock();
        let _snapshot = self.snapshot_lock.lock();
        loop {
            {
                let mut state = self.state.lock();
                if let Some(refused) = self.refusal(&state) {
                    return Err(refused);
                }
                while !state.pending.is_idle() {
                    self.turn.wait(&mut state);
                }
                let log_start = self.log_start_offset();
                if offset < log_start {
                    return Err(LogError::OffsetOutOfRange {
                        requested: offset,
                        log_start,
                        log_end: state.end.offset,
                        high_watermark: self.high_watermark(),
                    });
                }
                if offset >= state.end.offset {
                    return Ok(state.end.offset);
                }
            }
            let (point, epoch) = self.locate(offset)?;
            if self.recovery_point() > point.offset {
                self.write_checkpoint_lowered(point.offset)?;
            }
            let removed = {
                let mut state = self.state.lock();
                while !state.pending.is_idle() {
                    self.turn.wait(&mut state);
                }
                let at = state.segment_index(point.segment_base);
                let same = state
                    .segments
                    .get(at)
                    .is_some_and(|s| s.base_offset() == point.segment_base);
                if state.epoch != epoch || !same {
                    continue;
                }
                let removed: Vec<Segment> = state.segments.drain(at + 1..).collect();
                let config = self.config.clone();
                let seg = state.active_mut();
                let reopened = if seg.is_sealed() {
                    seg.reactivate(&config)
                } else {
                    Ok(())
                };
                if let Err(e) =
                    reopened.and_then(|()| seg.truncate_to(point.position, point.offset))
                {
                    // Segments are gone from memory but the cut failed (or
                    // the segment it ends in could not be reopened for
                    // appends): the files no longer match what the log
                    // serves.
                    let reason = format!("truncation failed: {e}");
                    state.offline = Some(reason.clone());
                    state.epoch += 1;
                    drop(state);
                    for seg in removed {
                        let _ = seg.delete(&*self.fs);
                    }
                    return Err(self.offline_error(&reason));
                }
                state.end = point;
                state.producers.truncate_to(point.offset);
                // The table a roll past the cut kept holds batches that are
                // gone: written, it would be loaded at the next open.
                if state
                    .pending_snapshot
                    .as_ref()
                    .is_some_and(|(at, _)| *at > point.offset)
                {
                    state.pending_snapshot = None;
                }
                if state.durable.offset > point.offset {
                    state.durable = point;
                }
                if state.external_hw.is_some_and(|hw| hw.offset > point.offset) {
                    state.external_hw = Some(point);
                }
                state.checkpointed = state.checkpointed.min(point.offset);
                state.open_sealed.retain(|e| e.base < point.segment_base);
                if !removed.is_empty() {
                    state.dir_changes += 1;
                }
                state.epoch += 1;
                self.next_offset.store(point.offset, Ordering::Release);
                self.recovery_point
                    .store(state.durable.offset, Ordering::Release);
                let visible = self.visible_end(&state).offset;
                self.high_watermark.store(visible, Ordering::Release);
                (removed, state.active().file())
            };
            let (removed, cut) = removed;
            self.prune_producer_snapshots(point.offset);
            // Make the cut durable now: otherwise a power cut could bring
            // the old tail back as valid batches past the recovery point.
            if let Err(e) = cut.and_then(|f| {
                f.sync_data()
                    .map_err(|e| LogError::io("fdatasync", self.dir.clone(), e))
            }) {
                let reason = format!("syncing a truncation failed: {e}");
                self.state.lock().offline = Some(reason.clone());
                return Err(self.offline_error(&reason));
            }
            let mut first_error = None;
            for seg in removed {
                if let Err(e) = seg.delete(&*self.fs) {
                    first_error.get_or_insert(e);
                }
            }
            if first_error.is_none() {
                if let Err(e) = self.fs.sync_dir(&self.dir) {
                    first_error = Some(LogError::io("fsync", self.dir.clone(), e));
                } else {
                    let mut state = self.state.lock();
                    state.dir_synced = state.dir_changes;
                }
            }
            tracing::info!(dir = %self.dir.display(), end = point.offset, "truncated the log");
            return match first_error {
                Some(e) => Err(e),
                None => Ok(point.offset),
            };
        }
    }

    /// Discards every record and restarts the log empty at `offset` (a
    /// replica installing a snapshot of a log whose start it no longer
    /// reaches). Afterwards the log start, the log end, the recovery point
    /// and the high watermark are all `offset`. The old segments are deleted
    /// before the new one is created, so a crash in between leaves an empty
    /// directory (the caller repeats the reset when it finds the log short).
    /// Every producer state snapshot is deleted first: the producer table
    /// restarts empty, at once and at the next open.
    /// A rare, blocking operation: it holds the log's lock across the file
    /// deletions.
    pub fn reset_to(&self, offset: u64) -> Result<(), LogError> {
        let _flush = self.flush_lock.lock();
        let _snapshot = self.snapshot_lock.lock();
        // The checkpoint goes to 0 first: a crash before the new one is
        // written leaves the old segments (rescanned whole), none (an empty
        // log, which starts at 0), or the new one, never a log shorter than
        // its checkpoint, which would read as flushed data gone missing.
        let lower = {
            let state = self.state.lock();
            self.refusal(&state).is_none() && state.checkpointed > 0
        };
        if lower {
            self.write_checkpoint_lowered(0)?;
        }
        {
            let mut state = self.state.lock();
            if let Some(refused) = self.refusal(&state) {
                return Err(refused);
            }
            while !state.pending.is_idle() {
                self.turn.wait(&mut state);
            }
            // No producer snapshot of the old log may outlive it: one at or
            // below the new start would be loaded at the next open.
            state.pending_snapshot = None;
            self.remove_producer_snapshots();
            // The new log starts at `offset`, not at a start some earlier
            // deletion of records recorded.
            let start_file = self.dir.join(super::format::LOG_START_FILE);
            if self.fs.exists(&start_file) {
                self.fs
                    .remove_file(&start_file)
                    .map_err(|e| LogError::io("remove", start_file.clone(), e))?;
            }
            let old: Vec<Segment> = state.segments.drain(..).collect();
            let fresh = old
                .iter()
                .try_for_each(|seg| Segment::delete_files(&*self.fs, &self.dir, seg.base_offset()))
                .and_then(|()| {
                    self.fs
                        .sync_dir(&self.dir)
                        .map_err(|e| LogError::io("fsync", self.dir.clone(), e))
                })
                .and_then(|()| Segment::create(&self.fs, &self.dir, offset, &self.config));
            let new = match fresh {
                Ok(new) => new,
                Err(e) => {
                    // Some old files may be gone and the new segment is
                    // not there: the log can serve neither. It goes
                    // offline, keeping its old segments in memory only so
                    // that it always holds one (nothing appends to an
                    // offline log); the next open finds the directory as
                    // the failure left it and recovers from that.
                    state.segments.extend(old);
                    let reason = format!("resetting the log failed: {e}");
                    tracing::error!(dir = %self.dir.display(), %reason, "taking partition log offline");
                    state.offline = Some(reason.clone());
                    state.epoch += 1;
                    return Err(self.offline_error(&reason));
                }
            };
            // Their files are unlinked; what is left in memory goes (the
            // new segment may have the same base, so nothing more is
            // removed by name).
            drop(old);
            state.segments.push_back(new);
            let point = LogPoint {
                offset,
                segment_base: offset,
                position: 0,
            };
            state.end = point;
            state.durable = point;
            if state.external_hw.is_some() {
                state.external_hw = Some(point);
            }
            state.producers = Default::default();
            state.checkpointed = offset;
            state.open_sealed.clear();
            state.dir_changes += 1;
            state.epoch += 1;
            self.next_offset.store(offset, Ordering::Release);
            self.log_start.store(offset, Ordering::Release);
            self.recovery_point.store(offset, Ordering::Release);
            self.high_watermark.store(offset, Ordering::Release);
        }
        self.write_checkpoint(offset)?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io("fsync", self.dir.clone(), e))?;
        tracing::info!(dir = %self.dir.display(), offset, "reset the log empty");
        Ok(())
    }

    /// Writes a checkpoint with a recovery point below the current one
    /// (before a truncation cuts data it covered).
    fn write_checkpoint_lowered(&self, recovery_point: u64) -> Result<(), LogError> {
        self.write_checkpoint(recovery_point)?;
        let mut state = self.state.lock();
        state.checkpointed = state.checkpointed.min(recovery_point);
        Ok(())
    }
}
