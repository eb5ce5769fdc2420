//! The log methods a replicated partition adds: reading an appended range
//! past the high watermark, restarting the log empty at an offset, and
//! retention bounded by the Raft purge point.

use std::time::SystemTime;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::io::read_full_at;
use crate::log::{LogConfig, LogError, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        ..small_config()
    }
}

#[test]
fn read_appended_serves_an_append_past_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
    // Only the commit point moves the high watermark from here on.
    log.set_high_watermark(0).unwrap();
    let mut appended = Vec::new();
    for i in 0..40 {
        let mut b = batch(&format!("r{i}"), 1 + i % 3, 100, 1000);
        let info = log.append(&mut b).unwrap();
        appended.push((info.base_offset, info.next_offset, b.to_vec()));
    }
    assert_eq!(log.high_watermark(), 0);
    assert!(log.segment_count() > 2);
    for (base, next, bytes) in &appended {
        let slice = log.read_appended(*base, *next).unwrap();
        assert_eq!((slice.first_offset, slice.next_offset), (*base, *next));
        let mut buf = vec![0u8; slice.len as usize];
        let file = slice.file.as_ref().unwrap();
        assert_eq!(
            read_full_at(&**file, &mut buf, slice.position).unwrap(),
            buf.len()
        );
        assert_eq!(&buf, bytes, "offsets {base}..{next}");
    }
    // Not batch boundaries, or past the end: refused.
    let (base, next, _) = &appended[1];
    assert_eq!(next - base, 2);
    assert!(matches!(
        log.read_appended(base + 1, *next),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read_appended(*base, next - 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read_appended(*base, log.next_offset() + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Two appends at once (within one segment) read as one range.
    let (b0, _, x) = &appended[0];
    let (_, n1, y) = &appended[1];
    let two = log.read_appended(*b0, *n1).unwrap();
    assert_eq!(two.len as usize, x.len() + y.len());
}

#[test]
fn reset_to_restarts_the_log_empty_at_an_offset_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
    for i in 0..30 {
        log.append(&mut batch(&format!("old{i}"), 4, 100, 1000))
            .unwrap();
    }
    log.reset_to(5000).unwrap();
    assert_eq!(log.log_start_offset(), 5000);
    assert_eq!(log.next_offset(), 5000);
    assert_eq!(log.high_watermark(), 5000);
    assert_eq!(log.segment_count(), 1);
    assert!(read_all(&log, 1 << 20).is_empty());
    let info = log.append(&mut batch("new", 3, 100, 1000)).unwrap();
    assert_eq!(info.base_offset, 5000);
    log.flush_to(info.next_offset).unwrap();
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), 5000);
    let records = read_all(&log, 1 << 20);
    assert_eq!(records.len(), 3);
    assert_contiguous(&records, 5000);
}

#[test]
fn retain_below_keeps_segments_at_or_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(1),
        ..config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..60 {
        log.append(&mut batch(&format!("r{i}"), 4, 100, 1000))
            .unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    let out = log.retain_below(SystemTime::now(), 40).unwrap();
    assert!(out.segments > 0);
    assert!(log.log_start_offset() <= 40, "kept everything from 40 on");
    assert!(read_all(&log, 1 << 20).iter().any(|(o, _)| *o == 40));
    let start = log.log_start_offset();
    // Without the limit, retention by size goes further.
    log.retain(SystemTime::now()).unwrap();
    assert!(log.log_start_offset() > start);
}

/// A crash in the middle of `reset_to`, simulated by the two torn states
/// its order of operations allows: the checkpoint lowered to 0 and the old
/// segments deleted (no segment), and the new empty segment created but the
/// checkpoint not yet rewritten (still 0). Either reopens to a
/// consistent empty log that takes appends, and a repeated reset completes.
#[test]
fn a_crash_in_the_middle_of_reset_to_reopens_consistent() {
    use crate::log::format::{CHECKPOINT_FILE, CLEAN_SHUTDOWN_FILE};

    for torn in ["segments deleted", "new segment, checkpoint 0"] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
        for i in 0..30 {
            log.append(&mut batch(&format!("old{i}"), 4, 100, 1000))
                .unwrap();
        }
        log.close().unwrap();
        // `reset_to` first lowers the checkpoint to 0.
        let zero = crate::log::format::Checkpoint { recovery_point: 0 }.encode();
        match torn {
            "segments deleted" => {
                std::fs::write(dir.path().join(CHECKPOINT_FILE), zero).unwrap();
                for e in std::fs::read_dir(dir.path()).unwrap() {
                    let p = e.unwrap().path();
                    let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                    if name != CHECKPOINT_FILE && p.is_file() {
                        std::fs::remove_file(&p).unwrap();
                    }
                }
            }
            _ => {
                let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
                log.reset_to(5000).unwrap();
                drop(log);
                std::fs::write(dir.path().join(CHECKPOINT_FILE), zero).unwrap();
                let _ = std::fs::remove_file(dir.path().join(CLEAN_SHUTDOWN_FILE));
            }
        }
        let (log, _) = PartitionLog::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("{torn}: reopen failed: {e}"));
        let (start, end) = (log.log_start_offset(), log.next_offset());
        assert!(start <= end, "{torn}: start {start} end {end}");
        assert!(log.high_watermark() <= end, "{torn}");
        assert!(read_all(&log, 1 << 20).is_empty(), "{torn}: old records");
        let info = log.append(&mut batch("after", 2, 100, 1000)).unwrap();
        assert_eq!(info.base_offset, end, "{torn}");
        // The caller repeats the reset: it completes and survives reopen.
        log.reset_to(5000).unwrap();
        drop(log);
        let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_start_offset(), 5000, "{torn}");
        assert_eq!(log.next_offset(), 5000, "{torn}");
        assert!(read_all(&log, 1 << 20).is_empty(), "{torn}");
    }
}

#[test]
fn a_read_past_the_high_watermark_but_within_the_log_is_empty_not_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
    log.set_high_watermark(0).unwrap();
    for i in 0..6 {
        log.append(&mut batch(&format!("r{i}"), 2, 100, 1000))
            .unwrap();
    }
    // A new leader: its log holds offsets 0..12, its watermark is still 4.
    assert_eq!(log.set_high_watermark(4).unwrap(), 4);
    assert_eq!(log.next_offset(), 12);
    for offset in [4, 5, 11, 12] {
        let slice = log.read(offset, 1 << 20).unwrap();
        assert_eq!(slice.len, 0, "offset {offset}");
        assert_eq!(
            (slice.first_offset, slice.next_offset, slice.high_watermark),
            (offset, offset, 4)
        );
    }
    assert!(matches!(
        log.read(13, 1 << 20),
        Err(LogError::OffsetOutOfRange {
            requested: 13,
            log_start: 0,
            log_end: 12,
            high_watermark: 4,
        })
    ));
    assert!(log.read(2, 1 << 20).unwrap().len > 0);
}
