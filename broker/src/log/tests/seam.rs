//! The replication seam: follower appends, runtime truncation, and a high
//! watermark set from outside the log.

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::io::read_full_at;
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog};

fn leader_batch(tag: &str, n: usize, base: u64) -> Vec<u8> {
    let mut b = batch(tag, n, 100, 1000).to_vec();
    sluice_protocol::batch::set_base_offset(&mut b, base as i64).unwrap();
    b
}

#[test]
fn truncation_across_segments_moves_end_and_high_watermark_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(&mut batch(&format!("b{i}"), 4, 100, 1000))
            .unwrap();
    }
    assert!(log.segment_count() >= 3);
    // A reader holds a slice of the last segment across the truncation.
    let held = log.read(390, 1 << 20).unwrap();
    let segments = log.segment_count();
    // Offset 42 lies inside the batch that starts at 40.
    assert_eq!(log.truncate_to(42).unwrap(), 40);
    assert_eq!(log.next_offset(), 40);
    assert_eq!(log.high_watermark(), 40);
    assert!(log.segment_count() < segments);
    let records = read_all(&log, 1 << 20);
    assert_eq!(records.len(), 40);
    assert_contiguous(&records, 0);
    assert!(matches!(
        log.read(41, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // The old handle still reads (its file was deleted, not reused).
    let mut buf = vec![0u8; held.len as usize];
    let file = held.file.as_ref().unwrap();
    assert_eq!(
        read_full_at(&**file, &mut buf, held.position).unwrap(),
        buf.len()
    );
    // Appends go on from the new end, also as a follower.
    let info = log.append(&mut batch("new", 2, 100, 1000)).unwrap();
    assert_eq!(info.base_offset, 40);
    let info = log.append_at(42, &mut leader_batch("f", 3, 42)).unwrap();
    assert_eq!(info.next_offset, 45);
    // Truncating at or past the end changes nothing; below the start fails.
    assert_eq!(log.truncate_to(1000).unwrap(), 45);
    // A crash right after a truncation keeps it.
    assert_eq!(log.truncate_to(43).unwrap(), 42);
    drop(log);
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!report.clean_shutdown);
    assert_eq!(log.next_offset(), 42);
    assert_contiguous(&read_all(&log, 1 << 20), 0);
}

#[test]
fn truncation_to_a_sealed_segment_reactivates_it_and_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(&mut batch(&format!("b{i}"), 4, 100, 1000))
            .unwrap();
    }
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 400);
    assert_eq!(log.truncate_to(8).unwrap(), 8);
    assert_eq!(log.recovery_point(), 8, "the recovery point moves back");
    assert_eq!(log.segment_count(), 1);
    for i in 0..60 {
        log.append(&mut batch(&format!("c{i}"), 4, 100, 1000))
            .unwrap();
    }
    let expected = read_all(&log, 1 << 20);
    assert_eq!(expected.len(), 248);
    log.close().unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(report.clean_shutdown);
    assert_eq!(read_all(&log, 300), expected);
}

#[test]
fn follower_append_refuses_a_base_that_is_not_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append_at(0, &mut leader_batch("a", 2, 0)).unwrap();
    let err = log.append_at(3, &mut leader_batch("b", 2, 3)).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::BaseOffsetMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
    // The batches must carry the offsets they claim, back to back.
    let mut two = leader_batch("c", 2, 2);
    two.extend_from_slice(&leader_batch("d", 1, 5));
    let err = log.append_at(2, &mut two).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::BaseOffsetMismatch {
                expected: 4,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(log.next_offset(), 2);
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.next_offset(), 0);
    assert!(read_all(&log, 100).is_empty());
}

#[test]
fn an_external_high_watermark_is_capped_and_rounded_to_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::BeforeAck,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    // Entering the mode keeps the value; appends and flushes no longer move it.
    assert_eq!(log.set_high_watermark(0).unwrap(), 0);
    for i in 0..11 {
        log.append(&mut batch(&format!("b{i}"), 4, 100, 1000))
            .unwrap();
    }
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 44);
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.read(0, 100).unwrap().len, 0);
    // Rounded down to the batch holding 30 (which starts at 28)...
    assert_eq!(log.set_high_watermark(30).unwrap(), 28);
    let slice = log.read(20, 1 << 20).unwrap();
    assert_eq!(slice.next_offset, 28);
    // ...never back, never past the durable end.
    assert_eq!(log.set_high_watermark(24).unwrap(), 28);
    assert_eq!(log.set_high_watermark(1000).unwrap(), 44);
    log.append(&mut batch("unflushed", 4, 100, 1000)).unwrap();
    assert_eq!(
        log.set_high_watermark(1000).unwrap(),
        44,
        "not before it is durable"
    );
    // A truncation below it takes it back.
    assert_eq!(log.truncate_to(36).unwrap(), 36);
    assert_eq!(log.high_watermark(), 36);
    assert_eq!(read_all(&log, 1 << 20).len(), 36);
}
