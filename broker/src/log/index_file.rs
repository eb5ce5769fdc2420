//! A memory-mapped file of fixed-size entries: the storage shared by the
//! offset index and the time index.
//!
//! An active index file is preallocated to its maximum size (a sparse file),
//! so its unused tail reads as zeros; the typed indexes recognise their first
//! all-zero entry as the end. Sealing trims the file to the entries in use.
//! The content is derived data: recovery rebuilds it from the segment.
//!
//! A store into a mapped page that has no disk block yet makes the kernel
//! allocate one, and on a full disk that fails as `SIGBUS`, which would end
//! the process. So disk blocks are reserved ([`LogFile::preallocate`])
//! before an entry is written into a part of the file not reserved yet; an
//! entry whose blocks cannot be reserved is not written (the index is
//! sparse: lookups scan a little further).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;
use parking_lot::Mutex;

use super::io::{FileSystem, LogFile, OpenMode, read_full_at, write_all_at};

/// An open index file and its mapping.
#[derive(Debug)]
struct Mapped {
    file: Arc<dyn LogFile>,
    mmap: Option<MmapMut>,
}

/// A file of `N`-byte entries, memory-mapped for reading and appending.
///
/// A trimmed (sealed) index can be *released*: its mapping and file handle
/// are dropped, and the next read of an entry opens and maps the file again
/// (through the same [`FileSystem`]). So a sealed segment holds no descriptor
/// and no mapping for its indexes while nobody reads it.
#[derive(Debug)]
pub(crate) struct IndexFile<const N: usize> {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    mapped: Mutex<Option<Mapped>>,
    /// Entries in use.
    entries: usize,
    /// Entries the current file length can hold.
    capacity: usize,
    /// Opened at its own length (a sealed, trimmed file), not preallocated.
    trimmed: bool,
    /// Bytes from the start of the file whose disk blocks are reserved (or
    /// the whole mapping, where the file system cannot reserve).
    reserved: usize,
}

/// Bytes of an index file reserved at a time ahead of its entries.
const RESERVE_BYTES: usize = 64 << 10;

/// Bytes read at a time by [`IndexFile::scan`].
const SCAN_BYTES: usize = 64 << 10;

#[cfg(test)]
thread_local! {
    /// Synchronous `msync`s of index mappings made by this thread (tests
    /// check that the append path makes none).
    pub(crate) static SYNC_FLUSHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Maps `file` (if it is not empty).
fn map(file: &Arc<dyn LogFile>) -> io::Result<Option<MmapMut>> {
    if file.len()? == 0 {
        return Ok(None);
    }
    #[allow(unsafe_code)]
    // SAFETY: the mapping is of a file that only this index writes, through
    // this mapping, while the partition log's lock is held; the file is never
    // truncated below the mapped length while mapped (`remap` drops the
    // mapping first, and a released mapping is gone before the file is
    // reopened). Another process changing the file would be outside Sluice's
    // contract for its data directory, which a lock file reserves for one
    // broker.
    let mmap = unsafe { MmapMut::map_mut(file.os_file())? };
    Ok(Some(mmap))
}

impl<const N: usize> IndexFile<N> {
    /// Opens (creating if missing) `path`, extends or keeps its length at
    /// `max_bytes` rounded down to whole entries when `preallocate`, and maps
    /// it. `entries` starts at 0: the caller counts the valid entries with
    /// [`IndexFile::entry`] and sets them with [`IndexFile::set_entries`].
    pub(crate) fn open(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        let file = fs.open(path, OpenMode::Create)?;
        let len = if preallocate {
            (max_bytes / N * N) as u64
        } else {
            file.len()?
        };
        let mut index = IndexFile {
            path: path.to_owned(),
            fs: Arc::clone(fs),
            mapped: Mutex::new(Some(Mapped { file, mmap: None })),
            entries: 0,
            capacity: 0,
            trimmed: !preallocate,
            reserved: 0,
        };
        index.remap(len)?;
        Ok(index)
    }

    /// The open file and mapping, opening the file again if it was released.
    fn mapped_mut(&mut self) -> io::Result<&mut Mapped> {
        let slot = self.mapped.get_mut();
        if slot.is_none() {
            let file = self.fs.open(&self.path, OpenMode::Existing)?;
            let mmap = map(&file)?;
            *slot = Some(Mapped { file, mmap });
        }
        slot.as_mut()
            .ok_or_else(|| io::Error::other("index file not open"))
    }

    fn remap(&mut self, len: u64) -> io::Result<()> {
        let mapped = self.mapped_mut()?;
        mapped.mmap = None;
        let resized = match mapped.file.len() {
            Ok(current) if current == len => Ok(()),
            Ok(_) => mapped.file.set_len(len),
            Err(e) => Err(e),
        };
        // Map whatever length the file has now, even if resizing failed, so
        // the index stays usable at its old size.
        let actual = mapped.file.len()?;
        mapped.mmap = map(&mapped.file)?;
        self.capacity = (actual as usize) / N;
        self.entries = self.entries.min(self.capacity);
        // Whatever was reserved past a shrunk end is gone with it.
        self.reserved = self.reserved.min(actual as usize);
        resized
    }

    /// Drops the mapping and the file handle of a trimmed index; the next
    /// read maps it again. Returns whether anything was open. An active
    /// (preallocated) index is never released.
    pub(crate) fn release(&self) -> bool {
        if !self.trimmed {
            return false;
        }
        self.mapped.lock().take().is_some()
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

    /// Entry `i` (in use or not) as raw bytes, or `None` past the capacity
    /// (or when a released file cannot be opened again; lookups then fall
    /// back to the segment start, which is slower but still correct).
    pub(crate) fn entry(&self, i: usize) -> Option<[u8; N]> {
        let mut slot = self.mapped.lock();
        if slot.is_none() {
            let reopened = self
                .fs
                .open(&self.path, OpenMode::Existing)
                .and_then(|file| {
                    Ok(Mapped {
                        mmap: map(&file)?,
                        file,
                    })
                });
            match reopened {
                Ok(m) => *slot = Some(m),
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "cannot reopen index");
                    return None;
                }
            }
        }
        let map = slot.as_ref()?.mmap.as_ref()?;
        let bytes = map.get(i.checked_mul(N)?..i.checked_add(1)?.checked_mul(N)?)?;
        bytes.try_into().ok()
    }

    /// Reads the entries from the first, in order, while `accept` takes
    /// them. Returns how many it took and the entry it refused (`None` at
    /// the end of the file, or if reading failed there).
    ///
    /// Reads with `pread`, not through the mapping: a mapped read of a page
    /// never written makes tmpfs allocate it, which on a full tmpfs is
    /// `SIGBUS`; `pread` reads such a page as zeros.
    pub(crate) fn scan(
        &mut self,
        mut accept: impl FnMut([u8; N]) -> bool,
    ) -> (usize, Option<[u8; N]>) {
        let Ok(mapped) = self.mapped_mut() else {
            return (0, None);
        };
        let len = mapped.mmap.as_ref().map_or(0, |m| m.len());
        let file = Arc::clone(&mapped.file);
        let mut buf = vec![0u8; (SCAN_BYTES / N).max(1) * N];
        let (mut n, mut at) = (0usize, 0usize);
        while at < len {
            let want = buf.len().min(len - at);
            let chunk = buf.get_mut(..want).unwrap_or_default();
            let got = match read_full_at(&*file, chunk, at as u64) {
                Ok(got) => got / N * N,
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "index read failed; entries end here");
                    return (n, None);
                }
            };
            for raw in chunk.get(..got).unwrap_or_default().chunks_exact(N) {
                let Ok(entry) = <[u8; N]>::try_from(raw) else {
                    return (n, None);
                };
                if !accept(entry) {
                    return (n, Some(entry));
                }
                n += 1;
            }
            if got < want {
                break;
            }
            at += got;
        }
        (n, None)
    }

    /// Whether any byte from entry `i` to the end of the file is non-zero.
    /// Only meaningful for trimmed files: the preallocated tail of an active
    /// index is not scanned (it is rebuilt by recovery when in doubt).
    pub(crate) fn any_nonzero_after(&self, i: usize) -> bool {
        if !self.trimmed {
            return false;
        }
        self.mapped
            .lock()
            .as_ref()
            .and_then(|m| m.mmap.as_ref())
            .and_then(|m| m.get(i.saturating_mul(N).min(m.len())..))
            .is_some_and(|rest| rest.iter().any(|&b| b != 0))
    }

    /// Declares the first `n` entries in use (after the caller validated them).
    pub(crate) fn set_entries(&mut self, n: usize) {
        self.entries = n.min(self.capacity);
    }

    /// Appends an entry; `false` if the file is full, or if the disk
    /// blocks under it cannot be reserved (a full disk).
    pub(crate) fn push(&mut self, entry: [u8; N]) -> bool {
        let at = self.entries * N;
        let end = at + N;
        let reserved = self.reserved;
        let Ok(mapped) = self.mapped_mut() else {
            return false;
        };
        let Some(len) = mapped.mmap.as_ref().map(|m| m.len()) else {
            return false;
        };
        if end > len {
            return false;
        }
        let now_reserved = if end <= reserved {
            reserved
        } else {
            let upto = end.next_multiple_of(RESERVE_BYTES).min(len);
            match mapped
                .file
                .preallocate(reserved as u64, (upto - reserved) as u64)
            {
                Ok(()) => upto,
                // Nothing to reserve with: stores allocate as they must.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => len,
                Err(e) => {
                    tracing::debug!(file = %self.path.display(), error = %e, "index entry not written: its blocks cannot be reserved");
                    return false;
                }
            }
        };
        let Some(slot) = mapped.mmap.as_mut().and_then(|m| m.get_mut(at..end)) else {
            return false;
        };
        slot.copy_from_slice(&entry);
        self.reserved = now_reserved;
        self.entries += 1;
        true
    }

    /// Forgets entries from `n` on and zeroes them, so a reopened
    /// preallocated file ends at entry `n`.
    ///
    /// The zeros are written with `pwrite`, not through the mapping: a store
    /// into a mapped page can need a disk block (ext4 converting a reserved
    /// extent, say), and on a full disk that is `SIGBUS`, which ended a
    /// broker recovering a partition on a full disk at every start. A
    /// `pwrite` that cannot get its block fails instead; the entries are
    /// forgotten all the same, and a reopened index whose stale entries
    /// point past its segment is rebuilt (see [`IndexFile::reset`]).
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let (start, end) = (n * N, self.entries * N);
        self.entries = n;
        let Ok(mapped) = self.mapped_mut() else {
            return;
        };
        let end = end.min(mapped.mmap.as_ref().map_or(0, |m| m.len()));
        let zeros = vec![0u8; (end.saturating_sub(start)).min(SCAN_BYTES)];
        let mut at = start;
        while at < end {
            let chunk = zeros.get(..(end - at).min(zeros.len())).unwrap_or_default();
            if let Err(e) = write_all_at(&*mapped.file, chunk, at as u64) {
                tracing::warn!(file = %self.path.display(), error = %e, "index entries past a truncation not zeroed");
                return;
            }
            at += chunk.len();
        }
    }

    /// Forgets every entry and gives back the file's disk blocks: the file
    /// is cut to nothing and grown again to its length (sparse), so it reads
    /// as zeros, without a store through the mapping (see
    /// [`IndexFile::truncate_entries`]) and with space freed on a full disk.
    /// For a rebuild, whatever the old content (a damaged index too).
    pub(crate) fn reset(&mut self) -> io::Result<()> {
        let len = (self.capacity * N) as u64;
        self.entries = 0;
        self.remap(0)?;
        self.remap(len)
    }

    /// Shrinks the file to the entries in use (on seal and clean shutdown)
    /// and writes the mapping back to the file.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.flush()?;
        self.trimmed = true;
        self.remap((self.entries * N) as u64)
    }

    /// [`IndexFile::trim`] without waiting for the write-back: the dirty
    /// pages are only scheduled (`msync(MS_ASYNC)`); the kernel writes them
    /// back later. For sealing on the append path: the index is derived
    /// data, and recovery rebuilds an index that a crash left incomplete.
    pub(crate) fn trim_async(&mut self) -> io::Result<()> {
        if let Some(m) = self.mapped.lock().as_ref().and_then(|m| m.mmap.as_ref()) {
            m.flush_async()?;
        }
        self.trimmed = true;
        self.remap((self.entries * N) as u64)
    }

    /// Grows the file back to `max_bytes` so more entries can be appended
    /// (reopening the last segment of a cleanly closed log).
    pub(crate) fn expand(&mut self, max_bytes: usize) -> io::Result<()> {
        let len = ((max_bytes / N * N).max(self.entries * N)) as u64;
        self.trimmed = false;
        self.remap(len)
    }

    /// Writes dirty pages of the mapping back to the file (`msync`).
    pub(crate) fn flush(&self) -> io::Result<()> {
        #[cfg(test)]
        SYNC_FLUSHES.with(|n| n.set(n.get() + 1));
        match self.mapped.lock().as_ref().and_then(|m| m.mmap.as_ref()) {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }

    /// Unmaps and closes the file, for deleting it.
    pub(crate) fn close(self) {
        drop(self.mapped.into_inner());
    }
}
