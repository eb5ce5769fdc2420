//! Idempotent producers at the partition log: duplicates, gaps, fencing,
//! expiry, and the producer table across clean restarts (snapshots), crashes
//! (rebuilt from the log), damaged snapshots, retention and truncation.

use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use sluice_protocol::batch::{BatchBuilder, NewRecord};

use super::util::{read_all, small_config};
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::producer::snapshot::parse_file_name;
use crate::producer::state::SeqError;

fn now_ms() -> i64 {
    crate::log::partition::unix_millis(SystemTime::now())
}

/// A batch of `n` records of producer `pid`/`epoch` starting at `seq`.
fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for i in 0..n {
        let value = format!("p{pid}-s{}", seq as usize + i).into_bytes();
        b.push(&NewRecord {
            timestamp: now_ms(),
            key: None,
            value: Some(&value),
            headers: &[],
        });
    }
    b.finish()
}

fn seq_error(r: Result<crate::log::AppendInfo, LogError>) -> SeqError {
    match r {
        Err(LogError::Sequence { source, .. }) => source,
        other => panic!("expected a sequence error, got {other:?}"),
    }
}

fn snapshots(dir: &std::path::Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| parse_file_name(e.unwrap().file_name().to_str().unwrap()))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_retried_batch_gets_its_original_offsets_and_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut super::util::batch("plain", 2, 10, now_ms()))
        .unwrap();
    let first = log.append(&mut idem(7, 0, 0, 3)).unwrap();
    let second = log.append(&mut idem(7, 0, 3, 2)).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (2, 4));
    let end = log.next_offset();
    let again = log.append(&mut idem(7, 0, 0, 3)).unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.base_offset, again.last_offset, again.next_offset),
        (2, 4, 5)
    );
    assert!(log.append(&mut idem(7, 0, 3, 2)).unwrap().duplicate);
    assert_eq!(log.next_offset(), end, "a duplicate appends nothing");
    assert_eq!(read_all(&log, 1 << 20).len(), 7);
    assert!(!second.duplicate);
    // Non-idempotent batches are never deduplicated.
    log.append(&mut super::util::batch("plain", 2, 10, now_ms()))
        .unwrap();
    log.append(&mut super::util::batch("plain", 2, 10, now_ms()))
        .unwrap();
    assert_eq!(log.next_offset(), end + 4);
}

#[test]
fn gaps_and_stale_epochs_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(1, 1, 0, 2)).unwrap();
    assert!(matches!(
        seq_error(log.append(&mut idem(1, 1, 3, 1))),
        SeqError::OutOfOrder {
            expected: 2,
            found: 3,
            ..
        }
    ));
    assert!(matches!(
        seq_error(log.append(&mut idem(1, 0, 2, 1))),
        SeqError::Fenced {
            epoch: 0,
            current: 1,
            ..
        }
    ));
    assert_eq!(log.next_offset(), 2);
    // One append of two batches of one producer: each checked in order.
    let mut two = idem(1, 1, 2, 1);
    two.extend_from_slice(&idem(1, 1, 3, 2));
    assert_eq!(log.append(&mut two).unwrap().last_offset, 4);
    let mut gap = idem(1, 1, 5, 1);
    gap.extend_from_slice(&idem(1, 1, 7, 1));
    assert!(matches!(
        seq_error(log.append(&mut gap)),
        SeqError::OutOfOrder {
            expected: 6,
            found: 7,
            ..
        }
    ));
    assert_eq!(log.next_offset(), 5);
    // A retry glued to a new batch, or to a batch of no producer.
    let mut mixed = idem(1, 1, 3, 2);
    mixed.extend_from_slice(&idem(1, 1, 5, 1));
    assert!(matches!(
        seq_error(log.append(&mut mixed)),
        SeqError::MixedRetry
    ));
    let mut mixed = idem(1, 1, 3, 2);
    mixed.extend_from_slice(&super::util::batch("plain", 1, 10, now_ms()));
    assert!(matches!(
        seq_error(log.append(&mut mixed)),
        SeqError::MixedRetry
    ));
    assert_eq!(log.next_offset(), 5);
    // A producer the partition does not hold starts at any sequence, as in
    // Kafka 2.5+ (its earlier batches may have left with retention).
    assert_eq!(log.append(&mut idem(2, 0, 5, 1)).unwrap().base_offset, 5);
    // A negative epoch is older than any (epochs compare signed, as in
    // Kafka: a producer past 32767 takes a new id, it does not wrap); a
    // negative sequence is out of order.
    assert!(matches!(
        seq_error(log.append(&mut idem(1, i16::MIN, 0, 1))),
        SeqError::Fenced {
            epoch: i16::MIN,
            current: 1,
            ..
        }
    ));
    assert!(matches!(
        seq_error(log.append(&mut idem(3, -3, 0, 1))),
        SeqError::Fenced {
            epoch: -3,
            current: 0,
            ..
        }
    ));
    assert!(matches!(
        seq_error(log.append(&mut idem(3, 0, -2, 1))),
        SeqError::OutOfOrder { found: -2, .. }
    ));
    assert_eq!(log.next_offset(), 6);
}

#[test]
fn idle_producers_expire() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        producer_id_expiration: Duration::from_secs(60),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    log.append(&mut idem(3, 0, 0, 1)).unwrap();
    assert_eq!(log.expire_producers(SystemTime::now()), 0);
    assert_eq!(
        log.expire_producers(SystemTime::now() + Duration::from_secs(61)),
        1
    );
    // Forgotten, it starts afresh wherever its sequence is (as in Kafka
    // 2.5+), and is held again from there.
    let at = log.next_offset();
    assert_eq!(log.append(&mut idem(3, 0, 7, 1)).unwrap().base_offset, at);
    assert!(log.append(&mut idem(3, 0, 7, 1)).unwrap().duplicate);
    assert!(matches!(
        seq_error(log.append(&mut idem(3, 0, 9, 1))),
        SeqError::OutOfOrder { expected: 8, .. }
    ));
}

#[test]
fn the_table_survives_a_clean_restart_from_its_snapshot_without_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(9, 0, 0, 4)).unwrap();
    log.close().unwrap();
    assert_eq!(snapshots(dir.path()), [4]);
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(report.clean_shutdown);
    assert_eq!(report.producer_batches_scanned, 0);
    let dup = log.append(&mut idem(9, 0, 0, 4)).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 0);
    assert_eq!(log.append(&mut idem(9, 0, 4, 1)).unwrap().base_offset, 4);
}

/// One record of 1 KiB from producer 5 (epoch 0) with sequence `seq`.
fn kilobyte_batch(seq: i32) -> bytes::BytesMut {
    let mut b = BatchBuilder::new().producer(5, 0, seq);
    b.push(&NewRecord {
        timestamp: now_ms(),
        key: None,
        value: Some(&[7u8; 1000]),
        headers: &[],
    });
    b.finish()
}

#[test]
fn after_a_crash_the_table_is_rebuilt_from_the_batches_after_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // 1 KiB records, 16 KiB segments: rolls (and snapshots) every ~15 batches.
    for seq in 0..40 {
        log.append(&mut kilobyte_batch(seq)).unwrap();
    }
    assert!(log.segment_count() > 2);
    // The appends that rolled wrote no file; the maintenance pass does.
    assert!(snapshots(dir.path()).is_empty());
    log.maintain(std::time::SystemTime::now()).unwrap();
    let snaps = snapshots(dir.path());
    assert!(!snaps.is_empty() && snaps.len() <= 2, "{snaps:?}");
    drop(log); // a crash: no clean-shutdown snapshot
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!report.clean_shutdown);
    let newest = *snaps.last().unwrap();
    assert_eq!(report.producer_batches_scanned as u64, 40 - newest);
    let dup = log.append(&mut kilobyte_batch(39)).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 39);
    assert_eq!(log.next_offset(), 40);
}

/// A replicated log's upkeep (`maintain_except_retention`) writes the
/// roll's table too, though its retention runs elsewhere and only when it
/// deletes: recovery after a crash scans the batches after the last roll,
/// not the whole log.
#[test]
fn upkeep_without_retention_writes_the_rolls_table() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for seq in 0..40 {
        log.append(&mut kilobyte_batch(seq)).unwrap();
    }
    assert!(log.segment_count() > 2);
    assert!(snapshots(dir.path()).is_empty());
    log.maintain_except_retention(std::time::SystemTime::now())
        .unwrap();
    let snaps = snapshots(dir.path());
    let newest = *snaps.last().expect("the roll's table was not written");
    assert!(newest > 0 && newest < 40, "{snaps:?}");
    drop(log); // a crash
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.producer_batches_scanned as u64, 40 - newest);
    assert!(log.append(&mut kilobyte_batch(39)).unwrap().duplicate);
}

#[test]
fn a_damaged_snapshot_is_ignored_and_the_table_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(9, 0, 0, 4)).unwrap();
    log.close().unwrap();
    let path = dir.path().join(crate::producer::snapshot::file_name(4));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.producer_batches_scanned, 1);
    assert!(
        snapshots(dir.path()).is_empty(),
        "the damaged snapshot is deleted"
    );
    assert!(log.append(&mut idem(9, 0, 0, 4)).unwrap().duplicate);
}

#[test]
fn truncation_rolls_the_table_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(2, 0, 0, 2)).unwrap();
    log.append(&mut idem(2, 0, 2, 2)).unwrap();
    assert_eq!(log.truncate_to(2).unwrap(), 2);
    // The cut batch is new again, not a duplicate; the one after it a gap.
    assert!(matches!(
        seq_error(log.append(&mut idem(2, 0, 4, 1))),
        SeqError::OutOfOrder { expected: 2, .. }
    ));
    let again = log.append(&mut idem(2, 0, 2, 2)).unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.base_offset, 2);
}

/// A roll keeps the producer table as of the roll for the next
/// maintenance pass to write. A truncation below the roll cuts batches
/// that table holds: it must not be written, or a restart would load it
/// and take the retry of a cut batch for a duplicate (acknowledged, never
/// stored).
#[test]
fn a_truncation_below_a_roll_drops_the_table_the_roll_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(3, 0, 0, 1)).unwrap();
    let fill = || super::util::batch("fill", 1, 1000, now_ms());
    while log.segment_count() < 2 {
        log.append(&mut fill()).unwrap();
    }
    let cut = log.append(&mut idem(3, 0, 1, 1)).unwrap().base_offset;
    // Roll again: the table kept at that roll holds the batch at `cut`.
    while log.segment_count() < 3 {
        log.append(&mut fill()).unwrap();
    }
    let rolled_at = log.next_offset() - 1;
    assert_eq!(log.truncate_to(cut).unwrap(), cut);
    log.write_pending_producer_snapshot();
    assert!(
        snapshots(dir.path()).iter().all(|&o| o <= cut),
        "a snapshot past the cut at {cut}: {:?}",
        snapshots(dir.path())
    );
    // The log grows past the old roll again; then a crash.
    while log.next_offset() <= rolled_at + 2 {
        log.append(&mut fill()).unwrap();
    }
    log.write_pending_producer_snapshot();
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let retry = log.append(&mut idem(3, 0, 1, 1)).unwrap();
    assert!(
        !retry.duplicate,
        "the cut batch's retry was taken for a duplicate"
    );
    assert_eq!(read_all(&log, u64::MAX).len() as u64, log.next_offset());
}

/// The same, with the roll's table being written while the truncation
/// comes: the write finishes before the truncation goes on, which then
/// removes it, rather than landing after the truncation removed the
/// snapshots past its cut.
#[test]
fn a_truncation_during_the_write_of_a_rolls_table_removes_it() {
    use crate::log::fault::{Faults, FaultyFs};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = Arc::new(FaultyFs::new(faults.clone()));
    let (log, _) = PartitionLog::open_with(fs.clone(), dir.path(), small_config()).unwrap();
    let log = Arc::new(log);
    log.append(&mut idem(3, 0, 0, 1)).unwrap();
    let fill = || super::util::batch("fill", 1, 1000, now_ms());
    while log.segment_count() < 2 {
        log.append(&mut fill()).unwrap();
    }
    let cut = log.append(&mut idem(3, 0, 1, 1)).unwrap().base_offset;
    while log.segment_count() < 3 {
        log.append(&mut fill()).unwrap();
    }
    let rolled_at = log.next_offset() - 1;
    // The write of the table the last roll kept stalls at its first byte.
    faults.set_hold_writes(true);
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.write_pending_producer_snapshot())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while faults.writes_held() == 0 {
        assert!(std::time::Instant::now() < deadline, "the write never came");
        std::thread::sleep(Duration::from_millis(1));
    }
    let truncation = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.truncate_to(cut))
    };
    std::thread::sleep(Duration::from_millis(200));
    faults.set_hold_writes(false);
    writer.join().unwrap();
    assert_eq!(truncation.join().unwrap().unwrap(), cut);
    assert!(
        snapshots(dir.path()).iter().all(|&o| o <= cut),
        "a snapshot past the cut at {cut}: {:?}",
        snapshots(dir.path())
    );
    // The log grows past the old roll again; then a crash.
    while log.next_offset() <= rolled_at + 2 {
        log.append(&mut fill()).unwrap();
    }
    drop(log);
    let (log, _) = PartitionLog::open_with(fs, dir.path(), small_config()).unwrap();
    let retry = log.append(&mut idem(3, 0, 1, 1)).unwrap();
    assert!(
        !retry.duplicate,
        "the cut batch's retry was taken for a duplicate"
    );
}

#[test]
fn dedup_survives_retention_of_the_segments_that_held_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(16 * 1024),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    log.append(&mut idem(4, 0, 0, 1)).unwrap();
    for _ in 0..60 {
        log.append(&mut super::util::batch("fill", 1, 1000, now_ms()))
            .unwrap();
    }
    log.retain(SystemTime::now()).unwrap();
    assert!(
        log.log_start_offset() > 0,
        "retention deleted the first segments"
    );
    assert!(
        snapshots(dir.path())
            .iter()
            .all(|&o| o >= log.log_start_offset())
            || snapshots(dir.path()).len() == 1
    );
    drop(log); // crash
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let dup = log.append(&mut idem(4, 0, 0, 1)).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 0);
}

#[test]
fn a_failed_write_forgets_its_batches_so_the_retry_is_appended() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (log, _) = PartitionLog::open_with(
        std::sync::Arc::new(FaultyFs::new(faults.clone())),
        dir.path(),
        small_config(),
    )
    .unwrap();
    log.append(&mut idem(8, 0, 0, 1)).unwrap();
    faults.set_space_left(10);
    let err = log.append(&mut idem(8, 0, 1, 3)).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    faults.clear_disk_full();
    // Not a duplicate of the failed write: appended now, at the offset it
    // would have had.
    let retry = log.append(&mut idem(8, 0, 1, 3)).unwrap();
    assert!(!retry.duplicate);
    assert_eq!((retry.base_offset, log.next_offset()), (1, 4));
    assert!(log.append(&mut idem(8, 0, 1, 3)).unwrap().duplicate);
}

#[test]
fn reset_to_leaves_no_producer_snapshot_of_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut idem(9, 0, 0, 4)).unwrap();
    log.close().unwrap();
    assert_eq!(snapshots(dir.path()), [4]);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.reset_to(100).unwrap();
    assert_eq!(log.producer_count(), 0);
    assert!(
        snapshots(dir.path()).is_empty(),
        "{:?}",
        snapshots(dir.path())
    );
    drop(log); // a crash: no clean-shutdown snapshot
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.producer_count(), 0, "the old log's producers came back");
    // The old producer's first batch is new here, not a duplicate.
    let info = log.append(&mut idem(9, 0, 0, 4)).unwrap();
    assert!(!info.duplicate);
    assert_eq!(info.base_offset, 100);
}
