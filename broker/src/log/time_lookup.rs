//! The record a timestamp look-up answers with, found inside the first
//! batch whose largest timestamp reaches the asked time.
//!
//! Kafka answers ListOffsets by timestamp with the first *record* whose
//! timestamp is at or after the asked time, and that record's timestamp;
//! a batch holds records of many times (a producer's linger), so the
//! batch's base offset alone would hand a consumer that seeks there records
//! older than it asked for.

use bytes::Bytes;
use sluice_protocol::batch::{BatchHeader, RecordBatch};

use super::io::{LogFile, read_full_at};

/// A record found by its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampMatch {
    /// The record's offset.
    pub offset: u64,
    /// The record's timestamp (the batch's log append time for a
    /// `LogAppendTime` batch).
    pub timestamp: i64,
    /// The partition leader epoch stamped in the record's batch.
    pub leader_epoch: i32,
}

/// Whether reading the records of the batch with header `h` decompresses
/// them (and so takes a decompression slot first).
fn needs_slot(h: &BatchHeader) -> bool {
    h.compression() != sluice_protocol::batch::Compression::None
}

/// Whether the batch of header `h` at `position` ends within `file`: a
/// damaged header (its length is read, not checked) never sizes a buffer
/// past the file's own bytes.
fn within_file(file: &dyn LogFile, position: u64, h: &BatchHeader) -> bool {
    file.len()
        .is_ok_and(|len| position.saturating_add(h.total_len() as u64) <= len)
}

/// The first record of the batch at `position` of `file` (header `h`,
/// whose `max_timestamp` is at least `timestamp`) whose timestamp is at
/// least `timestamp` and whose offset is at least `from` (the log start
/// offset: records below it were deleted), or `None` when only records
/// below `from` qualify.
///
/// Reads and checks the whole batch (a compressed batch is decompressed,
/// to at most `max_decompressed` bytes). A batch that does not read back,
/// does not check, or holds no such record although its header says so
/// answers with its base offset (at least `from`) and its largest
/// timestamp: the look-up then errs on the early side, as it did before
/// records were read, and never fails a ListOffsets for it.
pub(crate) fn first_record_at_or_after(
    file: &dyn LogFile,
    position: u64,
    h: &BatchHeader,
    timestamp: i64,
    from: u64,
    max_decompressed: usize,
) -> Option<TimestampMatch> {
    let base = u64::try_from(h.base_offset).unwrap_or(0);
    let fallback = TimestampMatch {
        offset: base.max(from),
        timestamp: h.max_timestamp,
        leader_epoch: h.partition_leader_epoch,
    };
    if !within_file(file, position, h) {
        return Some(fallback);
    }
    let mut buf = vec![0u8; h.total_len()];
    match read_full_at(file, &mut buf, position) {
        Ok(n) if n == buf.len() => {}
        _ => return Some(fallback),
    }
    let Ok(batch) = RecordBatch::new(Bytes::from(buf)) else {
        return Some(fallback);
    };
    let _slot = needs_slot(h).then(super::decompression::enter);
    let mut cut = false;
    for record in batch.records_limited(max_decompressed) {
        let Ok(record) = record else {
            return Some(fallback);
        };
        if record.timestamp >= timestamp {
            let offset = u64::try_from(record.offset).unwrap_or(fallback.offset);
            if offset < from {
                cut = true;
                continue;
            }
            return Some(TimestampMatch {
                offset,
                timestamp: record.timestamp,
                leader_epoch: h.partition_leader_epoch,
            });
        }
    }
    // Only deleted records qualify: the look-up goes on past this batch.
    (!cut).then_some(fallback)
}

/// The largest timestamp of the records of the batch at `position` of
/// `file` (header `h`) whose offset is at least `from`, or `None` when it
/// has none; a batch that does not read back or check answers its
/// header's largest timestamp (a compressed batch is decompressed, to at
/// most `max_decompressed` bytes).
pub(crate) fn max_timestamp_from(
    file: &dyn LogFile,
    position: u64,
    h: &BatchHeader,
    from: u64,
    max_decompressed: usize,
) -> Option<i64> {
    if !within_file(file, position, h) {
        return Some(h.max_timestamp);
    }
    let mut buf = vec![0u8; h.total_len()];
    match read_full_at(file, &mut buf, position) {
        Ok(n) if n == buf.len() => {}
        _ => return Some(h.max_timestamp),
    }
    let Ok(batch) = RecordBatch::new(Bytes::from(buf)) else {
        return Some(h.max_timestamp);
    };
    let _slot = needs_slot(h).then(super::decompression::enter);
    let mut best = None;
    for record in batch.records_limited(max_decompressed) {
        let Ok(record) = record else {
            return Some(h.max_timestamp);
        };
        if u64::try_from(record.offset).is_ok_and(|o| o >= from) {
            best = best.max(Some(record.timestamp));
        }
    }
    best
}
