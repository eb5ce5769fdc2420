//! A fault-injecting [`FileSystem`] for tests: disk full after a byte budget,
//! EIO on writes or reads, short writes and failing fsyncs, switchable at run
//! time through a shared [`Faults`] handle.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::io::{FileSystem, LogFile, OpenMode, StdFs};

/// Switches shared by a [`FaultyFs`] and every file it opened.
#[derive(Debug, Default)]
pub struct Faults {
    /// Bytes that writes may still store before the disk is "full";
    /// `u64::MAX` means no limit. A write crossing the limit stores what fits
    /// (a short write); the next one fails with `ENOSPC`.
    space_left: AtomicU64,
    write_eio: AtomicBool,
    read_eio: AtomicBool,
    fsync_fails: AtomicBool,
    dir_open_emfile: AtomicBool,
    short_writes: AtomicBool,
    syncs: AtomicU64,
    sync_delay_us: AtomicU64,
    hold_writes: AtomicBool,
    writes_held: AtomicU64,
    reads: AtomicU64,
    open_files: AtomicU64,
    peak_open_files: AtomicU64,
}

impl Faults {
    /// No faults.
    pub fn new() -> Arc<Self> {
        let faults = Faults::default();
        faults.space_left.store(u64::MAX, Ordering::SeqCst);
        Arc::new(faults)
    }
    /// Lets writes store `bytes` more bytes, then fail with `ENOSPC`.
    pub fn set_space_left(&self, bytes: u64) {
        self.space_left.store(bytes, Ordering::SeqCst);
    }
    /// Removes the space limit.
    pub fn clear_disk_full(&self) {
        self.space_left.store(u64::MAX, Ordering::SeqCst);
    }
    /// Makes every write fail with `EIO` (true) or succeed again (false).
    pub fn set_write_eio(&self, on: bool) {
        self.write_eio.store(on, Ordering::SeqCst);
    }
    /// Makes every read fail with `EIO`.
    pub fn set_read_eio(&self, on: bool) {
        self.read_eio.store(on, Ordering::SeqCst);
    }
    /// Makes every `sync_data` and directory sync fail with `EIO`.
    pub fn set_fsync_fails(&self, on: bool) {
        self.fsync_fails.store(on, Ordering::SeqCst);
    }
    /// Makes every directory sync fail before it runs, as the open of the
    /// directory fails with `EMFILE` when the process is out of descriptors.
    pub fn set_dir_open_emfile(&self, on: bool) {
        self.dir_open_emfile.store(on, Ordering::SeqCst);
    }
    /// Makes every write store at most half its bytes (at least one).
    pub fn set_short_writes(&self, on: bool) {
        self.short_writes.store(on, Ordering::SeqCst);
    }

    /// The most files opened through the file system and not yet dropped
    /// at one time, since the last [`Faults::reset_peak_open_files`].
    pub fn peak_open_files(&self) -> u64 {
        self.peak_open_files.load(Ordering::SeqCst)
    }
    /// Starts counting [`Faults::peak_open_files`] from the files open now.
    pub fn reset_peak_open_files(&self) {
        let now = self.open_files.load(Ordering::SeqCst);
        self.peak_open_files.store(now, Ordering::SeqCst);
    }

    /// Makes every `sync_data` take at least `delay` (a slow disk).
    pub fn set_sync_delay(&self, delay: std::time::Duration) {
        self.sync_delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// While on, every write waits before touching the file (a stalled
    /// disk) until it is switched off; see [`Faults::writes_held`].
    pub fn set_hold_writes(&self, on: bool) {
        self.hold_writes.store(on, Ordering::SeqCst);
    }

    /// Number of writes waiting right now because of
    /// [`Faults::set_hold_writes`].
    pub fn writes_held(&self) -> u64 {
        self.writes_held.load(Ordering::SeqCst)
    }

    /// Number of file reads (`pread`) so far, successful or not.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Number of successful file `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    fn take_space(&self, want: usize) -> io::Result<usize> {
        let mut left = self.space_left.load(Ordering::SeqCst);
        loop {
            if left == u64::MAX {
                return Ok(want);
            }
            if left == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let take = left.min(want as u64);
            match self.space_left.compare_exchange(
                left,
                left - take,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(take as usize),
                Err(now) => left = now,
            }
        }
    }
}

/// A [`FileSystem`] over the real one that injects the faults of [`Faults`].
#[derive(Debug, Clone)]
pub struct FaultyFs {
    faults: Arc<Faults>,
}

impl FaultyFs {
    /// A file system whose faults are switched through `faults`.
    pub fn new(faults: Arc<Faults>) -> Self {
        FaultyFs { faults }
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn LogFile>,
    faults: Arc<Faults>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

impl LogFile for FaultyFile {
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        if self.faults.hold_writes.load(Ordering::SeqCst) {
            self.faults.writes_held.fetch_add(1, Ordering::SeqCst);
            while self.faults.hold_writes.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.faults.writes_held.fetch_sub(1, Ordering::SeqCst);
        }
        if self.faults.write_eio.load(Ordering::SeqCst) {
            return Err(eio());
        }
        let mut len = buf.len();
        if self.faults.short_writes.load(Ordering::SeqCst) && len > 1 {
            len /= 2;
        }
        let len = self.faults.take_space(len)?;
        self.inner
            .write_at(buf.get(..len).unwrap_or_default(), position)
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.faults.reads.fetch_add(1, Ordering::SeqCst);
        if self.faults.read_eio.load(Ordering::SeqCst) {
            return Err(eio());
        }
        self.inner.read_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.faults.fsync_fails.load(Ordering::SeqCst) {
            return Err(eio());
        }
        let delay = self.faults.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        self.inner.sync_data()?;
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn preallocate(&self, position: u64, len: u64) -> io::Result<()> {
        // Never data: it takes none of the simulated free space, but fails
        // like writes do, and with no space left at all.
        if self.faults.write_eio.load(Ordering::SeqCst) {
            return Err(eio());
        }
        if self.faults.space_left.load(Ordering::SeqCst) == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.preallocate(position, len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn os_file(&self) -> &File {
        self.inner.os_file()
    }
}

impl Drop for FaultyFile {
    fn drop(&mut self) {
        self.faults.open_files.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FileSystem for FaultyFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn LogFile>> {
        let inner = StdFs.open(path, mode)?;
        let open = self.faults.open_files.fetch_add(1, Ordering::SeqCst) + 1;
        self.faults
            .peak_open_files
            .fetch_max(open, Ordering::SeqCst);
        Ok(Arc::new(FaultyFile {
            inner,
            faults: Arc::clone(&self.faults),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.faults.dir_open_emfile.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        if self.faults.fsync_fails.load(Ordering::SeqCst) {
            return Err(eio());
        }
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}
