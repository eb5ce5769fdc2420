//! [`PartitionLog`]: the ordered segments of one partition and the state
//! they share. Appending lives in `append.rs`, reading and look-ups in
//! `read.rs`, flushing in `flush.rs`, opening and recovery in `recovery.rs`,
//! retention in `retention.rs`, the replication seam in `seam.rs`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use sluice_protocol::batch::Compression;

use super::LogError;
use super::config::LogConfig;
use super::io::FileSystem;
use super::open_sealed::{self, Held};
use super::retention::Retention;
use super::segment::{IDLE_SEALED_PASSES, MAX_OPEN_SEALED_SEGMENTS, Segment};
use crate::producer::state::ProducerStates;

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
    /// When the checkpoint file was last written (or the log opened).
    pub(crate) last_checkpoint: SystemTime,
    /// Whether the last checkpoint write failed (reported once until one
    /// succeeds again; see `PartitionLog::checkpoint_or_report`).
    pub(crate) checkpoint_failing: bool,
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
    /// The log's topic is being deleted: appends and flushes are refused
    /// with [`LogError::Deleted`].
    pub(crate) deleted: bool,
    /// Sealed segments whose handles may be open, least recently read
    /// first (at most [`MAX_OPEN_SEALED_SEGMENTS`], fewer while the
    /// process-wide cap is passed: [`super::open_sealed`]).
    pub(crate) open_sealed: VecDeque<OpenSealed>,
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

/// A sealed segment whose handles may be open, counted in
/// [`super::open_sealed`] while listed.
#[derive(Debug)]
pub(crate) struct OpenSealed {
    /// Its base offset.
    pub(crate) base: u64,
    /// The value of `maintain_passes` at its last read.
    pub(crate) read: u64,
    _held: Held,
}

impl OpenSealed {
    fn new(base: u64, read: u64) -> Self {
        OpenSealed {
            base,
            read,
            _held: Held::new(),
        }
    }
}

/// Sealed segments a partition keeps open while the process-wide cap is
/// passed.
const MAX_OPEN_SEALED_WHILE_OVER: usize = 2;

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
        if let Some(last) = self.open_sealed.back_mut().filter(|e| e.base == base) {
            last.read = now;
            return;
        }
        self.open_sealed.retain(|e| e.base != base);
        self.open_sealed.push_back(OpenSealed::new(base, now));
        self.trim_open_sealed();
    }

    /// [`LogState::touch_sealed`] for the segment at index `at`, if it
    /// exists and is sealed.
    pub(crate) fn touch_sealed_at(&mut self, at: usize) {
        if let Some(base) = self
            .segments
            .get(at)
            .filter(|s| s.is_sealed())
            .map(Segment::base_offset)
        {
            self.touch_sealed(base);
        }
    }

    /// Counts a `maintain` pass and releases the sealed segments not read
    /// for [`IDLE_SEALED_PASSES`] passes (once durable), so idle history
    /// holds no descriptors or maps at all; while the process-wide cap is
    /// passed ([`super::open_sealed`]), those not read during this pass or
    /// the one before.
    pub(crate) fn release_idle_sealed(&mut self) {
        self.maintain_passes += 1;
        let now = self.maintain_passes;
        // `read` is the pass count at the read, `now` one more than that
        // for a read during the last interval.
        let idle = if open_sealed::over() {
            2
        } else {
            IDLE_SEALED_PASSES
        };
        let durable = self.durable.offset;
        let segments = &self.segments;
        self.open_sealed.retain(|e| {
            let (base, read) = (e.base, e.read);
            if read + idle > now {
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
    /// more of them durable), or beyond the two most recent while the
    /// process-wide cap is passed ([`super::open_sealed`]: two, so that two
    /// readers at different places of one partition do not take turns
    /// reopening their segments at every read).
    pub(crate) fn trim_open_sealed(&mut self) {
        let keep = if open_sealed::over() {
            MAX_OPEN_SEALED_WHILE_OVER
        } else {
            MAX_OPEN_SEALED_SEGMENTS
        };
        // Oldest first; a segment not yet durable keeps its `.log` handle
        // until a flush covered it (so a writeback error reaches the
        // `fdatasync` on the descriptor that wrote), and is released later.
        let mut i = 0;
        // The most recently read one (last) is never released here.
        while self.open_sealed.len() > keep {
            if i + 1 >= self.open_sealed.len() {
                break;
            }
            let Some(old) = self.open_sealed.get(i).map(|e| e.base) else {
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

/// A retention limit that is not set.
pub(crate) const NO_LIMIT: u64 = u64::MAX;

/// The stored form of a retention by age and by size ([`NO_LIMIT`] where
/// there is none; an age in whole ms, at most `NO_LIMIT - 1`).
pub(crate) fn retention_limits(age: Option<Duration>, bytes: Option<u64>) -> (u64, u64) {
    let ms = age.map_or(NO_LIMIT, |a| {
        u64::try_from(a.as_millis())
            .unwrap_or(NO_LIMIT)
            .min(NO_LIMIT - 1)
    });
    (ms, bytes.map_or(NO_LIMIT, |b| b.min(NO_LIMIT - 1)))
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
    /// Held while a producer state snapshot is taken from the pending one
    /// and written, and across a truncation or reset (after `flush_lock`):
    /// a snapshot of batches a truncation cuts is never written after the
    /// truncation pruned the snapshots past its cut.
    pub(crate) snapshot_lock: Mutex<()>,
    /// The batch boundary a read last checked by reading the header there
    /// (where its answer ended): `(segment base, log epoch, position,
    /// offset)`. A read that starts exactly there need not read that header
    /// again (see `PartitionLog::read`).
    pub(crate) checked_boundary: Mutex<Option<(u64, u64, u64, u64)>>,
    pub(crate) high_watermark: AtomicU64,
    pub(crate) recovery_point: AtomicU64,
    /// The highest recovery point a checkpoint may record
    /// ([`PartitionLog::cap_checkpoints`]; `u64::MAX`: no cap).
    pub(crate) checkpoint_cap: AtomicU64,
    pub(crate) log_start: AtomicU64,
    pub(crate) next_offset: AtomicU64,
    /// Retention by age in ms ([`NO_LIMIT`]: none), changed with
    /// [`PartitionLog::set_retention`]; starts as `config.retention_age`.
    pub(crate) retention_ms: AtomicU64,
    /// Retention by size in bytes ([`NO_LIMIT`]: none); starts as
    /// `config.retention_bytes`.
    pub(crate) retention_bytes: AtomicU64,
    /// Size at which the active segment rolls, changed with
    /// [`PartitionLog::set_roll`]; starts as `config.segment_bytes`.
    pub(crate) segment_bytes: AtomicU64,
    /// Age in ms at which the active segment rolls ([`NO_LIMIT`]: none);
    /// starts as `config.segment_age`.
    pub(crate) segment_age_ms: AtomicU64,
    /// The codec produced batches are stored in: 0 as produced, else the
    /// codec's code + 1 ([`PartitionLog::set_compression`]); starts as
    /// `config.compression`.
    pub(crate) compression: AtomicU8,
    /// The largest batch a client's append may hold
    /// ([`PartitionLog::set_max_batch_bytes`]); starts as
    /// `config.max_batch_bytes`.
    pub(crate) max_batch_bytes: AtomicU32,
}

/// The stored form of a topic's codec (see [`PartitionLog::compression`]).
pub(crate) fn compression_code(c: Option<Compression>) -> u8 {
    c.map_or(0, |c| c.code() + 1)
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

    /// The `partitionLeaderEpoch` a leader's append stamps on every batch (a
    /// single broker leads each partition for good, and Metadata answers
    /// this epoch); a replicated partition's appends carry their group's term
    /// instead.
    pub const LEADER_EPOCH: i32 = 0;

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the log was opened with (its retention since then:
    /// [`PartitionLog::retention`]).
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The retention the log runs with now.
    pub fn retention(&self) -> Retention {
        let ms = self.retention_ms.load(Ordering::Relaxed);
        let bytes = self.retention_bytes.load(Ordering::Relaxed);
        Retention {
            age: (ms != NO_LIMIT).then(|| Duration::from_millis(ms)),
            bytes: (bytes != NO_LIMIT).then_some(bytes),
        }
    }

    /// Changes the retention (a topic's settings changed while it is
    /// open): the next retention pass goes by it.
    pub fn set_retention(&self, retention: Retention) {
        let (ms, bytes) = retention_limits(retention.age, retention.bytes);
        self.retention_ms.store(ms, Ordering::Relaxed);
        self.retention_bytes.store(bytes, Ordering::Relaxed);
    }

    /// When the active segment rolls now: at this size, and at this age
    /// of its first batch (`None`: never by age).
    pub fn roll_policy(&self) -> (u64, Option<Duration>) {
        let ms = self.segment_age_ms.load(Ordering::Relaxed);
        (
            self.segment_bytes.load(Ordering::Relaxed),
            (ms != NO_LIMIT).then(|| Duration::from_millis(ms)),
        )
    }

    /// Changes when segments roll (a topic's settings changed while it is
    /// open): the next append goes by it, so an active segment already
    /// larger or older than the new setting rolls at the next append.
    /// `bytes` is clamped to the valid range of `segment_bytes`.
    pub fn set_roll(&self, bytes: u64, age: Option<Duration>) {
        let (ms, _) = retention_limits(age, None);
        self.segment_bytes
            .store(bytes.clamp(1, i32::MAX as u64), Ordering::Relaxed);
        self.segment_age_ms.store(ms, Ordering::Relaxed);
    }

    /// The codec produced batches are stored in (`None`: as produced; see
    /// [`LogConfig::compression`]).
    pub fn compression(&self) -> Option<Compression> {
        match self.compression.load(Ordering::Relaxed) {
            0 => None,
            c => Compression::from_code(c - 1),
        }
    }

    /// Changes the codec batches produced from now on are stored in.
    pub fn set_compression(&self, compression: Option<Compression>) {
        self.compression
            .store(compression_code(compression), Ordering::Relaxed);
    }

    /// The largest batch a client's append may hold, in bytes (Kafka's
    /// `max.message.bytes`; see [`LogConfig::max_batch_bytes`]).
    pub fn max_batch_bytes(&self) -> u32 {
        self.max_batch_bytes.load(Ordering::Relaxed)
    }

    /// Changes the batch limit of appends from now on; batches stored
    /// before stay as they are.
    pub fn set_max_batch_bytes(&self, bytes: u32) {
        self.max_batch_bytes.store(bytes, Ordering::Relaxed);
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

    /// The recovery point last checkpointed on disk (from the open, or a
    /// later checkpoint): what recovery holds flushed for sure.
    pub fn checkpointed(&self) -> u64 {
        self.state.lock().checkpointed
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

    /// Takes the log offline because the replica that serves it could not
    /// be opened (a damaged Raft file, say): readiness and the offline
    /// count then say so, where the partition would look healthy while no
    /// replica serves it. Kept until [`PartitionLog::replica_opened`]; an
    /// offline log keeps its own reason.
    pub fn replica_unopened(&self, why: &str) {
        let mut state = self.state.lock();
        if state.offline.is_none() {
            state.offline = Some(format!("{REPLICA_UNOPENED}: {why}"));
        }
    }

    /// The replica that serves the log is opened (again): what
    /// [`PartitionLog::replica_unopened`] set is taken back.
    pub fn replica_opened(&self) {
        let mut state = self.state.lock();
        if state
            .offline
            .as_deref()
            .is_some_and(|r| r.starts_with(REPLICA_UNOPENED))
        {
            state.offline = None;
        }
    }

    /// Whether an append is between reservation and publication (or a failed
    /// one is being rolled back). A new append would wait for it before it is
    /// published, so callers that must not block (a reactor thread) send
    /// their append elsewhere. Takes the log's lock briefly; no I/O.
    pub fn appends_in_flight(&self) -> bool {
        let state = self.state.lock();
        !state.pending.is_idle() || state.pending.failed.is_some()
    }

    /// Why the log refuses a write now (append, flush, log start move,
    /// truncation), if it does: its topic is being deleted, or it went
    /// offline.
    pub(crate) fn refusal(&self, state: &LogState) -> Option<LogError> {
        if state.deleted {
            return Some(LogError::Deleted);
        }
        state.offline.as_deref().map(|r| self.offline_error(r))
    }

    pub(crate) fn offline_error(&self, reason: &str) -> LogError {
        LogError::Offline {
            dir: self.dir.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// The start of the offline reason [`PartitionLog::replica_unopened`] sets.
const REPLICA_UNOPENED: &str = "its replica could not be opened";

/// Milliseconds since the Unix epoch of `t` (negative before it), saturating.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}
