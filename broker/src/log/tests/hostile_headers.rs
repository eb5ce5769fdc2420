//! Batch headers are claims: appends whose headers lie about their offsets,
//! compression or time are refused whole, and the log's offsets stay sane.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::batch::{BatchError, Compression};
use sluice_protocol::wire::ErrorCode;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::format::{LOG_SUFFIX, segment_path};
use crate::log::{LogConfig, LogError, PartitionLog};

/// Header field positions (docs/record-batch.md).
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const MAX_TIMESTAMP: usize = 35;
const RECORD_COUNT: usize = 57;

/// Recomputes the CRC-32C of the batch at the start of `b` (bytes 21..end,
/// stored at 17..21), so that only the header's claims are wrong.
pub(super) fn resign(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn set_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
fn set_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn set_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A ~70-byte gzip-flagged batch: one garbage "compressed" record section,
/// the given header claims, a valid CRC.
fn gzip_batch(record_count: i32, last_offset_delta: i32) -> Vec<u8> {
    let mut b = batch("z", 1, 1, 1000).to_vec();
    set_i16(&mut b, ATTRIBUTES, 1);
    set_i32(&mut b, RECORD_COUNT, record_count);
    set_i32(&mut b, LAST_OFFSET_DELTA, last_offset_delta);
    resign(&mut b);
    b
}

#[test]
fn compressed_batches_that_do_not_decompress_are_refused_and_take_no_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut batch("a", 2, 10, 1000)).unwrap();

    // An honest header over a records section that is not a gzip stream.
    let mut garbage = gzip_batch(1, 0);
    assert!(garbage.len() < 100);
    assert!(matches!(
        log.append(&mut garbage),
        Err(LogError::InvalidBatch {
            position: 0,
            source: BatchError::BadCompressedData {
                codec: Compression::Gzip,
                ..
            }
        })
    ));
    // Behind a good batch in the same append: nothing of it is written.
    let mut two = batch("b", 1, 10, 1000).to_vec();
    let position = two.len();
    two.extend_from_slice(&gzip_batch(1, 0));
    match log.append(&mut two) {
        Err(LogError::InvalidBatch { position: p, .. }) => assert_eq!(p, position),
        other => panic!("{other:?}"),
    }
    // One record claiming 2^31 offsets: the header contradicts itself.
    let mut liar = gzip_batch(1, i32::MAX);
    assert!(matches!(
        log.append(&mut liar),
        Err(LogError::InvalidBatch {
            position: 0,
            source: BatchError::LastOffsetDeltaMismatch {
                header: i32::MAX,
                actual: 0
            }
        })
    ));
    // Many of them in one append (the sum used to reach 2^33 offsets).
    let mut many: Vec<u8> = (0..4).flat_map(|_| gzip_batch(1, i32::MAX)).collect();
    assert!(log.append(&mut many).is_err());

    assert_eq!((log.next_offset(), log.high_watermark()), (2, 2));
    assert_eq!(log.segment_count(), 1);
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert_eq!(all.len(), 2);
}

/// A replication leader checks each record set in full once, before
/// proposing ([`PartitionLog::check_proposal`]); its replicas then check
/// only what the bytes could have lost on the way (header and CRC), so no
/// batch makes a replica decompress or walk records inside its Raft core.
#[test]
fn the_leader_checks_records_once_and_replicas_check_headers_and_crcs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // The leader's check refuses what a full append refuses, writing nothing.
    let mut garbage = gzip_batch(1, 0);
    assert!(matches!(
        log.check_proposal(&mut garbage),
        Err(LogError::InvalidBatch {
            position: 0,
            source: BatchError::BadCompressedData { .. }
        })
    ));
    let mut wrong_count = batch("c", 3, 10, 1000).to_vec();
    set_i32(&mut wrong_count, RECORD_COUNT, 4);
    set_i32(&mut wrong_count, LAST_OFFSET_DELTA, 3);
    resign(&mut wrong_count);
    assert!(matches!(
        log.check_proposal(&mut wrong_count.clone()),
        Err(LogError::InvalidBatch { .. })
    ));
    assert!(matches!(
        log.check_proposal(&mut batch("e", 0, 10, 1000)),
        Err(LogError::EmptyBatch { position: 0 })
    ));
    let mut ok = batch("ok", 2, 10, 1000);
    log.check_proposal(&mut ok).unwrap();
    assert_eq!(log.next_offset(), 0);

    // A replica stores without walking the records: a set whose records
    // only the walk would fault (what a leader never proposes) is taken.
    assert_eq!(log.append_replica(0, &mut garbage).unwrap().next_offset, 1);
    // But a flipped bit is a CRC mismatch, and a header whose own claims
    // disagree is refused, on every replica alike; nothing is written.
    let mut flipped = batch("f", 2, 10, 1000).to_vec();
    set_i64(&mut flipped, 0, 1);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        log.append_replica(1, &mut flipped),
        Err(LogError::InvalidBatch {
            source: BatchError::CrcMismatch { .. },
            ..
        })
    ));
    let mut liar = gzip_batch(1, i32::MAX);
    set_i64(&mut liar, 0, 1);
    assert!(matches!(
        log.append_replica(1, &mut liar),
        Err(LogError::InvalidBatch {
            source: BatchError::LastOffsetDeltaMismatch { .. },
            ..
        })
    ));
    assert_eq!(log.next_offset(), 1);
    set_i64(&mut ok, 0, 1);
    assert_eq!(log.append_replica(1, &mut ok).unwrap().next_offset, 3);
}

#[test]
fn uncompressed_header_claims_must_match_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    for (count, delta) in [(3, 1000), (3, 3), (4, 3), (2, 1), (0, 2), (0, 0)] {
        let mut b = batch("c", 3, 10, 1000).to_vec();
        set_i32(&mut b, RECORD_COUNT, count);
        set_i32(&mut b, LAST_OFFSET_DELTA, delta);
        resign(&mut b);
        let err = log.append(&mut b).unwrap_err();
        assert!(
            matches!(err, LogError::InvalidBatch { .. }),
            "count {count} delta {delta}: {err}"
        );
    }
    // An empty batch that is otherwise valid is refused too.
    let mut empty = batch("c", 0, 10, 1000).to_vec();
    assert!(matches!(
        log.append(&mut empty),
        Err(LogError::EmptyBatch { position: 0 })
    ));
    assert_eq!(log.next_offset(), 0);
}

#[test]
fn control_and_transactional_batches_from_clients_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // (attributes bits set, whether the refusal names a control batch)
    for (bits, control) in [(0x20i16, true), (0x10, false), (0x30, true)] {
        let mut b = batch("t", 2, 10, 1000).to_vec();
        let attributes = i16::from_be_bytes([b[ATTRIBUTES], b[ATTRIBUTES + 1]]);
        set_i16(&mut b, ATTRIBUTES, attributes | bits);
        resign(&mut b);
        // Behind a good batch: the whole append is refused, at its position.
        let mut both = batch("ok", 1, 10, 1000).to_vec();
        let at = both.len();
        both.extend_from_slice(&b);
        let err = log.append(&mut both).unwrap_err();
        assert!(
            matches!(err, LogError::TransactionBatch { position, control: c } if position == at && c == control),
            "bits {bits:#x}: {err}"
        );
        assert_eq!(crate::error::log_error_code(&err), ErrorCode::InvalidRecord);
        // So does a replication leader's check before proposing, and a
        // replica applying a proposal decides the same.
        let err = log.check_proposal(&mut b.clone()).unwrap_err();
        assert!(matches!(err, LogError::TransactionBatch { .. }), "{err}");
        let err = log.append_replica(0, &mut b.clone()).unwrap_err();
        assert!(matches!(err, LogError::TransactionBatch { .. }), "{err}");
    }
    assert_eq!(log.next_offset(), 0);
    assert!(read_all(&log, 1 << 20).is_empty());
}

#[test]
fn batches_stamped_too_far_ahead_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_timestamp_ahead: Some(Duration::from_secs(3600)),
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    let now = now_ms();
    // Within the bound (clock skew of a few minutes) is fine.
    log.append(&mut batch("ok", 2, 10, now + 5 * 60 * 1000))
        .unwrap();
    // A day ahead, or the far future, is not; nothing is written.
    for ts in [now + 24 * 3600 * 1000, i64::MAX - 10] {
        let mut b = batch("a", 1, 10, 1000).to_vec();
        b.extend_from_slice(&batch("late", 2, 10, ts));
        match log.append(&mut b) {
            Err(LogError::TimestampTooFarAhead {
                position,
                max_timestamp,
                ahead_ms,
                ..
            }) => {
                assert!(position > 0, "the second batch");
                assert_eq!(max_timestamp, ts.saturating_add(1));
                assert_eq!(ahead_ms, 3600 * 1000);
            }
            other => panic!("{other:?}"),
        }
    }
    // The records' times count, not the header's claim (which is stored
    // as the largest record time): a claim far ahead over old records is
    // accepted, and stored as the records' time...
    let mut b = batch("lie", 1, 10, 1000).to_vec();
    set_i64(&mut b, MAX_TIMESTAMP, now + 48 * 3600 * 1000);
    resign(&mut b);
    assert_eq!(log.append(&mut b).unwrap().max_timestamp, 1000);
    // ...and records far ahead under a claim of -1 are refused.
    let mut b = batch("hidden", 1, 10, now + 48 * 3600 * 1000).to_vec();
    set_i64(&mut b, MAX_TIMESTAMP, -1);
    resign(&mut b);
    assert!(matches!(
        log.append(&mut b),
        Err(LogError::TimestampTooFarAhead { .. })
    ));
    assert_eq!(log.next_offset(), 3);

    // With no bound, anything goes.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_timestamp_ahead: None,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    log.append(&mut batch("late", 1, 10, i64::MAX - 10))
        .unwrap();
}

#[test]
fn appends_stop_at_the_offset_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let base = PartitionLog::OFFSET_CEILING - 5;
    std::fs::write(segment_path(dir.path(), base, LOG_SUFFIX), b"").unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.next_offset(), base);
    log.append(&mut batch("a", 3, 10, 1000)).unwrap();
    // 3 more would pass the ceiling by one: refused, nothing written.
    match log.append(&mut batch("b", 3, 10, 1000)) {
        Err(LogError::OffsetSpaceExhausted {
            next_offset,
            offsets,
            ceiling,
        }) => {
            assert_eq!((next_offset, offsets), (base + 3, 3));
            assert_eq!(ceiling, PartitionLog::OFFSET_CEILING);
        }
        other => panic!("{other:?}"),
    }
    // Exactly up to the ceiling is allowed, then nothing more.
    log.append(&mut batch("c", 2, 10, 1000)).unwrap();
    assert_eq!(log.next_offset(), PartitionLog::OFFSET_CEILING);
    assert!(matches!(
        log.append(&mut batch("d", 1, 10, 1000)),
        Err(LogError::OffsetSpaceExhausted { .. })
    ));
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, base);
    assert_eq!(all.len(), 5);
    assert!(i64::try_from(PartitionLog::OFFSET_CEILING + u64::from(u32::MAX)).is_ok());
}

/// A segment whose stored batches already span almost all of its 32-bit
/// relative offsets (written before headers were checked): an append of
/// several batches that would not fit rolls first, so every batch lands in
/// a segment whose range holds it, and is indexed and readable.
#[test]
fn an_append_that_would_overflow_relative_offsets_rolls_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut stored = Vec::new();
    let mut next = 0i64;
    for delta in [i32::MAX, i32::MAX - 3] {
        let mut b = gzip_batch(1, delta);
        sluice_protocol::batch::set_base_offset(&mut b, next).unwrap();
        next += i64::from(delta) + 1;
        stored.extend_from_slice(&b);
    }
    let seg_end = u64::from(u32::MAX) - 2;
    assert_eq!(next as u64, seg_end);
    std::fs::write(segment_path(dir.path(), 0, LOG_SUFFIX), &stored).unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.next_offset(), seg_end);

    // Two records still fit (relative offsets up to u32::MAX - 1).
    let info = log.append(&mut batch("fits", 2, 10, 1000)).unwrap();
    assert!(!info.rolled);
    // Three batches of two: the last would pass the range; all go to a new segment.
    let mut three: Vec<u8> = (0..3)
        .flat_map(|_| batch("next", 2, 10, 1000).to_vec())
        .collect();
    let info = log.append(&mut three).unwrap();
    assert!(info.rolled);
    assert_eq!(info.base_offset, seg_end + 2);
    assert_eq!(log.segment_count(), 2);
    // Every new batch is readable by its own offset (the index was used).
    for o in seg_end + 2..seg_end + 8 {
        let slice = log.read(o, 1).unwrap();
        assert!(
            slice.first_offset <= o && o < slice.next_offset,
            "{o}: {slice:?}"
        );
        assert!(slice.len < 200, "one batch, not the segment: {slice:?}");
    }
}

#[test]
fn an_append_over_the_offset_cap_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut buf: Vec<u8> = (0..3)
        .flat_map(|_| batch("c", 2, 10, 1000).to_vec())
        .collect();
    log.append_capped(&mut buf.clone(), 6).unwrap();
    match log.append_capped(&mut buf, 5) {
        Err(LogError::AppendTooLarge {
            offsets,
            max_offsets,
            ..
        }) => assert_eq!((offsets, max_offsets), (6, 5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.next_offset(), 6);
    assert!(PartitionLog::MAX_APPEND_OFFSETS < u64::from(u32::MAX));
}

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Compressed batches are stored byte for byte as sent, with only the base
/// offset rewritten, and read back as their records.
#[test]
fn compressed_batches_are_stored_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut batch("a", 2, 10, 1000)).unwrap();
    let mut sent = Vec::new();
    for codec in CODECS {
        let packed = compress_batch(&batch(&codec.to_string(), 5, 100, 2000), Codec::new(codec))
            .unwrap()
            .to_vec();
        assert!(packed.len() < 5 * 100, "{codec} compresses padding");
        let mut appended = packed.clone();
        let info = log.append(&mut appended).unwrap();
        sent.push((info.base_offset, packed));
    }
    let all = read_all(&log, 1 << 20);
    assert_contiguous(&all, 0);
    assert_eq!(all.len(), 2 + 4 * 5);
    assert!(all[2].1.starts_with(b"gzip-0"));
    assert!(all[21].1.starts_with(b"zstd-4"));
    // The file holds the bytes as sent, base offset and leader epoch aside.
    let slice = log.read(2, 1 << 20).unwrap();
    let mut file = vec![0u8; slice.len as usize];
    crate::log::io::read_full_at(&**slice.file.as_ref().unwrap(), &mut file, slice.position)
        .unwrap();
    let mut at = 0;
    for (base, packed) in sent {
        let stored = &file[at..at + packed.len()];
        assert_eq!(&stored[..8], &(base as i64).to_be_bytes());
        assert_eq!(&stored[8..12], &packed[8..12]);
        assert_eq!(&stored[12..16], &PartitionLog::LEADER_EPOCH.to_be_bytes());
        assert_eq!(&stored[16..], &packed[16..]);
        at += packed.len();
    }
}

/// A compressed batch whose records decompress beyond the limit is refused
/// before more than the limit is held, whatever its codec.
#[test]
fn decompression_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_decompressed_batch_bytes: 64 << 10,
        ..small_config()
    };
    let (log, _) = PartitionLog::open(dir.path(), config).unwrap();
    for codec in CODECS {
        // 300 KiB of padding in one record compresses to a few hundred bytes.
        let mut bomb = compress_batch(&batch("x", 1, 300 << 10, 1000), Codec::new(codec))
            .unwrap()
            .to_vec();
        assert!(bomb.len() < 16 << 10, "{codec}: {}", bomb.len());
        assert_eq!(
            log.append(&mut bomb).unwrap_err().to_string(),
            LogError::InvalidBatch {
                position: 0,
                source: BatchError::DecompressedTooLarge {
                    codec,
                    limit: 64 << 10
                }
            }
            .to_string()
        );
        // Just under the limit is fine.
        let mut fits = compress_batch(&batch("y", 1, 60 << 10, 1000), Codec::new(codec))
            .unwrap()
            .to_vec();
        log.append(&mut fits).unwrap();
    }
    assert_eq!(log.next_offset(), 4);
}

/// A batch's base offset damaged on disk after a clean shutdown (the field
/// lies outside the batch's CRC, and recovery trusts a cleanly closed
/// log): a read whose header walk meets it is refused as damage, rather
/// than served with offsets the log never had.
#[test]
fn a_damaged_base_offset_met_by_a_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let len = batch("b", 2, 100, 1000).len() as u64;
    for i in 0..10 {
        log.append(&mut batch(&format!("b{i}"), 2, 100, 1000))
            .unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    log.close().unwrap();
    // The batch of offsets 12 and 13 now claims 999999.
    let path = segment_path(dir.path(), 0, LOG_SUFFIX);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (6 * len) as usize;
    set_i64(&mut bytes[at..], 0, 999_999);
    std::fs::write(&path, &bytes).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(report.clean_shutdown);
    match log.read(13, 1 << 20) {
        Err(LogError::Corrupt { reason, .. }) => assert!(
            reason.contains("starts at offset 999999, where offset 12 was expected"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    // Reads that do not walk over it are served as before.
    let first = log.read(0, len).unwrap();
    assert_eq!((first.first_offset, first.next_offset), (0, 2));
}

/// A clean-shut log of two segments of 2-record batches, the first sealed
/// with several offset index entries; returns the batch length.
fn two_segments(dir: &std::path::Path) -> u64 {
    let (log, _) = PartitionLog::open(dir, small_config()).unwrap();
    let len = batch("b", 2, 100, 1000).len() as u64;
    while log.segment_count() < 2 {
        log.append(&mut batch("b", 2, 100, 1000)).unwrap();
    }
    log.close().unwrap();
    len
}

/// An offset index entry that lies (no checksum covers the index) is not
/// trusted: a read it would start inside a batch, or end inside one, is
/// served by walking batch headers instead, as the log holds it.
#[test]
fn an_index_entry_pointing_into_a_batch_is_walked_around() {
    let dir = tempfile::tempdir().unwrap();
    let len = two_segments(dir.path());
    // The second entry of the sealed segment's index moved 4 bytes into
    // its batch: still increasing, so its checks at open pass.
    let path = segment_path(dir.path(), 0, crate::log::format::INDEX_SUFFIX);
    let mut index = std::fs::read(&path).unwrap();
    assert!(index.len() >= 3 * 8, "{} bytes of index", index.len());
    let offset = u64::from(u32::from_be_bytes(index[8..12].try_into().unwrap()));
    let position = u32::from_be_bytes(index[12..16].try_into().unwrap());
    assert_eq!(u64::from(position), offset / 2 * len);
    index[12..16].copy_from_slice(&(position + 4).to_be_bytes());
    std::fs::write(&path, &index).unwrap();
    let data = std::fs::read(segment_path(dir.path(), 0, LOG_SUFFIX)).unwrap();

    let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(report.clean_shutdown);
    let bytes = |s: &crate::log::LogSlice| s.read_bytes().unwrap();
    // Starting there: from the batch that holds the offset, as stored.
    for at in [offset, offset + 1] {
        let s = log.read(at, 2 * len).unwrap();
        assert_eq!(
            (s.first_offset, s.next_offset),
            (offset, offset + 4),
            "at {at}"
        );
        let from = position as usize;
        assert_eq!(bytes(&s), data[from..from + 2 * len as usize], "at {at}");
    }
    // Ending there: at the batch boundary before the budget's end.
    let s = log.read(0, u64::from(position) + 10).unwrap();
    assert_eq!((s.first_offset, s.next_offset), (0, offset));
    assert_eq!(bytes(&s), data[..position as usize]);
}

/// A timestamp look-up the offset index would start inside a batch scans
/// the segment from its start and finds the record (it skipped the
/// segment, answering a later record).
#[test]
fn a_timestamp_lookup_is_not_misled_by_a_lying_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut n = 0;
    while log.segment_count() < 2 {
        log.append(&mut batch("t", 2, 1000, 1000 + 10 * n)).unwrap();
        n += 1;
    }
    log.close().unwrap();
    let path = segment_path(dir.path(), 0, crate::log::format::INDEX_SUFFIX);
    let mut index = std::fs::read(&path).unwrap();
    assert!(index.len() >= 3 * 8, "{} bytes of index", index.len());
    let offset = u64::from(u32::from_be_bytes(index[8..12].try_into().unwrap()));
    let position = u32::from_be_bytes(index[12..16].try_into().unwrap());
    index[12..16].copy_from_slice(&(position + 4).to_be_bytes());
    std::fs::write(&path, &index).unwrap();

    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    // The batch at that entry holds offsets `offset`, `offset + 1`, stamped
    // 1000 + 5 * offset and one more.
    let stamp = 1000 + 5 * offset as i64;
    let found = log.offset_for_timestamp(stamp + 1).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (offset + 1, stamp + 1));
}

#[test]
fn a_zeroed_batch_header_a_read_starts_at_or_walks_over_is_refused() {
    for zeroed in [0u64, 2] {
        let dir = tempfile::tempdir().unwrap();
        let len = two_segments(dir.path());
        // One batch of the sealed segment zeroed whole, in a segment
        // trusted after a clean shutdown: the first, or the third.
        let path = segment_path(dir.path(), 0, LOG_SUFFIX);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (zeroed * len) as usize;
        bytes[at..at + len as usize].fill(0);
        std::fs::write(&path, &bytes).unwrap();

        let (log, report) = PartitionLog::open(dir.path(), small_config()).unwrap();
        assert!(report.clean_shutdown);
        for offset in [2 * zeroed, 2 * zeroed + 1] {
            match log.read(offset, 1 << 20) {
                Err(LogError::Corrupt { reason, .. }) => {
                    assert!(reason.contains("no batch header"), "{reason}")
                }
                other => panic!("batch {zeroed} zeroed, a read at {offset}: {other:?}"),
            }
        }
        if zeroed > 0 {
            let first = log.read(0, len).unwrap();
            assert_eq!((first.first_offset, first.next_offset), (0, 2));
        }
    }
}
