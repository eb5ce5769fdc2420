use std::sync::Arc;
use std::time::Duration;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::fault::{Faults, FaultyFs};
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog};

#[test]
fn append_assigns_offsets_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = PartitionLog::open(dir.path().join("t-0"), LogConfig::default()).unwrap();
    assert!(!report.clean_shutdown);
    let mut b = batch("a", 3, 10, 1000);
    // The producer's base offset is ignored and overwritten.
    sluice_protocol::batch::set_base_offset(&mut b, 777).unwrap();
    let info = log.append(&mut b).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.next_offset),
        (0, 2, 3)
    );
    assert_eq!(info.max_timestamp, 1002);
    let info = log.append(&mut batch("b", 2, 10, 2000)).unwrap();
    assert_eq!((info.base_offset, info.next_offset), (3, 5));
    assert_eq!((log.next_offset(), log.high_watermark()), (5, 5));
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert_eq!(all.len(), 5);
    assert!(all[0].1.starts_with(b"a-0"));
    assert!(all[4].1.starts_with(b"b-1"));
}

#[test]
fn multi_batch_append_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut two = batch("x", 2, 10, 0);
    two.extend_from_slice(&batch("y", 3, 10, 0));
    assert_eq!(log.append(&mut two).unwrap().batches, 2);
    assert_eq!(log.next_offset(), 5);

    let mut bad = batch("x", 2, 10, 0);
    let mut corrupt = batch("y", 2, 10, 0);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    bad.extend_from_slice(&corrupt);
    let err = log.append(&mut bad).unwrap_err();
    assert!(
        matches!(err, LogError::InvalidBatch { position, .. } if position == bad.len() - corrupt.len()),
        "{err}"
    );
    let mut torn = batch("z", 1, 10, 0);
    torn.truncate(torn.len() - 3);
    assert!(matches!(
        log.append(&mut torn),
        Err(LogError::InvalidBatch { position: 0, .. })
    ));
    assert!(matches!(log.append(&mut []), Err(LogError::EmptyAppend)));
    assert_eq!(log.next_offset(), 5, "failed appends write nothing");
    assert_eq!(read_all(&log, 1 << 20).len(), 5);
}

#[test]
fn rolls_and_reads_across_segments_with_any_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut rolls = 0;
    for i in 0..200 {
        let info = log
            .append(&mut batch(
                &format!("r{i}"),
                1 + i % 4,
                100 + i % 300,
                i as i64,
            ))
            .unwrap();
        rolls += usize::from(info.rolled);
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    assert_eq!(rolls, log.segment_count() - 1);
    let want = read_all(&log, u64::MAX);
    assert_eq!(want.len() as u64, log.next_offset());
    assert_contiguous(&want, 0);
    for budget in [1, 100, 700, 4096, 20_000] {
        assert_eq!(read_all(&log, budget), want, "budget {budget}");
    }
}

#[test]
fn reads_inside_a_batch_and_at_the_edges() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..50 {
        log.append(&mut batch(&format!("e{i}"), 10, 50, 0)).unwrap();
    }
    for offset in [0u64, 1, 9, 10, 11, 255, 499] {
        let s = log.read(offset, 1).unwrap();
        assert!(s.len > 0);
        assert_eq!(s.first_offset, offset / 10 * 10, "batch holding {offset}");
        assert!(s.next_offset > offset);
    }
    let at_end = log.read(500, 100).unwrap();
    assert_eq!((at_end.len, at_end.next_offset), (0, 500));
    assert!(matches!(
        log.read(501, 100),
        Err(LogError::OffsetOutOfRange {
            requested: 501,
            log_start: 0,
            log_end: 500,
            high_watermark: 500
        })
    ));
}

#[test]
fn offset_for_timestamp_finds_the_first_record_reaching_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Batch i: offsets 2i and 2i + 1, timestamps 1000 + 10i and 1001 + 10i.
    for i in 0..100i64 {
        log.append(&mut batch("t", 2, 200, 1_000 + 10 * i)).unwrap();
    }
    assert!(log.segment_count() > 1);
    let at = |ts| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|m| (m.offset, m.timestamp))
    };
    assert_eq!(at(0), Some((0, 1_000)));
    // Inside a batch: the record, not the batch's first record.
    assert_eq!(at(1_001), Some((1, 1_001)));
    assert_eq!(at(1_002), Some((2, 1_010)));
    assert_eq!(at(1_500), Some((100, 1_500)));
    assert_eq!(at(1_991), Some((199, 1_991)));
    assert_eq!(at(1_992), None);
}

#[test]
fn max_timestamp_record_is_the_first_visible_record_with_the_largest_time() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let max = |log: &PartitionLog| {
        log.max_timestamp_record()
            .unwrap()
            .map(|m| (m.offset, m.timestamp))
    };
    assert_eq!(max(&log), None);
    // Batch i: offsets 2i and 2i + 1 at times t and t + 1, t = 1000 + 10i,
    // except batches 30 and 80 at 8999 and 9000 (a tie: the first wins).
    for i in 0..100i64 {
        let t = if i == 30 || i == 80 {
            8_999
        } else {
            1_000 + 10 * i
        };
        log.append(&mut batch("m", 2, 200, t)).unwrap();
    }
    assert!(
        log.segment_count() > 2,
        "the maximum sits in a sealed segment"
    );
    assert_eq!(max(&log), Some((61, 9_000)));

    // A high watermark that cuts the active segment: only what it covers
    // counts, even where the time index knows of later, larger times.
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // The high watermark is set from outside from now on (a replica's).
    log.set_high_watermark(0).unwrap();
    for i in 0..60i64 {
        log.append(&mut batch("h", 2, 200, 1_000 + 10 * i)).unwrap();
    }
    assert_eq!(max(&log), None);
    let active_base = log.state.lock().active().base_offset();
    assert!(log.next_offset() - active_base >= 20, "{active_base}");
    // Rounded down to the batch boundary: offsets below active_base + 16
    // are visible, the last in batch (active_base + 14) / 2.
    assert_eq!(
        log.set_high_watermark(active_base + 17).unwrap(),
        active_base + 16
    );
    let t = 1_000 + 10 * ((active_base + 14) / 2) as i64 + 1;
    assert_eq!(max(&log), Some((active_base + 15, t)));
    log.set_high_watermark(log.next_offset()).unwrap();
    assert_eq!(max(&log), Some((119, 1_591)));
}

#[test]
fn offset_for_timestamp_reads_inside_compressed_batches() {
    use sluice_protocol::batch::Compression;
    use sluice_protocol::batch::compression::{Codec, compress_batch};
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // A plain batch (offsets 0..10, times 0..9), then one zstd batch:
    // offsets 10..20 at times 5000, 5002, …, 5018.
    let mut plain = batch("z", 10, 50, 0);
    let mut b = sluice_protocol::batch::BatchBuilder::new();
    let values: Vec<String> = (0..10).map(|i| format!("z-{i}")).collect();
    for (i, v) in values.iter().enumerate() {
        b.push(&sluice_protocol::batch::NewRecord {
            timestamp: 5_000 + 2 * i as i64,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    let mut zstd = compress_batch(&b.finish(), Codec::new(Compression::Zstd)).unwrap();
    log.append(&mut plain).unwrap();
    log.append(&mut zstd).unwrap();
    let at = |ts| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|m| (m.offset, m.timestamp))
    };
    assert_eq!(at(5_000), Some((10, 5_000)));
    assert_eq!(at(5_007), Some((14, 5_008)));
    assert_eq!(at(5_018), Some((19, 5_018)));
    assert_eq!(at(5_019), None);
}

#[test]
fn rolls_on_age_and_on_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config();
    config.segment_age = Some(Duration::from_millis(20));
    let (log, _) = PartitionLog::open(dir.path().join("age"), config).unwrap();
    assert!(!log.append(&mut batch("a", 1, 10, 0)).unwrap().rolled);
    assert!(!log.append(&mut batch("a", 1, 10, 0)).unwrap().rolled);
    std::thread::sleep(Duration::from_millis(30));
    assert!(log.append(&mut batch("a", 1, 10, 0)).unwrap().rolled);

    let mut config = small_config();
    config.segment_bytes = 1 << 30;
    config.index_interval_bytes = 1;
    config.index_max_bytes = 64; // 5 time index entries, one kept for sealing
    let (log, _) = PartitionLog::open(dir.path().join("idx"), config).unwrap();
    let rolled: Vec<bool> = (0..12)
        .map(|i| log.append(&mut batch("i", 1, 10, i)).unwrap().rolled)
        .collect();
    assert!(rolled.iter().filter(|&&r| r).count() >= 2, "{rolled:?}");
    assert_eq!(read_all(&log, 1 << 20).len(), 12);
}

#[test]
fn before_ack_policy_hides_unflushed_data_and_groups_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let mut config = small_config();
    config.flush = FlushPolicy::BeforeAck;
    let (log, _) =
        PartitionLog::open_with(Arc::new(FaultyFs::new(faults.clone())), dir.path(), config)
            .unwrap();
    let info = log.append(&mut batch("d", 5, 10, 0)).unwrap();
    assert_eq!(log.high_watermark(), 0, "not visible before the flush");
    assert_eq!(log.read(0, 100).unwrap().len, 0);
    log.flush_to(info.next_offset).unwrap();
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.recovery_point(), 5);

    let log = Arc::new(log);
    faults.set_sync_delay(Duration::from_millis(3));
    let before = faults.syncs();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let info = log
                        .append(&mut batch(&format!("{t}-{i}"), 2, 100, 0))
                        .unwrap();
                    log.flush_to(info.next_offset).unwrap();
                    assert!(log.high_watermark() >= info.next_offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let syncs = faults.syncs() - before;
    assert_eq!(log.high_watermark(), 5 + 8 * 25 * 2);
    // With a slow disk, appends that arrive during an fdatasync share the
    // next one: far fewer syncs than acknowledged appends.
    assert!(syncs < 150, "{syncs} fsyncs for 200 appends");
    assert_eq!(read_all(&log, 1 << 20).len() as u64, log.next_offset());
}

/// A create-time batch is stored with its largest record timestamp as
/// `maxTimestamp` whatever the client put there (older Kafka clients send
/// -1), with its CRC still valid: the time index, timestamp lookups and
/// retention all go by it. Before, such a batch kept -1, its records were
/// never found by time, and time-based retention took it for ancient.
#[test]
fn a_wrong_max_timestamp_is_stored_as_the_largest_record_timestamp() {
    use sluice_protocol::batch::{BatchHeader, set_max_timestamp, verify_crc};
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_age: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let now = crate::log::partition::unix_millis(std::time::SystemTime::now());
    // Records at now, now+1, now+2, sent with maxTimestamp -1; then one
    // that claims more than its records hold.
    let mut sent = Vec::new();
    for claimed in [-1, now + 50] {
        let mut b = batch("m", 3, 10, now);
        set_max_timestamp(&mut b, claimed).unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().max_timestamp, claimed);
        let info = log.append(&mut b).unwrap();
        assert_eq!(info.max_timestamp, now + 2);
        sent.push(info.base_offset);
    }
    assert_eq!(sent, [0, 3]);
    let slice = log.read(0, 1 << 20).unwrap();
    let mut bytes = vec![0; slice.len as usize];
    crate::log::io::read_full_at(&**slice.file.as_ref().unwrap(), &mut bytes, slice.position)
        .unwrap();
    let mut at = 0;
    while at < bytes.len() {
        let h = verify_crc(&bytes[at..]).unwrap();
        assert_eq!(h.max_timestamp, now + 2, "batch at {at}");
        at += h.total_len();
    }
    let found = log.offset_for_timestamp(now + 1).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (1, now + 1));
    // Retention by time keeps the fresh records once their segment is sealed.
    while log.segment_count() < 2 {
        let mut b = batch("fill", 10, 200, now);
        set_max_timestamp(&mut b, -1).unwrap();
        log.append(&mut b).unwrap();
    }
    let later = std::time::SystemTime::now();
    assert!(!log.retention_due(later));
    log.retain(later).unwrap();
    assert_eq!(log.log_start_offset(), 0);

    // A replication leader's check before proposing sets `maxTimestamp` as
    // a leader's append does, so every Raft replica stores those bytes as
    // they are (without walking the records); a follower copying a
    // leader's stored batch keeps it too.
    let dir = tempfile::tempdir().unwrap();
    let (replica, _) = PartitionLog::open(dir.path().join("r"), small_config()).unwrap();
    let (follower, _) = PartitionLog::open(dir.path().join("f"), small_config()).unwrap();
    let mut b = batch("r", 3, 10, now);
    set_max_timestamp(&mut b, -1).unwrap();
    let mut unchecked = b.clone();
    assert_eq!(
        replica
            .append_replica(0, &mut unchecked)
            .unwrap()
            .max_timestamp,
        -1
    );
    let mut proposed = b.clone();
    replica.check_proposal(&mut proposed).unwrap();
    assert_eq!(
        BatchHeader::parse(&proposed).unwrap().max_timestamp,
        now + 2
    );
    sluice_protocol::batch::set_base_offset(&mut proposed, 3).unwrap();
    assert_eq!(
        replica
            .append_replica(3, &mut proposed)
            .unwrap()
            .max_timestamp,
        now + 2
    );
    assert_eq!(follower.append_at(0, &mut b).unwrap().max_timestamp, -1);
}

/// A batch a client sends with the log-append-time bit is stored as
/// create-time with its largest record timestamp (Kafka rewrites it the same
/// way on a topic of producers' timestamps): readers then see each record's
/// own timestamp, as the time index does. A replication leader's check
/// rewrites it the same way before proposing.
#[test]
fn a_log_append_time_batch_from_a_client_is_stored_as_create_time() {
    use sluice_protocol::batch::{BatchHeader, RecordBatch, TimestampType, verify_crc};
    let now = crate::log::partition::unix_millis(std::time::SystemTime::now());
    let log_append = |mut b: Vec<u8>| {
        b[22] |= 0x08;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&b).unwrap().timestamp_type(),
            TimestampType::LogAppendTime
        );
        b
    };
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path().join("l"), small_config()).unwrap();
    let mut b = log_append(batch("t", 3, 10, now).to_vec());
    assert_eq!(log.append(&mut b).unwrap().max_timestamp, now + 2);
    let slice = log.read(0, 1 << 20).unwrap();
    let mut bytes = vec![0; slice.len as usize];
    crate::log::io::read_full_at(&**slice.file.as_ref().unwrap(), &mut bytes, slice.position)
        .unwrap();
    let h = verify_crc(&bytes).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(h.max_timestamp, now + 2);
    let timestamps: Vec<i64> = RecordBatch::new(bytes.into())
        .unwrap()
        .records()
        .map(|r| r.unwrap().timestamp)
        .collect();
    assert_eq!(timestamps, [now, now + 1, now + 2]);

    let (replica, _) = PartitionLog::open(dir.path().join("r"), small_config()).unwrap();
    let mut proposed = log_append(batch("r", 3, 10, now).to_vec());
    replica.check_proposal(&mut proposed).unwrap();
    let h = verify_crc(&proposed).unwrap();
    assert_eq!(
        (h.timestamp_type(), h.max_timestamp),
        (TimestampType::CreateTime, now + 2)
    );
}
