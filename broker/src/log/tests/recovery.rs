use std::fs;
use std::path::Path;

use proptest::prelude::*;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::format::{CHECKPOINT_FILE, parse_log_file_name};
use crate::log::{LogConfig, PartitionLog};

/// Appends `n` batches of mixed sizes; returns the log end after each one.
fn fill(log: &PartitionLog, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            log.append(&mut batch(
                &format!("f{i}"),
                1 + i % 3,
                60 + (i * 37) % 400,
                i as i64,
            ))
            .unwrap()
            .next_offset
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let base = parse_log_file_name(e.file_name().to_str()?)?;
            Some((base, e.metadata().unwrap().len()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn clean_close_skips_recovery_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 100);
    let before = read_all(&log, 1 << 20);
    let (next, segments) = (log.next_offset(), log.segment_count());
    log.close().unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(report.clean_shutdown);
    assert_eq!(report.segments_rescanned, 0);
    assert_eq!((log.next_offset(), log.segment_count()), (next, segments));
    assert_eq!(read_all(&log, 1 << 20), before);
    assert_eq!(
        log.append(&mut batch("more", 2, 10, 0))
            .unwrap()
            .base_offset,
        next
    );
    // A crash now must not be mistaken for a clean shutdown.
    drop(log);
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!report.clean_shutdown);
    assert_eq!(log.next_offset(), next + 2);
}

#[test]
fn crash_rescans_only_segments_after_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 300);
    // Periodic upkeep flushes sealed segments and checkpoints.
    log.maintain(std::time::SystemTime::now()).unwrap();
    fill(&log, 5);
    let segments = log.segment_count();
    assert!(segments > 5);
    let before = read_all(&log, 1 << 20);
    drop(log); // a crash: no flush, no marker
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!report.clean_shutdown);
    assert!(report.checkpoint.is_some());
    assert!(
        report.segments_rescanned <= 2,
        "rescanned {} of {segments}",
        report.segments_rescanned
    );
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(read_all(&log, 1 << 20), before);
}

#[test]
fn lost_or_damaged_indexes_and_checkpoint_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 150);
    let before = read_all(&log, 1000);
    log.close().unwrap();
    let segs = segment_files(dir.path());
    let first = format!("{:020}", segs[0].0);
    fs::remove_file(dir.path().join(format!("{first}.index"))).unwrap();
    fs::write(
        dir.path().join(format!("{:020}.timeindex", segs[1].0)),
        b"garbage!garbage!",
    )
    .unwrap();
    let idx = dir.path().join(format!("{:020}.index", segs[2].0));
    let mut bytes = fs::read(&idx).unwrap();
    bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes()); // position past the end
    fs::write(&idx, bytes).unwrap();
    fs::write(dir.path().join(CHECKPOINT_FILE), b"not a checkpoint").unwrap();
    fs::write(dir.path().join("00000000000000000007.index"), b"orphan").unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 1000), before);
    assert!(!dir.path().join("00000000000000000007.index").exists());
    for budget in [1, 600] {
        assert_eq!(read_all(&log, budget), before);
    }
}

/// The `.log` files of `dir` with their length and CRC.
fn log_files(dir: &Path) -> Vec<(String, usize, u32)> {
    let mut logs = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".log") {
            let bytes = fs::read(dir.join(&name)).unwrap();
            logs.push((name, bytes.len(), crc32fast::hash(&bytes)));
        }
    }
    logs.sort();
    logs
}

fn garble_middle_of(dir: &Path, base: u64, len: u64) {
    let path = dir.join(format!("{base:020}.log"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[(len / 2) as usize] ^= 0x55;
    fs::write(&path, bytes).unwrap();
}

/// Damages a trusted segment so that opening it notices: garbled data, and
/// a lost index, so the segment is rescanned to rebuild it.
fn garble_trusted(dir: &Path, base: u64, len: u64) {
    garble_middle_of(dir, base, len);
    fs::remove_file(dir.join(format!("{base:020}.index"))).unwrap();
}

/// Opens a log that must come up offline, checks that no file changed and
/// that the valid data before the damage still reads, and returns it.
fn open_offline(dir: &Path, damaged_segment: u64) -> PartitionLog {
    let before = log_files(dir);
    let (log, report) = PartitionLog::open(dir, small_config()).unwrap();
    let reason = report.offline.clone().expect("opened offline");
    assert!(reason.contains("Nothing was removed"), "{reason}");
    assert!(log.is_offline());
    assert_eq!((report.segments_deleted, report.bytes_truncated), (0, 0));
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert!(log.next_offset() >= damaged_segment);
    // At the end of what it serves: refused, not the end of the partition.
    assert!(matches!(
        log.read(log.next_offset(), 1 << 20),
        Err(crate::log::LogError::Offline { .. })
    ));
    assert!(log.append(&mut batch("x", 1, 10, 0)).is_err());
    assert!(log.retain(std::time::SystemTime::now()).unwrap().segments == 0);
    log.shutdown().unwrap();
    assert_eq!(log_files(dir), before, "no .log file may change or go");
    log
}

#[test]
fn garbage_in_a_flushed_middle_segment_takes_the_log_offline_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 150);
    log.flush().unwrap(); // everything is below the recovery point
    drop(log); // a crash
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 4);
    let (victim, len) = segs[1];
    garble_trusted(dir.path(), victim, len);
    let log = open_offline(dir.path(), victim);
    assert!(log.next_offset() < segs[2].0);
    drop(log);
    // And again at the next start (trusted segments are not CRC-checked
    // unless their index needs a rebuild, so lose it again): still offline,
    // still nothing removed.
    fs::remove_file(dir.path().join(format!("{victim:020}.index"))).unwrap();
    let log = open_offline(dir.path(), victim);
    drop(log);
}

#[test]
fn garbage_after_a_clean_shutdown_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 150);
    log.close().unwrap();
    let segs = segment_files(dir.path());
    let (victim, len) = segs[2];
    garble_trusted(dir.path(), victim, len);
    drop(open_offline(dir.path(), victim));
}

#[test]
fn a_flushed_segment_that_falls_short_of_the_next_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let ends = fill(&log, 150);
    log.flush().unwrap();
    // Where segment 1's last batch starts: the log end after the batch
    // before it.
    drop(log);
    let segs = segment_files(dir.path());
    let (victim, _) = segs[1];
    // Cut segment 1 at a batch boundary: what is left is valid but ends
    // before segment 2 starts.
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let keep_to = *ends.iter().find(|&&e| e > victim && e < segs[2].0).unwrap();
    let slice = log.read(keep_to, 1).unwrap();
    assert_eq!(slice.first_offset, keep_to);
    let cut_at = slice.position;
    drop(log);
    let path = dir.path().join(format!("{victim:020}.log"));
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(cut_at).unwrap();
    drop(file);
    let log = open_offline(dir.path(), victim);
    assert_eq!(log.next_offset(), keep_to);
}

#[test]
fn garbage_in_a_middle_segment_without_a_checkpoint_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 150);
    drop(log);
    // Without a checkpoint nothing is known to be unflushed.
    fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let segs = segment_files(dir.path());
    let (victim, len) = segs[1];
    garble_middle_of(dir.path(), victim, len);
    drop(open_offline(dir.path(), victim));
}

#[test]
fn garbage_in_an_unflushed_middle_segment_cuts_only_past_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 60);
    log.flush().unwrap();
    let recovery_point = log.recovery_point();
    let ends = fill(&log, 150);
    drop(log); // a crash; nothing after the recovery point was flushed
    let segs = segment_files(dir.path());
    let first_unflushed = segs
        .iter()
        .position(|&(base, _)| base >= recovery_point)
        .unwrap();
    assert!(segs.len() >= first_unflushed + 3);
    let (victim, len) = segs[first_unflushed + 1];
    garble_middle_of(dir.path(), victim, len);
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.offline, None);
    assert!(!log.is_offline());
    assert_eq!(report.segments_deleted, segs.len() - first_unflushed - 2);
    assert!(report.bytes_truncated > 0);
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert!(log.next_offset() > victim && log.next_offset() < segs[first_unflushed + 2].0);
    assert!(log.next_offset() >= recovery_point);
    assert!(ends.contains(&log.next_offset()), "cut at a batch boundary");
    assert_eq!(
        log.append(&mut batch("after", 1, 10, 0))
            .unwrap()
            .base_offset,
        log.next_offset() - 1
    );
}

#[test]
fn rescanning_a_sealed_segment_rebuilds_every_index_entry() {
    use crate::log::segment::Segment;
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    fill(&log, 150);
    log.close().unwrap();
    let first = segment_files(dir.path())[0].0;
    let index = dir.path().join(format!("{first:020}.index"));
    let full = fs::read(&index).unwrap();
    assert!(full.len() >= 3 * 8, "needs a few entries");
    // A sealed index that lost its later entries is still a valid (sparser)
    // index, trimmed to one entry.
    fs::write(&index, &full[..8]).unwrap();
    let (mut seg, invalid) = Segment::open_trusted(
        &(std::sync::Arc::new(crate::log::StdFs) as std::sync::Arc<dyn crate::log::FileSystem>),
        dir.path(),
        first,
        &config,
        false,
    )
    .unwrap();
    assert_eq!(invalid, 0);
    assert_eq!(seg.offset_index().len(), 1);
    assert_eq!(seg.rescan(&config).unwrap(), 0);
    assert_eq!(
        seg.offset_index().len(),
        full.len() / 8,
        "every entry rebuilt"
    );
    assert!(seg.is_sealed());
    drop(seg);
    assert_eq!(fs::read(&index).unwrap(), full);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Cutting or garbling the last segment anywhere: recovery keeps exactly
    /// the longest prefix of whole, valid batches, and the log works on.
    #[test]
    fn recovery_keeps_the_longest_valid_prefix(
        batches in 1usize..40,
        cut_frac in 0.0f64..1.0,
        garble in any::<bool>(),
        xor in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 1 << 20, ..small_config() };
        let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut boundaries = vec![(0u64, 0u64)]; // (file position, next offset)
        for i in 0..batches {
            let info = log.append(&mut batch(&format!("p{i}"), 1 + i % 5, 20 + i * 7, i as i64)).unwrap();
            let pos = boundaries.last().unwrap().0;
            let size = log.read(info.base_offset, 1).unwrap().len;
            boundaries.push((pos + size, info.next_offset));
        }
        let before = read_all(&log, 1 << 20);
        drop(log);
        let path = dir.path().join(format!("{:020}.log", 0));
        let mut bytes = fs::read(&path).unwrap();
        let at = ((bytes.len() as f64) * cut_frac) as usize;
        if garble {
            bytes[at] ^= xor;
        } else {
            bytes.truncate(at);
        }
        fs::write(&path, &bytes).unwrap();
        fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();

        let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
        // Longest prefix: up to the last boundary at or before the damage.
        // partitionLeaderEpoch (bytes 12..16 of a batch) is outside the CRC
        // and unchecked, so garbling it loses nothing.
        let at = at as u64;
        let &(start, keep) = boundaries.iter().rev().find(|&&(p, _)| p <= at).unwrap();
        let keep = if garble && (12..16).contains(&(at - start)) {
            boundaries.last().unwrap().1
        } else {
            keep
        };
        prop_assert_eq!(log.next_offset(), keep);
        let after = read_all(&log, 1 << 20);
        prop_assert_eq!(&after[..], &before[..keep as usize]);
        prop_assert_eq!(fs::metadata(&path).unwrap().len(),
            boundaries.iter().find(|&&(_, o)| o == keep).unwrap().0);
        let info = log.append(&mut batch("z", 1, 5, 0)).unwrap();
        prop_assert_eq!(info.base_offset, keep);
    }
}

#[test]
fn missing_index_files_are_rebuilt_with_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 150);
    let segments = log.segment_count();
    let mid = log.next_offset() / 2;
    let want_ts = log.offset_for_timestamp(75).unwrap();
    log.close().unwrap();
    let first = segment_files(dir.path())[0].0;
    let index = dir.path().join(format!("{first:020}.index"));
    let timeindex = dir.path().join(format!("{first:020}.timeindex"));
    let index_len = fs::metadata(&index).unwrap().len();
    assert!(index_len > 0);
    fs::remove_file(&index).unwrap();
    fs::remove_file(&timeindex).unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.segment_count(), segments);
    assert_eq!(
        fs::metadata(&index).unwrap().len(),
        index_len,
        "rebuilt, then trimmed"
    );
    // A small read stays small: the rebuilt index bounds it.
    let s = log.read(0, 600).unwrap();
    assert!(
        s.len < 4096,
        "read of {} bytes for a 600-byte budget",
        s.len
    );
    assert!(log.read(mid, 1).is_ok());
    assert_eq!(log.offset_for_timestamp(75).unwrap(), want_ts);
}

#[test]
fn segment_age_survives_a_restart() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let config = LogConfig {
        segment_age: Some(Duration::from_secs(3600)),
        // The last case stores a batch from the future, which appends
        // refuse by default.
        max_timestamp_ahead: None,
        ..small_config()
    };
    for (first_ts, clean, should_roll) in [
        (now_ms - 2 * 3600 * 1000, true, true),
        (now_ms - 2 * 3600 * 1000, false, true),
        (now_ms - 60 * 1000, true, false),
        (now_ms + 5 * 3600 * 1000, true, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
        log.append(&mut batch("old", 2, 10, first_ts)).unwrap();
        // Within this process the age counts from the append itself.
        assert!(!log.append(&mut batch("b", 1, 10, now_ms)).unwrap().rolled);
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let info = log.append(&mut batch("after", 1, 10, now_ms)).unwrap();
        assert_eq!(
            info.rolled, should_roll,
            "first batch at {first_ts}, clean {clean}"
        );
    }
}

/// Flushed data inside the active segment is checkpointed by the next
/// maintenance pass once [`PartitionLog::CHECKPOINT_INTERVAL`] has passed:
/// damage below that point, found after a crash, takes the log offline
/// with nothing cut; before that pass it reads as an unflushed tail.
#[test]
fn damage_in_the_checkpointed_part_of_the_active_segment_takes_the_log_offline() {
    let config = || LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    };
    for checkpointed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
        fill(&log, 40);
        log.flush().unwrap();
        let now = std::time::SystemTime::now();
        log.maintain(now).unwrap();
        if checkpointed {
            log.maintain(now + PartitionLog::CHECKPOINT_INTERVAL)
                .unwrap();
        }
        let end = log.next_offset();
        drop(log); // a crash
        let segs = segment_files(dir.path());
        assert_eq!(segs.len(), 1, "one active segment");
        garble_middle_of(dir.path(), segs[0].0, segs[0].1);
        let before = log_files(dir.path());
        let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
        if checkpointed {
            let reason = report.offline.clone().expect("opened offline");
            assert!(reason.contains("below the recovery point"), "{reason}");
            assert_eq!(report.bytes_truncated, 0);
            log.shutdown().unwrap();
            assert_eq!(log_files(dir.path()), before, "nothing may change");
        } else {
            assert!(report.offline.is_none(), "{report:?}");
            assert!(report.bytes_truncated > 0);
            assert!(log.next_offset() < end);
        }
    }
}

/// A log that ends below its checkpointed recovery point lost flushed data
/// (its active segment cut short or removed by hand, after a crash or a
/// clean shutdown): it opens offline, nothing changes, and no offset is
/// given out again; reads of what is left still work.
#[test]
fn a_log_shorter_than_its_recovery_point_opens_offline() {
    let config = || LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    };
    for (clean, damage) in [
        (false, "boundary"),
        (false, "empty"),
        (true, "boundary"),
        (false, "removed"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = PartitionLog::open(dir.path(), config()).unwrap();
        fill(&log, 40);
        log.flush().unwrap();
        let now = std::time::SystemTime::now();
        log.maintain(now + PartitionLog::CHECKPOINT_INTERVAL)
            .unwrap();
        if clean {
            log.close().unwrap();
        } else {
            drop(log); // a crash
        }
        let segs = segment_files(dir.path());
        let path = dir.path().join(format!("{:020}.log", segs[0].0));
        match damage {
            "boundary" => {
                // Cut right after the first batch: every byte left is valid.
                let bytes = fs::read(&path).unwrap();
                let first = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as u64;
                let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(first).unwrap();
            }
            "empty" => {
                let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(0).unwrap();
            }
            _ => fs::remove_file(&path).unwrap(),
        }
        let before = log_files(dir.path());
        let checkpoint = fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap();
        let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
        let why = format!("clean {clean}, {damage}");
        let reason = report.offline.clone().expect(&why);
        assert!(reason.contains("recovery point"), "{why}: {reason}");
        assert!(log.is_offline(), "{why}");
        assert!(log.append(&mut batch("x", 1, 10, 0)).is_err(), "{why}");
        let _ = read_all(&log, 1 << 20);
        log.shutdown().unwrap();
        assert_eq!(log_files(dir.path()), before, "{why}: a .log file changed");
        assert_eq!(
            fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap(),
            checkpoint,
            "{why}: the checkpoint changed"
        );
    }
}

/// Checkpoints never vouch past the bound the log's owner sets
/// ([`PartitionLog::cap_checkpoints`]: a replicated partition's synced Raft
/// index), neither at a segment roll nor at maintenance; raising the bound
/// lets the next checkpoint catch up.
#[test]
fn checkpoints_stay_at_or_below_their_cap() {
    use crate::log::format::Checkpoint;
    let checkpoint = |dir: &Path| {
        Checkpoint::decode(&fs::read(dir.join(CHECKPOINT_FILE)).unwrap())
            .unwrap()
            .recovery_point
    };
    let config = LogConfig {
        segment_bytes: 4096,
        ..small_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    log.cap_checkpoints(3);
    fill(&log, 60);
    log.flush().unwrap();
    assert!(log.segment_count() > 1, "segments rolled");
    let now = std::time::SystemTime::now();
    log.maintain(now + PartitionLog::CHECKPOINT_INTERVAL)
        .unwrap();
    assert_eq!(checkpoint(dir.path()), 3);
    log.cap_checkpoints(u64::MAX);
    log.maintain(now + 2 * PartitionLog::CHECKPOINT_INTERVAL)
        .unwrap();
    assert_eq!(checkpoint(dir.path()), log.next_offset());
}

/// An empty segment file between two others (inside an unflushed
/// segment's offsets, past the recovery point) is a stray: it is removed
/// and every record kept. It read as a gap in unflushed data, which cut
/// every segment after it: acknowledged records lost, their offsets given
/// out again.
#[test]
fn an_empty_stray_segment_file_cuts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 60);
    log.flush().unwrap();
    fill(&log, 150);
    let before = read_all(&log, 1 << 20);
    drop(log); // a crash: the later segments are past the recovery point
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 6, "{segs:?}");
    // Inside the second to last segment's offsets, and between two others.
    let (base, _) = segs[segs.len() - 2];
    let stray = crate::log::format::segment_path(dir.path(), base + 1, ".log");
    fs::write(&stray, b"").unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.offline, None);
    assert_eq!((report.segments_deleted, report.bytes_truncated), (0, 0));
    assert_eq!(report.stray_segments_removed, 1);
    assert!(!stray.exists());
    assert_eq!(read_all(&log, 1 << 20), before);
}

/// A segment that starts inside the one before it (a copy under another
/// name, say) is not a torn write: the log opens offline and removes
/// nothing, where it cut every segment from there.
#[test]
fn a_segment_starting_inside_the_one_before_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    fill(&log, 60);
    log.flush().unwrap();
    fill(&log, 150);
    drop(log);
    let segs = segment_files(dir.path());
    let (base, _) = segs[segs.len() - 2];
    let (last, _) = segs[segs.len() - 1];
    let copy = crate::log::format::segment_path(dir.path(), base + 1, ".log");
    fs::copy(
        crate::log::format::segment_path(dir.path(), last, ".log"),
        &copy,
    )
    .unwrap();
    let before = log_files(dir.path());
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let reason = report.offline.expect("offline");
    assert!(reason.contains("starts inside this one"), "{reason}");
    assert_eq!((report.segments_deleted, report.bytes_truncated), (0, 0));
    log.shutdown().unwrap();
    assert_eq!(
        log_files(dir.path()),
        before,
        "no .log file may change or go"
    );
}

/// Opening a log of many segments after a crash holds a few descriptors at
/// a time, not three per segment: each sealed segment is released once it
/// is checked, and each unflushed one once it is synced. It held every
/// segment's files until the whole log was open, so a broker restarted
/// after a crash with a long history ran out of descriptors
/// ("Too many open files") and did not start.
#[test]
fn opening_a_long_log_holds_few_files_at_a_time() {
    use std::sync::Arc;

    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = || Arc::new(FaultyFs::new(Arc::clone(&faults)));
    let (log, _) = PartitionLog::open_with(fs(), dir.path(), small_config()).unwrap();
    fill(&log, 100);
    log.flush().unwrap();
    fill(&log, 600);
    let before = read_all(&log, 1 << 20);
    drop(log); // a crash: most segments are past the recovery point
    let segments = segment_files(dir.path()).len() as u64;
    assert!(segments >= 20, "{segments}");
    faults.reset_peak_open_files();
    let (log, report) = PartitionLog::open_with(fs(), dir.path(), small_config()).unwrap();
    assert!(report.segments_rescanned >= 10, "{report:?}");
    let peak = faults.peak_open_files();
    assert!(
        peak <= 8,
        "{peak} files open at once for {segments} segments"
    );
    assert_eq!(read_all(&log, 1 << 20), before);
}
