//! Opening a partition log: the one loader that finds segments, decides what
//! to trust and recovers the rest.
//!
//! - After a clean shutdown (marker present) every segment is trusted.
//! - Otherwise segments that end at or below the recovery-point checkpoint
//!   are trusted (their indexes are checked and rebuilt if damaged), and every
//!   later segment is rescanned batch by batch: header, CRC-32C and offset
//!   continuity, and the indexes are rebuilt. Work is proportional to the
//!   data written since the last checkpoint, not to the size of the log.
//! - Only an unflushed tail is ever cut: where a rescanned segment's valid
//!   data ends (torn or corrupt batch, or a gap before the next segment) at
//!   or past the recovery point, the rest of it and the later segments are
//!   removed. Damage in flushed data (a trusted segment, or below the
//!   recovery point), or in a middle segment when the checkpoint is missing
//!   or damaged (so nothing is known to be unflushed), takes the log offline
//!   instead ([`RecoveryReport::offline`]): it serves reads of the valid data
//!   before the damage, refuses appends, and changes no `.log` file and no
//!   checkpoint (indexes, being derived data, may have been rebuilt).
//! - What survives is then flushed, so the recovery point is the log end.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64};
use std::time::SystemTime;

use parking_lot::{Condvar, Mutex};

use super::LogError;
use super::config::LogConfig;
use super::format::{
    CHECKPOINT_FILE, CHECKPOINT_LEN, CLEAN_SHUTDOWN_FILE, Checkpoint, INDEX_SUFFIX, LOG_START_FILE,
    LOG_SUFFIX, LogStart, TIME_INDEX_SUFFIX, TMP_SUFFIX, parse_log_file_name,
};
use super::io::{FileSystem, OpenMode, read_full_at};
use super::partition::{LogPoint, LogState, PartitionLog};
use super::segment::Segment;

/// What opening a partition log found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The log had been closed cleanly; nothing was rescanned.
    pub clean_shutdown: bool,
    /// The recovery point read from the checkpoint, if one was readable.
    pub checkpoint: Option<u64>,
    /// Segments rescanned batch by batch.
    pub segments_rescanned: usize,
    /// Bytes of torn or corrupt data cut off segment tails.
    pub bytes_truncated: u64,
    /// Segments deleted because they followed a cut (only ever unflushed
    /// ones, past the recovery point).
    pub segments_deleted: usize,
    /// Empty segment files between two others (which hold no record and no
    /// roll leaves) removed.
    pub stray_segments_removed: usize,
    /// Why the log was opened offline, if it was: damage in data that was
    /// flushed (or whose flushing is unknown). No `.log` file holding
    /// records, checkpoint or marker was changed (only derived index files
    /// may have been rebuilt, and empty stray segment files removed);
    /// the log serves reads of the valid data before the damage and refuses
    /// appends.
    pub offline: Option<String>,
    /// Batches of idempotent producers read to rebuild the producer table
    /// after the newest usable `.snapshot` (0 after a clean shutdown).
    pub producer_batches_scanned: usize,
}

impl PartitionLog {
    /// Opens the partition log in `dir` (creating it if missing) on the
    /// real file system. See [`PartitionLog::open_with`].
    pub fn open(
        dir: impl Into<PathBuf>,
        config: LogConfig,
    ) -> Result<(Self, RecoveryReport), LogError> {
        Self::open_with(Arc::new(super::io::StdFs), dir, config)
    }

    /// Opens the partition log in `dir` through `fs`, recovering it if it was
    /// not closed cleanly (see the module documentation). On success every
    /// byte the log holds is valid and durable.
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: impl Into<PathBuf>,
        config: LogConfig,
    ) -> Result<(Self, RecoveryReport), LogError> {
        let dir = dir.into();
        config.validate().map_err(LogError::Config)?;
        fs.create_dir_all(&dir)
            .map_err(|e| LogError::io("create directory", &dir, e))?;
        let mut report = RecoveryReport::default();
        let mut bases = Vec::new();
        let names = fs
            .list_dir(&dir)
            .map_err(|e| LogError::io("list", &dir, e))?;
        for name in &names {
            if let Some(base) = parse_log_file_name(name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        // Leftovers: temporary files and indexes whose segment is gone.
        for name in &names {
            let stem = name
                .strip_suffix(INDEX_SUFFIX)
                .or_else(|| name.strip_suffix(TIME_INDEX_SUFFIX));
            let orphan = stem.is_some_and(|s| {
                parse_log_file_name(&format!("{s}{LOG_SUFFIX}"))
                    .is_none_or(|b| bases.binary_search(&b).is_err())
            });
            if orphan || name.ends_with(TMP_SUFFIX) {
                let path = dir.join(name);
                tracing::info!(file = %path.display(), "removing leftover file");
                fs.remove_file(&path)
                    .map_err(|e| LogError::io("remove", &path, e))?;
            }
        }

        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        report.clean_shutdown = fs.exists(&marker);
        // An empty `.log` file between two others holds no record, and no
        // roll leaves one (a new segment is the last until a batch goes
        // into it): a stray. Left in place it would read as a gap in the
        // offsets, and a gap in unflushed data cuts the segments after it.
        // (After a clean shutdown nothing is cut: a gap there takes the log
        // offline, and no segment is opened just to look.)
        let mut k = 1;
        while !report.clean_shutdown && k + 1 < bases.len() {
            let base = bases[k];
            let path = super::format::segment_path(&dir, base, LOG_SUFFIX);
            let len = fs
                .open(&path, OpenMode::Existing)
                .and_then(|f| f.len())
                .map_err(|e| LogError::io("open", &path, e))?;
            if len == 0 {
                tracing::warn!(file = %path.display(), "removing an empty segment file between two others: it holds no record");
                Segment::delete_files(&*fs, &dir, base)?;
                bases.remove(k);
                report.stray_segments_removed += 1;
            } else {
                k += 1;
            }
        }

        report.checkpoint = read_checkpoint(&*fs, &dir);
        let recovery_point = report.checkpoint.unwrap_or(0);

        let mut segments = VecDeque::with_capacity(bases.len().max(1));
        let mut i = 0;
        while let Some(&base) = bases.get(i) {
            let next_base = bases.get(i + 1).copied();
            let last = next_base.is_none();
            let trusted = report.clean_shutdown || next_base.is_some_and(|n| n <= recovery_point);
            let (mut seg, invalid) = if trusted {
                Segment::open_trusted(&fs, &dir, base, &config, last)?
            } else {
                report.segments_rescanned += 1;
                Segment::open_and_rescan(&fs, &dir, base, &config)?
            };
            let gap = next_base.is_some_and(|n| seg.next_offset() != n);
            if invalid > 0 || gap {
                // The valid data of this segment ends before its file does,
                // or before the next segment starts.
                let problem = if invalid > 0 {
                    format!(
                        "segment {} holds {invalid} bytes that are not valid batches after offset {}",
                        seg.log_path().display(),
                        seg.next_offset()
                    )
                } else {
                    format!(
                        "segment {} ends at offset {} but the next segment starts at {}",
                        seg.log_path().display(),
                        seg.next_offset(),
                        next_base.unwrap_or_default()
                    )
                };
                let overlap = next_base.is_some_and(|n| n < seg.next_offset());
                let refusal = if overlap {
                    // Not a torn write: two segments claim the same offsets.
                    // Cutting here would remove the later one's records.
                    Some("the next segment starts inside this one, which no write leaves")
                } else if trusted {
                    Some(if report.clean_shutdown {
                        "the log was shut down cleanly, so all of it was flushed"
                    } else {
                        "it is below the recovery point, so it was flushed"
                    })
                } else if seg.next_offset() < recovery_point {
                    Some("the damage starts below the recovery point, in flushed data")
                } else if report.checkpoint.is_none() && !last {
                    Some(
                        "the recovery-point checkpoint is missing or damaged, so whether \
                         the later segments were flushed is unknown",
                    )
                } else {
                    None
                };
                if let Some(why) = refusal {
                    // Never remove data that was flushed: serve what is valid
                    // up to here, read-only, and leave every segment file
                    // as it is.
                    let reason = format!(
                        "{problem}; {why}. Nothing was removed; the partition is offline \
                         until the damaged files are repaired or moved away by hand"
                    );
                    tracing::error!(dir = %dir.display(), %reason, "recovery refused; partition offline");
                    if !seg.is_sealed() {
                        seg.seal()?;
                    }
                    segments.push_back(seg);
                    report.offline = Some(reason);
                    break;
                }
                // An unflushed tail past the recovery point: cut it, and the
                // later segments, which it made unreachable (all unflushed).
                tracing::warn!(dir = %dir.display(), %problem, "cutting the unflushed tail after it");
                report.bytes_truncated += seg.truncate_invalid_tail()?;
                if gap {
                    for &later in bases.get(i + 1..).unwrap_or_default() {
                        Segment::delete_files(&*fs, &dir, later)?;
                        report.segments_deleted += 1;
                    }
                    bases.truncate(i + 1);
                    seg.reactivate(&config)?;
                } else if !last && !seg.is_sealed() {
                    seg.seal()?;
                }
            } else if !last && !seg.is_sealed() {
                seg.seal()?;
            }
            // A sealed segment keeps no descriptor or mapping until it is
            // read: a partition of thousands of segments opens within a
            // few descriptors, not three per segment.
            seg.release();
            segments.push_back(seg);
            i += 1;
        }
        // The log must reach the recovery point it checkpointed: a shorter
        // one lost flushed data (a segment file cut short or removed, a
        // disk that dropped writes), and appending there would give its
        // offsets to new records.
        if let (None, Some(point)) = (&report.offline, report.checkpoint) {
            let end = segments.back().map_or(0, Segment::next_offset);
            if end < point {
                let reason = format!(
                    "the log ends at offset {end}, below its checkpointed recovery point \
                     {point}: flushed data is missing (a segment file cut short or removed). \
                     Nothing was removed; the partition is offline until the missing files \
                     are restored, or the partition's files are moved away by hand"
                );
                tracing::error!(dir = %dir.display(), %reason, "recovery refused; partition offline");
                if let Some(last) = segments.back_mut().filter(|s| !s.is_sealed()) {
                    last.seal()?;
                }
                report.offline = Some(reason);
            }
        }
        if let Some(reason) = report.offline.clone() {
            for seg in &segments {
                seg.release();
            }
            return Ok((Self::offline(fs, dir, config, segments, reason), report));
        }
        if let Some(active) = segments.back_mut() {
            active.restore_first_append(SystemTime::now())?;
        }
        let mut dir_changes = 0;
        if segments.is_empty() {
            segments.push_back(Segment::create(&fs, &dir, 0, &config)?);
            dir_changes += 1;
        }
        if report.clean_shutdown {
            fs.remove_file(&marker)
                .map_err(|e| LogError::io("remove", &marker, e))?;
            dir_changes += 1;
        } else {
            // Make what survived durable, so the recovery point is the end.
            for seg in segments.iter().filter(|s| s.next_offset() > recovery_point) {
                seg.sync()
                    .map_err(|e| LogError::io("fdatasync", seg.log_path(), e))?;
                seg.release();
            }
        }
        // Sealed segments keep no descriptor or mapping until they are read.
        for seg in &segments {
            seg.release();
        }
        if report.bytes_truncated > 0 || report.segments_deleted > 0 {
            tracing::warn!(dir = %dir.display(), ?report, "recovered partition log");
        } else if report.segments_rescanned > 0 {
            // Rescanned after a crash and found whole: routine, one line
            // per partition.
            tracing::info!(dir = %dir.display(), ?report, "recovered partition log");
        }
        let log = Self::assemble(
            fs,
            dir,
            config,
            segments,
            Some(recovery_point),
            dir_changes,
            None,
        );
        {
            let mut state = log.state.lock();
            report.producer_batches_scanned = log.load_producers(&mut state)?;
        }
        let end = log.next_offset();
        log.fs
            .sync_dir(&log.dir)
            .map_err(|e| LogError::io("fsync", &log.dir, e))?;
        log.state.lock().dir_synced = dir_changes;
        if report.checkpoint != Some(end) {
            // Saves the next recovery a rescan; the old checkpoint stays
            // valid (it is lower), so a full disk does not keep the
            // partition from opening: the next flush writes it again.
            if let Err(e) = log.write_checkpoint(end) {
                tracing::warn!(dir = %log.dir.display(), error = %e, "recovery point not checkpointed after recovery; the next flush writes it");
            }
        }
        Ok((log, report))
    }
}

impl PartitionLog {
    /// A log taken offline at open: it serves reads of `segments` (the valid
    /// data before the damage) and refuses appends; nothing on disk is
    /// written, and no clean-shutdown marker is written at shutdown, so the
    /// next open examines the files again.
    fn offline(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        config: LogConfig,
        segments: VecDeque<Segment>,
        reason: String,
    ) -> Self {
        Self::assemble(fs, dir, config, segments, None, 0, Some(reason))
    }

    /// A log over `segments`, ending where the last one does; `checkpointed`
    /// is the recovery point on disk (`None`: treat the end as
    /// checkpointed, for a log that writes nothing).
    fn assemble(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        config: LogConfig,
        segments: VecDeque<Segment>,
        checkpointed: Option<u64>,
        dir_changes: u64,
        offline: Option<String>,
    ) -> Self {
        let end = end_of(&segments);
        // Past the first segment's base when records were deleted from the
        // start of the log; never past its end.
        let log_start = segments
            .front()
            .map_or(0, Segment::base_offset)
            .max(read_log_start(&*fs, &dir).unwrap_or(0))
            .min(end.offset);
        let (retention_ms, retention_bytes) =
            super::partition::retention_limits(config.retention_age, config.retention_bytes);
        let (segment_age_ms, _) = super::partition::retention_limits(config.segment_age, None);
        let compression = super::partition::compression_code(config.compression);
        let segment_bytes = config.segment_bytes;
        let max_batch_bytes = config.max_batch_bytes;
        PartitionLog {
            dir,
            fs,
            config,
            retention_ms: AtomicU64::new(retention_ms),
            retention_bytes: AtomicU64::new(retention_bytes),
            segment_bytes: AtomicU64::new(segment_bytes),
            segment_age_ms: AtomicU64::new(segment_age_ms),
            compression: AtomicU8::new(compression),
            max_batch_bytes: AtomicU32::new(max_batch_bytes),
            state: Mutex::new(LogState {
                segments,
                end,
                durable: end,
                checkpointed: checkpointed.unwrap_or(end.offset),
                dir_changes,
                dir_synced: 0,
                last_flush: SystemTime::now(),
                last_checkpoint: SystemTime::now(),
                checkpoint_failing: false,
                offline,
                closing: false,
                deleted: false,
                open_sealed: VecDeque::new(),
                maintain_passes: 0,
                pending: Default::default(),
                epoch: 0,
                external_hw: None,
                producers: Default::default(),
                pending_snapshot: None,
            }),
            turn: Condvar::new(),
            flush_lock: Mutex::new(()),
            snapshot_lock: Mutex::new(()),
            checked_boundary: Mutex::new(None),
            high_watermark: AtomicU64::new(end.offset),
            recovery_point: AtomicU64::new(end.offset),
            checkpoint_cap: AtomicU64::new(u64::MAX),
            log_start: AtomicU64::new(log_start),
            next_offset: AtomicU64::new(end.offset),
        }
    }
}

/// The recovery point in the checkpoint file, or `None` when it is missing
/// or damaged (then everything is rescanned).
fn read_checkpoint(fs: &dyn FileSystem, dir: &std::path::Path) -> Option<u64> {
    let path = dir.join(CHECKPOINT_FILE);
    let (buf, n) = read_small_file(fs, &path, "rescanning every segment")?;
    match Checkpoint::decode(buf.get(..n).unwrap_or_default()) {
        Ok(cp) => Some(cp.recovery_point),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring damaged checkpoint; rescanning every segment");
            None
        }
    }
}

/// The first `CHECKPOINT_LEN + 1` bytes of the small file `path` and how
/// many there were; `None` when it does not exist, or, with a warning
/// naming `consequence`, when it cannot be opened or read (the same as a
/// damaged one: a file that exists and cannot be read is not taken as
/// missing without a word).
fn read_small_file(
    fs: &dyn FileSystem,
    path: &std::path::Path,
    consequence: &str,
) -> Option<([u8; CHECKPOINT_LEN + 1], usize)> {
    if !fs.exists(path) {
        return None;
    }
    let mut buf = [0u8; CHECKPOINT_LEN + 1];
    let read = fs
        .open(path, OpenMode::Existing)
        .and_then(|file| read_full_at(&*file, &mut buf, 0));
    match read {
        Ok(n) => Some((buf, n)),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring a file that cannot be read; {consequence}");
            None
        }
    }
}

/// The offset in the log-start-offset file, or `None` when there is none
/// (nothing was deleted from the log's start but whole segments) or it is
/// damaged (then the log starts at its first segment).
fn read_log_start(fs: &dyn FileSystem, dir: &std::path::Path) -> Option<u64> {
    let path = dir.join(LOG_START_FILE);
    let (buf, n) = read_small_file(fs, &path, "the log starts at its first segment")?;
    match LogStart::decode(buf.get(..n).unwrap_or_default()) {
        Ok(s) => Some(s.offset),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring a damaged log start offset; the log starts at its first segment");
            None
        }
    }
}

/// The end of the last whole batch in `segments` (the start of an empty log
/// if there are none).
fn end_of(segments: &VecDeque<Segment>) -> LogPoint {
    segments.back().map_or(
        LogPoint {
            offset: 0,
            segment_base: 0,
            position: 0,
        },
        |s| LogPoint {
            offset: s.next_offset(),
            segment_base: s.base_offset(),
            position: s.size(),
        },
    )
}
