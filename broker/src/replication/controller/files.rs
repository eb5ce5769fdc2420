//! The controller's files under `<data_dir>/cluster/`, as documented in
//! docs/storage-format.md ("Controller files"):
//!
//! - `controller.log`: 8-byte header (`SLCTLOG` + version 1), then
//!   records `u32 len | u32 crc32(payload) | payload` (big-endian; CRC-32
//!   IEEE, `crc32fast`), each payload a postcard `LogRecord`. Recovery keeps
//!   the longest prefix of whole records with good CRCs and cuts the rest.
//! - `vote`, `snapshot`, `observed`: 8-byte header (`SLVOTE\0` /
//!   `SLSNAP\0` / `SLOBSV\0` + version 1) and one record of the same framing; replaced whole (temp file, fsync,
//!   rename, directory fsync), so a reader sees the old or the new one.
//! - `committed`: the same layout (`SLCMTD\0` + version 1), payload the
//!   postcard `LogId` of the last committed entry; replaced by a temp file
//!   and a rename without fsync (a crash may lose the latest value or the
//!   file: a reader takes a missing or damaged one as unknown).

use std::io::Write;
use std::path::Path;

/// Header of `controller.log`.
pub const LOG_MAGIC: [u8; 8] = *b"SLCTLOG\x01";
/// Header of `vote`.
pub const VOTE_MAGIC: [u8; 8] = *b"SLVOTE\0\x01";
/// Header of `snapshot`.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SLSNAP\0\x01";
/// Header of `observed` (payload: u64 big-endian log index).
pub const OBSERVED_MAGIC: [u8; 8] = *b"SLOBSV\0\x01";
/// Header of `committed`.
pub const COMMITTED_MAGIC: [u8; 8] = *b"SLCMTD\0\x01";
/// Bytes before a record's payload.
pub const RECORD_HEADER: usize = 8;
/// Largest record payload accepted when reading.
pub const MAX_RECORD: usize = 64 << 20;

/// Appends one framed record holding `payload` to `out`.
pub fn put_record(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The record at the front of `buf`: its payload and whole length, or
/// `None` if it is cut short, too large or fails its CRC.
pub fn get_record(buf: &[u8]) -> Option<(&[u8], usize)> {
    let len = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = buf.get(RECORD_HEADER..RECORD_HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, RECORD_HEADER + len))
}

/// Replaces `path` with `bytes`: temp file, fsync, rename, directory fsync.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Writes a single-record file (`vote`, `snapshot`) atomically.
pub fn write_single(path: &Path, magic: [u8; 8], payload: &[u8]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + RECORD_HEADER + payload.len());
    bytes.extend_from_slice(&magic);
    put_record(&mut bytes, payload);
    write_atomically(path, &bytes)
}

/// Replaces a single-record file without waiting for the disk (a temp file
/// renamed over it): after a crash it may hold an older value, or be
/// missing or damaged.
pub fn write_single_unsynced(path: &Path, magic: [u8; 8], payload: &[u8]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + RECORD_HEADER + payload.len());
    bytes.extend_from_slice(&magic);
    put_record(&mut bytes, payload);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads a single-record file: `None` if it does not exist, an error if
/// it is damaged (it is only ever replaced whole).
pub fn read_single(path: &Path, magic: [u8; 8]) -> std::io::Result<Option<Vec<u8>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is damaged", path.display()),
        )
    };
    if bytes.get(..8) != Some(&magic[..]) {
        return Err(damaged());
    }
    let (payload, len) = get_record(&bytes[8..]).ok_or_else(damaged)?;
    if 8 + len != bytes.len() {
        return Err(damaged());
    }
    Ok(Some(payload.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/storage-format.md.
    #[test]
    fn the_documented_record_bytes() {
        let mut out = Vec::new();
        put_record(&mut out, b"abc");
        let crc = crc32fast::hash(b"abc").to_be_bytes();
        assert_eq!(crc, [0x35, 0x24, 0x41, 0xc2]);
        assert_eq!(out, [&[0, 0, 0, 3][..], &crc, b"abc"].concat());
        assert_eq!(get_record(&out), Some((&b"abc"[..], 11)));
        for cut in 0..out.len() {
            assert_eq!(get_record(&out[..cut]), None);
        }
        out[9] ^= 1;
        assert_eq!(get_record(&out), None);
    }

    #[test]
    fn single_record_files_round_trip_and_refuse_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vote");
        assert_eq!(read_single(&path, VOTE_MAGIC).unwrap(), None);
        write_single(&path, VOTE_MAGIC, b"v1").unwrap();
        write_single(&path, VOTE_MAGIC, b"v2").unwrap();
        assert_eq!(
            read_single(&path, VOTE_MAGIC).unwrap(),
            Some(b"v2".to_vec())
        );
        assert!(read_single(&path, SNAPSHOT_MAGIC).is_err());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        assert!(read_single(&path, VOTE_MAGIC).is_err());
    }
}
