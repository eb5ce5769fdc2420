use std::sync::Arc;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::fault::{Faults, FaultyFs};
use crate::log::{FlushPolicy, LogError, PartitionLog};

fn faulty(dir: &std::path::Path, flush: FlushPolicy) -> (PartitionLog, Arc<Faults>) {
    let faults = Faults::new();
    let config = crate::log::LogConfig {
        flush,
        ..small_config()
    };
    let (log, _) =
        PartitionLog::open_with(Arc::new(FaultyFs::new(faults.clone())), dir, config).unwrap();
    (log, faults)
}

#[test]
fn disk_full_mid_append_rolls_back_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::Never);
    for i in 0..10 {
        log.append(&mut batch(&format!("ok{i}"), 2, 100, 0))
            .unwrap();
    }
    let before = read_all(&log, 1 << 20);
    let size = log.size_in_bytes();
    faults.set_space_left(100);
    let err = log.append(&mut batch("big", 5, 200, 0)).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(err.is_retriable());
    assert!(err.to_string().contains("append to"), "{err}");
    assert_eq!(log.next_offset(), 20);
    assert_eq!(log.size_in_bytes(), size);
    let file_len = std::fs::metadata(dir.path().join(format!("{:020}.log", 0)))
        .unwrap()
        .len();
    assert!(file_len <= size, "partial write truncated back");
    assert_eq!(read_all(&log, 1 << 20), before);
    faults.clear_disk_full();
    assert_eq!(
        log.append(&mut batch("again", 1, 10, 0))
            .unwrap()
            .base_offset,
        20
    );
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    drop(log);
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(read_all(&log, 1 << 20), all);
}

#[test]
fn write_eio_is_reported_and_short_writes_are_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::Never);
    faults.set_write_eio(true);
    let err = log.append(&mut batch("x", 1, 10, 0)).unwrap_err();
    assert!(
        matches!(err, LogError::Io { .. }) && !err.is_disk_full(),
        "{err}"
    );
    faults.set_write_eio(false);
    faults.set_short_writes(true);
    for i in 0..20 {
        log.append(&mut batch(&format!("s{i}"), 3, 500, 0)).unwrap();
    }
    faults.set_short_writes(false);
    let all = read_all(&log, 1 << 20);
    assert_eq!(all.len(), 60);
    assert!(all[59].1.starts_with(b"s19-2"));
}

#[test]
fn failed_fsync_takes_the_log_offline_but_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::BeforeAck);
    let info = log.append(&mut batch("durable", 3, 10, 0)).unwrap();
    log.flush_to(info.next_offset).unwrap();
    let info = log.append(&mut batch("lost", 3, 10, 0)).unwrap();
    faults.set_fsync_fails(true);
    let err = log.flush_to(info.next_offset).unwrap_err();
    assert!(matches!(err, LogError::Offline { .. }), "{err}");
    assert!(log.is_offline());
    assert_eq!(
        log.high_watermark(),
        3,
        "unflushed data never became visible"
    );
    faults.set_fsync_fails(false);
    let err = log.append(&mut batch("refused", 1, 10, 0)).unwrap_err();
    assert!(matches!(err, LogError::Offline { .. }), "{err}");
    assert!(!err.is_retriable());
    assert!(log.flush().is_err(), "fsync errors are not retried");
    assert_eq!(read_all(&log, 1 << 20).len(), 3);
    log.close().unwrap(); // no clean-shutdown marker for an offline log
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!report.clean_shutdown);
    assert!(log.next_offset() >= 3);
    assert!(log.append(&mut batch("back", 1, 10, 0)).is_ok());
}

/// A directory sync whose open fails for want of descriptors did not run:
/// nothing written back failed, so the flush fails and the next one (with
/// descriptors again) succeeds; the log stays online. It went offline for
/// good, and with it most partitions of a broker at its open-file limit.
#[test]
fn a_directory_that_cannot_be_opened_for_its_sync_fails_the_flush_not_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::BeforeAck);
    let info = log.append(&mut batch("first", 3, 10, 0)).unwrap();
    log.flush_to(info.next_offset).unwrap();
    // Append until a segment rolls: the next flush syncs the directory.
    let mut records = 3;
    let info = loop {
        let info = log.append(&mut batch("roll", 3, 100, 0)).unwrap();
        records += 3;
        if info.rolled {
            break info;
        }
    };
    faults.set_dir_open_emfile(true);
    let err = log.flush_to(info.next_offset).unwrap_err();
    assert!(!matches!(err, LogError::Offline { .. }), "{err}");
    assert!(err.to_string().contains("open for fsync"), "{err}");
    assert!(!log.is_offline());
    assert!(
        log.high_watermark() < info.next_offset,
        "not durable, not visible"
    );
    faults.set_dir_open_emfile(false);
    log.flush_to(info.next_offset).unwrap();
    assert_eq!(log.high_watermark(), info.next_offset);
    let info = log.append(&mut batch("more", 2, 10, 0)).unwrap();
    log.flush_to(info.next_offset).unwrap();
    assert_eq!(read_all(&log, 1 << 20).len(), records + 2);
}

#[test]
fn read_errors_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::Never);
    for i in 0..30 {
        log.append(&mut batch(&format!("r{i}"), 4, 100, i)).unwrap();
    }
    // Reopened after a clean shutdown, the log knows batch boundaries only
    // from disk.
    log.close().unwrap();
    let (log, _) = PartitionLog::open_with(
        Arc::new(FaultyFs::new(faults.clone())),
        dir.path(),
        small_config(),
    )
    .unwrap();
    faults.set_read_eio(true);
    assert!(matches!(log.read(5, 100), Err(LogError::Io { .. })));
    assert!(log.offset_for_timestamp(20).is_err());
    // The header of the batch a read starts at is read and checked, even
    // at a segment's start.
    assert!(matches!(log.read(0, 1 << 20), Err(LogError::Io { .. })));
    assert!(matches!(log.read(0, 100), Err(LogError::Io { .. })));
    drop(log);
    let err = PartitionLog::open_with(
        Arc::new(FaultyFs::new(faults.clone())),
        dir.path(),
        small_config(),
    )
    .unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err}");
    faults.set_read_eio(false);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 1 << 20).len(), 120);
}

/// The index is memory-mapped: a store into a page without a disk block
/// would be `SIGBUS` on a full disk. Its blocks are reserved first, and an
/// entry whose blocks cannot be reserved is left out.
#[test]
fn an_index_entry_whose_blocks_cannot_be_reserved_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::Never);
    let index = dir.path().join(format!("{:020}.index", 0));
    let first_entry = || -> [u8; 8] {
        let bytes = std::fs::read(&index).unwrap();
        bytes[..8].try_into().unwrap()
    };
    // The first batch is at position 0, which is never indexed.
    log.append(&mut batch("first", 2, 300, 0)).unwrap();
    // The second is due an entry (512 bytes since the last), but its write
    // takes the last free byte.
    let mut second = batch("second", 2, 300, 0);
    faults.set_space_left(second.len() as u64);
    let at = log.size_in_bytes();
    assert_eq!(log.append(&mut second).unwrap().base_offset, 2);
    assert_eq!(first_entry(), [0; 8], "no entry without reserved blocks");
    faults.clear_disk_full();
    let third_at = log.size_in_bytes();
    assert_eq!(
        log.append(&mut batch("third", 2, 300, 0))
            .unwrap()
            .base_offset,
        4
    );
    assert!(third_at > at);
    let mut want = [0u8; 8];
    want[..4].copy_from_slice(&4u32.to_be_bytes());
    want[4..].copy_from_slice(&(third_at as u32).to_be_bytes());
    assert_eq!(first_entry(), want, "the next batch is indexed");
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert_eq!(all.len(), 6);
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 1 << 20), all);
}

#[test]
fn a_log_closed_for_deletion_refuses_appends_and_flushes_as_deleted_not_as_a_storage_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _faults) = faulty(dir.path(), FlushPolicy::Never);
    let info = log.append(&mut batch("before", 3, 10, 0)).unwrap();
    log.close_for_deletion();
    let err = log.append(&mut batch("after", 1, 10, 0)).unwrap_err();
    assert!(matches!(err, LogError::Deleted), "{err}");
    assert!(!err.is_storage_failure() && !err.is_retriable(), "{err}");
    assert_eq!(
        crate::error::log_error_code(&err),
        sluice_protocol::wire::ErrorCode::UnknownTopicOrPartition
    );
    let err = log.flush_to(info.next_offset).unwrap_err();
    assert!(matches!(err, LogError::Deleted), "{err}");
    // So is a move of the log start (DeleteRecords, retention).
    let err = log.delete_records_before(1).unwrap_err();
    assert!(matches!(err, LogError::Deleted), "{err}");
    // Readers holding the log still read what it had.
    assert_eq!(read_all(&log, 1 << 20).len(), 3);
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_neither_flushes_nor_retention() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let config = crate::log::LogConfig {
        retention_bytes: Some(40 * 1024),
        flush: FlushPolicy::Never,
        ..small_config()
    };
    let (log, _) =
        PartitionLog::open_with(Arc::new(FaultyFs::new(faults.clone())), dir.path(), config)
            .unwrap();
    for i in 0..300 {
        log.append(&mut batch(&format!("s{i}"), 2, 300, 0)).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 4, "{segments}");
    // The disk is full: the sealed segments' fsync needs no space, the
    // checkpoint file does.
    faults.set_space_left(0);
    let outcome = log
        .maintain(std::time::SystemTime::now())
        .expect("upkeep goes on without its checkpoint");
    assert!(outcome.flushed);
    assert!(outcome.retained.segments > 0, "retention frees space");
    assert!(log.segment_count() < segments);
    // Data flushed is durable whatever became of the checkpoint.
    log.append(&mut batch("more", 1, 10, 0)).unwrap_err();
    log.flush().expect("a flush with nothing new");
    let again = log
        .maintain(std::time::SystemTime::now())
        .expect("and again");
    assert_eq!(again.retained.segments, 0);
    faults.clear_disk_full();
    let start = log.log_start_offset();
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, start);
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(read_all(&log, 1 << 20), all);
}

#[test]
fn a_reset_that_fails_midway_takes_the_log_offline_and_every_call_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), FlushPolicy::Never);
    for i in 0..300 {
        log.append(&mut batch(&format!("r{i}"), 2, 300, 0)).unwrap();
    }
    assert!(log.segment_count() > 1);
    // The old files are unlinked, then the directory sync fails.
    faults.set_fsync_fails(true);
    let err = log.reset_to(1_000).unwrap_err();
    assert!(matches!(err, LogError::Offline { .. }), "{err}");
    assert!(
        err.to_string().contains("resetting the log failed"),
        "{err}"
    );
    faults.set_fsync_fails(false);
    // Refused, not a panic: appends, flushes, upkeep, another reset.
    assert!(matches!(
        log.append(&mut batch("after", 1, 10, 0)),
        Err(LogError::Offline { .. })
    ));
    assert!(log.flush().is_err());
    let _ = log.maintain(std::time::SystemTime::now());
    let _ = log.read(0, 1 << 20);
    assert!(log.reset_to(1_000).is_err());
    drop(log);
    // The next open finds what the failure left: no segment file.
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.next_offset(), 0);
}
