//! The one door to the disk: every file operation of the partition log goes
//! through [`FileSystem`] and [`LogFile`], so tests can inject faults (disk
//! full, EIO, short writes, failed fsyncs) and prove nothing bypasses them.
//!
//! Two deliberate escape hatches hand out the raw [`std::fs::File`]
//! ([`LogFile::os_file`]): memory-mapping the indexes (derived data, rebuilt on
//! recovery) and `sendfile(2)` on the read path. Neither writes log data.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// How [`FileSystem::open`] treats a missing or existing file. Files are
/// always opened for reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file; fail with `AlreadyExists` if it exists.
    CreateNew,
    /// Open the file, creating it empty if it is missing.
    Create,
    /// Open an existing file; fail with `NotFound` if it is missing.
    Existing,
}

/// Whether `e` says the disk (or the user's quota) is full: `ENOSPC` or
/// `EDQUOT`.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The file system of `path`: total bytes and bytes free to an
/// unprivileged user (`statvfs(2)`); `None` when it cannot say.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    nix::sys::statvfs::statvfs(path).ok().map(|v| {
        let frag = v.fragment_size();
        (v.blocks() * frag, v.blocks_available() * frag)
    })
}

/// An open file of the log. Positional I/O only, so one handle can be shared
/// by a writer and many readers (`&self` everywhere).
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait LogFile: Send + Sync + fmt::Debug {
    /// Writes some of `buf` at `position`; may write fewer bytes than asked
    /// (a short write). See [`write_all_at`].
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize>;
    /// Reads up to `buf.len()` bytes at `position`; 0 means end of file.
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// `fdatasync(2)`: on success every byte written before the call is durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes. Truncating also
    /// releases blocks reserved past the end by [`LogFile::preallocate`].
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves disk blocks for `position..position + len` without changing
    /// the file's length or contents (`fallocate(2)` with
    /// `FALLOC_FL_KEEP_SIZE`), so later writes there skip the file system's
    /// block allocation. Advisory: a file system without it answers
    /// `Unsupported` (or another error), and nothing changes.
    fn preallocate(&self, position: u64, len: u64) -> io::Result<()>;
    /// The current length of the file in bytes.
    fn len(&self) -> io::Result<u64>;
    /// The operating-system file, for memory-mapping indexes and for
    /// `sendfile(2)`. Writes through it bypass fault injection: log data must
    /// never be written this way.
    fn os_file(&self) -> &File;
}

/// Directory and file-opening operations of the log.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and writing as `mode` says.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn LogFile>>;
    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Unlinks a file. Open handles keep working until they are dropped.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it. Open handles of its files
    /// keep working until they are dropped.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// Writes all of `buf` at `position`, looping over short writes and `EINTR`.
/// A write that makes no progress fails with `WriteZero`.
pub fn write_all_at(file: &dyn LogFile, mut buf: &[u8], mut position: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, position) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => {
                buf = buf.get(n..).unwrap_or_default();
                position += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from `position`, looping over short reads and `EINTR`. Returns
/// the number of bytes read, less than `buf.len()` only at end of file.
pub fn read_full_at(file: &dyn LogFile, buf: &mut [u8], position: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let rest = buf.get_mut(done..).unwrap_or_default();
        match file.read_at(rest, position + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Replaces `dir/name` with `bytes` durably and atomically: writes
/// `dir/name.tmp`, `fdatasync`s it, renames it over `dir/name` and syncs the
/// directory. A crash leaves either the old or the new content.
pub fn write_file_atomically(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = fs.open(&tmp, OpenMode::Create)?;
    file.set_len(0)?;
    write_all_at(&*file, bytes, 0)?;
    file.sync_data()?;
    drop(file);
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)
}

/// Reads a whole (small) file, or `None` if it does not exist.
pub fn read_file(fs: &dyn FileSystem, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match fs.open(path, OpenMode::Existing) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; file.len()? as usize];
    let n = read_full_at(&*file, &mut buf, 0)?;
    buf.truncate(n);
    Ok(Some(buf))
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

/// A [`LogFile`] backed by an operating-system file.
#[derive(Debug)]
pub struct StdFile {
    file: File,
}

impl StdFile {
    /// Wraps an open file.
    pub fn new(file: File) -> Self {
        StdFile { file }
    }
}

impl LogFile for StdFile {
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        self.file.write_at(buf, position)
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.file.read_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn preallocate(&self, position: u64, len: u64) -> io::Result<()> {
        use nix::fcntl::{FallocateFlags, fallocate};
        use std::os::fd::AsRawFd;
        let offset = i64::try_from(position).map_err(io::Error::other)?;
        let len = i64::try_from(len).map_err(io::Error::other)?;
        fallocate(
            self.file.as_raw_fd(),
            FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .map_err(io::Error::from)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn os_file(&self) -> &File {
        &self.file
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn LogFile>> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        match mode {
            OpenMode::CreateNew => opts.create_new(true),
            OpenMode::Create => opts.create(true),
            OpenMode::Existing => &mut opts,
        };
        Ok(Arc::new(StdFile::new(opts.open(path)?)))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_and_read_full_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = StdFs.open(&path, OpenMode::CreateNew).unwrap();
        write_all_at(&*f, b"hello world", 3).unwrap();
        assert_eq!(f.len().unwrap(), 14);
        let mut buf = [0u8; 20];
        assert_eq!(read_full_at(&*f, &mut buf, 3).unwrap(), 11);
        assert_eq!(&buf[..11], b"hello world");
        assert!(StdFs.open(&path, OpenMode::CreateNew).is_err());
        assert!(
            StdFs
                .open(&dir.path().join("missing"), OpenMode::Existing)
                .is_err()
        );
        assert_eq!(StdFs.list_dir(dir.path()).unwrap(), vec!["f".to_owned()]);
    }
}
