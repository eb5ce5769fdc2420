//! Reading a [`PartitionLog`]: an offset resolved to a segment file range
//! from memory under the state lock, batch headers read without it, and
//! the look-ups by timestamp.

use std::sync::Arc;

use super::LogError;
use super::config::FlushPolicy;
use super::io::LogFile;
use super::partition::{LogPoint, LogState, PartitionLog};
use super::time_lookup::{TimestampMatch, first_record_at_or_after, max_timestamp_from};

/// What the locked first step of a read resolved.
#[derive(Debug, Clone, Copy)]
struct ReadPlan {
    segment_base: u64,
    /// [`LogState::epoch`] when resolved.
    epoch: u64,
    hw: LogPoint,
    limit: u64,
    limit_offset: u64,
    /// A batch boundary at or before the offset read, and its offset.
    start: u64,
    first: u64,
}

/// A read's slice, and the end `(position, offset)` it took from the offset
/// index, still to be checked (`None`: an end known otherwise).
type Finished = (LogSlice, Option<(u64, u64)>);

/// A byte range of one segment file holding whole record batches, ready to
/// be sent with `sendfile(2)`. Holding it keeps the file open, even if
/// retention deletes the segment meanwhile.
#[derive(Debug, Clone)]
pub struct LogSlice {
    /// The segment file, `None` when the slice is empty.
    pub file: Option<Arc<dyn LogFile>>,
    /// First byte of the range in the file.
    pub position: u64,
    /// Length of the range in bytes (0 when nothing is available yet).
    pub len: u64,
    /// Base offset of the first batch in the range; it can be below the
    /// offset asked for, which lies inside that batch.
    pub first_offset: u64,
    /// The offset just after the last batch in the range: the next read
    /// continues from here.
    pub next_offset: u64,
    /// The high watermark when the read was resolved.
    pub high_watermark: u64,
    /// The log start offset when the read was resolved.
    pub log_start_offset: u64,
    /// Bytes of the log after the end of this range, up to the high
    /// watermark: small values mean recently written (likely cached) data.
    pub bytes_after: u64,
}

impl LogSlice {
    /// The slice's bytes, copied into memory: for the broker's own readers
    /// of a log (offsets replay, checkpoint scans), never the fetch path,
    /// which sends the range with `sendfile(2)`. Empty for an empty slice;
    /// shorter than `len` if the file ends first. Blocking.
    pub fn read_bytes(&self) -> std::io::Result<bytes::Bytes> {
        let Some(file) = self.file.as_ref().filter(|_| self.len > 0) else {
            return Ok(bytes::Bytes::new());
        };
        let mut buf = vec![0u8; self.len as usize];
        let n = super::io::read_full_at(&**file, &mut buf, self.position)?;
        buf.truncate(n);
        Ok(bytes::Bytes::from(buf))
    }
}

impl PartitionLog {
    /// Resolves a read of the batches holding `offset` onwards, up to about
    /// `max_bytes`, as a range of one segment file.
    ///
    /// The range ends at a batch boundary no further than the high watermark
    /// and holds whole batches only. It stops at the segment's end, so a
    /// reader continues from [`LogSlice::next_offset`]. When even the first
    /// batch is larger than `max_bytes`, the range still holds at least that
    /// batch, so a reader always makes progress. Reading at the high
    /// watermark, or past it up to the end of the log (records not yet
    /// committed), gives an empty slice; below `log_start_offset` or past the
    /// end of the log an [`LogError::OffsetOutOfRange`].
    pub fn read(&self, offset: u64, max_bytes: u64) -> Result<LogSlice, LogError> {
        loop {
            if let Some(slice) = self.try_read(offset, max_bytes)? {
                return Ok(slice);
            }
        }
    }

    /// One attempt of [`PartitionLog::read`]: `None` when the segment went
    /// away (retention, truncation) while batch headers were read without
    /// the lock, and the read must be resolved again.
    fn try_read(&self, offset: u64, max_bytes: u64) -> Result<Option<LogSlice>, LogError> {
        // Under the lock: the segment, the range limit and a starting point
        // (no disk I/O).
        let (mut slice, plan, file, holds, mut pending) = {
            let mut state = self.state.lock();
            let hw = self.visible_end(&state);
            let log_start = self.log_start_offset();
            let slice = LogSlice {
                file: None,
                position: 0,
                len: 0,
                first_offset: offset,
                next_offset: offset,
                high_watermark: hw.offset,
                log_start_offset: log_start,
                bytes_after: 0,
            };
            if let Some(reason) = state.offline.as_deref()
                && !state.deleted
                && offset >= state.end.offset
            {
                // Offline, the log ends where its valid data does: what was
                // past it (damaged, or flushed and missing) is not there to
                // read, and a reader told its offset is out of range would
                // move its position (a consumer resetting to the earliest
                // offset, a group committing it).
                return Err(self.offline_error(reason));
            }
            if offset < log_start || offset > hw.offset.max(state.end.offset) {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    log_start,
                    log_end: state.end.offset,
                    high_watermark: hw.offset,
                });
            }
            if offset >= hw.offset {
                // At the high watermark, or past it but within the log: a
                // new leader's watermark may trail what its predecessor had
                // already shown, so a reader there waits, as it would at
                // the end of the log.
                return Ok(Some(slice));
            }
            let at = state.segment_index(offset);
            // Count the read before the segment's files are (re)opened below.
            state.touch_sealed_at(at);
            let seg = state
                .segments
                .get(at)
                .ok_or_else(|| self.offline_error("no segment"))?;
            let (limit, limit_offset) = if seg.base_offset() == hw.segment_base {
                (hw.position, hw.offset)
            } else {
                (seg.size(), seg.next_offset())
            };
            // Start: the nearest known batch start at or before `offset`.
            // Where the last read's answer ended, its header was read then
            // (a consumer reading on): the batch there holds `offset`.
            let (start, first, holds) = seg.batch_start_at_or_before(offset);
            let holds = holds
                || (first == offset
                    && *self.checked_boundary.lock()
                        == Some((seg.base_offset(), state.epoch, start, first)));
            let plan = ReadPlan {
                segment_base: seg.base_offset(),
                epoch: state.epoch,
                hw,
                limit,
                limit_offset,
                start,
                first,
            };
            // A reader tailing the active segment, or reading on: no header
            // walk (an end taken from the offset index is checked below).
            let mut pending = None;
            if holds {
                match Self::finish_read(&state, at, &plan, max_bytes, &slice, None)? {
                    Some((s, None)) => return Ok(Some(s)),
                    other => pending = other,
                }
            }
            (slice, plan, seg.file()?, holds, pending)
        };
        // Without the lock: walk batch headers forward to the batch that
        // holds `offset`, checking each (the first too: the batch a read
        // starts at is never sent unread).
        let walk = if holds {
            Ok((plan.start, plan.first))
        } else {
            self.walk_from(
                &*file,
                plan.segment_base,
                (plan.start, plan.first),
                offset,
                plan.limit,
            )?
        };
        let (start, first) = match walk {
            Ok(at) => at,
            Err(reason) => return self.damaged_unless_changed(&plan, reason),
        };
        slice.first_offset = first;
        let plan = ReadPlan {
            start,
            first,
            ..plan
        };
        let mut walked = None;
        loop {
            let done = match pending.take() {
                Some(done) => Some(done),
                None => {
                    let mut state = self.state.lock();
                    let Some(at) = planned_segment(&state, &plan) else {
                        return Ok(None);
                    };
                    // Listed again: another reader's trim may have released
                    // it since, and the index and file are opened again below.
                    state.touch_sealed_at(at);
                    Self::finish_read(&state, at, &plan, max_bytes, &slice, walked)?
                }
            };
            match done {
                Some((s, None)) => return Ok(Some(s)),
                Some((s, Some((end, end_offset)))) => {
                    // The end came from the offset index: a batch must start
                    // there, else the answer would end inside one.
                    let at_end = checked_header(&*file, end, end_offset, plan.limit)
                        .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                    match at_end {
                        Ok(Some(_)) => {
                            *self.checked_boundary.lock() =
                                Some((plan.segment_base, plan.epoch, end, end_offset));
                            return Ok(Some(s));
                        }
                        Ok(None) => self.index_lied(
                            plan.segment_base,
                            &format!("an answer would end at byte {end}, past the data"),
                        ),
                        Err(reason) => self.index_lied(plan.segment_base, &reason),
                    }
                }
                None => {}
            }
            // The index cannot end the range within the budget: walk the
            // headers from the start, without the lock.
            let w = walk_to_budget(&*file, &plan, max_bytes)
                .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
            match w {
                Ok(end) => walked = Some(end),
                Err(reason) => return self.damaged_unless_changed(&plan, reason),
            }
        }
    }

    /// A header walk of `plan` found a batch that does not start where it
    /// should ([`check_base`]): `None` (resolve the read again) if the
    /// segment went or the log was cut meanwhile, since the walk may have
    /// read bytes written after a truncation; else the damage, logged with
    /// the segment.
    fn damaged_unless_changed(
        &self,
        plan: &ReadPlan,
        reason: String,
    ) -> Result<Option<LogSlice>, LogError> {
        if planned_segment(&self.state.lock(), plan).is_none() {
            return Ok(None);
        }
        Err(self.damaged_segment(plan.segment_base, reason))
    }

    /// [`walk_to_offset`] from `from`, a batch start the offset index (or
    /// the in-memory tail) gave in the segment based at `base`; where no
    /// batch of that offset starts there (the index lied: no checksum
    /// covers it), from the segment's start instead. Damage past a sound
    /// starting point is the inner `Err` without that second walk, so a
    /// damaged segment read again and again costs no whole walks.
    pub(super) fn walk_from(
        &self,
        file: &dyn LogFile,
        base: u64,
        from: (u64, u64),
        offset: u64,
        limit: u64,
    ) -> Result<Result<(u64, u64), String>, LogError> {
        let io = |e| LogError::io("read", self.dir.clone(), e);
        let reason = match walk_to_offset(file, from, offset, limit).map_err(io)? {
            Ok(at) => return Ok(Ok(at)),
            Err(reason) => reason,
        };
        let (start, first) = from;
        if start == 0
            || matches!(
                checked_header(file, start, first, limit).map_err(io)?,
                Ok(Some(_))
            )
        {
            return Ok(Err(reason));
        }
        let again = walk_to_offset(file, (0, base), offset, limit).map_err(io)?;
        if again.is_ok() {
            self.index_lied(base, &reason);
        }
        Ok(again)
    }

    /// Where a scan of batch headers from the offset index entry `from` of
    /// the segment based at `base` starts: the entry's position if a batch
    /// of its offset starts there, else (the index lied: no checksum covers
    /// it) the segment's start.
    fn scan_start(
        &self,
        file: &dyn LogFile,
        base: u64,
        from: super::offset_index::IndexEntry,
        limit: u64,
    ) -> Result<u64, LogError> {
        let position = u64::from(from.position);
        if position == 0 {
            return Ok(0);
        }
        match checked_header(file, position, from.offset, limit)
            .map_err(|e| LogError::io("read", self.dir.clone(), e))?
        {
            Ok(Some(_)) => Ok(position),
            Ok(None) => Ok(position), // at the data's end: nothing to scan
            Err(reason) => {
                self.index_lied(base, &reason);
                Ok(0)
            }
        }
    }

    /// A read found an entry of the offset index pointing at no batch
    /// (`reason`: where it started, or where it would have ended) and was
    /// served by walking batch headers instead (from the segment's start,
    /// or from where it starts); logged at most once a minute for the
    /// broker. The index file is not rewritten: reads through that entry go
    /// on walking.
    fn index_lied(&self, base: u64, reason: &str) {
        static SAID: crate::throttle::Throttle =
            crate::throttle::Throttle::new(std::time::Duration::from_secs(60));
        if let Some(held_back) = SAID.allow() {
            let path = super::format::segment_path(&self.dir, base, super::format::INDEX_SUFFIX);
            tracing::warn!(index = %path.display(), %reason, held_back,
                "an offset index entry points at no batch; the read walked batch headers instead");
        }
    }

    /// The refusal of a read that met damage (`reason`) in the segment
    /// based at `base`, logged with the segment.
    pub(super) fn damaged_segment(&self, base: u64, reason: String) -> LogError {
        let path = super::format::segment_path(&self.dir, base, super::format::LOG_SUFFIX);
        tracing::error!(segment = %path.display(), %reason, "damaged batch header; the read is refused");
        LogError::Corrupt { path, reason }
    }

    /// The end of a read that starts at the batch boundary `plan.start`:
    /// everything up to the limit if it fits, else the last batch boundary
    /// within the budget that the in-memory tail knows, else the last
    /// indexed one, else `walked` (the end found by [`walk_to_budget`]);
    /// `None` when that is needed and not given. Past the first batch, the
    /// range never passes the budget. An end taken from the index (which no
    /// checksum covers) is returned beside the slice, for the caller to
    /// check that a batch starts there; once `walked` is given, the index
    /// is not used.
    fn finish_read(
        state: &LogState,
        at: usize,
        plan: &ReadPlan,
        max_bytes: u64,
        slice: &LogSlice,
        walked: Option<(u64, u64)>,
    ) -> Result<Option<Finished>, LogError> {
        let seg = state
            .segments
            .get(at)
            .unwrap_or_else(|| unreachable!("the caller found the segment"));
        let (start, limit, hw) = (plan.start, plan.limit, plan.hw);
        let budget_end = start.saturating_add(max_bytes);
        let mut from_index = None;
        let (end, end_offset) = if limit - start <= max_bytes {
            (limit, plan.limit_offset)
        } else if let Some(end) = seg.tail_end_within(start, budget_end) {
            end
        } else if let Some(w) = walked {
            w
        } else {
            match seg.offset_index().floor_by_position(budget_end) {
                Some(e) if u64::from(e.position) > start && e.offset > plan.first => {
                    let end = (e.position.into(), e.offset);
                    from_index = Some(end);
                    end
                }
                _ => return Ok(None),
            }
        };
        let later: u64 = state
            .segments
            .iter()
            .filter(|s| s.base_offset() > seg.base_offset() && s.base_offset() <= hw.segment_base)
            .map(|s| {
                if s.base_offset() == hw.segment_base {
                    hw.position
                } else {
                    s.size()
                }
            })
            .sum();
        let mut slice = slice.clone();
        slice.bytes_after = (limit - end) + later;
        slice.file = Some(seg.file()?);
        slice.position = start;
        slice.len = end - start;
        slice.first_offset = plan.first;
        slice.next_offset = end_offset;
        Ok(Some((slice, from_index)))
    }

    /// The end readers may see.
    pub(crate) fn visible_end(&self, state: &LogState) -> LogPoint {
        if let Some(hw) = state.external_hw {
            return hw;
        }
        if self.config.flush == FlushPolicy::BeforeAck {
            state.durable
        } else {
            state.end
        }
    }

    /// The first visible record with the largest timestamp of the visible
    /// records (Kafka's ListOffsets `-3`), or `None` when no record is
    /// visible. Sealed segments and a wholly visible active segment know
    /// their largest timestamp; a segment the high watermark cuts takes it
    /// from its time index up to the last offset index point below the
    /// high watermark and scans the batch headers from there (at most about
    /// one index interval); a segment the log start offset cuts (records
    /// deleted inside it) scans its batch headers from the index point at
    /// or before the start, and reads the records of the batch the start
    /// cuts (its records below the start do not count). The record is then found as
    /// [`PartitionLog::offset_for_timestamp`] finds one.
    pub fn max_timestamp_record(&self) -> Result<Option<TimestampMatch>, LogError> {
        // Under the lock: the largest timestamps segments know, and the
        // byte ranges whose batch headers must be read instead (no I/O).
        let (mut best, start, ranges) = {
            let mut state = self.state.lock();
            let hw = self.visible_end(&state);
            let start = self.log_start_offset();
            let mut best: Option<i64> = None;
            let mut ranges = Vec::new();
            let mut touched = Vec::new();
            for seg in &state.segments {
                if seg.base_offset() > hw.segment_base {
                    break;
                }
                if seg.next_offset() <= start {
                    continue;
                }
                let last = seg.base_offset() >= hw.segment_base;
                let cut_at_end = last && hw.position < seg.size();
                let cut_at_start = seg.base_offset() < start;
                if !cut_at_start && !cut_at_end {
                    best = best.max(seg.max_timestamp());
                } else {
                    // From the index point at or before the log start (or
                    // the segment's start); up to the high watermark, whose
                    // prefix the time index covers when the start does not
                    // cut this segment.
                    let from = if cut_at_start {
                        seg.offset_index().lookup(start)
                    } else {
                        let entry = seg.offset_index().lookup(hw.offset);
                        best = best.max(
                            seg.time_index()
                                .last_at_or_before(entry.offset)
                                .map(|e| e.timestamp),
                        );
                        entry
                    };
                    let to = if last { hw.position } else { seg.size() };
                    ranges.push((seg.file()?, seg.base_offset(), from, to));
                    if seg.is_sealed() {
                        touched.push(seg.base_offset());
                    }
                }
                if last {
                    break;
                }
            }
            // Listed, so that their opened files are released in turn.
            for base in touched {
                state.touch_sealed(base);
            }
            (best, start, ranges)
        };
        for (file, base, from, limit) in ranges {
            let mut position = self.scan_start(&*file, base, from, limit)?;
            while position < limit {
                let h = super::segment::read_header(&*file, position, limit)
                    .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                let Some(h) = h else {
                    break;
                };
                if (h.base_offset as u64) >= start {
                    best = best.max(Some(h.max_timestamp));
                } else if h.next_offset() as u64 > start {
                    // The batch the start cuts: only its records at or past
                    // the start count.
                    best = best.max(max_timestamp_from(
                        &*file,
                        position,
                        &h,
                        start,
                        self.config.max_decompressed_batch_bytes,
                    ));
                }
                position += h.total_len() as u64;
            }
        }
        match best {
            Some(t) => self.offset_for_timestamp(t),
            None => Ok(None),
        }
    }

    /// The first visible record whose timestamp is `>= timestamp`, or
    /// `None` when every visible record is older (records below the log
    /// start offset are not visible). Uses the time index to
    /// skip, scans batch headers to the first batch whose largest timestamp
    /// reaches `timestamp`, then reads that batch's records (see
    /// [`super::time_lookup::first_record_at_or_after`]).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampMatch>, LogError> {
        // Under the lock: the candidate segments, from their in-memory
        // largest timestamps (no I/O, no file opened: for an old timestamp
        // that is every segment, and the first almost always answers).
        let (hw, start, candidates) = {
            let state = self.state.lock();
            let hw = self.visible_end(&state);
            let start = self.log_start_offset();
            let mut candidates = Vec::new();
            for seg in &state.segments {
                if seg.base_offset() > hw.segment_base {
                    break;
                }
                if seg.max_timestamp().is_none_or(|m| m < timestamp) || seg.next_offset() <= start {
                    continue;
                }
                candidates.push(seg.base_offset());
                if seg.base_offset() >= hw.segment_base {
                    break;
                }
            }
            (hw, start, candidates)
        };
        for base in candidates {
            // Under the lock, one candidate at a time: listed, then its
            // indexes and file opened; its headers are read without it.
            let (file, entry, limit) = {
                let mut state = self.state.lock();
                let at = state.segment_index(base);
                if state
                    .segments
                    .get(at)
                    .is_none_or(|s| s.base_offset() != base)
                {
                    continue; // deleted by retention meanwhile
                }
                state.touch_sealed_at(at);
                let Some(seg) = state.segments.get(at) else {
                    continue;
                };
                let from = seg.time_index().lookup(timestamp);
                let entry = seg.offset_index().lookup(from);
                let limit = if base == hw.segment_base {
                    hw.position
                } else {
                    seg.size()
                };
                (seg.file()?, entry, limit)
            };
            let mut position = self.scan_start(&*file, base, entry, limit)?;
            while position < limit {
                let h = super::segment::read_header(&*file, position, limit)
                    .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                let Some(h) = h else {
                    break;
                };
                if h.max_timestamp >= timestamp && h.next_offset() as u64 > start {
                    if h.base_offset as u64 >= hw.offset {
                        return Ok(None);
                    }
                    let found = first_record_at_or_after(
                        &*file,
                        position,
                        &h,
                        timestamp,
                        start,
                        self.config.max_decompressed_batch_bytes,
                    );
                    if let Some(found) = found {
                        return Ok((found.offset < hw.offset).then_some(found));
                    }
                }
                position += h.total_len() as u64;
            }
        }
        Ok(None)
    }
}

/// The index of `plan`'s segment in `state`, if it is still there and the
/// log was not cut since the plan was made; else the read must be resolved
/// again.
fn planned_segment(state: &LogState, plan: &ReadPlan) -> Option<usize> {
    let at = state.segment_index(plan.segment_base);
    let same = state
        .segments
        .get(at)
        .is_some_and(|s| s.base_offset() == plan.segment_base);
    (same && state.epoch == plan.epoch).then_some(at)
}

/// The header of the batch that should start at byte `position` of `file`
/// (data up to `limit`, a batch boundary) with offset `expected`:
/// `Ok(None)` at or past `limit`, the inner `Err` when the bytes there are
/// no batch header (also one that would run past `limit`) or one that
/// starts elsewhere ([`check_base`]).
fn checked_header(
    file: &dyn LogFile,
    position: u64,
    expected: u64,
    limit: u64,
) -> std::io::Result<Result<Option<sluice_protocol::batch::BatchHeader>, String>> {
    Ok(
        super::segment::read_batch_header(file, position, limit)?.and_then(|h| match h {
            Some(h) => check_base(position, expected, &h).map(|()| Some(h)),
            None if position < limit => Err(format!(
                "no whole batch header fits between byte {position} and the data's end at byte {limit}"
            )),
            None => Ok(None),
        }),
    )
}

/// From the batch boundary `(position, base offset)` `from` of `file`, the
/// boundary of the batch that holds `offset` (or of the last batch that
/// starts before `limit`), reading every header on the way, the first
/// included, and checking that each is a batch header starting where the
/// one before it ended ([`check_base`]): the inner `Err` is the damage
/// found. `from` may come from an index file, which is not trusted to
/// point at a batch.
fn walk_to_offset(
    file: &dyn LogFile,
    from: (u64, u64),
    offset: u64,
    limit: u64,
) -> std::io::Result<Result<(u64, u64), String>> {
    let (mut start, mut first) = from;
    loop {
        let h = match checked_header(file, start, first, limit)? {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(reason) => return Ok(Err(reason)),
        };
        let next = start + h.total_len() as u64;
        if h.last_offset() as u64 >= offset || next >= limit {
            break;
        }
        start = next;
        first = h.next_offset() as u64;
    }
    Ok(Ok((start, first)))
}

/// The end of the batches from the boundary `plan.start` that fit in
/// `max_bytes` (at least the first batch, whole: KIP-74), within
/// `plan.limit`: its byte position and the offset after it. Reads batch
/// headers only, at most until the budget is spent. The data's end ends
/// the walk (at the limit if no batch was read); bytes that are no batch
/// header, or a batch that does not start where the one before it ended
/// ([`check_base`]), are the inner `Err`.
fn walk_to_budget(
    file: &dyn LogFile,
    plan: &ReadPlan,
    max_bytes: u64,
) -> std::io::Result<Result<(u64, u64), String>> {
    let budget_end = plan.start.saturating_add(max_bytes);
    let (mut end, mut end_offset) = (plan.start, plan.first);
    while end < plan.limit {
        let h = match checked_header(file, end, end_offset, plan.limit)? {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(reason) => return Ok(Err(reason)),
        };
        let next = end + h.total_len() as u64;
        if next > plan.limit || (end > plan.start && next > budget_end) {
            break;
        }
        end = next;
        end_offset = h.next_offset() as u64;
    }
    if end == plan.start {
        return Ok(Ok((plan.limit, plan.limit_offset)));
    }
    Ok(Ok((end, end_offset)))
}

/// A batch header read at byte `position` where the batch starting at
/// offset `expected` lies (a partition's offsets run on from batch to
/// batch): anything else is damage that no CRC covers (the base offset
/// lies outside it), to be refused rather than served, since a consumer
/// would take its records for offsets the log never had. The reason, if
/// so.
fn check_base(
    position: u64,
    expected: u64,
    header: &sluice_protocol::batch::BatchHeader,
) -> Result<(), String> {
    if header.base_offset as u64 == expected {
        return Ok(());
    }
    Err(format!(
        "the batch at byte {position} starts at offset {}, where offset {expected} was expected",
        header.base_offset
    ))
}
