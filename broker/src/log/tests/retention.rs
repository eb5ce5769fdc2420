use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::io::read_full_at;
use crate::log::{LogConfig, LogError, PartitionLog};

#[test]
fn retention_by_size_deletes_oldest_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(40 * 1024),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..300 {
        log.append(&mut batch(&format!("s{i}"), 2, 300, 0)).unwrap();
    }
    let segments = log.segment_count();
    // A reader holds the oldest segment's file across its deletion.
    let held = log.read(0, 1 << 20).unwrap();
    // The retention point is where the pass below starts the log.
    let point = log.retention_point(SystemTime::now()).unwrap();
    let outcome = log.retain(SystemTime::now()).unwrap();
    assert!(outcome.segments > 0);
    assert_eq!(log.log_start_offset(), point);
    assert_eq!(log.retention_point(SystemTime::now()), None);
    assert_eq!(log.segment_count(), segments - outcome.segments);
    assert!(log.size_in_bytes() >= 40 * 1024);
    assert!(log.size_in_bytes() < 40 * 1024 + 16 * 1024);
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(
        log.read(0, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let rest = read_all(&log, 1 << 20);
    assert_contiguous(&rest, start);
    assert_eq!(rest.last().unwrap().0 + 1, log.next_offset());
    assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
    let mut buf = vec![0u8; held.len as usize];
    let file = held.file.as_ref().unwrap();
    assert_eq!(
        read_full_at(&**file, &mut buf, held.position).unwrap(),
        buf.len()
    );
    sluice_protocol::batch::validate(&buf).unwrap();
    // Reopening keeps the new start.
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn retention_by_age_uses_the_newest_record_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_age: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = now_ms - 2 * 3600 * 1000;
    for i in 0..100 {
        log.append(&mut batch("old", 2, 300, old + i)).unwrap();
    }
    let old_segments = log.segment_count();
    for i in 0..100 {
        log.append(&mut batch("new", 2, 300, now_ms + i)).unwrap();
    }
    let outcome = log.retain(SystemTime::now()).unwrap();
    // Every segment holding only old records goes; the one where old and
    // new meet stays (its newest record is recent).
    assert_eq!(outcome.segments, old_segments - 1);
    let rest = read_all(&log, 1 << 20);
    assert!(rest.iter().any(|(_, v)| v.starts_with(b"old")));
    assert_eq!(log.retain(SystemTime::now()).unwrap().segments, 0);
}

/// Deleting records below an offset inside a batch: the log start moves
/// there (reads below it are out of range, timestamp look-ups skip the
/// deleted records), the segments wholly below it go, retention never moves
/// it back, and a reopen keeps it (a damaged file is ignored).
#[test]
fn records_deleted_below_an_offset_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Record k has timestamp 1000 + k.
    for i in 0..100 {
        log.append(&mut batch(&format!("d{i}"), 2, 300, 1000 + 2 * i))
            .unwrap();
    }
    let segments = log.segment_count();
    let hw = log.high_watermark();
    assert!(matches!(
        log.delete_records_before(hw + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.log_start_offset(), 0);
    // Inside the batch of offsets 150 and 151.
    assert_eq!(log.delete_records_before(151).unwrap(), 151);
    assert_eq!(log.log_start_offset(), 151);
    assert!(log.segment_count() < segments);
    assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
    assert!(matches!(
        log.read(150, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let rest = read_all(&log, 1 << 20);
    assert_contiguous(&rest, 151);
    for (ts, want) in [(0, 151), (1150, 151), (1151, 151), (1152, 152)] {
        let found = log.offset_for_timestamp(ts).unwrap().unwrap();
        assert_eq!((found.offset, found.timestamp), (want, 1000 + want as i64));
    }
    // The largest timestamp counts only records still readable.
    let newest = log.max_timestamp_record().unwrap().unwrap();
    assert_eq!(newest.offset, hw - 1);
    // Lower offsets change nothing; neither does retention.
    assert_eq!(log.delete_records_before(10).unwrap(), 151);
    log.retain(SystemTime::now()).unwrap();
    assert_eq!(log.log_start_offset(), 151);
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 151);
    assert_contiguous(&read_all(&log, 1 << 20), 151);
    // Up to the high watermark: nothing readable, appends go on.
    let hw = log.high_watermark();
    assert_eq!(log.delete_records_before(hw).unwrap(), hw);
    assert!(read_all(&log, 1 << 20).is_empty());
    log.append(&mut batch("after", 1, 10, 5000)).unwrap();
    assert_eq!(read_all(&log, 1 << 20).len(), 1);
    drop(log);
    // A damaged file: the log starts at its first segment again.
    let file = dir.path().join(crate::log::format::LOG_START_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.log_start_offset() < hw);
}

/// Timestamps that only deleted records had are not the largest any more
/// (a log whose newest timestamps are at its start).
#[test]
fn the_largest_timestamp_skips_deleted_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Timestamps fall: record k has 100_000 - k.
    for i in 0..100 {
        log.append(&mut batch(&format!("f{i}"), 1, 300, 100_000 - i))
            .unwrap();
    }
    let first = log.max_timestamp_record().unwrap().unwrap();
    assert_eq!((first.offset, first.timestamp), (0, 100_000));
    log.delete_records_before(37).unwrap();
    let after = log.max_timestamp_record().unwrap().unwrap();
    assert_eq!((after.offset, after.timestamp), (37, 100_000 - 37));
    // One batch whose largest timestamp is at a deleted offset (record k
    // of it has 50_000 - |k - 2| * 10: the largest at offset 102).
    let mut b = sluice_protocol::batch::BatchBuilder::new();
    for k in 0..10i64 {
        b.push(&sluice_protocol::batch::NewRecord {
            timestamp: 200_000 - (k - 2).abs() * 10,
            key: None,
            value: Some(b"x"),
            headers: &[],
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut b.finish()).unwrap();
    assert_eq!(log.max_timestamp_record().unwrap().unwrap().offset, 2);
    log.delete_records_before(5).unwrap();
    let m = log.max_timestamp_record().unwrap().unwrap();
    assert_eq!((m.offset, m.timestamp), (5, 200_000 - 30));
}

/// A raised log start (a replica following a deletion made through the
/// controller) hides the records below it at once, keeps the segments
/// until a retention pass, which deletes those wholly below it whatever
/// the retention settings; it holds across a reopen.
#[test]
fn a_raised_log_start_leaves_its_segments_to_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(&mut batch(&format!("d{i}"), 2, 300, 0)).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3, "{segments}");
    assert_eq!(log.retention_point(SystemTime::now()), None);
    assert!(matches!(
        log.raise_log_start(log.high_watermark() + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.raise_log_start(101).unwrap(), 101);
    assert_eq!(log.raise_log_start(7).unwrap(), 101);
    assert_eq!(log.segment_count(), segments);
    assert!(matches!(
        log.read(100, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let point = log.retention_point(SystemTime::now()).unwrap();
    assert!(point > 0 && point <= 101, "{point}");
    let outcome = log.retain(SystemTime::now()).unwrap();
    assert!(outcome.segments > 0 && outcome.segments < segments);
    assert_eq!(log.log_start_offset(), 101);
    let rest = read_all(&log, 1 << 20);
    assert_eq!(rest.first().unwrap().0, 101);
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 101);
}

/// A partition that gets no more appends: its active segment, once its
/// newest record is past the retention age and nothing was appended for
/// that long, is sealed by the upkeep and deleted, as Kafka deletes it;
/// the log starts at its end, and the next append takes the next offset.
/// An active segment appended to within the retention age, with a recent
/// record, or with records above the high watermark, stays.
#[test]
fn an_idle_partitions_expired_active_segment_goes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_age: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    // The high watermark set from outside, as a replica's.
    log.set_high_watermark(0).unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two hours old, in one segment.
    for i in 0..3 {
        log.append(&mut batch("old", 2, 100, now_ms - 2 * 3600 * 1000 + i))
            .unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    log.set_high_watermark(6).unwrap();
    // Appended to within the retention age: kept.
    log.maintain(SystemTime::now()).unwrap();
    assert_eq!((log.segment_count(), log.log_start_offset()), (1, 0));
    // An hour and a minute from now, nothing appended since; but records
    // above the high watermark (a replica's, not yet committed) keep it.
    let later = SystemTime::now() + Duration::from_secs(3660);
    log.append(&mut batch("old", 2, 100, now_ms - 2 * 3600 * 1000))
        .unwrap();
    log.maintain(later).unwrap();
    assert_eq!((log.segment_count(), log.log_start_offset()), (1, 0));
    log.set_high_watermark(8).unwrap();
    log.maintain(later).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 8);
    assert!(read_all(&log, 1 << 20).is_empty());
    assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
    // A recent record keeps its segment.
    let next = log.append(&mut batch("new", 1, 100, now_ms)).unwrap();
    assert_eq!(next.base_offset, 8);
    log.set_high_watermark(9).unwrap();
    log.maintain(SystemTime::now()).unwrap();
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(read_all(&log, 1 << 20).len(), 1);
    // So does a reopen.
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.next_offset()), (8, 9));
}

/// The active segment is not sealed while an older segment stays
/// (retention deletes oldest first: it would not go, and each pass would
/// make another segment), nor when its records carry no timestamp (-1).
#[test]
fn an_expired_active_segment_stays_behind_a_kept_one_or_without_timestamps() {
    let config = LogConfig {
        retention_age: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    // Records half an hour ahead, then an old batch too large for what is
    // left of the segment: it starts the active segment alone.
    while log.size_in_bytes() < 10 * 1024 {
        log.append(&mut batch("new", 2, 1000, now_ms + 1_800_000))
            .unwrap();
    }
    log.append(&mut batch("old", 2, 4000, now_ms - 2 * 3600 * 1000))
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    let later = SystemTime::now() + Duration::from_secs(3660);
    for _ in 0..3 {
        log.maintain(later).unwrap();
    }
    assert_eq!((log.segment_count(), log.log_start_offset()), (2, 0));

    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    for _ in 0..2 {
        log.append(&mut batch("none", 1, 100, -1)).unwrap();
    }
    log.maintain(later).unwrap();
    assert_eq!((log.segment_count(), log.log_start_offset()), (1, 0));
    assert_eq!(read_all(&log, 1 << 20).len(), 2);
}

/// The idle time of the active segment goes on across a restart: it is
/// counted from the `.log` file's modification time, not from the open.
#[test]
fn an_idle_segment_stays_idle_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_age: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..3 {
        log.append(&mut batch("old", 2, 100, now_ms - 2 * 3600 * 1000 + i))
            .unwrap();
    }
    drop(log);
    // Reopened at once: appended to within the retention age, kept.
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    log.maintain(SystemTime::now()).unwrap();
    assert_eq!((log.segment_count(), log.log_start_offset()), (1, 0));
    drop(log);
    // The last write two hours back, as after a broker down (or restarted
    // over and over) for that long: expired at the first pass.
    let path = dir.path().join(format!("{:020}.log", 0));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.next_offset(), 6);
    log.maintain(SystemTime::now()).unwrap();
    assert_eq!((log.segment_count(), log.log_start_offset()), (1, 6));
    assert!(read_all(&log, 1 << 20).is_empty());
    assert!(!path.exists());
}
