//! File names inside a partition directory and the layout of the broker's own
//! metadata files. `docs/storage-format.md` describes every layout here.
//!
//! | file | content |
//! |---|---|
//! | `{base_offset:020}.log` | record batches back to back |
//! | `{base_offset:020}.index` | offset index, 8-byte entries |
//! | `{base_offset:020}.timeindex` | time index, 12-byte entries |
//! | `recovery-point.checkpoint` | [`Checkpoint`], 24 bytes |
//! | `log-start-offset.checkpoint` | [`LogStart`], 24 bytes |
//! | `.clean-shutdown` | empty marker: the log was closed cleanly |

use std::path::{Path, PathBuf};

/// Extension of segment data files.
pub const LOG_SUFFIX: &str = ".log";
/// Extension of offset index files.
pub const INDEX_SUFFIX: &str = ".index";
/// Extension of time index files.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Name of the recovery-point checkpoint file.
pub const CHECKPOINT_FILE: &str = "recovery-point.checkpoint";
/// Name of the log-start-offset file (present once records were deleted
/// from the log's start, see [`LogStart`]).
pub const LOG_START_FILE: &str = "log-start-offset.checkpoint";
/// Name of the clean-shutdown marker file.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// Suffix of a file being written before it is renamed into place.
pub const TMP_SUFFIX: &str = ".tmp";

/// The path of a segment file: `dir/{base_offset:020}{suffix}`.
pub fn segment_path(dir: &Path, base_offset: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// The base offset named by a segment data file name (`{20 digits}.log`), or
/// `None` for any other name.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(LOG_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

const CHECKPOINT_MAGIC: [u8; 4] = *b"SLRP";
const LOG_START_MAGIC: [u8; 4] = *b"SLLS";
const CHECKPOINT_VERSION: u16 = 1;
/// Encoded size of a [`Checkpoint`] (and of a [`LogStart`]).
pub const CHECKPOINT_LEN: usize = 24;

/// The recovery point of a partition log: every record with an offset below
/// `recovery_point` was durable (fsynced, with its directory entry) when the
/// checkpoint was written, so recovery rescans only segments at or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// First offset that may not be durable.
    pub recovery_point: u64,
}

/// The log start offset of a partition log, once records were deleted from
/// its start (Kafka's DeleteRecords) past the base of its first segment:
/// offsets below it are gone for readers although the segment holding
/// them may still be on disk. Same layout as [`Checkpoint`], magic `SLLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStart {
    /// First offset readers may see.
    pub offset: u64,
}

/// Why a checkpoint file (a [`Checkpoint`] or a [`LogStart`]) could not be
/// decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not [`CHECKPOINT_LEN`] bytes long.
    #[error("checkpoint is {0} bytes long, expected {CHECKPOINT_LEN}")]
    BadLength(usize),
    /// The magic bytes are not the file's (`SLRP`, `SLLS`).
    #[error("checkpoint magic is {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
        /// The file's magic.
        expected: [u8; 4],
    },
    /// A version this build does not read.
    #[error(
        "checkpoint version {0} is not supported (this build reads version {CHECKPOINT_VERSION})"
    )]
    UnsupportedVersion(u16),
    /// A reserved field is not zero (written by a newer or broken writer).
    #[error("checkpoint reserved bytes are not zero")]
    ReservedNotZero,
    /// The CRC-32 does not match the content.
    #[error("checkpoint CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
}

impl Checkpoint {
    /// Encodes as: magic `SLRP`, u16 version, u16 zero, u64 recovery point,
    /// u32 zero, u32 CRC-32 (IEEE) of the preceding 20 bytes; big-endian.
    pub fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        encode_offset_file(CHECKPOINT_MAGIC, self.recovery_point)
    }

    /// Decodes and verifies bytes written by [`Checkpoint::encode`].
    pub fn decode(buf: &[u8]) -> Result<Checkpoint, CheckpointError> {
        decode_offset_file(CHECKPOINT_MAGIC, buf)
            .map(|recovery_point| Checkpoint { recovery_point })
    }
}

impl LogStart {
    /// Encodes as [`Checkpoint::encode`] does, with magic `SLLS`.
    pub fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        encode_offset_file(LOG_START_MAGIC, self.offset)
    }

    /// Decodes and verifies bytes written by [`LogStart::encode`].
    pub fn decode(buf: &[u8]) -> Result<LogStart, CheckpointError> {
        decode_offset_file(LOG_START_MAGIC, buf).map(|offset| LogStart { offset })
    }
}

/// The 24 bytes of an offset file: `magic`, u16 version, u16 zero, u64
/// `offset`, u32 zero, u32 CRC-32 (IEEE) of the preceding 20 bytes;
/// big-endian.
fn encode_offset_file(magic: [u8; 4], offset: u64) -> [u8; CHECKPOINT_LEN] {
    let mut out = [0u8; CHECKPOINT_LEN];
    out[0..4].copy_from_slice(&magic);
    out[4..6].copy_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32fast::hash(&out[0..20]);
    out[20..24].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The offset of bytes written by [`encode_offset_file`] with `magic`,
/// verified.
fn decode_offset_file(magic: [u8; 4], buf: &[u8]) -> Result<u64, CheckpointError> {
    let buf: &[u8; CHECKPOINT_LEN] = buf
        .try_into()
        .map_err(|_| CheckpointError::BadLength(buf.len()))?;
    let [m0, m1, m2, m3, v0, v1, z0, z1, rest @ ..] = *buf;
    if [m0, m1, m2, m3] != magic {
        return Err(CheckpointError::BadMagic {
            found: [m0, m1, m2, m3],
            expected: magic,
        });
    }
    let version = u16::from_be_bytes([v0, v1]);
    if version != CHECKPOINT_VERSION {
        return Err(CheckpointError::UnsupportedVersion(version));
    }
    let [
        r0,
        r1,
        r2,
        r3,
        r4,
        r5,
        r6,
        r7,
        z2,
        z3,
        z4,
        z5,
        c0,
        c1,
        c2,
        c3,
    ] = rest;
    let stored = u32::from_be_bytes([c0, c1, c2, c3]);
    let computed = crc32fast::hash(buf.get(0..20).unwrap_or_default());
    if stored != computed {
        return Err(CheckpointError::CrcMismatch { stored, computed });
    }
    if [z0, z1, z2, z3, z4, z5] != [0; 6] {
        return Err(CheckpointError::ReservedNotZero);
    }
    Ok(u64::from_be_bytes([r0, r1, r2, r3, r4, r5, r6, r7]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn segment_names() {
        let p = segment_path(Path::new("/d"), 42, LOG_SUFFIX);
        assert_eq!(p, Path::new("/d/00000000000000000042.log"));
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(
            parse_log_file_name(&format!("{:020}.log", u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "42.log",
            "00000000000000000042.index",
            "0000000000000000004x.log",
            "99999999999999999999.log",
            "+0000000000000000042.log",
        ] {
            assert_eq!(parse_log_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkpoint_known_bytes() {
        let bytes = Checkpoint {
            recovery_point: 0x0102_0304_0506_0708,
        }
        .encode();
        assert_eq!(&bytes[0..8], b"SLRP\x00\x01\x00\x00");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 0]);
    }

    #[test]
    fn checkpoint_rejects_damage() {
        let good = Checkpoint { recovery_point: 9 }.encode();
        assert!(matches!(
            Checkpoint::decode(&good[..23]),
            Err(CheckpointError::BadLength(23))
        ));
        let mut bad = good;
        bad[0] = b'X';
        assert!(matches!(
            Checkpoint::decode(&bad),
            Err(CheckpointError::BadMagic { .. })
        ));
        // Each file's magic is its own.
        assert!(matches!(
            LogStart::decode(&good),
            Err(CheckpointError::BadMagic { .. })
        ));
        let mut bad = good;
        bad[5] = 9;
        assert!(matches!(
            Checkpoint::decode(&bad),
            Err(CheckpointError::UnsupportedVersion(9))
        ));
    }

    /// Found by the `checkpoint` fuzz target: reserved bytes set under a
    /// valid CRC were accepted (and would not re-encode to the same bytes).
    #[test]
    fn checkpoint_rejects_nonzero_reserved_bytes() {
        let bytes: [u8; 24] = [
            0x53, 0x4c, 0x52, 0x50, 0x00, 0x01, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x00, 0x18, 0xbe,
            0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xa9, 0x60, 0x5c, 0xb9,
        ];
        assert_eq!(
            Checkpoint::decode(&bytes),
            Err(CheckpointError::ReservedNotZero)
        );
    }

    #[test]
    fn log_start_known_bytes() {
        let bytes = LogStart {
            offset: 0x0102_0304_0506_0708,
        }
        .encode();
        assert_eq!(&bytes[0..8], b"SLLS\x00\x01\x00\x00");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 0]);
    }

    proptest! {
        #[test]
        fn log_start_round_trips_and_detects_any_byte_flip(
            offset in any::<u64>(), at in 0usize..24, x in 1u8..=255,
        ) {
            let good = LogStart { offset }.encode();
            prop_assert_eq!(LogStart::decode(&good).unwrap(), LogStart { offset });
            let mut b = good;
            b[at] ^= x;
            prop_assert!(LogStart::decode(&b).is_err());
        }

        #[test]
        fn checkpoint_round_trips(rp in any::<u64>()) {
            let cp = Checkpoint { recovery_point: rp };
            prop_assert_eq!(Checkpoint::decode(&cp.encode()).unwrap(), cp);
        }

        #[test]
        fn checkpoint_detects_any_byte_flip(rp in any::<u64>(), at in 8usize..24, x in 1u8..=255) {
            let mut b = Checkpoint { recovery_point: rp }.encode();
            b[at] ^= x;
            prop_assert!(Checkpoint::decode(&b).is_err());
        }

        #[test]
        fn checkpoint_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Checkpoint::decode(&b);
        }
    }
}
