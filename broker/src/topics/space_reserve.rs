//! Disk space kept back for the topic metadata file.
//!
//! On a full disk every append is refused, and the way out is to delete a
//! topic; but a deletion rewrites `topics.meta`, which needs a few free
//! blocks. So the data directory holds a file of reserved blocks
//! ([`RESERVE_FILE`], [`RESERVE_BYTES`] allocated past its end, length 0):
//! when a metadata write finds the disk full, the reserve is released and
//! the write tried once more. Once a deletion has freed space, the reserve
//! is taken again.

use std::path::{Path, PathBuf};

use crate::log::io::{FileSystem, OpenMode};

/// The reserve file's name in the data directory.
pub const RESERVE_FILE: &str = ".space-reserve";

/// Bytes the reserve holds: enough for a metadata file of some ten thousand
/// topics.
pub const RESERVE_BYTES: u64 = 1 << 20;

/// The reserve of one data directory.
#[derive(Debug)]
pub(crate) struct SpaceReserve {
    path: PathBuf,
}

impl SpaceReserve {
    pub(crate) fn new(data_dir: &Path) -> Self {
        SpaceReserve {
            path: data_dir.join(RESERVE_FILE),
        }
    }

    /// Takes the reserve if it is not held: creates the file and reserves
    /// its blocks. Best effort: on a full disk, or a file system that cannot
    /// reserve, there is simply no reserve until a later call.
    pub(crate) fn take(&self, fs: &dyn FileSystem) {
        let reserved = fs
            .open(&self.path, OpenMode::Create)
            .and_then(|f| f.preallocate(0, RESERVE_BYTES));
        if let Err(e) = reserved {
            tracing::debug!(file = %self.path.display(), error = %e, "no disk space reserved");
            // No file without its blocks on a full disk: releasing it would
            // free nothing and the write that asked would fail again.
            if crate::log::io::is_disk_full(&e) {
                let _ = fs.remove_file(&self.path);
            }
        }
    }

    /// Whether the reserve holds its blocks (a take on a full disk leaves
    /// the file without them).
    pub(crate) fn held(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path).is_ok_and(|m| m.blocks() * 512 >= RESERVE_BYTES)
    }

    /// Releases the reserve, so a write that found the disk full can try
    /// again. Returns whether there was one to release.
    pub(crate) fn release(&self, fs: &dyn FileSystem) -> bool {
        match fs.remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(file = %self.path.display(), bytes = RESERVE_BYTES,
                    "disk full: released the reserved space for a metadata write; delete topics or add space");
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::io::StdFs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn take_reserves_blocks_and_release_frees_them() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = SpaceReserve::new(dir.path());
        reserve.take(&StdFs);
        let meta = std::fs::metadata(dir.path().join(RESERVE_FILE)).unwrap();
        assert_eq!(meta.len(), 0);
        // Where the file system reserves blocks at all (see the log's
        // preallocation test), they are there.
        if meta.blocks() > 0 {
            assert!(meta.blocks() * 512 >= RESERVE_BYTES);
        }
        reserve.take(&StdFs);
        assert!(reserve.release(&StdFs));
        assert!(!dir.path().join(RESERVE_FILE).exists());
        assert!(!reserve.release(&StdFs));
    }
}
