//! A memory-mapped file of fixed-size entries: the storage shared by the
//! offset index and the time index.
//!
//! An active index file is preallocated to its maximum size (a sparse file),
//! so its unused tail reads as zeros; the typed indexes recognise their first
//! all-zero entry as the end. Sealing trims the file to the entries in use.
//! The content is derived data: recovery rebuilds it from the segment.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

use super::io::{FileSystem, LogFile, OpenMode};

/// A file of `N`-byte entries, memory-mapped for reading and appending.
#[derive(Debug)]
pub(crate) struct IndexFile<const N: usize> {
    path: PathBuf,
    file: Arc<dyn LogFile>,
    mmap: Option<MmapMut>,
    /// Entries in use.
    entries: usize,
    /// Entries the current file length can hold.
    capacity: usize,
    /// Opened at its own length (a sealed, trimmed file), not preallocated.
    trimmed: bool,
}

impl<const N: usize> IndexFile<N> {
    /// Opens (creating if missing) `path`, extends or keeps its length at
    /// `max_bytes` rounded down to whole entries when `preallocate`, and maps
    /// it. `entries` starts at 0: the caller counts the valid entries with
    /// [`IndexFile::entry`] and sets them with [`IndexFile::set_entries`].
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        let file = fs.open(path, OpenMode::Create)?;
        let mut index = IndexFile {
            path: path.to_owned(),
            file,
            mmap: None,
            entries: 0,
            capacity: 0,
            trimmed: !preallocate,
        };
        let len = if preallocate {
            (max_bytes / N * N) as u64
        } else {
            index.file.len()?
        };
        index.remap(len)?;
        Ok(index)
    }

    fn remap(&mut self, len: u64) -> io::Result<()> {
        self.mmap = None;
        let resized = match self.file.len() {
            Ok(current) if current == len => Ok(()),
            Ok(_) => self.file.set_len(len),
            Err(e) => Err(e),
        };
        // Map whatever length the file has now, even if resizing failed, so
        // the index stays usable at its old size.
        let actual = self.file.len()?;
        self.capacity = (actual as usize) / N;
        self.entries = self.entries.min(self.capacity);
        if actual > 0 {
            #[allow(unsafe_code)]
            // SAFETY: the mapping is of a file that only this index writes,
            // through this mapping, while the partition log's lock is held; the
            // file is never truncated below the mapped length while mapped
            // (`remap` drops the mapping first). Another process changing the
            // file would be outside Sluice's contract for its data directory,
            // which a lock file reserves for one broker.
            let mmap = unsafe { MmapMut::map_mut(self.file.os_file())? };
            self.mmap = Some(mmap);
        }
        resized
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Entries in use.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Entries the file can hold before it is full.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether no more entries fit.
    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    /// Entry `i` (in use or not) as raw bytes, or `None` past the capacity.
    pub(crate) fn entry(&self, i: usize) -> Option<[u8; N]> {
        let map = self.mmap.as_ref()?;
        let bytes = map.get(i.checked_mul(N)?..i.checked_add(1)?.checked_mul(N)?)?;
        bytes.try_into().ok()
    }

    /// Whether any byte from entry `i` to the end of the file is non-zero.
    /// Only meaningful for trimmed files: the preallocated tail of an active
    /// index is not scanned (it is rebuilt by recovery when in doubt).
    pub(crate) fn any_nonzero_after(&self, i: usize) -> bool {
        if !self.trimmed {
            return false;
        }
        self.mmap
            .as_ref()
            .and_then(|m| m.get(i.saturating_mul(N).min(m.len())..))
            .is_some_and(|rest| rest.iter().any(|&b| b != 0))
    }

    /// Declares the first `n` entries in use (after the caller validated them).
    pub(crate) fn set_entries(&mut self, n: usize) {
        self.entries = n.min(self.capacity);
    }

    /// Appends an entry; `false` if the file is full.
    pub(crate) fn push(&mut self, entry: [u8; N]) -> bool {
        let at = self.entries * N;
        let Some(slot) = self.mmap.as_mut().and_then(|m| m.get_mut(at..at + N)) else {
            return false;
        };
        slot.copy_from_slice(&entry);
        self.entries += 1;
        true
    }

    /// Forgets entries from `n` on and zeroes them, so a reopened
    /// preallocated file ends at entry `n`.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        if let Some(map) = self.mmap.as_mut() {
            let end = (self.entries * N).min(map.len());
            if let Some(tail) = map.get_mut(n * N..end) {
                tail.fill(0);
            }
        }
        self.entries = n;
    }

    /// Shrinks the file to the entries in use (on seal and clean shutdown)
    /// and writes the mapping back to the file.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.flush()?;
        self.remap((self.entries * N) as u64)
    }

    /// Grows the file back to `max_bytes` so more entries can be appended
    /// (reopening the last segment of a cleanly closed log).
    pub(crate) fn expand(&mut self, max_bytes: usize) -> io::Result<()> {
        let len = ((max_bytes / N * N).max(self.entries * N)) as u64;
        self.remap(len)
    }

    /// Writes dirty pages of the mapping back to the file (`msync`).
    pub(crate) fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }

    /// Unmaps and returns the handle, for deleting the file.
    pub(crate) fn close(mut self) -> Arc<dyn LogFile> {
        self.mmap = None;
        self.file
    }
}
