//! [`RecordBatch`]: one validated batch held in a `Bytes`, and [`Records`], the iterator
//! over its records.

use bytes::Bytes;

use super::compression::{DEFAULT_MAX_DECOMPRESSED_BYTES, decompress};
use super::record::Record;
use super::records::decode_record;
use super::{BatchError, BatchHeader, Compression, HEADER_LEN, TimestampType, validate};

/// One batch that passed [`validate`], owning exactly its bytes (a cheap `Bytes` handle).
///
/// Holding a `RecordBatch` guarantees: the header is well-formed, the CRC matches, and, if
/// uncompressed, every record decodes and [`records`](RecordBatch::records) yields
/// exactly `record_count` records without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    header: BatchHeader,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one batch and wraps it.
    ///
    /// Errors: those of [`validate`], and [`BatchError::BytesAfterBatch`] if `bytes` is
    /// longer than the batch (use [`RecordBatch::split_first`] to take batches off a buffer
    /// holding several).
    pub fn new(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let header = validate(&bytes)?;
        if bytes.len() != header.total_len() {
            return Err(BatchError::BytesAfterBatch {
                batch_len: header.total_len(),
                buf_len: bytes.len(),
            });
        }
        Ok(RecordBatch { bytes, header })
    }

    /// Validates the first batch of `bytes` and splits it off: on success `bytes` keeps
    /// what follows the batch; on error `bytes` is unchanged.
    pub fn split_first(bytes: &mut Bytes) -> Result<RecordBatch, BatchError> {
        let header = validate(bytes)?;
        let bytes = bytes.split_to(header.total_len());
        Ok(RecordBatch { bytes, header })
    }

    /// Like [`RecordBatch::split_first`] but skips the CRC check (see
    /// [`super::validate_structure`]).
    pub fn split_first_unverified(bytes: &mut Bytes) -> Result<RecordBatch, BatchError> {
        let header = super::validate::validate_structure(bytes)?;
        let bytes = bytes.split_to(header.total_len());
        Ok(RecordBatch { bytes, header })
    }

    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, exactly `header().total_len()` long, as received.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Gives back the batch's bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Iterates the records in order, offsets `base_offset + 0, 1, 2, ...`. Allocates
    /// nothing per record: keys, values and headers are slices of the batch's buffer.
    ///
    /// A compressed batch is decompressed once, here, into one buffer of at most
    /// [`DEFAULT_MAX_DECOMPRESSED_BYTES`]; its records are then slices of that buffer.
    /// If it does not decompress, or its decompressed records are malformed, the
    /// iterator yields that error (after any records before the bad one).
    pub fn records(&self) -> Records {
        self.records_limited(DEFAULT_MAX_DECOMPRESSED_BYTES)
    }

    /// [`RecordBatch::records`] with `limit` in place of
    /// [`DEFAULT_MAX_DECOMPRESSED_BYTES`] ([`BatchError::DecompressedTooLarge`] beyond it).
    pub fn records_limited(&self, limit: usize) -> Records {
        let compression = self.header.compression();
        let mut records = Records {
            bytes: self.bytes.clone(),
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            log_append_time: (self.header.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(self.header.max_timestamp),
            error: None,
            pos: HEADER_LEN,
            index: 0,
            count: self.header.record_count,
        };
        if compression != Compression::None {
            let section = self.bytes.get(HEADER_LEN..).unwrap_or_default();
            let mut out = Vec::new();
            match decompress(compression, section, limit, &mut out) {
                Ok(()) => {
                    records.bytes = Bytes::from(out);
                    records.pos = 0;
                }
                Err(e) => records.error = Some(e),
            }
        }
        records
    }
}

/// Iterator over the records of a [`RecordBatch`]; see [`RecordBatch::records`]. Ends
/// after the last record or after the first error.
#[derive(Debug, Clone)]
pub struct Records {
    bytes: Bytes,
    base_offset: i64,
    base_timestamp: i64,
    /// `Some(max_timestamp)` when every record takes the batch's log append time.
    log_append_time: Option<i64>,
    /// An error to yield first (a compressed batch that did not decompress).
    error: Option<BatchError>,
    pos: usize,
    index: i32,
    count: i32,
}

impl Iterator for Records {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.count = 0;
            self.pos = self.bytes.len();
            return Some(Err(e));
        }
        if self.index >= self.count {
            if self.index == self.count && self.pos < self.bytes.len() {
                // Bytes left after the declared records (only a decompressed section can
                // reach here unvalidated).
                self.count = 0;
                self.pos = self.bytes.len();
                return Some(Err(BatchError::TrailingBytes {
                    position: self.pos,
                    count: self.bytes.len() - self.pos,
                }));
            }
            return None;
        }
        let raw = match decode_record(&self.bytes, &mut self.pos, self.index) {
            Ok(raw) => raw,
            Err(e) => {
                self.count = 0;
                self.pos = self.bytes.len();
                return Some(Err(e));
            }
        };
        let index = self.index;
        if raw.offset_delta != index {
            // Checked for an uncompressed batch when it was validated; a
            // compressed one's records are first read here, and a record
            // must not come out at an offset its place does not give it.
            self.count = 0;
            self.pos = self.bytes.len();
            return Some(Err(BatchError::OffsetDeltaMismatch {
                index,
                expected: index,
                actual: raw.offset_delta,
            }));
        }
        self.index += 1;
        let timestamp = self
            .log_append_time
            .unwrap_or_else(|| self.base_timestamp.wrapping_add(raw.timestamp_delta));
        Some(Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(raw.offset_delta)),
            timestamp,
            key: raw.key.map(|r| self.bytes.slice(r)),
            value: raw.value.map(|r| self.bytes.slice(r)),
            headers: self.bytes.slice(raw.headers),
            header_count: raw.header_count,
            index,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.error.is_some() {
            1
        } else {
            (self.count - self.index).max(0) as usize
        };
        (0, Some(left))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::batch::testutil::{RefHeader, assemble, fix_crc, framed, record_body};
    use crate::batch::{BatchBuilder, NewRecord};

    fn two_records() -> Bytes {
        let mut b = BatchBuilder::new().base_offset(10);
        b.push(&NewRecord {
            timestamp: 100,
            key: Some(b"k0"),
            value: Some(b"v0"),
            headers: &[("h", None)],
        });
        b.push(&NewRecord {
            timestamp: 90,
            key: None,
            value: Some(b"v1"),
            headers: &[],
        });
        b.finish().freeze()
    }

    #[test]
    fn records_are_slices_of_the_batch() {
        let bytes = two_records();
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        assert_eq!(batch.as_bytes(), &bytes);
        assert_eq!(batch.header().max_timestamp, 100);
        let recs: Vec<Record> = batch.records().map(Result::unwrap).collect();
        assert_eq!((recs[0].offset, recs[0].timestamp), (10, 100));
        assert_eq!((recs[1].offset, recs[1].timestamp), (11, 90));
        let key = recs[0].key.as_ref().unwrap();
        assert_eq!(&key[..], b"k0");
        let range = bytes.as_ptr_range();
        assert!(
            range.contains(&key.as_ptr()),
            "key must borrow the batch buffer"
        );
        assert_eq!(recs[0].header_count(), 1);
        let h: Vec<_> = recs[0].headers().map(Result::unwrap).collect();
        assert_eq!(h, [("h", None)]);
        assert_eq!(recs[1].headers().count(), 0);
        assert_eq!(batch.into_bytes(), bytes);
    }

    #[test]
    fn new_requires_exactly_one_batch_and_split_first_takes_one() {
        let one = two_records();
        let mut two = one.to_vec();
        two.extend_from_slice(&one);
        assert_eq!(
            RecordBatch::new(Bytes::from(two.clone())),
            Err(BatchError::BytesAfterBatch {
                batch_len: one.len(),
                buf_len: two.len()
            })
        );
        let mut buf = Bytes::from(two);
        let first = RecordBatch::split_first(&mut buf).unwrap();
        assert_eq!(first.as_bytes(), &one);
        assert_eq!(buf, one);
        let mut bad = Bytes::from_static(&[0u8; 5]);
        assert!(RecordBatch::split_first(&mut bad).is_err());
        assert_eq!(bad.len(), 5);
    }

    #[test]
    fn compressed_batch_that_does_not_decompress_yields_the_error() {
        let mut raw = two_records().to_vec();
        raw[22] |= 1; // gzip, but the records are not a gzip stream
        fix_crc(&mut raw);
        let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
        assert_eq!(batch.header().compression(), Compression::Gzip);
        let items: Vec<_> = batch.records().collect();
        assert!(
            matches!(
                items[..],
                [Err(BatchError::BadCompressedData {
                    codec: Compression::Gzip,
                    ..
                })]
            ),
            "{items:?}"
        );
    }

    #[test]
    fn compressed_records_borrow_the_one_decompressed_buffer() {
        let plain = two_records();
        let codec = crate::batch::compression::Codec::new(Compression::Lz4);
        let packed = crate::batch::compression::compress_batch(&plain, codec).unwrap();
        let batch = RecordBatch::new(packed.freeze()).unwrap();
        let recs: Vec<Record> = batch.records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(recs[1].value.as_deref(), Some(&b"v1"[..]));
        // Both values point into one buffer, 2 + the record framing apart.
        let gap = recs[1].value.as_ref().unwrap().as_ptr() as usize
            - recs[0].value.as_ref().unwrap().as_ptr() as usize;
        assert!(gap < 64, "{gap}");
    }

    #[test]
    fn a_compressed_record_whose_offset_delta_is_not_its_place_is_an_error() {
        // Validation checks the deltas of an uncompressed batch only; a
        // compressed batch's are first seen by this iterator, which must not
        // hand out record 1 at offset base + 5.
        let recs = [
            framed(&record_body(0, 0, Some(b"a"), Some(b"x"), &[])),
            framed(&record_body(0, 5, Some(b"b"), Some(b"y"), &[])),
        ]
        .concat();
        let plain = assemble(
            RefHeader {
                base_offset: 40,
                last_offset_delta: 1,
                record_count: 2,
                ..RefHeader::default()
            },
            &recs,
        );
        let header = BatchHeader::parse(&plain).unwrap();
        let codec = crate::batch::compression::Codec::new(Compression::Zstd);
        let packed = crate::batch::compression::build_compressed(&header, &recs, codec).unwrap();
        let batch = RecordBatch::new(packed.freeze()).unwrap();
        let mut it = batch.records();
        assert_eq!(it.next().unwrap().unwrap().offset, 40);
        assert_eq!(
            it.next(),
            Some(Err(BatchError::OffsetDeltaMismatch {
                index: 1,
                expected: 1,
                actual: 5
            }))
        );
        assert!(it.next().is_none(), "the iterator stops after the error");
    }

    #[test]
    fn log_append_time_gives_every_record_max_timestamp() {
        let recs = [
            framed(&record_body(0, 0, None, None, &[])),
            framed(&record_body(5, 1, None, None, &[])),
        ]
        .concat();
        let raw = assemble(
            RefHeader {
                attributes: 0x08,
                last_offset_delta: 1,
                base_timestamp: 10,
                max_timestamp: 777,
                record_count: 2,
                ..RefHeader::default()
            },
            &recs,
        );
        let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
        let ts: Vec<i64> = batch.records().map(|r| r.unwrap().timestamp).collect();
        assert_eq!(ts, [777, 777]);
    }

    #[test]
    fn iterator_stops_after_a_decode_error() {
        // Not reachable through `new`; build the view by hand to prove no panic.
        let raw = assemble(
            RefHeader {
                record_count: 3,
                ..RefHeader::default()
            },
            &[0x01],
        );
        let header = BatchHeader::parse(&raw).unwrap();
        let batch = RecordBatch {
            bytes: Bytes::from(raw),
            header,
        };
        let mut it = batch.records();
        assert!(matches!(
            it.next(),
            Some(Err(BatchError::BadRecord { index: 0, .. }))
        ));
        assert_eq!(it.next(), None);
    }
}
