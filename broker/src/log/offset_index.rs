//! The sparse offset index of a segment: maps a relative offset to the byte
//! position of the record batch that starts with it.
//!
//! Entry layout (8 bytes, big-endian): `u32 relative_offset | u32 position`,
//! where `relative_offset = batch_base_offset - segment_base_offset` and
//! `position` is the batch's first byte in the `.log` file. One entry is added
//! when at least `index_interval_bytes` were appended since the previous entry
//! (or since the segment start), so the batch at position 0 is never indexed
//! and every real entry has `relative_offset > 0` and `position > 0`; entries
//! strictly increase in both fields. The first entry that breaks this (the
//! zeroed, preallocated tail) ends the index.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::index_file::IndexFile;
use super::io::FileSystem;

/// Size of one offset index entry in bytes.
pub const OFFSET_ENTRY_LEN: usize = 8;

/// One offset index entry, with its absolute offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the batch starting at `position`.
    pub offset: u64,
    /// Byte position of that batch in the segment's `.log` file.
    pub position: u32,
}

/// The offset index of one segment. Not thread-safe on its own: the
/// partition log's lock guards it.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile<OFFSET_ENTRY_LEN>,
    base_offset: u64,
    /// Whether non-zero bytes follow the valid entries (damage).
    garbage_after_valid: bool,
}

fn decode(bytes: [u8; OFFSET_ENTRY_LEN]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = bytes;
    (
        u32::from_be_bytes([a, b, c, d]),
        u32::from_be_bytes([e, f, g, h]),
    )
}

impl OffsetIndex {
    /// Opens or creates the index at `path` for the segment at `base_offset`.
    /// With `preallocate` the file is sized to `max_bytes` (an active
    /// segment); otherwise it keeps its length (a sealed one). Valid leading
    /// entries are counted; see [`OffsetIndex::is_intact`].
    pub(crate) fn open(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        base_offset: u64,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        let file = IndexFile::open(fs, path, max_bytes, preallocate)?;
        let mut index = OffsetIndex {
            file,
            base_offset,
            garbage_after_valid: false,
        };
        index.count_valid();
        Ok(index)
    }

    fn count_valid(&mut self) {
        let (mut prev_rel, mut prev_pos) = (0u32, 0u32);
        let (n, refused) = self.file.scan(|bytes| {
            let (rel, pos) = decode(bytes);
            let ok = rel > prev_rel && pos > prev_pos;
            if ok {
                (prev_rel, prev_pos) = (rel, pos);
            }
            ok
        });
        if let Some(bytes) = refused {
            self.garbage_after_valid =
                bytes != [0; OFFSET_ENTRY_LEN] || self.file.any_nonzero_after(n + 1);
        }
        self.file.set_entries(n);
    }

    /// Whether the file held nothing but valid entries (and zeros after them),
    /// and every entry points inside a log of `log_size` bytes at an offset
    /// below `next_offset`. A sealed segment whose index is not intact gets it
    /// rebuilt.
    pub(crate) fn is_intact(&self, log_size: u64, next_offset: u64) -> bool {
        !self.garbage_after_valid
            && self
                .last()
                .is_none_or(|e| u64::from(e.position) < log_size && e.offset < next_offset)
    }

    fn get(&self, i: usize) -> Option<IndexEntry> {
        if i >= self.file.len() {
            return None;
        }
        let (rel, position) = decode(self.file.entry(i)?);
        Some(IndexEntry {
            offset: self.base_offset + u64::from(rel),
            position,
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether no further entry fits (the segment must roll).
    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<IndexEntry> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Appends an entry. Returns `false`, changing nothing, when the index is
    /// full or the entry does not strictly follow the last one in both fields
    /// (or is not representable relative to the base offset).
    pub(crate) fn append(&mut self, offset: u64, position: u32) -> bool {
        let Some(rel) = offset
            .checked_sub(self.base_offset)
            .and_then(|r| u32::try_from(r).ok())
        else {
            return false;
        };
        let (prev_rel, prev_pos) = match self.last() {
            Some(e) => ((e.offset - self.base_offset) as u32, e.position),
            None => (0, 0),
        };
        if rel <= prev_rel || position <= prev_pos {
            return false;
        }
        let mut entry = [0u8; OFFSET_ENTRY_LEN];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(entry)
    }

    /// The entry with the largest offset `<= offset`, or the segment start
    /// `(base_offset, 0)` when there is none.
    pub(crate) fn lookup(&self, offset: u64) -> IndexEntry {
        let n = partition_point(self.len(), |i| {
            self.get(i).is_some_and(|e| e.offset <= offset)
        });
        n.checked_sub(1)
            .and_then(|i| self.get(i))
            .unwrap_or(IndexEntry {
                offset: self.base_offset,
                position: 0,
            })
    }

    /// The entry with the largest position `<= position`, if any.
    pub(crate) fn floor_by_position(&self, position: u64) -> Option<IndexEntry> {
        let n = partition_point(self.len(), |i| {
            self.get(i)
                .is_some_and(|e| u64::from(e.position) <= position)
        });
        n.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Drops the entries for offsets at or after `offset` (a truncation of
    /// the log to `offset`).
    pub(crate) fn truncate_to(&mut self, offset: u64) {
        let keep = partition_point(self.file.len(), |i| {
            self.get(i).is_some_and(|e| e.offset < offset)
        });
        self.file.truncate_entries(keep);
    }

    /// Drops every entry (before a rebuild).
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.garbage_after_valid = false;
        self.file.reset()
    }

    /// Shrinks the file to its entries (seal, clean shutdown).
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.file.trim()
    }

    /// [`Self::trim`] that only schedules the write-back (sealing).
    pub(crate) fn trim_async(&mut self) -> io::Result<()> {
        self.file.trim_async()
    }

    /// Regrows the file to `max_bytes` for further appends.
    pub(crate) fn expand(&mut self, max_bytes: usize) -> io::Result<()> {
        self.file.expand(max_bytes)
    }

    /// Writes the mapping back to the file.
    #[cfg(test)]
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Unmaps and closes the file (before deleting it).
    pub(crate) fn close(self) {
        self.file.close();
    }

    /// Drops the mapping and handle of a sealed index until the next lookup
    /// (see [`super::index_file::IndexFile::release`]).
    pub(crate) fn release(&self) -> bool {
        self.file.release()
    }
}

/// The first index in `0..len` for which `pred` is false, assuming `pred` is
/// true for a prefix and false after it.
pub(crate) fn partition_point(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::io::StdFs;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn open(dir: &Path, base: u64, max: usize, prealloc: bool) -> OffsetIndex {
        OffsetIndex::open(
            &(Arc::new(StdFs) as Arc<dyn FileSystem>),
            &dir.join("i.index"),
            base,
            max,
            prealloc,
        )
        .unwrap()
    }

    #[test]
    fn lookup_empty_gives_segment_start() {
        let dir = tempfile::tempdir().unwrap();
        let idx = open(dir.path(), 100, 80, true);
        assert_eq!(
            idx.lookup(150),
            IndexEntry {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(idx.floor_by_position(10), None);
    }

    #[test]
    fn append_refuses_non_monotonic_and_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = open(dir.path(), 100, 16, true);
        assert!(!idx.append(100, 10), "relative offset 0 is never indexed");
        assert!(idx.append(105, 10));
        assert!(!idx.append(105, 20));
        assert!(!idx.append(106, 10));
        assert!(!idx.append(99, 30));
        assert!(idx.append(110, 20));
        assert!(idx.is_full());
        assert!(!idx.append(120, 30));
    }

    #[test]
    fn reopen_preallocated_finds_end_and_trim_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = open(dir.path(), 0, 8 * 100, true);
        for i in 1..=10u64 {
            assert!(idx.append(i * 10, (i * 4096) as u32));
        }
        idx.flush().unwrap();
        drop(idx);
        let mut idx = open(dir.path(), 0, 8 * 100, true);
        assert_eq!(idx.len(), 10);
        assert!(idx.is_intact(100_000, 1000));
        assert!(!idx.is_intact(40_960, 1000), "entry past the log end");
        idx.trim().unwrap();
        drop(idx);
        assert_eq!(
            std::fs::metadata(dir.path().join("i.index")).unwrap().len(),
            80
        );
        let idx = open(dir.path(), 0, 8 * 100, false);
        assert_eq!(idx.len(), 10);
        assert_eq!(idx.lookup(55).offset, 50);
    }

    #[test]
    fn garbage_after_entries_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = open(dir.path(), 0, 8 * 10, true);
        assert!(idx.append(5, 100));
        assert!(idx.append(9, 200));
        idx.trim().unwrap();
        drop(idx);
        let path = dir.path().join("i.index");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..16].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 50]);
        std::fs::write(&path, &bytes).unwrap();
        let idx = open(dir.path(), 0, 0, false);
        assert_eq!(idx.len(), 1);
        assert!(!idx.is_intact(1000, 1000));
    }

    proptest! {
        /// The index answers every lookup as a sorted map of its entries would.
        #[test]
        fn matches_model(
            base in 0u64..1_000_000,
            steps in proptest::collection::vec((1u64..50, 1u32..5000), 0..200),
            probes in proptest::collection::vec(0u64..20_000, 1..50),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut idx = open(dir.path(), base, 8 * 150, true);
            let mut model = BTreeMap::new();
            let (mut off, mut pos) = (base, 0u32);
            for (d_off, d_pos) in steps {
                off += d_off;
                pos += d_pos;
                let ok = idx.append(off, pos);
                prop_assert_eq!(ok, model.len() < 150);
                if ok {
                    model.insert(off, pos);
                }
            }
            for probe in probes {
                let target = base + probe;
                let want = model.range(..=target).next_back()
                    .map(|(&o, &p)| IndexEntry { offset: o, position: p })
                    .unwrap_or(IndexEntry { offset: base, position: 0 });
                prop_assert_eq!(idx.lookup(target), want);
                let p = u64::from(probe as u32 * 3);
                let floor = model.iter().rfind(|&(_, &q)| u64::from(q) <= p)
                    .map(|(&o, &q)| IndexEntry { offset: o, position: q });
                prop_assert_eq!(idx.floor_by_position(p), floor);
            }
            idx.flush().unwrap();
            drop(idx);
            let idx = open(dir.path(), base, 8 * 150, true);
            prop_assert_eq!(idx.len(), model.len());
        }
    }
}
