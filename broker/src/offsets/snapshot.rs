//! The offsets snapshot file: every live key with its latest value, and the
//! log offset it covers up to (layout in `docs/storage-format.md`).

use super::record::{
    Key, OffsetRecord, Value, decode_record, encode_group_key, encode_key, encode_value,
};

const SNAPSHOT_MAGIC: [u8; 4] = *b"SLOF";
/// Version 2 may hold group metadata entries; version 1 (offsets only) is
/// still read.
const SNAPSHOT_VERSION: u16 = 2;
/// Length of the snapshot header.
pub const SNAPSHOT_HEADER_LEN: usize = 32;

/// The content of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Every offsets-log record below this offset is reflected in `entries`.
    pub covers_to: u64,
    /// Every live key with its latest value.
    pub entries: Vec<(Key, Value)>,
    /// Every group's metadata value (key type 2).
    pub groups: Vec<(String, Vec<u8>)>,
}

impl Snapshot {
    /// Encodes as a 32-byte header — magic `SLOF`, `u16` version 2, `u16`
    /// zero, `u64` covers-to offset, `u32` entry count, `u32` body length,
    /// `u32` zero, `u32` CRC-32 (IEEE) of header bytes 0..28 followed by the
    /// body; big-endian — then the body: per entry `u32` key length, key
    /// ([`encode_key`] or [`encode_group_key`]), `u32` value length, value
    /// ([`encode_value`] or the group's metadata). Offset entries come
    /// first, then group entries.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        let mut put = |part: &[u8]| -> Result<(), String> {
            let len = u32::try_from(part.len()).map_err(|_| "entry too large")?;
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(part);
            Ok(())
        };
        for ((g, t, p), (o, m, at)) in &self.entries {
            put(&encode_key(g, t, *p))?;
            put(&encode_value(*o, m, *at))?;
        }
        for (g, value) in &self.groups {
            put(&encode_group_key(g))?;
            put(value)?;
        }
        let count = u32::try_from(self.entries.len() + self.groups.len())
            .map_err(|_| "too many entries")?;
        let body_len = u32::try_from(body.len()).map_err(|_| "snapshot over 4 GiB")?;
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + body.len());
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.covers_to.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&body_len.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out);
        crc.update(&body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes and verifies bytes written by [`Snapshot::encode`].
    pub fn decode(buf: &[u8]) -> Result<Snapshot, String> {
        let (header, body) = buf
            .split_at_checked(SNAPSHOT_HEADER_LEN)
            .ok_or_else(|| format!("snapshot of {} bytes is shorter than its header", buf.len()))?;
        let be32 = |at: usize| -> u32 {
            let mut b = [0u8; 4];
            b.copy_from_slice(header.get(at..at + 4).unwrap_or(&[0; 4]));
            u32::from_be_bytes(b)
        };
        if header.get(0..4) != Some(&SNAPSHOT_MAGIC[..]) {
            return Err("snapshot magic is not \"SLOF\"".into());
        }
        let version = (be32(4) >> 16) as u16;
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(format!(
                "snapshot version {version} is not supported (this build reads {SNAPSHOT_VERSION})"
            ));
        }
        let stored = be32(28);
        let mut crc = crc32fast::Hasher::new();
        crc.update(header.get(0..28).unwrap_or_default());
        crc.update(body);
        let computed = crc.finalize();
        if stored != computed {
            return Err(format!(
                "snapshot CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        if be32(4) & 0xFFFF != 0 || be32(24) != 0 {
            return Err("snapshot reserved bytes are not zero".into());
        }
        let covers_to = (u64::from(be32(8)) << 32) | u64::from(be32(12));
        let count = be32(16) as usize;
        if be32(20) as usize != body.len() {
            return Err(format!(
                "snapshot body is {} bytes, header says {}",
                body.len(),
                be32(20)
            ));
        }
        let mut rest = body;
        let mut take = || -> Result<&[u8], String> {
            let (len, tail) = rest.split_at_checked(4).ok_or("truncated entry")?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (part, tail) = tail.split_at_checked(len).ok_or("truncated entry")?;
            rest = tail;
            Ok(part)
        };
        // At least 8 length bytes per entry: a lying count cannot allocate.
        let mut entries = Vec::with_capacity(count.min(body.len() / 8));
        let mut groups = Vec::new();
        for _ in 0..count {
            let key = take()?;
            let value = take()?;
            match decode_record(key, Some(value))? {
                OffsetRecord::Commit(k, Some(v)) if groups.is_empty() => entries.push((k, v)),
                OffsetRecord::Group(g, Some(v)) if version >= 2 => groups.push((g, v)),
                OffsetRecord::Commit(..)
                | OffsetRecord::Group(..)
                | OffsetRecord::Checkpoint(_)
                | OffsetRecord::Unknown(_) => {
                    return Err("snapshot entry of an unexpected type".into());
                }
            }
        }
        if !rest.is_empty() {
            return Err("bytes after the last snapshot entry".into());
        }
        Ok(Snapshot {
            covers_to,
            entries,
            groups,
        })
    }
}
