//! Retained history costs no descriptors or memory maps: sealed segments
//! open their files only while they are read, and at most a few at a time.

use std::fs;
use std::path::Path;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::{LogConfig, PartitionLog};

/// Open descriptors of this process on files under `dir`.
fn open_fds(dir: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Memory maps of this process of files under `dir`.
fn open_maps(dir: &Path) -> usize {
    let dir = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir))
        .count()
}

/// At most this many segments (the active one and the most recently read
/// sealed ones) hold a `.log` descriptor and two index descriptors and maps.
const OPEN_SEGMENTS: usize = crate::log::segment::MAX_OPEN_SEALED_SEGMENTS + 1;

fn assert_bounded(dir: &Path, when: &str) {
    let (fds, maps) = (open_fds(dir), open_maps(dir));
    assert!(fds <= 3 * OPEN_SEGMENTS, "{when}: {fds} descriptors open");
    assert!(maps <= 2 * OPEN_SEGMENTS, "{when}: {maps} maps open");
}

#[test]
fn sealed_segments_hold_no_descriptors_or_maps_while_unread() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let mut i = 0;
    while log.segment_count() < 300 {
        log.append(&mut batch(&format!("r{i}"), 2, 150, i)).unwrap();
        i += 1;
        if i % 50 == 0 {
            // Periodic upkeep flushes sealed segments; until then a sealed
            // segment keeps the descriptor that wrote it.
            log.maintain(std::time::SystemTime::now()).unwrap();
        }
    }
    log.maintain(std::time::SystemTime::now()).unwrap();
    assert_bounded(dir.path(), "after appending 300 segments");
    let before = read_all(&log, 700);
    assert_contiguous(&before, 0);
    assert_eq!(before.len() as u64, log.next_offset());
    assert_bounded(dir.path(), "after reading every segment");
    // Batch i: offsets 2i and 2i + 1 at times i and i + 1.
    let at = |ts| log.offset_for_timestamp(ts).unwrap().map(|m| m.offset);
    assert_eq!(at(3), Some(5));
    for ts in (0..i).rev().step_by(41) {
        assert_eq!(at(ts + 1), Some(2 * ts as u64 + 1));
    }
    assert_bounded(dir.path(), "after timestamp lookups");
    log.close().unwrap();
    assert_eq!(open_fds(dir.path()), 0);

    // Reopened, cleanly and after a crash: the same bound, the same records.
    for clean in [true, false] {
        let (log, report) = PartitionLog::open(dir.path(), config.clone()).unwrap();
        assert_eq!(report.clean_shutdown, clean);
        assert!(
            open_fds(dir.path()) <= 3,
            "{} open after open",
            open_fds(dir.path())
        );
        assert_eq!(read_all(&log, 700), before);
        // Reads from the middle and backwards, past the cap of open segments.
        for offset in (0..log.next_offset()).rev().step_by(37) {
            let slice = log.read(offset, 1).unwrap();
            assert!(slice.first_offset <= offset && offset < slice.next_offset);
        }
        assert_bounded(dir.path(), "after reopening and reading");
        // Idle sealed segments are closed by upkeep; only the active
        // segment's three files stay open.
        for _ in 0..crate::log::segment::IDLE_SEALED_PASSES {
            log.maintain(std::time::SystemTime::now()).unwrap();
        }
        assert_eq!(open_fds(dir.path()), 3, "after idle upkeep");
        assert_eq!(open_maps(dir.path()), 2, "after idle upkeep");
        assert_eq!(log.read(0, 1).unwrap().first_offset, 0);
        drop(log); // a crash for the second round
    }
}

/// Bytes the file system has allocated to `path` (`st_blocks` × 512).
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().blocks() * 512
}

/// Whether the file system under `dir` reserves blocks past a file's end.
fn reserves_blocks(dir: &Path) -> bool {
    use crate::log::io::{FileSystem, OpenMode, StdFs};
    let probe = dir.join("probe");
    let file = StdFs.open(&probe, OpenMode::CreateNew).unwrap();
    let ok = file.preallocate(0, 1 << 20).is_ok() && allocated(&probe) >= 1 << 20;
    fs::remove_file(&probe).unwrap();
    ok
}

#[test]
fn the_active_segment_reserves_blocks_ahead_and_a_roll_gives_back_the_rest() {
    use crate::log::format::{LOG_SUFFIX, segment_path};
    use crate::log::segment::{PREALLOCATE_BYTES, PREALLOCATE_MIN_BYTES};
    let dir = tempfile::tempdir().unwrap();
    if !reserves_blocks(dir.path()) {
        eprintln!("skipped: the file system here does not reserve blocks past a file's end");
        return;
    }
    let segment_bytes = 3 * PREALLOCATE_BYTES / 2;
    let config = LogConfig {
        segment_bytes,
        index_max_bytes: 1 << 20,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let first = segment_path(dir.path(), 0, LOG_SUFFIX);
    log.append(&mut batch("a", 4, 1000, 0)).unwrap();
    let len = fs::metadata(&first).unwrap().len();
    assert!(
        len > 4000 && len < 8192,
        "the file is as long as its data: {len}"
    );
    // A few records reserve a little ahead, not the whole 4 MiB step.
    assert!(
        (PREALLOCATE_MIN_BYTES..PREALLOCATE_BYTES / 8).contains(&allocated(&first)),
        "{} bytes allocated ahead of the appends",
        allocated(&first)
    );

    // The step doubles as the segment grows: past 3 MiB the reservation
    // reaches about twice the data, but not past the segment size
    // (reservations are 64 KiB-aligned).
    let mut i = 1;
    while fs::metadata(&first).unwrap().len() < PREALLOCATE_BYTES + 4096 {
        log.append(&mut batch("b", 16, 1000, i)).unwrap();
        i += 1;
    }
    let len = fs::metadata(&first).unwrap().len();
    let held = allocated(&first);
    assert!(
        held >= len + PREALLOCATE_BYTES / 4 && held <= segment_bytes + PREALLOCATE_MIN_BYTES,
        "{held} bytes allocated for {len} bytes of data in a segment of {segment_bytes}"
    );

    // A roll (here for an append that does not fit the 2 MiB left) seals
    // the segment with only what its data needs.
    log.append(&mut batch("c", 2, 1 << 20, i)).unwrap();
    i += 2;
    assert_eq!(log.segment_count(), 2);
    let len = fs::metadata(&first).unwrap().len();
    let held = allocated(&first);
    assert!(
        held < len + 64 * 1024,
        "sealed: {held} bytes allocated for {len} bytes of data"
    );
    let records = read_all(&log, 1 << 20);
    assert_contiguous(&records, 0);
    assert_eq!(records.len() as u64, log.next_offset());

    // A reopened log keeps reserving ahead of its appends.
    log.close().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let newest = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| crate::log::format::parse_log_file_name(e.ok()?.file_name().to_str()?))
        .max()
        .unwrap();
    let active = segment_path(dir.path(), newest, LOG_SUFFIX);
    log.append(&mut batch("d", 4, 1000, i)).unwrap();
    assert!(allocated(&active) >= PREALLOCATE_MIN_BYTES);
    assert_eq!(read_all(&log, 1 << 20).len() as u64, log.next_offset());
}

/// A leader's reads for a follower catching up (`read_appended_upto`, which
/// finds batch boundaries without a consumer's read) list the sealed
/// segments they open, as a consumer's reads do: the same bound, and idle
/// upkeep closes them.
#[test]
fn a_followers_catch_up_reads_hold_no_more_than_a_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let mut i = 0;
    while log.segment_count() < 100 {
        log.append(&mut batch(&format!("r{i}"), 2, 150, i)).unwrap();
        i += 1;
    }
    log.maintain(std::time::SystemTime::now()).unwrap();
    assert_bounded(dir.path(), "after appending 100 segments");
    // Batch j holds offsets 2j and 2j + 1.
    for j in 0..i {
        let base = 2 * j as u64;
        let slice = log.read_appended_upto(base, base + 2).unwrap();
        assert_eq!(slice.first_offset, base);
    }
    assert_bounded(dir.path(), "after a follower's catch-up");
    for _ in 0..crate::log::segment::IDLE_SEALED_PASSES {
        log.maintain(std::time::SystemTime::now()).unwrap();
    }
    assert_eq!(open_fds(dir.path()), 3, "after idle upkeep");
}
