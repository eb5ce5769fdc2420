//! [`BatchHeader`]: the 61-byte RecordBatch v2 header, and in-place edits of the fields
//! the CRC does not cover.

use bytes::{Buf, BufMut};

use super::attributes::{COMPRESSION_MASK, CONTROL_BIT, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT};
pub use super::attributes::{Compression, TimestampType};
use super::{BatchError, CRC_START, HEADER_LEN, LOG_OVERHEAD, MAGIC};

/// Byte position of `magic`.
const MAGIC_POS: usize = 16;
/// Smallest valid `batchLength`: the header bytes that follow the length field.
const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

/// The fields of a RecordBatch v2 header, as stored (see `docs/record-batch.md`).
///
/// A value returned by [`BatchHeader::parse`] (and so by `validate`, `verify_crc`,
/// `BatchIter`) has magic 2, `batch_length >= 49`, a known compression codec,
/// `record_count >= 0` and `last_offset_delta >= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (bytes 0..8); not covered by the CRC.
    pub base_offset: i64,
    /// Bytes that follow this field (bytes 8..12); the batch is `12 + batch_length` bytes.
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended (bytes 12..16); not
    /// covered by the CRC.
    pub partition_leader_epoch: i32,
    /// Format version (byte 16); always 2.
    pub magic: i8,
    /// CRC-32C of bytes 21..end (bytes 17..21).
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits (bytes 21..23).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset` (bytes 23..27).
    pub last_offset_delta: i32,
    /// Timestamp of the first record; record timestamps are deltas from it (bytes 27..35).
    pub base_timestamp: i64,
    /// Largest record timestamp, or the log append time (bytes 35..43).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none (bytes 43..51).
    pub producer_id: i64,
    /// Producer epoch, -1 if none (bytes 51..53).
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none (bytes 53..57).
    pub base_sequence: i32,
    /// Number of records (bytes 57..61).
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses and sanity-checks the 61-byte header at the start of `buf`.
    ///
    /// Checks, in this order: magic is 2 (as soon as byte 16 is present), `buf` holds 61
    /// bytes, `batch_length >= 49`, the compression codec is 0-4, `record_count >= 0` and
    /// `last_offset_delta >= 0`. Does not check the CRC and reads only the first 61 bytes,
    /// so `buf` need not hold the whole batch. Never panics.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let header = Self::parse_framing(buf)?;
        header.check_fields()?;
        Ok(header)
    }

    /// The first half of [`BatchHeader::parse`]: reads the fields, checking only what is
    /// needed to find the batch's bytes (magic, 61 bytes present, `batch_length`).
    pub(crate) fn parse_framing(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if let Some(&magic) = buf.get(MAGIC_POS) {
            let magic = magic as i8;
            if magic != MAGIC {
                return Err(BatchError::BadMagic(magic));
            }
        }
        let Some(mut b) = buf.get(..HEADER_LEN) else {
            return Err(BatchError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        };
        // `b` holds exactly HEADER_LEN bytes, so none of the reads below can run short.
        let header = BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            record_count: b.get_i32(),
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadBatchLength(header.batch_length));
        }
        Ok(header)
    }

    /// The second half of [`BatchHeader::parse`]: checks the CRC-covered fields (codec,
    /// record count, last offset delta).
    pub(crate) fn check_fields(&self) -> Result<(), BatchError> {
        let codec = (self.attributes & COMPRESSION_MASK) as u8;
        if Compression::from_code(codec).is_none() {
            return Err(BatchError::UnknownCompression(codec));
        }
        if self.record_count < 0 {
            return Err(BatchError::NegativeRecordCount(self.record_count));
        }
        if self.last_offset_delta < 0 {
            return Err(BatchError::NegativeLastOffsetDelta(self.last_offset_delta));
        }
        Ok(())
    }

    /// Returns the 61 header bytes for these fields, exactly as [`BatchHeader::parse`] reads
    /// them. The `crc` field is written as it is; nothing is recomputed.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = out.as_mut_slice();
        w.put_i64(self.base_offset);
        w.put_i32(self.batch_length);
        w.put_i32(self.partition_leader_epoch);
        w.put_i8(self.magic);
        w.put_u32(self.crc);
        w.put_i16(self.attributes);
        w.put_i32(self.last_offset_delta);
        w.put_i64(self.base_timestamp);
        w.put_i64(self.max_timestamp);
        w.put_i64(self.producer_id);
        w.put_i16(self.producer_epoch);
        w.put_i32(self.base_sequence);
        w.put_i32(self.record_count);
        out
    }

    /// Total size of the batch in bytes: `LOG_OVERHEAD + batch_length` (at least 61 for a
    /// parsed header).
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record (or, for an empty batch, the last offset it reserves):
    /// `base_offset + last_offset_delta`, wrapping on overflow (which no batch from a
    /// Sluice log can reach: the broker refuses appends past `i64::MAX - 2^32`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Offset the next batch in the log gets: `last_offset() + 1`, wrapping like
    /// [`BatchHeader::last_offset`].
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The compression codec; [`Compression::None`] for a header that did not come from
    /// [`BatchHeader::parse`] and holds an unknown codec.
    pub fn compression(&self) -> Compression {
        Compression::from_code((self.attributes & COMPRESSION_MASK) as u8)
            .unwrap_or(Compression::None)
    }

    /// What the record timestamps mean (attributes bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// True if the batch belongs to a transaction (attributes bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// True if the batch holds control records, e.g. transaction markers (attributes bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Reads only the first 12 bytes of `buf`: returns `(base_offset, total_len)` of the batch
/// starting there, with `total_len >= HEADER_LEN`.
///
/// Meant for walking a file of batches cheaply; checks nothing else (not even magic).
/// Errors: [`BatchError::Truncated`] if `buf` is shorter than 12 bytes,
/// [`BatchError::BadBatchLength`] if `batchLength < 49`.
pub fn peek_offset_and_len(buf: &[u8]) -> Result<(i64, usize), BatchError> {
    let Some(mut b) = buf.get(..LOG_OVERHEAD) else {
        return Err(BatchError::Truncated {
            need: LOG_OVERHEAD,
            have: buf.len(),
        });
    };
    let base_offset = b.get_i64();
    let batch_length = b.get_i32();
    if batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::BadBatchLength(batch_length));
    }
    Ok((base_offset, LOG_OVERHEAD + batch_length as usize))
}

/// Overwrites `baseOffset` (bytes 0..8) in place. The CRC does not cover it, so a valid
/// batch stays valid. Never panics: [`BatchError::Truncated`] if `buf` is shorter than
/// 8 bytes, and then `buf` is unchanged.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    write_field(buf, 0, &base_offset.to_be_bytes())
}

/// Overwrites `partitionLeaderEpoch` (bytes 12..16) in place. The CRC does not cover it,
/// so a valid batch stays valid. Never panics: [`BatchError::Truncated`] if `buf` is
/// shorter than 16 bytes, and then `buf` is unchanged.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    write_field(buf, 12, &epoch.to_be_bytes())
}

/// Overwrites the idempotent producer fields (`producerId`, `producerEpoch`,
/// `baseSequence`, bytes 43..57) of the batch at the start of `buf` and
/// recomputes its CRC-32C (which covers them), so a valid batch stays valid.
/// Never panics: [`BatchError::Truncated`] if `buf` is shorter than the
/// batch, and then `buf` is unchanged.
pub fn set_producer(
    buf: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), BatchError> {
    let batch = whole_batch_mut(buf)?;
    write_field(batch, 43, &producer_id.to_be_bytes())?;
    write_field(batch, 51, &producer_epoch.to_be_bytes())?;
    write_field(batch, 53, &base_sequence.to_be_bytes())?;
    let crc = crc_of(batch);
    write_field(batch, 17, &crc.to_be_bytes())
}

/// Overwrites `maxTimestamp` (bytes 35..43) of the batch at the start of
/// `buf` and recomputes its CRC-32C (which covers it), so a valid batch
/// stays valid. Never panics: [`BatchError::Truncated`] if `buf` is shorter
/// than the batch, and then `buf` is unchanged.
pub fn set_max_timestamp(buf: &mut [u8], max_timestamp: i64) -> Result<(), BatchError> {
    let batch = whole_batch_mut(buf)?;
    write_field(batch, 35, &max_timestamp.to_be_bytes())?;
    let crc = crc_of(batch);
    write_field(batch, 17, &crc.to_be_bytes())
}

/// Marks the batch at the start of `buf` as create-time (clears the
/// timestamp-type bit of `attributes`, bytes 21..23), overwrites its
/// `maxTimestamp` (bytes 35..43) and recomputes its CRC-32C (which covers
/// both), so a valid batch stays valid. A broker whose topic keeps the
/// producers' timestamps stores every batch this way, as Kafka does: a
/// client's log-append-time bit would make readers take `maxTimestamp` for
/// every record's timestamp. Never panics: [`BatchError::Truncated`] if
/// `buf` is shorter than the batch, and then `buf` is unchanged.
pub fn set_create_time(buf: &mut [u8], max_timestamp: i64) -> Result<(), BatchError> {
    let batch = whole_batch_mut(buf)?;
    let attributes = batch
        .get(21..23)
        .and_then(|a| <[u8; 2]>::try_from(a).ok())
        .map(i16::from_be_bytes)
        .ok_or(BatchError::Truncated {
            need: 23,
            have: batch.len(),
        })?;
    write_field(batch, 35, &max_timestamp.to_be_bytes())?;
    write_field(batch, 21, &(attributes & !TIMESTAMP_TYPE_BIT).to_be_bytes())?;
    let crc = crc_of(batch);
    write_field(batch, 17, &crc.to_be_bytes())
}

/// The batch at the start of `buf`, whole, or how many bytes are missing.
fn whole_batch_mut(buf: &mut [u8]) -> Result<&mut [u8], BatchError> {
    let (_, total) = peek_offset_and_len(buf)?;
    let have = buf.len();
    buf.get_mut(..total)
        .ok_or(BatchError::Truncated { need: total, have })
}

/// Copies `bytes` to `buf[at..]`, or reports how many bytes were missing.
fn write_field(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), BatchError> {
    let have = buf.len();
    let need = at + bytes.len();
    match buf.get_mut(at..need) {
        Some(field) => {
            field.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(BatchError::Truncated { need, have }),
    }
}

/// CRC-32C of `batch[CRC_START..]` (of nothing if `batch` is shorter than that): the
/// value a batch whose bytes are exactly `batch` must store at bytes 17..21.
pub(crate) fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            base_offset: 0x0102_0304_0506_0708,
            batch_length: 49,
            partition_leader_epoch: -7,
            magic: MAGIC,
            crc: 0xdead_beef,
            attributes: 0x0030,
            last_offset_delta: 0,
            base_timestamp: -1,
            max_timestamp: i64::MAX,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 9,
            record_count: 0,
        }
    }

    #[test]
    fn encode_parse_round_trip_and_field_positions() {
        let h = sample();
        let bytes = h.encode();
        assert_eq!(BatchHeader::parse(&bytes), Ok(h));
        assert_eq!(&bytes[0..8], &h.base_offset.to_be_bytes());
        assert_eq!(&bytes[8..12], &49i32.to_be_bytes());
        assert_eq!(&bytes[12..16], &(-7i32).to_be_bytes());
        assert_eq!(bytes[16], 2);
        assert_eq!(&bytes[17..21], &0xdead_beefu32.to_be_bytes());
        assert_eq!(&bytes[21..23], &0x0030i16.to_be_bytes());
        assert_eq!(&bytes[35..43], &i64::MAX.to_be_bytes());
        assert_eq!(&bytes[43..51], &42i64.to_be_bytes());
        assert_eq!(&bytes[51..53], &3i16.to_be_bytes());
        assert_eq!(&bytes[53..57], &9i32.to_be_bytes());
        assert_eq!(&bytes[57..61], &0i32.to_be_bytes());
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(h.total_len(), 61);
        assert_eq!(h.next_offset(), h.base_offset + 1);
    }

    #[test]
    fn parse_rejects_each_bad_field() {
        let bad = |f: fn(&mut BatchHeader)| {
            let mut h = sample();
            f(&mut h);
            BatchHeader::parse(&h.encode())
        };
        assert_eq!(bad(|h| h.magic = 1), Err(BatchError::BadMagic(1)));
        assert_eq!(
            bad(|h| h.batch_length = 48),
            Err(BatchError::BadBatchLength(48))
        );
        assert_eq!(
            bad(|h| h.batch_length = -1),
            Err(BatchError::BadBatchLength(-1))
        );
        assert_eq!(
            bad(|h| h.attributes = 5),
            Err(BatchError::UnknownCompression(5))
        );
        assert_eq!(
            bad(|h| h.attributes = 0x7f),
            Err(BatchError::UnknownCompression(7))
        );
        assert_eq!(
            bad(|h| h.record_count = -1),
            Err(BatchError::NegativeRecordCount(-1))
        );
        assert_eq!(
            bad(|h| h.last_offset_delta = i32::MIN),
            Err(BatchError::NegativeLastOffsetDelta(i32::MIN))
        );
    }

    #[test]
    fn every_short_prefix_is_truncated_or_bad_magic() {
        let bytes = sample().encode();
        for len in 0..HEADER_LEN {
            let want = BatchError::Truncated {
                need: HEADER_LEN,
                have: len,
            };
            assert_eq!(BatchHeader::parse(&bytes[..len]), Err(want));
        }
        let mut v1 = bytes;
        v1[16] = 1;
        assert_eq!(BatchHeader::parse(&v1[..17]), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn peek_reads_offset_and_length_only() {
        let bytes = sample().encode();
        assert_eq!(
            peek_offset_and_len(&bytes[..12]),
            Ok((0x0102_0304_0506_0708, 61))
        );
        assert_eq!(
            peek_offset_and_len(&bytes[..11]),
            Err(BatchError::Truncated { need: 12, have: 11 })
        );
        let mut short = bytes;
        short[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            peek_offset_and_len(&short),
            Err(BatchError::BadBatchLength(10))
        );
    }

    #[test]
    fn setters_write_in_place_and_refuse_short_buffers() {
        let mut bytes = sample().encode();
        set_base_offset(&mut bytes, -5).unwrap();
        set_partition_leader_epoch(&mut bytes, 77).unwrap();
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (-5, 77));
        let mut short = [0u8; 15];
        assert_eq!(
            set_partition_leader_epoch(&mut short, 1),
            Err(BatchError::Truncated { need: 16, have: 15 })
        );
        assert_eq!(short, [0u8; 15]);
        assert_eq!(
            set_base_offset(&mut short[..7], 1),
            Err(BatchError::Truncated { need: 8, have: 7 })
        );
    }

    #[test]
    fn set_producer_restamps_and_keeps_the_batch_valid() {
        let mut b = crate::batch::BatchBuilder::new();
        b.push(&crate::batch::NewRecord {
            timestamp: 5,
            key: None,
            value: Some(b"v"),
            headers: &[],
        });
        let mut bytes = b.finish();
        set_producer(&mut bytes, 42, 3, 1000).unwrap();
        let h = crate::batch::validate(&bytes).unwrap();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 1000)
        );
        let before = bytes.clone();
        let len = bytes.len();
        assert!(set_producer(&mut bytes[..len - 1], 1, 1, 1).is_err());
        assert_eq!(bytes, before, "a short buffer is left unchanged");
    }
}
