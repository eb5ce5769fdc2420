//! [`ProducerIds`]: hands out producer ids that are never handed out twice,
//! across restarts, SIGKILL and power cuts.
//!
//! The file `producer_ids` in the data directory holds the first id not yet
//! reserved. Ids are reserved a block of [`BLOCK`] at a time: the file is
//! advanced past the block (written atomically and `fdatasync`ed, directory
//! synced) before any id of it is handed out. A crash loses the rest of the
//! block, never reuses it. Layout: `docs/storage-format.md`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::log::FileSystem;
use crate::log::io::{read_file, write_file_atomically};

/// Name of the file in the data directory.
pub const FILE_NAME: &str = "producer_ids";
/// Ids reserved per write of the file.
pub const BLOCK: i64 = 1000;
/// Bytes of the file.
pub const FILE_LEN: usize = 20;
const MAGIC: [u8; 4] = *b"SLPI";
const VERSION: u16 = 1;

/// Encodes the file: magic `SLPI`, `u16` version 1, `u16` zero, `i64` next
/// unreserved id, `u32` CRC-32 (IEEE) of bytes 0..16; big-endian.
pub fn encode(next: i64) -> [u8; FILE_LEN] {
    let mut out = [0u8; FILE_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&next.to_be_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes and verifies the file.
pub fn decode(buf: &[u8]) -> Result<i64, String> {
    let bytes: &[u8; FILE_LEN] = buf
        .try_into()
        .map_err(|_| format!("producer id file is {} bytes, not {FILE_LEN}", buf.len()))?;
    let (head, crc) = bytes.split_at(16);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(head) != stored {
        return Err("producer id file CRC mismatch".into());
    }
    if head[..4] != MAGIC || head[4..6] != VERSION.to_be_bytes() || head[6..8] != [0, 0] {
        return Err("producer id file has an unknown magic or version".into());
    }
    let mut next = [0u8; 8];
    next.copy_from_slice(&head[8..16]);
    let next = i64::from_be_bytes(next);
    if next < 0 {
        return Err(format!("producer id file holds a negative id {next}"));
    }
    Ok(next)
}

/// The broker's producer id allocator. Thread-safe; [`ProducerIds::allocate`]
/// does file I/O once per [`BLOCK`] ids (call it off the reactor).
#[derive(Debug)]
pub struct ProducerIds {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// Next id to hand out, and the end of the reserved block.
    range: Mutex<(i64, i64)>,
    /// Whether the file was missing at open and the ids the partitions
    /// still hold are yet to be looked at ([`ProducerIds::allocate_after`]).
    unchecked: std::sync::atomic::AtomicBool,
}

/// Held ids at or above this are not taken as ever handed out here (a
/// client may make ids up): a data directory handing out a thousand ids a
/// second would take 35 years to reach it.
pub const PLAUSIBLE_IDS: i64 = 1 << 40;

impl ProducerIds {
    /// Opens the allocator of the data directory `dir`. Nothing is reserved
    /// yet. A damaged file is an error (ids could repeat): the operator
    /// must look.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> io::Result<Self> {
        let mut missing = false;
        let path = dir.join(FILE_NAME);
        let read = read_file(&*fs, &path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
        let next = match read {
            None => {
                missing = true;
                0
            }
            Some(bytes) => decode(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
        };
        Ok(ProducerIds {
            fs,
            dir: dir.to_owned(),
            range: Mutex::new((next, next)),
            unchecked: std::sync::atomic::AtomicBool::new(missing),
        })
    }

    /// [`ProducerIds::allocate`], but when the file was missing at open
    /// (never written: no id was handed out yet; or lost), first moves past
    /// the highest id `held` gives (the ids of this allocator the
    /// partitions' producer tables still hold, below [`PLAUSIBLE_IDS`]),
    /// once: a lost file must not hand out again an id whose sequences a
    /// partition remembers, or that producer's new records would be taken
    /// for retries of its old ones.
    pub fn allocate_after(&self, held: impl FnOnce() -> Option<i64>) -> io::Result<i64> {
        use std::sync::atomic::Ordering;
        if self.unchecked.swap(false, Ordering::AcqRel)
            && let Some(max) = held().filter(|&m| (0..PLAUSIBLE_IDS).contains(&m))
        {
            let mut range = self.range.lock();
            if range.0 <= max {
                tracing::warn!(
                    file = %self.dir.join(FILE_NAME).display(),
                    next = max + 1,
                    "the producer id file is missing but partitions hold ids it handed out; going on past them"
                );
                *range = (max + 1, max + 1);
            }
        }
        self.allocate()
    }

    /// A producer id never returned before by this data directory.
    pub fn allocate(&self) -> io::Result<i64> {
        let mut range = self.range.lock();
        if range.0 >= range.1 {
            let end = range
                .1
                .checked_add(BLOCK)
                .ok_or_else(|| io::Error::other("producer ids exhausted"))?;
            write_file_atomically(&*self.fs, &self.dir, FILE_NAME, &encode(end))?;
            range.1 = end;
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::StdFs;

    #[test]
    fn file_layout_round_trips_and_refuses_damage() {
        let bytes = encode(2000);
        assert_eq!(
            &bytes[..16],
            b"SLPI\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x07\xd0"
        );
        assert_eq!(decode(&bytes), Ok(2000));
        for cut in 0..FILE_LEN {
            assert!(decode(&bytes[..cut]).is_err());
        }
        for at in 0..FILE_LEN {
            let mut bad = bytes;
            bad[at] ^= 1;
            assert!(decode(&bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn a_missing_file_goes_on_past_the_ids_partitions_hold() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(StdFs);
        let a = ProducerIds::open(Arc::clone(&fs), dir.path()).unwrap();
        assert_eq!(a.allocate_after(|| Some(41)).unwrap(), 42);
        // Looked at once only.
        assert_eq!(a.allocate_after(|| Some(500)).unwrap(), 43);
        drop(a);
        // The file is there now: what partitions hold is not asked.
        let b = ProducerIds::open(Arc::clone(&fs), dir.path()).unwrap();
        assert_eq!(
            b.allocate_after(|| panic!("not asked")).unwrap(),
            42 + BLOCK
        );
        // Lost, with only an implausible id held: it is not followed.
        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        let c = ProducerIds::open(Arc::clone(&fs), dir.path()).unwrap();
        assert_eq!(c.allocate_after(|| Some(i64::MAX - 1)).unwrap(), 0);
        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        let d = ProducerIds::open(fs, dir.path()).unwrap();
        assert_eq!(d.allocate_after(|| None).unwrap(), 0);
    }

    #[test]
    fn ids_are_unique_across_reopen_without_clean_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(StdFs);
        let a = ProducerIds::open(Arc::clone(&fs), dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, [0, 1, 2]);
        // The block was reserved on disk before the first id was given.
        let on_disk = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(decode(&on_disk), Ok(BLOCK));
        drop(a);
        let b = ProducerIds::open(fs, dir.path()).unwrap();
        assert_eq!(b.allocate().unwrap(), BLOCK);
        for _ in 0..BLOCK {
            b.allocate().unwrap();
        }
        let on_disk = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(decode(&on_disk), Ok(3 * BLOCK));
    }
}
