//! One segment: a `.log` file of record batches back to back, its offset
//! index and its time index. A segment is *active* (the one appended to) or
//! *sealed* (read-only, indexes trimmed).
//!
//! Invariant: `size` is the end of the last whole batch; every batch in
//! `0..size` passed validation and offsets are contiguous from
//! `base_offset` to `next_offset`. A segment is guarded by the partition
//! log's lock; readers share its file handle through an `Arc`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sluice_protocol::batch::{self, BatchHeader, HEADER_LEN};

use super::LogError;
use super::config::LogConfig;
use super::format::{INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segment_path};
use super::io::{FileSystem, LogFile, OpenMode, read_full_at};
use super::offset_index::OffsetIndex;
use super::time_index::TimeIndex;

/// Most sealed segments of one partition that keep their `.log` handle and
/// index mappings open at once; the least recently read beyond this are
/// released (see [`Segment::release`]).
pub(crate) const MAX_OPEN_SEALED_SEGMENTS: usize = 8;

/// A sealed segment not read for this many `maintain` passes (about a
/// minute at the default `maintenance_interval_ms`) is released.
pub(crate) const IDLE_SEALED_PASSES: u64 = 60;

/// Read-ahead of the recovery scan.
const RECOVERY_CHUNK: usize = 8 << 20;

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: u64,
    log_path: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// The `.log` file; `None` while a sealed segment is released (see
    /// [`Segment::release`]), reopened on the next use.
    log: Mutex<Option<Arc<dyn LogFile>>>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    size: u64,
    next_offset: u64,
    max_timestamp: Option<i64>,
    bytes_since_index: u64,
    /// When the first batch was appended (roll by age): the time of that
    /// append in this process, or after a restart the first batch's
    /// timestamp (see [`Segment::restore_first_append`]).
    first_append: Option<SystemTime>,
    /// When the last batch was written to it: wall clock, kept in memory;
    /// at open, the `.log` file's modification time (no later than the
    /// open), so a restart does not start the idle time again.
    last_append: SystemTime,
    sealed: bool,
    /// The most recent batch starts of an active segment, `(base offset,
    /// position)`, contiguous and oldest first, at most [`TAIL_BATCHES`]:
    /// a tailing reader finds where to resume here without reading batch
    /// headers from disk. Emptied when the segment is sealed.
    tail: VecDeque<(u64, u64)>,
    /// Where the disk blocks reserved ahead of the appends end (see
    /// [`Segment::reserve_blocks`]); 0 until the first reservation.
    preallocated: u64,
}

/// How far ahead of the appends an active segment reserves disk blocks, at
/// most: appends into reserved blocks skip the file system's block
/// allocation on the write path (on ext4 it takes about 40 % off the system
/// time of a buffered `pwrite`). A roll releases what the sealed segment
/// did not use; a crash can leave up to this much reserved past the end of
/// a segment, released when the segment is deleted.
pub const PREALLOCATE_BYTES: u64 = 4 << 20;

/// How far ahead of the appends an active segment reserves at least, and
/// the alignment of its reservations. A segment reserves as far ahead as
/// it already holds, between this and [`PREALLOCATE_BYTES`]: a partition
/// that takes a few records holds about this much for them, not 4 MiB (a
/// thousand quiet partitions would otherwise hold 4 GiB of a disk), and
/// a busy one reaches the full step after its first 4 MiB.
pub const PREALLOCATE_MIN_BYTES: u64 = 64 << 10;

/// Batch boundaries an active segment keeps in memory (see `Segment::tail`).
pub(crate) const TAIL_BATCHES: usize = 1024;

/// The parsed header of the batch at `position` of `file`, or `None` when a
/// header would pass `size` or no valid header is there. Takes no lock, so
/// readers call it on a file handle they hold.
pub(crate) fn read_header(
    file: &dyn LogFile,
    position: u64,
    size: u64,
) -> std::io::Result<Option<BatchHeader>> {
    Ok(read_batch_header(file, position, size)?.ok().flatten())
}

/// The header of the batch that should start at `position` of `file`,
/// whose data ends at `size`: `Ok(None)` when no whole header fits before
/// `size` (or the file is shorter), `Err(reason)` when the bytes there are
/// no batch header (damage, or a position that is no batch boundary).
pub(crate) fn read_batch_header(
    file: &dyn LogFile,
    position: u64,
    size: u64,
) -> std::io::Result<Result<Option<BatchHeader>, String>> {
    if position + HEADER_LEN as u64 > size {
        return Ok(Ok(None));
    }
    let mut buf = [0u8; HEADER_LEN];
    let n = read_full_at(file, &mut buf, position)?;
    if n < HEADER_LEN {
        return Ok(Ok(None));
    }
    Ok(BatchHeader::parse(&buf)
        .map(Some)
        .map_err(|e| format!("the bytes at byte {position} are no batch header: {e}")))
}

/// What a scan of batches found.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    end: u64,
    /// Where the last whole batch scanned starts.
    last_start: u64,
    next_offset: u64,
    max_timestamp: Option<i64>,
}

impl Segment {
    /// Creates a new, empty active segment. Fails if its files exist.
    pub(crate) fn create(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: u64,
        config: &LogConfig,
    ) -> Result<Segment, LogError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let log = fs
            .open(&log_path, OpenMode::CreateNew)
            .map_err(|e| LogError::io("create", &log_path, e))?;
        let segment =
            match Self::with_indexes(fs, dir, base_offset, log_path.clone(), log, config, true) {
                Ok(s) => s,
                Err(e) => {
                    // Leave nothing behind, so a later roll can try again.
                    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                        let _ = fs.remove_file(&segment_path(dir, base_offset, suffix));
                    }
                    return Err(e);
                }
            };
        Ok(segment)
    }

    fn with_indexes(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: u64,
        log_path: PathBuf,
        log: Arc<dyn LogFile>,
        config: &LogConfig,
        active: bool,
    ) -> Result<Segment, LogError> {
        let max = config.index_max_bytes as usize;
        let ipath = segment_path(dir, base_offset, INDEX_SUFFIX);
        let offset_index = OffsetIndex::open(fs, &ipath, base_offset, max, active)
            .map_err(|e| LogError::io("open index", &ipath, e))?;
        let tpath = segment_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let time_index = TimeIndex::open(fs, &tpath, base_offset, max, active)
            .map_err(|e| LogError::io("open time index", &tpath, e))?;
        let now = SystemTime::now();
        let last_append = log
            .os_file()
            .metadata()
            .and_then(|m| m.modified())
            .map_or(now, |modified| modified.min(now));
        Ok(Segment {
            base_offset,
            log_path,
            fs: Arc::clone(fs),
            log: Mutex::new(Some(log)),
            offset_index,
            time_index,
            size: 0,
            next_offset: base_offset,
            max_timestamp: None,
            bytes_since_index: 0,
            first_append: None,
            last_append,
            sealed: !active,
            tail: VecDeque::new(),
            preallocated: 0,
        })
    }

    /// Opens an existing segment whose data is trusted (below the recovery
    /// point, or after a clean shutdown): its size is the file's length and
    /// its indexes are kept when intact, rebuilt otherwise. Never changes the
    /// `.log` file. Returns the segment and the bytes at its end that are not
    /// whole valid batches (0 when sound); the segment's size then ends at
    /// the last valid batch and the caller decides what to do.
    pub(crate) fn open_trusted(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: u64,
        config: &LogConfig,
        active: bool,
    ) -> Result<(Segment, u64), LogError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let log = fs
            .open(&log_path, OpenMode::Existing)
            .map_err(|e| LogError::io("open", &log_path, e))?;
        let mut seg = Self::with_indexes(fs, dir, base_offset, log_path, log, config, active)?;
        seg.size = seg.log_file()?.len().map_err(|e| seg.io_err("stat", e))?;
        let mut invalid = 0;
        // Scan batch headers from the last offset index entry to the end. The
        // time index's last entry bounds every record before that entry (it
        // is only skipped when the bound did not grow), so the newest
        // timestamp is the larger of the two.
        let last = seg.offset_index.last();
        let (position, offset) = last.map_or((0, base_offset), |e| (e.position.into(), e.offset));
        let scan = seg.scan_headers(position, offset)?;
        // A missing (empty) offset index on a segment big enough to have
        // entries, or a sealed segment without any time entry (sealing always
        // writes one), is rebuilt too.
        let should_have_entries = scan.last_start >= u64::from(config.index_interval_bytes);
        let intact = scan.end == seg.size
            && seg.offset_index.is_intact(seg.size, scan.next_offset)
            && seg.time_index.is_intact(scan.next_offset)
            && !(should_have_entries && seg.offset_index.len() == 0)
            && (active || seg.size == 0 || seg.time_index.last().is_some());
        if intact {
            seg.next_offset = scan.next_offset;
            seg.max_timestamp = match (seg.time_index.last(), scan.max_timestamp) {
                (Some(t), Some(m)) => Some(t.timestamp.max(m)),
                (Some(t), None) => Some(t.timestamp),
                (None, m) => m,
            };
            seg.bytes_since_index = seg.size - position;
        } else {
            tracing::warn!(segment = %seg.log_path.display(), "damaged or missing index; rebuilding it");
            invalid = seg.rescan(config)?;
        }
        Ok((seg, invalid))
    }

    /// Opens an existing segment that may hold a torn or corrupt tail and
    /// rescans it (see [`Segment::rescan`]) as the active segment. Returns the
    /// segment and the bytes after its last valid batch; the `.log` file is
    /// not changed (see [`Segment::truncate_invalid_tail`]).
    pub(crate) fn open_and_rescan(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: u64,
        config: &LogConfig,
    ) -> Result<(Segment, u64), LogError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let log = fs
            .open(&log_path, OpenMode::Existing)
            .map_err(|e| LogError::io("open", &log_path, e))?;
        let mut seg = Self::with_indexes(fs, dir, base_offset, log_path, log, config, true)?;
        let invalid = seg.rescan(config)?;
        Ok((seg, invalid))
    }

    /// Cuts the `.log` file back to the segment's size (the end of its last
    /// valid batch), dropping a torn or corrupt tail found by
    /// [`Segment::rescan`]. Returns the bytes cut off.
    pub(crate) fn truncate_invalid_tail(&mut self) -> Result<u64, LogError> {
        let log = self.log_file()?;
        let file_len = log.len().map_err(|e| self.io_err("stat", e))?;
        let cut = file_len.saturating_sub(self.size);
        if cut > 0 {
            log.set_len(self.size)
                .map_err(|e| self.io_err("truncate", e))?;
        }
        Ok(cut)
    }

    fn io_err(&self, op: &'static str, e: std::io::Error) -> LogError {
        LogError::io(op, &self.log_path, e)
    }

    /// Rescans the whole `.log` file: checks each batch's header, CRC and
    /// offset continuity and rebuilds both indexes up to the first batch that
    /// is torn or corrupt, where the segment's size then ends. The `.log`
    /// file itself is not changed. Returns the bytes after the last valid
    /// batch. A sealed segment's indexes are regrown for the rebuild (their
    /// trimmed length only fits the old entries) and trimmed again after it.
    pub(crate) fn rescan(&mut self, config: &LogConfig) -> Result<u64, LogError> {
        let was_sealed = self.sealed;
        if was_sealed {
            self.reactivate(config)?;
        }
        let log = self.log_file()?;
        let file_len = log.len().map_err(|e| self.io_err("stat", e))?;
        self.offset_index
            .clear()
            .and_then(|()| self.time_index.clear())
            .map_err(|e| self.io_err("reset the indexes of", e))?;
        self.tail.clear();
        self.size = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = None;
        self.bytes_since_index = 0;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = 0u64;
        let mut pos = 0u64;
        loop {
            if pos >= file_len {
                break;
            }
            let rel = (pos - buf_at) as usize;
            let have = buf.len().saturating_sub(rel);
            let whole = buf
                .get(rel..)
                .and_then(|b| batch::peek_offset_and_len(b).ok())
                .filter(|&(_, total)| total <= have);
            if whole.is_none() {
                // Refill from `pos`, large enough for the batch if its length is known.
                let want = buf
                    .get(rel..)
                    .and_then(|b| batch::peek_offset_and_len(b).ok())
                    .map_or(RECOVERY_CHUNK, |(_, t)| t.max(RECOVERY_CHUNK));
                let want = want.min((file_len - pos) as usize);
                if buf_at == pos && buf.len() >= want {
                    break; // already holds everything there is: torn tail
                }
                buf.resize(want, 0);
                let n = read_full_at(&*log, &mut buf, pos).map_err(|e| self.io_err("read", e))?;
                buf.truncate(n);
                buf_at = pos;
                continue;
            }
            let Some(bytes) = buf.get(rel..) else { break };
            let header = match batch::verify_crc(bytes) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(segment = %self.log_path.display(), position = pos, error = %e, "invalid batch; the valid data ends here");
                    break;
                }
            };
            if u64::try_from(header.base_offset) != Ok(self.next_offset) {
                tracing::warn!(segment = %self.log_path.display(), position = pos,
                    expected = self.next_offset, found = header.base_offset, "offset gap; the valid data ends here");
                break;
            }
            self.index_batch(pos, &header, config);
            pos += header.total_len() as u64;
            self.size = pos;
        }
        if was_sealed {
            self.seal()?;
        }
        Ok(file_len - self.size)
    }

    /// Walks batch headers from `position` (where the batch with base offset
    /// `offset` starts) to the end of the file or the first unreadable header.
    fn scan_headers(&self, mut position: u64, offset: u64) -> Result<Scan, LogError> {
        let mut scan = Scan {
            end: position,
            next_offset: offset,
            ..Scan::default()
        };
        while let Some(h) = self.header_at(position)? {
            if u64::try_from(h.base_offset) != Ok(scan.next_offset)
                || position + h.total_len() as u64 > self.size
            {
                break;
            }
            scan.last_start = position;
            position += h.total_len() as u64;
            scan.end = position;
            scan.next_offset = (h.next_offset()) as u64;
            scan.max_timestamp = Some(
                scan.max_timestamp
                    .map_or(h.max_timestamp, |m| m.max(h.max_timestamp)),
            );
        }
        Ok(scan)
    }

    /// The parsed header of the batch at `position`, or `None` at the end of
    /// the data or where no valid header is.
    pub(crate) fn header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        if position + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let log = self.log_file()?;
        read_header(&*log, position, self.size).map_err(|e| self.io_err("read", e))
    }

    /// Updates indexes and counters for a batch now stored at `position`.
    fn index_batch(&mut self, position: u64, header: &BatchHeader, config: &LogConfig) {
        if self.bytes_since_index >= u64::from(config.index_interval_bytes) && position > 0 {
            // The partition log keeps every batch position and relative
            // offset of a segment within 32 bits (it rolls, and caps one
            // append); only data written before those checks can fail this.
            let base = u64::try_from(header.base_offset).ok();
            let fits = base.is_some_and(|b| {
                b.checked_sub(self.base_offset)
                    .is_some_and(|r| u32::try_from(r).is_ok())
            });
            match (u32::try_from(position), base) {
                (Ok(pos32), Some(base)) if fits => {
                    if self.offset_index.append(base, pos32) {
                        if let Some(ts) = self.max_timestamp {
                            self.time_index.maybe_append(ts, base, false);
                        }
                        self.bytes_since_index = 0;
                    }
                }
                _ => tracing::error!(segment = %self.log_path.display(), position,
                    base_offset = header.base_offset,
                    "batch outside the segment's 32-bit index range; not indexed"),
            }
        }
        if !self.sealed {
            if self.tail.len() >= TAIL_BATCHES {
                self.tail.pop_front();
            } else if self.tail.capacity() == 0 {
                self.tail.reserve_exact(TAIL_BATCHES);
            }
            if let Ok(base) = u64::try_from(header.base_offset) {
                self.tail.push_back((base, position));
            }
        }
        self.bytes_since_index += header.total_len() as u64;
        self.max_timestamp = Some(
            self.max_timestamp
                .map_or(header.max_timestamp, |m| m.max(header.max_timestamp)),
        );
        self.next_offset = header.next_offset() as u64;
    }

    /// Truncates the file back to the last whole batch after a failed write
    /// (which also releases the blocks reserved past it).
    pub(crate) fn roll_back(&mut self) -> std::io::Result<()> {
        self.log_handle()?.set_len(self.size)?;
        self.preallocated = self.size;
        Ok(())
    }

    /// The range of disk blocks to reserve, if any, before an append writes
    /// `position..end`: when `end` passes what is reserved, from there (or
    /// `position`) up to `end` plus `end` itself, at least
    /// [`PREALLOCATE_MIN_BYTES`] and at most [`PREALLOCATE_BYTES`] (so the
    /// step doubles as the segment grows), rounded up to a multiple of
    /// [`PREALLOCATE_MIN_BYTES`], but not past `limit` (the segment size)
    /// unless `end` is. The caller reserves it ([`LogFile::preallocate`])
    /// outside the log's lock; until it has, appends there only miss the
    /// saving.
    pub(crate) fn reserve_blocks(
        &mut self,
        position: u64,
        end: u64,
        limit: u64,
    ) -> Option<(u64, u64)> {
        if end <= self.preallocated {
            return None;
        }
        let start = self.preallocated.max(position);
        let target = reservation_end(end, limit);
        self.preallocated = target;
        Some((start, target - start))
    }

    /// Releases the disk blocks reserved past the segment's end, before it
    /// is sealed by a roll. Only for a writable active segment with no
    /// write in flight, whose file therefore ends at `size`.
    pub(crate) fn release_reserved(&mut self) -> Result<(), LogError> {
        self.log_file()?
            .set_len(self.size)
            .map_err(|e| self.io_err("release reserved blocks of", e))?;
        self.preallocated = self.size;
        Ok(())
    }

    /// Accounts for batches that [`Segment::write`] stored: walks `buf`
    /// (whole, validated batches) to index them and advance the end.
    pub(crate) fn commit_write(&mut self, buf: &[u8], config: &LogConfig, now: SystemTime) {
        let mut rel = 0usize;
        while let Some(header) = buf.get(rel..).and_then(|b| BatchHeader::parse(b).ok()) {
            self.index_batch(self.size + rel as u64, &header, config);
            rel += header.total_len();
        }
        self.size += buf.len() as u64;
        self.first_append.get_or_insert(now);
        self.last_append = now;
    }

    /// Seals the segment: final time index entry, indexes trimmed to their
    /// entries. The mappings' write-back is only scheduled, never waited
    /// for (no synchronous `msync` when a roll happens in an append): the
    /// indexes are derived data, and recovery checks and rebuilds them.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if let Some(ts) = self.max_timestamp {
            self.time_index.maybe_append(ts, self.next_offset, true);
        }
        self.trim_indexes_with(false)?;
        self.sealed = true;
        self.tail = VecDeque::new();
        Ok(())
    }

    /// Trims both indexes and writes them back, waiting for the write-back
    /// (clean shutdown).
    pub(crate) fn trim_indexes(&mut self) -> Result<(), LogError> {
        self.trim_indexes_with(true)
    }

    fn trim_indexes_with(&mut self, sync: bool) -> Result<(), LogError> {
        let p = self.offset_index.path().to_owned();
        let r = if sync {
            self.offset_index.trim()
        } else {
            self.offset_index.trim_async()
        };
        r.map_err(|e| LogError::io("trim index", p, e))?;
        let p = self.time_index.path().to_owned();
        let r = if sync {
            self.time_index.trim()
        } else {
            self.time_index.trim_async()
        };
        r.map_err(|e| LogError::io("trim time index", p, e))
    }

    /// Cuts the segment back to the batch boundary `position` where offset
    /// `offset` starts (a runtime truncation): the `.log` file, both
    /// indexes and the in-memory tail. The segment must be active. Its
    /// newest timestamp is kept as an upper bound (it only makes retention
    /// and timestamp lookups more conservative).
    pub(crate) fn truncate_to(&mut self, position: u64, offset: u64) -> Result<(), LogError> {
        let log = self.log_file()?;
        log.set_len(position)
            .map_err(|e| self.io_err("truncate", e))?;
        self.preallocated = position;
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.tail.retain(|&(o, _)| o < offset);
        self.size = position;
        self.next_offset = offset;
        self.bytes_since_index = position
            - self
                .offset_index
                .last()
                .map_or(0, |e| u64::from(e.position));
        if position == 0 {
            self.max_timestamp = None;
            self.first_append = None;
        }
        Ok(())
    }

    /// `fdatasync` of the `.log` file.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.log_handle()?.sync_data()
    }

    /// Unlinks the three files of the segment at `base_offset` in `dir`
    /// without opening them (missing ones are fine).
    pub(crate) fn delete_files(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: u64,
    ) -> Result<(), LogError> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = segment_path(dir, base_offset, suffix);
            match fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("delete", &path, e)),
            }
        }
        Ok(())
    }

    /// Unmaps the indexes and unlinks the segment's three files. Readers that
    /// hold the `.log` handle keep reading it until they drop it.
    pub(crate) fn delete(self, fs: &dyn FileSystem) -> Result<(), LogError> {
        let ipath = self.offset_index.path().to_owned();
        let tpath = self.time_index.path().to_owned();
        self.offset_index.close();
        self.time_index.close();
        for path in [&self.log_path, &ipath, &tpath] {
            match fs.remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("delete", path, e)),
            }
        }
        Ok(())
    }

    pub(crate) fn base_offset(&self) -> u64 {
        self.base_offset
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset
    }
    pub(crate) fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }
    pub(crate) fn first_append(&self) -> Option<SystemTime> {
        self.first_append
    }
    /// When the last batch was written to the segment: in this process, or
    /// before it as the `.log` file's modification time says.
    pub(crate) fn last_append(&self) -> SystemTime {
        self.last_append
    }
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }
    /// The `.log` file (opened again if the segment was released).
    pub(crate) fn file(&self) -> Result<Arc<dyn LogFile>, LogError> {
        self.log_file()
    }

    fn log_file(&self) -> Result<Arc<dyn LogFile>, LogError> {
        self.log_handle().map_err(|e| self.io_err("open", e))
    }

    fn log_handle(&self) -> std::io::Result<Arc<dyn LogFile>> {
        let mut slot = self.log.lock();
        if let Some(f) = slot.as_ref() {
            return Ok(Arc::clone(f));
        }
        let f = self.fs.open(&self.log_path, OpenMode::Existing)?;
        *slot = Some(Arc::clone(&f));
        Ok(f)
    }

    /// Closes the `.log` handle and unmaps and closes both indexes of a
    /// sealed segment; each is opened again on its next use. Readers that
    /// hold the file (a `LogSlice`) keep it. Returns whether anything was
    /// open. The active segment is never released.
    pub(crate) fn release(&self) -> bool {
        if !self.sealed {
            return false;
        }
        let log = self.log.lock().take().is_some();
        let offsets = self.offset_index.release();
        let times = self.time_index.release();
        log || offsets || times
    }
    /// The nearest batch start known without reading the file at or before
    /// `offset` (which must be in this segment): its position and base
    /// offset.
    ///
    /// Returns `(position, base offset, holds)`, `holds` telling whether
    /// that batch is known to hold `offset` (no header walk needed). The
    /// in-memory tail of recent batch boundaries answers first (`holds`
    /// when it covers `offset`), then the offset index: its entries are
    /// read from a file that may be damaged, so an entry is never taken to
    /// hold `offset` without its batch's header read and checked.
    pub(crate) fn batch_start_at_or_before(&self, offset: u64) -> (u64, u64, bool) {
        if let Some(&(front, _)) = self.tail.front() {
            if front <= offset && offset < self.next_offset {
                // The tail is contiguous up to the segment's end, so the last
                // batch starting at or before `offset` holds it.
                let i = self.tail.partition_point(|&(o, _)| o <= offset);
                if let Some(&(base, position)) = self.tail.get(i.saturating_sub(1)) {
                    return (position, base, true);
                }
            }
        }
        let entry = self.offset_index.lookup(offset);
        (u64::from(entry.position), entry.offset, false)
    }
    /// From the in-memory tail of recent batch boundaries, where a read
    /// starting at the boundary `start` ends within `budget_end`: the last
    /// boundary in `(start, budget_end]`, or, when the batch at `start`
    /// alone passes `budget_end`, that batch's end (KIP-74: the first batch
    /// comes whole). As `(position, offset)`; `None` when the tail does not
    /// reach back to `start`.
    pub(crate) fn tail_end_within(&self, start: u64, budget_end: u64) -> Option<(u64, u64)> {
        let &(_, front) = self.tail.front()?;
        if front > start {
            return None;
        }
        let end = (self.size, self.next_offset);
        // The boundary `k` of the tail (its entries, then the segment end).
        let at = |k: usize| self.tail.get(k).map_or(end, |&(base, p)| (p, base));
        let first_end = at(self.tail.partition_point(|&(_, p)| p <= start));
        if first_end.0 > budget_end {
            return Some(first_end);
        }
        if end.0 <= budget_end {
            return Some(end);
        }
        // Some entry after `start` is within the budget: the last one.
        let within = self.tail.partition_point(|&(_, p)| p <= budget_end);
        Some(at(within - 1))
    }
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub(crate) fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
    /// Restores the age of a reopened segment (roll by `segment_age`): its
    /// first batch's largest timestamp, as Kafka does, but never later than
    /// `now` (a timestamp from a fast clock would otherwise delay the roll).
    /// An empty segment keeps no age; its first append sets it.
    pub(crate) fn restore_first_append(&mut self, now: SystemTime) -> Result<(), LogError> {
        if let Some(h) = self.header_at(0)? {
            let ts = UNIX_EPOCH + Duration::from_millis(h.max_timestamp.max(0) as u64);
            self.first_append = Some(ts.min(now));
        }
        Ok(())
    }

    /// Whether either index has no room left (the segment must roll).
    pub(crate) fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }
    /// Regrows the indexes of a segment reopened as the active one.
    pub(crate) fn reactivate(&mut self, config: &LogConfig) -> Result<(), LogError> {
        let max = config.index_max_bytes as usize;
        let p = self.offset_index.path().to_owned();
        self.offset_index
            .expand(max)
            .map_err(|e| LogError::io("grow index", p, e))?;
        let p = self.time_index.path().to_owned();
        self.time_index
            .expand(max)
            .map_err(|e| LogError::io("grow time index", p, e))?;
        self.sealed = false;
        Ok(())
    }
}

/// Where a reservation made for an append ending at `end` ends (see
/// [`Segment::reserve_blocks`]).
fn reservation_end(end: u64, limit: u64) -> u64 {
    let ahead = end.clamp(PREALLOCATE_MIN_BYTES, PREALLOCATE_BYTES);
    end.saturating_add(ahead)
        .div_ceil(PREALLOCATE_MIN_BYTES)
        .saturating_mul(PREALLOCATE_MIN_BYTES)
        .min(limit)
        .max(end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn reservations_grow_with_the_segment() {
        let gib = 1 << 30;
        // A few records hold 128 KiB, not 4 MiB.
        assert_eq!(reservation_end(1000, gib), 128 << 10);
        assert_eq!(reservation_end(MIB, gib), 2 * MIB);
        assert_eq!(reservation_end(3 * MIB, gib), 6 * MIB);
        assert_eq!(reservation_end(7 * MIB, gib), 11 * MIB);
        assert_eq!(reservation_end(100 * MIB, gib), 104 * MIB);
        // Not past the segment size, unless the append is.
        assert_eq!(reservation_end(5 * MIB, 6 * MIB), 6 * MIB);
        assert_eq!(reservation_end(7 * MIB, 6 * MIB), 7 * MIB);
    }

    proptest! {
        #[test]
        fn a_reservation_covers_the_append_and_stays_bounded(end in 0u64..1 << 40, limit in 0u64..1 << 40) {
            let r = reservation_end(end, limit);
            prop_assert!(r >= end);
            prop_assert!(r <= limit.max(end));
            prop_assert!(r - end <= PREALLOCATE_BYTES + PREALLOCATE_MIN_BYTES);
            prop_assert!(r - end <= end.max(PREALLOCATE_MIN_BYTES) + PREALLOCATE_MIN_BYTES);
        }
    }
}
