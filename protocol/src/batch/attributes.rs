//! The batch `attributes` field (bytes 21..23): compression codec, timestamp type and
//! the transactional and control flags.

use std::fmt;

/// Mask of the compression codec bits (0-2).
pub(crate) const COMPRESSION_MASK: i16 = 0x07;
/// Bit 3: the timestamp type (0 create time, 1 log append time).
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Bit 4: the batch belongs to a transaction.
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
/// Bit 5: the batch holds control records (transaction markers).
pub(crate) const CONTROL_BIT: i16 = 0x20;

/// The compression codec of a batch's records (`attributes` bits 0-2).
///
/// Codec values 5-7 are not representable: [`BatchHeader::parse`](super::BatchHeader::parse)
/// rejects them with [`BatchError::UnknownCompression`](super::BatchError::UnknownCompression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Codec 0: records are stored as they are.
    None,
    /// Codec 1: gzip.
    Gzip,
    /// Codec 2: snappy (Kafka's xerial framing).
    Snappy,
    /// Codec 3: lz4 (frame format).
    Lz4,
    /// Codec 4: zstd.
    Zstd,
}

impl Compression {
    /// Returns the codec for the 3-bit value `code`, or `None` for the unassigned values 5-7
    /// (and anything above 7).
    pub fn from_code(code: u8) -> Option<Compression> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Returns the 3-bit value Kafka stores for this codec (0-4).
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl fmt::Display for Compression {
    /// Writes Kafka's name for the codec (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// What the record timestamps of a batch mean (`attributes` bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Bit clear: each record carries the time the producer created it.
    CreateTime,
    /// Bit set: the broker stamped the batch; every record's timestamp is the batch's
    /// `maxTimestamp`, whatever its delta says (Kafka's rule).
    LogAppendTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_rejected() {
        for code in 0..=4u8 {
            let c = Compression::from_code(code).unwrap();
            assert_eq!(c.code(), code);
        }
        for code in 5..=7u8 {
            assert_eq!(Compression::from_code(code), None);
        }
        assert_eq!(Compression::Zstd.to_string(), "zstd");
    }
}
