//! Whole-batch checks: [`verify_crc`] (header and CRC) and [`validate`] (also every
//! record of an uncompressed batch).

use super::compression::decompress;
use super::header::crc_of;
use super::records::decode_record;
use super::{BatchError, BatchHeader, Compression, HEADER_LEN};

/// Checks the header and the CRC of the one batch at the start of `buf`, without walking
/// its records (what crash recovery needs). `buf` may hold more bytes after the batch.
///
/// Order of checks: magic, header present, `batch_length`, the whole batch present
/// ([`BatchError::Truncated`]), the CRC ([`BatchError::CrcMismatch`]), then the
/// CRC-covered header fields (codec, record count, last offset delta). So any corruption
/// of bytes 21.. is reported as a CRC mismatch, never as a bogus field. Returns the
/// parsed header, which satisfies everything [`BatchHeader::parse`] guarantees.
pub fn verify_crc(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse_framing(buf)?;
    let batch = whole_batch(buf, &header)?;
    let computed = crc_of(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    header.check_fields()?;
    Ok(header)
}

/// Fully validates the one batch at the start of `buf`; `buf` may hold more bytes after it.
///
/// Everything [`verify_crc`] checks, then, for an uncompressed batch, every record: its
/// structure (lengths, varints, UTF-8 header keys, record length equal to the sum of its
/// fields), offset deltas 0, 1, 2, ... in order, as many records as `record_count`, the
/// last delta equal to `last_offset_delta` (when there are records), and no bytes after
/// the last record. The records of a compressed batch cannot be walked without
/// decompressing them, so for it only the header's own claims are cross-checked:
/// `last_offset_delta == record_count - 1` when it has records. Allocates nothing.
/// Returns the parsed header.
///
/// So whenever `record_count > 0`, a batch that passes takes exactly `record_count`
/// offsets (`last_offset_delta + 1`); for an uncompressed batch that count is also the
/// number of records actually in it. An empty batch (`record_count == 0`, as Kafka's
/// compaction leaves behind) is valid; its `last_offset_delta` is not checked (the broker
/// refuses empty batches on append).
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = verify_crc(buf)?;
    if header.compression() == Compression::None {
        check_records(whole_batch(buf, &header)?, HEADER_LEN, &header)?;
    } else {
        check_last_offset_delta(&header)?;
    }
    Ok(header)
}

/// The checks of [`validate`] that need no walk of the records, for any codec:
/// everything [`verify_crc`] checks, then `last_offset_delta == record_count - 1`
/// when the batch has records. For bytes whose records were fully validated
/// elsewhere and which only had to cross a wire or a disk since (a replica
/// storing what its leader checked): the CRC proves they are those bytes.
pub fn validate_shallow(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = verify_crc(buf)?;
    check_last_offset_delta(&header)?;
    Ok(header)
}

/// `last_offset_delta == record_count - 1` for a batch with records.
fn check_last_offset_delta(header: &BatchHeader) -> Result<(), BatchError> {
    if header.record_count > 0 && header.last_offset_delta != header.record_count - 1 {
        return Err(BatchError::LastOffsetDeltaMismatch {
            header: header.last_offset_delta,
            actual: header.record_count - 1,
        });
    }
    Ok(())
}

/// Like [`validate`] but without the CRC check: the header and, for an
/// uncompressed batch, every record's structure. For readers that chose not to
/// verify checksums (the bytes were checked when they were stored); a
/// corrupted batch may then decode into wrong but well-formed records.
pub fn validate_structure(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse_framing(buf)?;
    let batch = whole_batch(buf, &header)?;
    header.check_fields()?;
    if header.compression() == Compression::None {
        check_records(batch, HEADER_LEN, &header)?;
    } else {
        check_last_offset_delta(&header)?;
    }
    Ok(header)
}

/// The first `total_len` bytes of `buf`, or `Truncated`.
fn whole_batch<'a>(buf: &'a [u8], header: &BatchHeader) -> Result<&'a [u8], BatchError> {
    let need = header.total_len();
    buf.get(..need).ok_or(BatchError::Truncated {
        need,
        have: buf.len(),
    })
}

/// Fully validates the one batch at the start of `buf`, decompressing a compressed one.
///
/// Everything [`validate`] checks; for a compressed batch also: the records section
/// decompresses (see [`decompress`]) to at most `limit` bytes, and the decompressed
/// records pass the same record checks as an uncompressed batch (structure, offset
/// deltas 0.., exactly `record_count` records, nothing after the last). `scratch` is
/// the decompression buffer (cleared first, reusable; it holds the decompressed records
/// on success). For an uncompressed batch this is [`validate`] and `scratch` is not
/// touched.
pub fn validate_decompressing(
    buf: &[u8],
    limit: usize,
    scratch: &mut Vec<u8>,
) -> Result<BatchHeader, BatchError> {
    validate_measuring(buf, limit, scratch).map(|v| v.header)
}

/// What [`validate_measuring`] found in a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    /// The batch's header, as stored.
    pub header: BatchHeader,
    /// The largest record timestamp, `baseTimestamp + timestampDelta`
    /// (wrapping, as every reader of the batch computes it: Kafka's, and
    /// [`super::RecordBatch::records`]), or `None` when it has none: what `maxTimestamp` must
    /// be for a batch with create-time timestamps. A client may send
    /// another value (older clients send -1); Kafka stores this one.
    pub max_record_timestamp: Option<i64>,
}

/// [`validate_decompressing`], also measuring the largest record timestamp
/// during the same walk of the records.
pub fn validate_measuring(
    buf: &[u8],
    limit: usize,
    scratch: &mut Vec<u8>,
) -> Result<Validated, BatchError> {
    let header = verify_crc(buf)?;
    let batch = whole_batch(buf, &header)?;
    let codec = header.compression();
    let max_record_timestamp = if codec == Compression::None {
        check_records(batch, HEADER_LEN, &header)?
    } else {
        // The header's own claims first: no work for a batch that lies.
        check_last_offset_delta(&header)?;
        let section = batch.get(HEADER_LEN..).unwrap_or_default();
        decompress(codec, section, limit, scratch)?;
        check_records(scratch, 0, &header)?
    };
    Ok(Validated {
        header,
        max_record_timestamp,
    })
}

/// Walks the records of `buf[start..]` (an uncompressed batch from `HEADER_LEN`, or a
/// decompressed records section from 0); returns the largest record timestamp.
fn check_records(
    buf: &[u8],
    start: usize,
    header: &BatchHeader,
) -> Result<Option<i64>, BatchError> {
    let batch = buf;
    let mut pos = start;
    let mut max_timestamp: Option<i64> = None;
    for index in 0..header.record_count {
        if pos >= batch.len() {
            return Err(BatchError::RecordCountMismatch {
                header: header.record_count,
                actual: index,
            });
        }
        let record = decode_record(batch, &mut pos, index)?;
        if record.offset_delta != index {
            return Err(BatchError::OffsetDeltaMismatch {
                index,
                expected: index,
                actual: record.offset_delta,
            });
        }
        // The largest sum, not the sum of the largest delta: the two differ
        // when a sum wraps.
        let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
        max_timestamp = max_timestamp.max(Some(timestamp));
    }
    if pos < batch.len() {
        return Err(excess(batch, pos, header.record_count));
    }
    check_last_offset_delta(header)?;
    Ok(max_timestamp)
}

/// Explains the bytes from `start` to the batch end left after `count` records: more
/// whole records (a count mismatch), or bytes that are not records.
fn excess(batch: &[u8], start: usize, count: i32) -> BatchError {
    let mut pos = start;
    let mut actual = count;
    while pos < batch.len() {
        if decode_record(batch, &mut pos, actual).is_err() {
            return BatchError::TrailingBytes {
                position: start,
                count: batch.len() - start,
            };
        }
        actual = actual.saturating_add(1);
    }
    BatchError::RecordCountMismatch {
        header: count,
        actual,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::batch::records::reason;
    use crate::batch::testutil::{RefHeader, assemble, fix_crc, framed, record_body, varint};

    /// `n` simple records with correct deltas, framed.
    fn records(n: i64) -> Vec<u8> {
        (0..n)
            .flat_map(|i| framed(&record_body(i, i, None, Some(b"v"), &[])))
            .collect()
    }

    fn header(n: i32) -> RefHeader {
        RefHeader {
            record_count: n,
            last_offset_delta: (n - 1).max(0),
            base_timestamp: 1000,
            max_timestamp: 1000 + i64::from(n),
            ..RefHeader::default()
        }
    }

    fn bad_record(index: i32, reason: &'static str) -> Result<BatchHeader, BatchError> {
        Err(BatchError::BadRecord { index, reason })
    }

    #[test]
    fn good_batch_validates_with_trailing_buffer_bytes() {
        let mut b = assemble(header(3), &records(3));
        let h = validate(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.total_len(), b.len());
        b.extend_from_slice(b"next batch");
        assert_eq!(validate(&b), Ok(h));
        assert_eq!(verify_crc(&b), Ok(h));
    }

    #[test]
    fn empty_batch_is_valid() {
        let b = assemble(header(0), &[]);
        assert_eq!(validate(&b).unwrap().record_count, 0);
    }

    #[test]
    fn every_truncation_is_reported_never_panics() {
        let b = assemble(header(3), &records(3));
        for len in 0..b.len() {
            let need = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                b.len()
            };
            let want = Err(BatchError::Truncated { need, have: len });
            assert_eq!(validate(&b[..len]), want, "len {len}");
            assert_eq!(verify_crc(&b[..len]), want, "len {len}");
        }
    }

    #[test]
    fn crc_mismatch() {
        let mut b = assemble(header(1), &records(1));
        let stored = u32::from_be_bytes(b[17..21].try_into().unwrap());
        b[30] ^= 1;
        match validate(&b) {
            Err(BatchError::CrcMismatch {
                stored: s,
                computed,
            }) => {
                assert_eq!(s, stored);
                assert_ne!(computed, stored);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn record_count_mismatch_fewer_and_more() {
        let b = assemble(header(3), &records(2));
        assert_eq!(
            validate(&b),
            Err(BatchError::RecordCountMismatch {
                header: 3,
                actual: 2
            })
        );
        let b = assemble(header(2), &records(3));
        assert_eq!(
            validate(&b),
            Err(BatchError::RecordCountMismatch {
                header: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn trailing_bytes_after_last_record() {
        let mut recs = records(2);
        let end = HEADER_LEN + recs.len();
        recs.extend_from_slice(&[0x00]);
        let b = assemble(header(2), &recs);
        assert_eq!(
            validate(&b),
            Err(BatchError::TrailingBytes {
                position: end,
                count: 1
            })
        );
    }

    #[test]
    fn offset_delta_mismatch() {
        let mut recs = framed(&record_body(0, 0, None, None, &[]));
        recs.extend(framed(&record_body(0, 2, None, None, &[])));
        let b = assemble(header(2), &recs);
        assert_eq!(
            validate(&b),
            Err(BatchError::OffsetDeltaMismatch {
                index: 1,
                expected: 1,
                actual: 2
            })
        );
    }

    #[test]
    fn last_offset_delta_mismatch() {
        let b = assemble(
            RefHeader {
                last_offset_delta: 5,
                ..header(2)
            },
            &records(2),
        );
        assert_eq!(
            validate(&b),
            Err(BatchError::LastOffsetDeltaMismatch {
                header: 5,
                actual: 1
            })
        );
        // verify_crc does not look at records.
        assert!(verify_crc(&b).is_ok());
    }

    #[test]
    fn header_errors_surface_through_validate() {
        let mut b = assemble(header(1), &records(1));
        b[16] = 1;
        assert_eq!(validate(&b), Err(BatchError::BadMagic(1)));
        let b = assemble(
            RefHeader {
                attributes: 6,
                ..header(1)
            },
            &records(1),
        );
        assert_eq!(validate(&b), Err(BatchError::UnknownCompression(6)));
        let b = assemble(
            RefHeader {
                record_count: -2,
                ..header(1)
            },
            &records(1),
        );
        assert_eq!(validate(&b), Err(BatchError::NegativeRecordCount(-2)));
        let mut b = assemble(header(1), &records(1));
        b[8..12].copy_from_slice(&40i32.to_be_bytes());
        assert_eq!(validate(&b), Err(BatchError::BadBatchLength(40)));
    }

    /// A compressed batch cannot be walked, but its header must still agree with itself:
    /// a 70-byte batch claiming one record and 2^31 offsets is refused.
    #[test]
    fn compressed_batch_with_lying_last_offset_delta_is_refused() {
        for (count, delta) in [(1, i32::MAX), (5, 0), (5, 5), (2, 3)] {
            let b = assemble(
                RefHeader {
                    attributes: 1,
                    record_count: count,
                    last_offset_delta: delta,
                    ..header(1)
                },
                &[0u8; 9],
            );
            let want = Err(BatchError::LastOffsetDeltaMismatch {
                header: delta,
                actual: count - 1,
            });
            assert_eq!(validate(&b), want, "count {count} delta {delta}");
            assert_eq!(validate_structure(&b), want);
        }
    }

    #[test]
    fn compressed_batch_is_checked_by_header_and_crc_only() {
        let garbage = [0xffu8; 17];
        let b = assemble(
            RefHeader {
                attributes: 4,
                ..header(5)
            },
            &garbage,
        );
        let h = validate(&b).unwrap();
        assert_eq!(h.compression(), Compression::Zstd);
        let mut corrupt = b.clone();
        corrupt[70] ^= 0x40;
        assert!(matches!(
            validate(&corrupt),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn malformed_records() {
        let check = |recs: &[u8], reason: &'static str| {
            let b = assemble(header(1), recs);
            assert_eq!(validate(&b), bad_record(0, reason), "{reason}");
        };
        // Length varint: truncated at the batch end, overflowing, negative.
        check(&[0x80], reason::LENGTH_PAST_BATCH);
        check(&[0xff, 0xff, 0xff, 0xff, 0x7f], reason::LENGTH_OVERFLOW);
        check(&[0x01], reason::NEGATIVE_LENGTH);
        // Length beyond the batch.
        check(&[0x14, 0, 0, 0], reason::RECORD_PAST_BATCH);
        // Length shorter than the fields.
        let body = record_body(0, 0, None, Some(b"abc"), &[]);
        let mut short = Vec::new();
        varint(&mut short, body.len() as i64 - 2);
        short.extend_from_slice(&body[..body.len() - 2]);
        check(&short, reason::FIELD_PAST_RECORD);
        // Length longer than the fields.
        let mut long = body.clone();
        long.push(0);
        check(&framed(&long), reason::LENGTH_DISAGREES);
        // Overflowing timestamp varlong.
        let mut b = vec![0u8];
        b.extend_from_slice(&[0xff; 10]);
        check(&framed(&b), reason::VARINT_OVERFLOW);
        // Negative lengths other than -1.
        let mut b = vec![0, 0, 0];
        varint(&mut b, -2);
        check(&framed(&b), reason::NEGATIVE_KEY_LENGTH);
        let mut b = vec![0, 0, 0, 1];
        varint(&mut b, -3);
        check(&framed(&b), reason::NEGATIVE_VALUE_LENGTH);
        let mut b = vec![0, 0, 0, 1, 1];
        varint(&mut b, -1);
        check(&framed(&b), reason::NEGATIVE_HEADER_COUNT);
        let mut b = vec![0, 0, 0, 1, 1, 2];
        varint(&mut b, -1);
        check(&framed(&b), reason::NEGATIVE_HEADER_KEY_LENGTH);
        let mut b = vec![0, 0, 0, 1, 1, 2, 2, b'k'];
        varint(&mut b, -2);
        check(&framed(&b), reason::NEGATIVE_HEADER_VALUE_LENGTH);
        check(
            &framed(&[0, 0, 0, 1, 1, 2, 2, 0xff, 1]),
            reason::HEADER_KEY_NOT_UTF8,
        );
        // Hostile header count: ends at the record's end.
        let mut b = vec![0, 0, 0, 1, 1];
        varint(&mut b, i64::from(i32::MAX));
        check(&framed(&b), reason::FIELD_PAST_RECORD);
    }

    #[test]
    fn record_errors_name_the_record_index() {
        let mut recs = records(2);
        recs.extend(framed(&[0, 0, 4])); // record 2: offset delta 2, then nothing
        let b = assemble(header(3), &recs);
        assert_eq!(validate(&b), bad_record(2, reason::FIELD_PAST_RECORD));
    }

    #[test]
    fn messages_are_sentences_not_debug() {
        let e = BatchError::BadRecord {
            index: 4,
            reason: reason::NEGATIVE_LENGTH,
        };
        assert_eq!(
            e.to_string(),
            "record 4 is malformed: negative record length"
        );
        let e = BatchError::CrcMismatch {
            stored: 1,
            computed: 0xabcdef01,
        };
        assert_eq!(
            e.to_string(),
            "record batch CRC mismatch: stored 0x00000001, computed 0xabcdef01"
        );
        assert_eq!(
            BatchError::DecompressedTooLarge {
                codec: Compression::Lz4,
                limit: 10
            }
            .to_string(),
            "record batch compressed with lz4 decompresses to more than 10 bytes"
        );
    }

    #[test]
    fn fix_crc_is_what_validate_expects() {
        let mut b = assemble(header(1), &records(1));
        b[21 + 2 + 4] ^= 0x10; // base timestamp
        assert!(verify_crc(&b).is_err());
        fix_crc(&mut b);
        assert!(validate(&b).is_ok());
    }
}
