//! [`PartitionLog`]: the ordered segments of one partition, with append, read
//! and lookups. Flushing lives in `flush.rs`, opening and recovery in
//! `recovery.rs`, retention in `retention.rs`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, MutexGuard};
use sluice_protocol::batch;

use super::LogError;
use super::config::{FlushPolicy, LogConfig};
use super::io::{FileSystem, LogFile, write_all_at};
use super::producers::IdempotentBatch;
use super::segment::{IDLE_SEALED_PASSES, MAX_OPEN_SEALED_SEGMENTS, Segment};
use super::time_lookup::{TimestampMatch, first_record_at_or_after};
use crate::producer::state::{BatchIdentity, ProducerStates};

/// A place in the log: an offset and the byte where its batch starts (or
/// where the next batch will start) in the segment that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPoint {
    pub(crate) offset: u64,
    pub(crate) segment_base: u64,
    pub(crate) position: u64,
}

/// Mutable state, under the log's lock.
#[derive(Debug)]
pub(crate) struct LogState {
    /// Segments in offset order; the last one is active. Never empty.
    pub(crate) segments: VecDeque<Segment>,
    /// End of the last whole batch written.
    pub(crate) end: LogPoint,
    /// End of the data known to be durable (the recovery point).
    pub(crate) durable: LogPoint,
    /// Recovery point last written to the checkpoint file.
    pub(crate) checkpointed: u64,
    /// Count of segment files created in the directory so far.
    pub(crate) dir_changes: u64,
    /// Value of `dir_changes` at the last directory sync.
    pub(crate) dir_synced: u64,
    /// When data was last flushed (for [`FlushPolicy::Interval`]).
    pub(crate) last_flush: SystemTime,
    /// Why the log went offline, if it did.
    pub(crate) offline: Option<String>,
    /// A clean shutdown started: appends are refused.
    pub(crate) closing: bool,
    /// Sealed segments whose handles may be open, least recently read
    /// first (at most [`MAX_OPEN_SEALED_SEGMENTS`]): base offset and the
    /// value of `maintain_passes` at the last read.
    pub(crate) open_sealed: VecDeque<(u64, u64)>,
    /// Count of `maintain` passes so far (the clock of idle release).
    pub(crate) maintain_passes: u64,
    /// Appends that reserved their offsets and bytes but have not published
    /// them yet (their `pwrite` runs outside the lock).
    pub(crate) pending: Pending,
    /// Bumped whenever published data is cut off (truncation), so a reader
    /// that read headers without the lock resolves its read again.
    pub(crate) epoch: u64,
    /// The high watermark set from outside the log
    /// ([`PartitionLog::set_high_watermark`]); `None` while the log sets it
    /// itself.
    pub(crate) external_hw: Option<LogPoint>,
    /// Idempotent producers' last batches, as of the reserved end (appends
    /// in flight included; rolled back with them if their write fails).
    pub(crate) producers: ProducerStates,
    /// The producer table as of the last roll (its base offset and encoded
    /// snapshot), not yet written: the append that rolled may run on a
    /// reactor thread, so the file (written and fsynced) is left to the
    /// next maintenance pass or retention run
    /// ([`PartitionLog::write_pending_producer_snapshot`]).
    pub(crate) pending_snapshot: Option<(u64, Vec<u8>)>,
}

/// Appends in flight: reserved beyond [`LogState::end`], written outside the
/// lock, published strictly in reservation order.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Offsets reserved beyond `end`.
    pub(crate) offsets: u64,
    /// Bytes reserved beyond the active segment's size.
    pub(crate) bytes: u64,
    /// Ticket the next reservation gets.
    pub(crate) next_ticket: u64,
    /// Tickets below this were published (or failed).
    pub(crate) published: u64,
    /// Set when an in-flight write failed: every later in-flight append fails
    /// too, and the last one truncates the file back to the published end.
    pub(crate) failed: Option<String>,
}

impl Pending {
    /// Whether no append is between reservation and publication.
    pub(crate) fn is_idle(&self) -> bool {
        self.published == self.next_ticket
    }
}

impl LogState {
    /// Index of the segment holding `offset`: the last one whose base offset
    /// is `<= offset`.
    pub(crate) fn segment_index(&self, offset: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// Records a read of the sealed segment at `base` and releases the least
    /// recently read sealed segments beyond [`MAX_OPEN_SEALED_SEGMENTS`], so
    /// descriptors and index mappings do not grow with retained history.
    pub(crate) fn touch_sealed(&mut self, base: u64) {
        let now = self.maintain_passes;
        if let Some(last) = self.open_sealed.back_mut().filter(|(b, _)| *b == base) {
            last.1 = now;
            return;
        }
        self.open_sealed.retain(|&(b, _)| b != base);
        self.open_sealed.push_back((base, now));
        self.trim_open_sealed();
    }

    /// Counts a `maintain` pass and releases the sealed segments not read
    /// for [`IDLE_SEALED_PASSES`] passes (once durable), so idle history
    /// holds no descriptors or maps at all.
    pub(crate) fn release_idle_sealed(&mut self) {
        self.maintain_passes += 1;
        let now = self.maintain_passes;
        let durable = self.durable.offset;
        let segments = &self.segments;
        self.open_sealed.retain(|&(base, read)| {
            if read + IDLE_SEALED_PASSES > now {
                return true;
            }
            let i = segments
                .partition_point(|s| s.base_offset() <= base)
                .saturating_sub(1);
            match segments.get(i).filter(|s| s.base_offset() == base) {
                Some(s) if s.next_offset() > durable => true,
                Some(s) => {
                    s.release();
                    false
                }
                None => false,
            }
        });
    }

    /// Releases the least recently read sealed segments beyond
    /// [`MAX_OPEN_SEALED_SEGMENTS`] (after a read, and after a flush made
    /// more of them durable).
    pub(crate) fn trim_open_sealed(&mut self) {
        // Oldest first; a segment not yet durable keeps its `.log` handle
        // until a flush covered it (so a writeback error reaches the
        // `fdatasync` on the descriptor that wrote), and is released later.
        let mut i = 0;
        // The most recently read one (last) is never released here.
        while self.open_sealed.len() > MAX_OPEN_SEALED_SEGMENTS {
            if i + 1 >= self.open_sealed.len() {
                break;
            }
            let Some(&(old, _)) = self.open_sealed.get(i) else {
                break;
            };
            let seg = self
                .segments
                .get(self.segment_index(old))
                .filter(|s| s.base_offset() == old);
            match seg {
                Some(s) if s.next_offset() > self.durable.offset => i += 1,
                Some(s) => {
                    s.release();
                    self.open_sealed.remove(i);
                }
                None => {
                    self.open_sealed.remove(i); // deleted by retention
                }
            }
        }
    }

    pub(crate) fn active(&self) -> &Segment {
        // The deque is never empty (see the field's invariant).
        self.segments
            .back()
            .unwrap_or_else(|| unreachable!("a partition log always has an active segment"))
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .unwrap_or_else(|| unreachable!("a partition log always has an active segment"))
    }
}

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

/// The append-only log of one partition.
///
/// Thread-safe. An append reserves its offsets and file range under a short
/// internal lock, writes (`pwrite`) without it, and publishes (indexes, log
/// end, high watermark) under the lock again, strictly in reservation
/// order: an append that finishes early waits for the earlier ones, so
/// readers only ever see a contiguous log. Reads take the lock only to
/// resolve an offset to a file range from memory; batch headers are read
/// without it. The state lock is never held across a `pwrite`, `pread`,
/// `fdatasync` or synchronous `msync`; only the flush lock, which readers
/// and appends never take, is held across the `fdatasync` of a group commit
/// (and across a truncation).
/// Offsets are contiguous from [`PartitionLog::log_start_offset`] to
/// [`PartitionLog::next_offset`]; readers never see past
/// [`PartitionLog::high_watermark`].
#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) config: LogConfig,
    pub(crate) state: Mutex<LogState>,
    /// Signalled (with `state`) whenever an in-flight append published or
    /// failed, so the next one in order, a roll or a truncation can go on.
    pub(crate) turn: Condvar,
    /// Held by the one caller doing an `fdatasync`; others wait and usually
    /// find their data covered (group commit).
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) high_watermark: AtomicU64,
    pub(crate) recovery_point: AtomicU64,
    pub(crate) log_start: AtomicU64,
    pub(crate) next_offset: AtomicU64,
}

/// Which checks an append runs besides validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendMode {
    /// Assigns offsets; checks timestamps and idempotent producers.
    Leader,
    /// Keeps the given offsets; checks timestamps, trusts the leader's
    /// producer checks.
    Follower,
    /// Keeps the given offsets; checks idempotent producers (the same
    /// decision on every replica) but not timestamps (clock-dependent).
    Replica,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The log's next offset after this append; pass it to
    /// [`PartitionLog::flush_to`] to make the append durable.
    pub next_offset: u64,
    /// Largest record timestamp of the appended batches.
    pub max_timestamp: i64,
    /// Number of record batches appended.
    pub batches: u32,
    /// Whether this append started a new segment.
    pub rolled: bool,
    /// Whether every batch was a retry of batches already appended by the
    /// same idempotent producer: nothing was written, and the offsets are
    /// the original ones (already published, maybe not yet durable).
    pub duplicate: bool,
}

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
    /// The most offsets (records) one [`PartitionLog::append`] may take. Below
    /// `u32::MAX`, so an append always fits the 32-bit relative offsets of
    /// one segment; far above what one request frame can carry (a record is
    /// at least 7 bytes).
    pub const MAX_APPEND_OFFSETS: u64 = i32::MAX as u64;

    /// The most bytes one [`PartitionLog::append`] may hold, so every batch
    /// position in a segment fits the index's 32-bit positions.
    pub const MAX_APPEND_BYTES: u64 = u32::MAX as u64;

    /// The largest value [`PartitionLog::next_offset`] may reach:
    /// `i64::MAX - 2^32`. Appends that would pass it are refused with
    /// [`LogError::OffsetSpaceExhausted`], so every stored offset, and every
    /// `baseOffset + lastOffsetDelta + 1` of a stored batch, is a valid
    /// non-negative `i64`.
    pub const OFFSET_CEILING: u64 = i64::MAX as u64 - (1 << 32);

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset still held (retention moves it forward).
    pub fn log_start_offset(&self) -> u64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Offset the next appended record will get.
    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// One past the last offset readers may see: the end of the last whole
    /// batch, or with [`FlushPolicy::BeforeAck`] of the last flushed one.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Every offset below this was durable on disk at the last flush.
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    /// Total bytes of record batches held.
    pub fn size_in_bytes(&self) -> u64 {
        self.state.lock().segments.iter().map(Segment::size).sum()
    }

    /// Whether the log refuses writes after a failed flush (see
    /// [`LogError::Offline`]).
    pub fn is_offline(&self) -> bool {
        self.state.lock().offline.is_some()
    }

    /// Whether an append is between reservation and publication (or a failed
    /// one is being rolled back). A new append would wait for it before it is
    /// published, so callers that must not block (a reactor thread) send
    /// their append elsewhere. Takes the log's lock briefly; no I/O.
    pub fn appends_in_flight(&self) -> bool {
        let state = self.state.lock();
        !state.pending.is_idle() || state.pending.failed.is_some()
    }

    pub(crate) fn offline_error(&self, reason: &str) -> LogError {
        LogError::Offline {
            dir: self.dir.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Appends one or more record batches (Kafka RecordBatch v2, back to
    /// back) to the log.
    ///
    /// Every batch is validated first; if any fails, nothing is written.
    /// A batch is refused unless:
    /// - it passes [`batch::validate_decompressing`] (header, CRC-32C, every
    ///   record walked, `lastOffsetDelta == recordCount - 1`; a compressed
    ///   batch's records are decompressed into a buffer of at most
    ///   [`LogConfig::max_decompressed_batch_bytes`] and walked the same way),
    ///   else [`LogError::InvalidBatch`]. The stored bytes are the bytes given,
    ///   compressed or not;
    /// - it holds at least one record, else [`LogError::EmptyBatch`];
    /// - its `maxTimestamp` is at most [`LogConfig::max_timestamp_ahead`]
    ///   ahead of the system clock, else [`LogError::TimestampTooFarAhead`].
    ///
    /// The append as a whole takes exactly the sum of its batches' record
    /// counts in offsets, at most [`PartitionLog::MAX_APPEND_OFFSETS`] of them
    /// in at most [`PartitionLog::MAX_APPEND_BYTES`] bytes
    /// ([`LogError::AppendTooLarge`]), and may not take the log past
    /// [`PartitionLog::OFFSET_CEILING`] ([`LogError::OffsetSpaceExhausted`]).
    /// If the active segment's 32-bit relative offsets cannot hold every
    /// batch of the append, the log rolls first, so the whole append lands in
    /// one segment whose range holds it.
    ///
    /// Offsets are then assigned by rewriting each batch's `baseOffset` in
    /// `batches` in place (no re-encoding, the CRC does not cover it), and
    /// the bytes are written with one positional write.
    /// On return the data is in the page cache: it survives a crash of this
    /// process. Make it durable with [`PartitionLog::flush_to`].
    ///
    /// A failed write (disk full, EIO) is rolled back and reported; the log
    /// stays consistent and accepts later appends.
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        self.append_capped(batches, Self::MAX_APPEND_OFFSETS)
    }

    /// [`PartitionLog::append`] with `max_offsets` in place of
    /// [`PartitionLog::MAX_APPEND_OFFSETS`] (which no test can reach with
    /// real records).
    pub(crate) fn append_capped(
        &self,
        batches: &mut [u8],
        max_offsets: u64,
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(batches, max_offsets, None, AppendMode::Leader)
    }

    /// A follower's append: stores `batches` with the offsets they carry.
    ///
    /// The same checks as [`PartitionLog::append`], and in addition the
    /// first batch must start at `expected_base`, which must be the log end
    /// ([`PartitionLog::next_offset`] once the appends in flight are
    /// published), and each further batch where the one before it ends;
    /// otherwise [`LogError::BaseOffsetMismatch`] and nothing is written.
    /// The batches are not changed (their `baseOffset` is kept).
    pub fn append_at(
        &self,
        expected_base: u64,
        batches: &mut [u8],
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(
            batches,
            Self::MAX_APPEND_OFFSETS,
            Some(expected_base),
            AppendMode::Follower,
        )
    }

    /// A Raft replica's append: [`PartitionLog::append_at`], but without the
    /// [`LogConfig::max_timestamp_ahead`] check, which depends on this
    /// broker's clock (the leader checks the timestamps once, with
    /// [`PartitionLog::check_timestamps`]), and with the idempotent
    /// producer checks of [`PartitionLog::append`]: every replica holds
    /// the same producer state, so all decide alike. A retried batch is
    /// answered with its original offsets (`duplicate`) and not written.
    pub fn append_replica(
        &self,
        expected_base: u64,
        batches: &mut [u8],
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(
            batches,
            Self::MAX_APPEND_OFFSETS,
            Some(expected_base),
            AppendMode::Replica,
        )
    }

    fn append_inner(
        &self,
        batches: &mut [u8],
        max_offsets: u64,
        expected_base: Option<u64>,
        mode: AppendMode,
    ) -> Result<AppendInfo, LogError> {
        let now = SystemTime::now();
        let now_ms = unix_millis(now);
        let ahead_ms = self
            .config
            .max_timestamp_ahead
            .filter(|_| mode != AppendMode::Replica)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let bytes = batches.len() as u64;
        let too_large = |offsets: u64| LogError::AppendTooLarge {
            offsets,
            bytes,
            max_offsets,
            max_bytes: Self::MAX_APPEND_BYTES,
        };
        if bytes > Self::MAX_APPEND_BYTES {
            return Err(too_large(0));
        }
        let mut count = 0u32;
        let mut offsets = 0u64;
        // Decompressed records of the batch being checked; allocated only
        // for a compressed batch.
        let mut scratch = Vec::new();
        let mut max_timestamp = i64::MIN;
        let mut at = 0usize;
        // Batches of idempotent producers; allocates only when there is one.
        let mut idempotent: Vec<IdempotentBatch> = Vec::new();
        while at < batches.len() {
            let rest = batches.get(at..).unwrap_or_default();
            let limit = self.config.max_decompressed_batch_bytes;
            let header =
                batch::validate_decompressing(rest, limit, &mut scratch).map_err(|source| {
                    LogError::InvalidBatch {
                        position: at,
                        source,
                    }
                })?;
            // `validate_decompressing` walked exactly `record_count` records
            // (decompressed first if compressed), with offset deltas 0.. and
            // `last_offset_delta == record_count - 1`.
            let records = u64::try_from(header.record_count).unwrap_or(0);
            if records == 0 {
                return Err(LogError::EmptyBatch { position: at });
            }
            if let Some(expected) = expected_base.map(|b| b.saturating_add(offsets)) {
                let found = u64::try_from(header.base_offset).unwrap_or(u64::MAX);
                if found != expected {
                    return Err(LogError::BaseOffsetMismatch {
                        position: at,
                        expected,
                        found,
                    });
                }
            }
            if let Some(ahead_ms) = ahead_ms {
                if header.max_timestamp > now_ms.saturating_add(ahead_ms) {
                    return Err(LogError::TimestampTooFarAhead {
                        position: at,
                        max_timestamp: header.max_timestamp,
                        now_ms,
                        ahead_ms,
                    });
                }
            }
            offsets = offsets
                .checked_add(records)
                .filter(|&o| o <= max_offsets)
                .ok_or_else(|| too_large(offsets.saturating_add(records)))?;
            if header.producer_id >= 0 {
                idempotent.push(IdempotentBatch {
                    position: at,
                    delta: offsets - records,
                    id: BatchIdentity {
                        producer_id: header.producer_id,
                        epoch: header.producer_epoch,
                        first_seq: header.base_sequence,
                        records: u32::try_from(records).unwrap_or(u32::MAX),
                    },
                });
            }
            max_timestamp = max_timestamp.max(header.max_timestamp);
            count += 1;
            at += header.total_len();
        }
        if count == 0 {
            return Err(LogError::EmptyAppend);
        }

        // Reserve offsets and the file range under the lock; write outside it.
        let mut state = self.state.lock();
        let (base_offset, end_offset, rolled) = loop {
            if let Some(reason) = &state.offline {
                return Err(self.offline_error(reason));
            }
            if state.closing {
                return Err(self.offline_error("the log is shutting down"));
            }
            if state.pending.failed.is_some() {
                // A write failed: the appends in flight fail and the last
                // one cuts the file back; start after that, not into it.
                self.turn.wait(&mut state);
                continue;
            }
            let base_offset = state.end.offset + state.pending.offsets;
            let end_offset = base_offset
                .checked_add(offsets)
                .filter(|&n| n <= Self::OFFSET_CEILING)
                .ok_or(LogError::OffsetSpaceExhausted {
                    next_offset: base_offset,
                    offsets,
                    ceiling: Self::OFFSET_CEILING,
                })?;
            if let Some(found) = expected_base.filter(|&b| b != base_offset) {
                return Err(LogError::BaseOffsetMismatch {
                    position: 0,
                    expected: base_offset,
                    found,
                });
            }
            if !idempotent.is_empty() && mode != AppendMode::Follower {
                match super::producers::check_append(&state.producers, &idempotent, count)? {
                    None => {}
                    // The original is still in flight: answer only once it
                    // is published (or, if its write failed, check again).
                    Some((_, last)) if last.last_offset >= state.end.offset => {
                        self.turn.wait(&mut state);
                        continue;
                    }
                    Some((first, last)) => {
                        return Ok(AppendInfo {
                            base_offset: first.first_offset,
                            last_offset: last.last_offset,
                            next_offset: last.last_offset + 1,
                            max_timestamp,
                            batches: count,
                            rolled: false,
                            duplicate: true,
                        });
                    }
                }
            }
            if !self.roll_needed(&state, bytes, offsets, now) {
                break (base_offset, end_offset, false);
            }
            // A roll seals the active segment: every write into it must
            // have published first.
            if !state.pending.is_idle() {
                self.turn.wait(&mut state);
                continue;
            }
            self.roll(&mut state)?;
            break (base_offset, end_offset, true);
        };
        // A roll seals everything below `base_offset`: keep the producer
        // table as of there, for the next maintenance pass to write (no
        // file I/O here, this may be a reactor thread).
        if rolled {
            let bytes = crate::producer::snapshot::encode(base_offset, &state.producers);
            state.pending_snapshot = Some((base_offset, bytes));
        }
        let file = state.active().file()?;
        super::producers::record_append(
            &mut state.producers,
            &idempotent,
            base_offset,
            &self.config,
            now_ms,
        );
        let ticket = state.pending.next_ticket;
        state.pending.next_ticket += 1;
        let position = state.active().size() + state.pending.bytes;
        let reserve = state.active_mut().reserve_blocks(
            position,
            position + bytes,
            self.config.segment_bytes,
        );
        state.pending.offsets += offsets;
        state.pending.bytes += bytes;
        drop(state);

        // Offsets are assigned in the caller's buffer: no lock needed (a
        // follower's append keeps the offsets it carries).
        let mut next = base_offset;
        let mut at = 0usize;
        while let Some(rest) = batches
            .get_mut(at..)
            .filter(|r| !r.is_empty() && expected_base.is_none())
        {
            // Both steps succeeded on these bytes in the validation pass.
            let Ok(header) = batch::BatchHeader::parse(rest) else {
                break;
            };
            // `next` stays at most `end_offset <= OFFSET_CEILING < i64::MAX`.
            let _ = batch::set_base_offset(rest, next as i64);
            next += u64::try_from(header.record_count).unwrap_or(0);
            at += header.total_len();
        }
        debug_assert!(
            next == end_offset || expected_base.is_some(),
            "second pass assigns what the first counted"
        );

        if let Some((at, len)) = reserve {
            // Advisory: where it fails (no such call, no space) the write
            // below allocates as usual, and reports a full disk itself.
            if let Err(e) = file.preallocate(at, len) {
                tracing::trace!(dir = %self.dir.display(), error = %e, "preallocate failed");
            }
        }
        let written = write_all_at(&*file, batches, position);
        drop(file);

        let mut state = self.state.lock();
        while state.pending.published != ticket {
            self.turn.wait(&mut state);
        }
        let result = self.publish(&mut state, batches, written, offsets, bytes, now);
        state.pending.published += 1;
        self.turn.notify_all();
        drop(state);
        result?;
        Ok(AppendInfo {
            base_offset,
            last_offset: end_offset - 1,
            next_offset: end_offset,
            max_timestamp,
            batches: count,
            rolled,
            duplicate: false,
        })
    }

    /// Publishes the in-flight append whose turn it is (every earlier one
    /// published or failed): indexes its batches and moves the log end and
    /// the high watermark. After a failed write (this one's or an earlier
    /// one's) nothing is published, and the last append in flight cuts the
    /// file back to the published end, or takes the log offline if it
    /// cannot.
    fn publish(
        &self,
        state: &mut MutexGuard<'_, LogState>,
        batches: &[u8],
        written: std::io::Result<()>,
        offsets: u64,
        bytes: u64,
        now: SystemTime,
    ) -> Result<(), LogError> {
        state.pending.offsets -= offsets;
        state.pending.bytes -= bytes;
        let error = match written {
            Err(e) => {
                let reason = e.to_string();
                state.pending.failed.get_or_insert(reason);
                Some(LogError::io("append to", state.active().log_path(), e))
            }
            Ok(()) => state.pending.failed.as_ref().map(|reason| {
                LogError::io(
                    "append to",
                    state.active().log_path(),
                    std::io::Error::other(format!("an earlier append failed: {reason}")),
                )
            }),
        };
        let Some(error) = error else {
            let config = &self.config;
            let active = state.active_mut();
            active.commit_write(batches, config, now);
            let end = LogPoint {
                offset: active.next_offset(),
                segment_base: active.base_offset(),
                position: active.size(),
            };
            state.end = end;
            self.next_offset.store(end.offset, Ordering::Release);
            if self.config.flush != FlushPolicy::BeforeAck && state.external_hw.is_none() {
                self.high_watermark.store(end.offset, Ordering::Release);
            }
            return Ok(());
        };
        if state.pending.offsets == 0 {
            // The last append in flight: no later write lies beyond the
            // published end any more.
            state.pending.failed = None;
            let end = state.end.offset;
            state.producers.truncate_to(end);
            if let Err(rollback) = state.active_mut().roll_back() {
                let reason = format!(
                    "append failed ({error}) and truncating back failed ({rollback}); the segment tail is unknown"
                );
                tracing::error!(dir = %self.dir.display(), %reason);
                state.offline = Some(reason.clone());
                return Err(self.offline_error(&reason));
            }
        }
        Err(error)
    }

    /// Whether the active segment is full (by size, age, index, or
    /// relative-offset range) for an append of `bytes` and `records` after
    /// the appends in flight.
    fn roll_needed(&self, state: &LogState, bytes: u64, records: u64, now: SystemTime) -> bool {
        let active = state.active();
        let size = active.size() + state.pending.bytes;
        if size == 0 {
            return false;
        }
        let by_size = size + bytes > self.config.segment_bytes;
        let by_age = match (self.config.segment_age, active.first_append()) {
            (Some(age), Some(first)) => now.duration_since(first).is_ok_and(|d| d >= age),
            _ => false,
        };
        // Offsets of the append run from the reserved end to `records` past
        // it (exclusive), its last batch ending there; if that end is beyond
        // the segment's 32-bit relative offsets, so is the last batch, and
        // the append goes to a new segment (it fits one: MAX_APPEND_OFFSETS).
        let end = state.end.offset + state.pending.offsets;
        let by_offsets = end - active.base_offset() + records > u64::from(u32::MAX);
        by_size || by_age || by_offsets || active.indexes_full()
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(crate) fn roll(&self, state: &mut LogState) -> Result<(), LogError> {
        let base = state.end.offset;
        let new = Segment::create(&self.fs, &self.dir, base, &self.config)?;
        // Nothing is in flight (the caller waited), so the file ends at the
        // segment's size. Releasing is a saving of disk space only.
        if let Err(e) = state.active_mut().release_reserved() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not release reserved disk blocks");
        }
        if let Err(e) = state.active_mut().seal() {
            let _ = new.delete(&*self.fs);
            return Err(e);
        }
        let sealed = state.active().base_offset();
        state.segments.push_back(new);
        state.touch_sealed(sealed);
        state.dir_changes += 1;
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled segment");
        Ok(())
    }

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
        let (mut slice, plan, file) = {
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
            if let Some(base) = state
                .segments
                .get(at)
                .filter(|s| s.is_sealed())
                .map(Segment::base_offset)
            {
                state.touch_sealed(base);
            }
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
            let (start, first, holds) = seg.batch_start_at_or_before(offset);
            let plan = ReadPlan {
                segment_base: seg.base_offset(),
                epoch: state.epoch,
                hw,
                limit,
                limit_offset,
                start,
                first,
            };
            if holds {
                // A reader continuing from a previous slice, or tailing the
                // active segment: no header walk.
                let s = Self::finish_read(&state, at, &plan, max_bytes, slice)?;
                return Ok(Some(s));
            }
            (slice, plan, seg.file()?)
        };
        // Without the lock: walk batch headers forward to the batch that
        // holds `offset`.
        let (mut start, mut first) = (plan.start, plan.first);
        while first < offset {
            let h = super::segment::read_header(&*file, start, plan.limit)
                .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
            let Some(h) = h else {
                break;
            };
            if h.last_offset() as u64 >= offset || start + h.total_len() as u64 >= plan.limit {
                break;
            }
            start += h.total_len() as u64;
            first = h.next_offset() as u64;
        }
        let state = self.state.lock();
        let at = state.segment_index(plan.segment_base);
        let same = state
            .segments
            .get(at)
            .is_some_and(|s| s.base_offset() == plan.segment_base);
        if !same || state.epoch != plan.epoch {
            return Ok(None);
        }
        slice.first_offset = first;
        let plan = ReadPlan {
            start,
            first,
            ..plan
        };
        Self::finish_read(&state, at, &plan, max_bytes, slice).map(Some)
    }

    /// The end of a read that starts at the batch boundary `plan.start`:
    /// everything up to the limit if it fits, else the last indexed batch
    /// boundary within the budget, else the first one after it.
    fn finish_read(
        state: &LogState,
        at: usize,
        plan: &ReadPlan,
        max_bytes: u64,
        mut slice: LogSlice,
    ) -> Result<LogSlice, LogError> {
        let seg = state
            .segments
            .get(at)
            .unwrap_or_else(|| unreachable!("the caller found the segment"));
        let (start, limit, hw) = (plan.start, plan.limit, plan.hw);
        let (end, end_offset) = if limit - start <= max_bytes {
            (limit, plan.limit_offset)
        } else {
            let idx = seg.offset_index();
            match idx.floor_by_position(start.saturating_add(max_bytes)) {
                Some(e) if u64::from(e.position) > start => (e.position.into(), e.offset),
                _ => match idx.ceil_after_position(start) {
                    Some(e) if u64::from(e.position) <= limit => (e.position.into(), e.offset),
                    _ => (limit, plan.limit_offset),
                },
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
        slice.bytes_after = (limit - end) + later;
        slice.file = Some(seg.file()?);
        slice.position = start;
        slice.len = end - start;
        slice.first_offset = plan.first;
        slice.next_offset = end_offset;
        Ok(slice)
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
    /// one index interval). The record is then found as
    /// [`PartitionLog::offset_for_timestamp`] finds one.
    pub fn max_timestamp_record(&self) -> Result<Option<TimestampMatch>, LogError> {
        let (mut best, partial) = {
            let state = self.state.lock();
            let hw = self.visible_end(&state);
            let mut best: Option<i64> = None;
            let mut partial = None;
            for seg in &state.segments {
                if seg.base_offset() > hw.segment_base {
                    break;
                }
                let whole = seg.base_offset() < hw.segment_base || hw.position >= seg.size();
                if whole {
                    best = best.max(seg.max_timestamp());
                } else {
                    let entry = seg.offset_index().lookup(hw.offset);
                    let prefix = seg
                        .time_index()
                        .last_at_or_before(entry.offset)
                        .map(|e| e.timestamp);
                    best = best.max(prefix);
                    partial = Some((seg.file()?, u64::from(entry.position), hw.position));
                }
                if seg.base_offset() >= hw.segment_base {
                    break;
                }
            }
            (best, partial)
        };
        if let Some((file, mut position, limit)) = partial {
            while position < limit {
                let h = super::segment::read_header(&*file, position, limit)
                    .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                let Some(h) = h else {
                    break;
                };
                best = best.max(Some(h.max_timestamp));
                position += h.total_len() as u64;
            }
        }
        match best {
            Some(t) => self.offset_for_timestamp(t),
            None => Ok(None),
        }
    }

    /// The first visible record whose timestamp is `>= timestamp`, or
    /// `None` when every visible record is older. Uses the time index to
    /// skip, scans batch headers to the first batch whose largest timestamp
    /// reaches `timestamp`, then reads that batch's records (see
    /// [`super::time_lookup::first_record_at_or_after`]).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampMatch>, LogError> {
        // Under the lock: the candidate segments' files and ranges (no I/O);
        // the headers are read without it.
        let (hw, candidates) = {
            let mut state = self.state.lock();
            let hw = self.visible_end(&state);
            let mut candidates = Vec::new();
            let mut touched = Vec::new();
            for seg in &state.segments {
                if seg.base_offset() > hw.segment_base {
                    break;
                }
                if seg.max_timestamp().is_none_or(|m| m < timestamp) {
                    continue;
                }
                if seg.is_sealed() {
                    touched.push(seg.base_offset());
                }
                let from = seg.time_index().lookup(timestamp);
                let entry = seg.offset_index().lookup(from);
                let limit = if seg.base_offset() == hw.segment_base {
                    hw.position
                } else {
                    seg.size()
                };
                candidates.push((seg.file()?, u64::from(entry.position), limit));
                if seg.base_offset() >= hw.segment_base {
                    break;
                }
            }
            for base in touched {
                state.touch_sealed(base);
            }
            (hw, candidates)
        };
        for (file, mut position, limit) in candidates {
            while position < limit {
                let h = super::segment::read_header(&*file, position, limit)
                    .map_err(|e| LogError::io("read", self.dir.clone(), e))?;
                let Some(h) = h else {
                    break;
                };
                if h.max_timestamp >= timestamp {
                    if h.base_offset as u64 >= hw.offset {
                        return Ok(None);
                    }
                    let found = first_record_at_or_after(
                        &*file,
                        position,
                        &h,
                        timestamp,
                        self.config.max_decompressed_batch_bytes,
                    );
                    return Ok((found.offset < hw.offset).then_some(found));
                }
                position += h.total_len() as u64;
            }
        }
        Ok(None)
    }
}

/// Milliseconds since the Unix epoch of `t` (negative before it), saturating.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}
