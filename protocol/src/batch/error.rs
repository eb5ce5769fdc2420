//! [`BatchError`]: everything that can be wrong with a record batch.

use super::header::Compression;

/// Why a buffer is not a valid RecordBatch v2, and where.
///
/// Variants are matched by kind, never by their text. Every `Display` message is a
/// sentence meant for an operator's log; positions are byte positions from the start of
/// the batch and record indexes count from 0.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BatchError {
    /// The buffer ends before the bytes the batch (or its header) needs.
    #[error("record batch truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed from the start of the batch.
        need: usize,
        /// Bytes available in the buffer.
        have: usize,
    },
    /// `batchLength` (bytes 8..12) is smaller than the rest of the 61-byte header.
    #[error("record batch length {0} is smaller than the 49 bytes that follow it in every header")]
    BadBatchLength(i32),
    /// `magic` (byte 16) is not 2; older message formats are not supported.
    #[error("record batch magic is {0}, only magic 2 (RecordBatch v2) is supported")]
    BadMagic(i8),
    /// The compression codec in `attributes` bits 0-2 is not one of 0-4.
    #[error("record batch uses unknown compression codec {0}")]
    UnknownCompression(u8),
    /// `recordCount` is negative.
    #[error("record batch declares a negative record count {0}")]
    NegativeRecordCount(i32),
    /// `lastOffsetDelta` is negative.
    #[error("record batch declares a negative last offset delta {0}")]
    NegativeLastOffsetDelta(i32),
    /// The CRC-32C stored at bytes 17..21 does not match the bytes from 21 to the end.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes as they are.
        computed: u32,
    },
    /// The records section holds a different number of whole records than `recordCount`.
    #[error("record batch declares {header} records but holds {actual}")]
    RecordCountMismatch {
        /// `recordCount` from the header.
        header: i32,
        /// Whole records found.
        actual: i32,
    },
    /// A record's offset delta is not its index (deltas must run 0, 1, 2, ...).
    #[error("record {index} has offset delta {actual}, expected {expected}")]
    OffsetDeltaMismatch {
        /// Index of the record in the batch.
        index: i32,
        /// The delta it must have.
        expected: i32,
        /// The delta it has.
        actual: i32,
    },
    /// `lastOffsetDelta` disagrees with the offset delta of the last record.
    #[error("record batch declares last offset delta {header} but its last record has {actual}")]
    LastOffsetDeltaMismatch {
        /// `lastOffsetDelta` from the header.
        header: i32,
        /// Offset delta of the last record.
        actual: i32,
    },
    /// A record is malformed; `reason` says how (varint overflow, negative length, record
    /// length disagreeing with its fields, invalid UTF-8 header key, ...).
    #[error("record {index} is malformed: {reason}")]
    BadRecord {
        /// Index of the record in the batch.
        index: i32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// After the declared records, the batch holds bytes that are not whole records.
    #[error(
        "record batch has {count} trailing bytes after its last record, at position {position}"
    )]
    TrailingBytes {
        /// Byte position (from the start of the batch) of the first trailing byte.
        position: usize,
        /// How many trailing bytes there are.
        count: usize,
    },
    /// The buffer holds more than the one batch it was required to hold exactly.
    #[error("buffer holds {buf_len} bytes but the record batch in it is {batch_len} bytes")]
    BytesAfterBatch {
        /// `total_len` of the batch.
        batch_len: usize,
        /// Length of the buffer.
        buf_len: usize,
    },
    /// A compression level the codec does not have (gzip 0–9, zstd its
    /// library's range, negative levels included).
    #[error("{codec} has no compression level {level}: {range}")]
    BadCompressionLevel {
        /// The codec.
        codec: Compression,
        /// The level asked for.
        level: i32,
        /// The levels it has.
        range: String,
    },
    /// The compressed records section of a batch is not a valid stream of its codec:
    /// truncated, corrupt, or followed by bytes that are not part of the stream.
    #[error("record batch compressed with {codec} does not decompress: {reason}")]
    BadCompressedData {
        /// The batch's codec.
        codec: Compression,
        /// What the decoder reported.
        reason: String,
    },
    /// The records of a compressed batch decompress to more than the reader's limit;
    /// decompression stopped at the limit.
    #[error("record batch compressed with {codec} decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The batch's codec.
        codec: Compression,
        /// The limit in bytes.
        limit: usize,
    },
}
