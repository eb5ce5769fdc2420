//! The sparse time index of a segment: bounds record timestamps by offset, so
//! a search by timestamp starts close to its answer.
//!
//! Entry layout (12 bytes, big-endian): `i64 timestamp | u32 relative_offset`.
//! An entry `(T, R)` guarantees that every record of the segment with an
//! offset below `base_offset + R` has a timestamp `<= T`. Entries are added
//! beside offset index entries, only when `T` grew, so both fields strictly
//! increase and `R > 0`; sealing adds a final entry `(max timestamp, next
//! relative offset)`, so a sealed segment's largest timestamp is its last
//! entry's. An entry with `R = 0` (the zeroed preallocated tail) ends the index.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::index_file::IndexFile;
use super::io::FileSystem;
use super::offset_index::partition_point;

/// Size of one time index entry in bytes.
pub const TIME_ENTRY_LEN: usize = 12;

/// One time index entry, with its absolute offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Upper bound of the timestamps of records below `offset`.
    pub timestamp: i64,
    /// Absolute offset bounding the records covered by `timestamp`.
    pub offset: u64,
}

/// The time index of one segment, guarded by the partition log's lock.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile<TIME_ENTRY_LEN>,
    base_offset: u64,
    garbage_after_valid: bool,
}

fn decode(bytes: [u8; TIME_ENTRY_LEN]) -> (i64, u32) {
    let [a, b, c, d, e, f, g, h, i, j, k, l] = bytes;
    (
        i64::from_be_bytes([a, b, c, d, e, f, g, h]),
        u32::from_be_bytes([i, j, k, l]),
    )
}

impl TimeIndex {
    /// Opens or creates the time index at `path`; as
    /// [`super::offset_index::OffsetIndex::open`].
    pub(crate) fn open(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        base_offset: u64,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        let file = IndexFile::open(fs, path, max_bytes, preallocate)?;
        let mut index = TimeIndex {
            file,
            base_offset,
            garbage_after_valid: false,
        };
        let mut prev = None::<(i64, u32)>;
        let (n, refused) = index.file.scan(|bytes| {
            let (ts, rel) = decode(bytes);
            let ok = rel > 0 && prev.is_none_or(|(pt, pr)| ts > pt && rel > pr);
            if ok {
                prev = Some((ts, rel));
            }
            ok
        });
        if let Some(bytes) = refused {
            index.garbage_after_valid =
                bytes != [0; TIME_ENTRY_LEN] || index.file.any_nonzero_after(n + 1);
        }
        index.file.set_entries(n);
        Ok(index)
    }

    /// Whether the file held only valid entries, all at offsets up to
    /// `next_offset`.
    pub(crate) fn is_intact(&self, next_offset: u64) -> bool {
        !self.garbage_after_valid && self.last().is_none_or(|e| e.offset <= next_offset)
    }

    fn get(&self, i: usize) -> Option<TimeEntry> {
        if i >= self.file.len() {
            return None;
        }
        let (timestamp, rel) = decode(self.file.entry(i)?);
        Some(TimeEntry {
            timestamp,
            offset: self.base_offset + u64::from(rel),
        })
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<TimeEntry> {
        self.file.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Whether the index has room for only its final (seal) entry, so the
    /// segment must roll.
    pub(crate) fn is_full(&self) -> bool {
        self.file.len() + 1 >= self.file.capacity()
    }

    /// Records that records below `offset` have timestamps `<= timestamp`,
    /// if that tightens what the index knows; returns whether an entry was
    /// added. `seal` may use the slot reserved for the final entry.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: u64, seal: bool) -> bool {
        if self.is_full() && !seal {
            return false;
        }
        let Some(rel) = offset
            .checked_sub(self.base_offset)
            .and_then(|r| u32::try_from(r).ok())
            .filter(|&r| r > 0)
        else {
            return false;
        };
        if let Some(last) = self.last()
            && (timestamp <= last.timestamp || offset <= last.offset)
        {
            return false;
        }
        let mut entry = [0u8; TIME_ENTRY_LEN];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.push(entry)
    }

    /// The offset where a search for the first record with a timestamp
    /// `>= target` can start: every record before it is older than `target`.
    pub(crate) fn lookup(&self, target: i64) -> u64 {
        let n = partition_point(self.file.len(), |i| {
            self.get(i).is_some_and(|e| e.timestamp < target)
        });
        n.checked_sub(1)
            .and_then(|i| self.get(i))
            .map_or(self.base_offset, |e| e.offset)
    }

    /// The last entry whose offset is at most `offset`: its timestamp is
    /// the largest of the records below its offset (entries are written at
    /// offset index points whenever that largest timestamp grew).
    pub(crate) fn last_at_or_before(&self, offset: u64) -> Option<TimeEntry> {
        let n = partition_point(self.file.len(), |i| {
            self.get(i).is_some_and(|e| e.offset <= offset)
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

    /// Shrinks the file to its entries.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::io::StdFs;

    #[test]
    fn lookup_starts_after_older_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.timeindex");
        let mut idx = TimeIndex::open(
            &(Arc::new(StdFs) as Arc<dyn FileSystem>),
            &path,
            1000,
            12 * 10,
            true,
        )
        .unwrap();
        assert_eq!(idx.lookup(5), 1000);
        assert!(idx.maybe_append(100, 1010, false));
        assert!(
            !idx.maybe_append(100, 1020, false),
            "timestamp did not grow"
        );
        assert!(!idx.maybe_append(150, 1010, false), "offset did not grow");
        assert!(idx.maybe_append(200, 1020, false));
        assert_eq!(idx.lookup(50), 1000);
        assert_eq!(idx.lookup(100), 1000);
        assert_eq!(idx.lookup(101), 1010);
        assert_eq!(idx.lookup(10_000), 1020);
        idx.flush().unwrap();
        drop(idx);
        let idx = TimeIndex::open(
            &(Arc::new(StdFs) as Arc<dyn FileSystem>),
            &path,
            1000,
            12 * 10,
            true,
        )
        .unwrap();
        assert_eq!(
            idx.last(),
            Some(TimeEntry {
                timestamp: 200,
                offset: 1020
            })
        );
        assert!(idx.is_intact(1020));
        assert!(!idx.is_intact(1019));
    }

    #[test]
    fn keeps_a_slot_for_the_seal_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.timeindex");
        let mut idx = TimeIndex::open(
            &(Arc::new(StdFs) as Arc<dyn FileSystem>),
            &path,
            0,
            12 * 3,
            true,
        )
        .unwrap();
        assert!(idx.maybe_append(1, 1, false));
        assert!(idx.maybe_append(2, 2, false));
        assert!(idx.is_full());
        assert!(!idx.maybe_append(3, 3, false));
        assert!(idx.maybe_append(3, 3, true));
        assert_eq!(idx.last().unwrap().offset, 3);
    }
}
