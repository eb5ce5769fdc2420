//! A [`FileSystem`] that knows what a power cut would keep: it tracks, per
//! file, the bytes that were durable (content at the last successful
//! `sync_data`) and whether the file's name was durable (its directory synced
//! after it was created or renamed). [`CrashFs::crash_image`] writes the
//! files a machine could come back with after a power cut at this instant:
//! durable names only, each with its durable bytes plus, at random, a torn
//! prefix of what was written after the last sync (sometimes garbled). Index
//! files, written through memory maps, come back as anything: their current
//! content, empty, or garbage.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::format::{INDEX_SUFFIX, TIME_INDEX_SUFFIX};
use super::io::{FileSystem, LogFile, OpenMode, StdFs, read_full_at};

#[derive(Debug, Default, Clone)]
struct Tracked {
    durable: Vec<u8>,
    durable_name: bool,
    exists: bool,
    /// What a rename replaced: a crash before the directory sync still
    /// shows it under this name.
    replaced: Option<Box<Tracked>>,
}

/// The crash-tracking file system; clone it to keep a handle for taking
/// images while a log uses it.
#[derive(Debug, Clone, Default)]
pub struct CrashFs {
    files: Arc<Mutex<HashMap<PathBuf, Tracked>>>,
}

#[derive(Debug)]
struct CrashFile {
    inner: Arc<dyn LogFile>,
    path: PathBuf,
    files: Arc<Mutex<HashMap<PathBuf, Tracked>>>,
}

/// A small deterministic random source for crash images.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

fn read_all(file: &dyn LogFile) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; file.len()? as usize];
    let n = read_full_at(file, &mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

impl CrashFs {
    /// A file system with nothing tracked yet; use it on an empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Tracked>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes into `dest` (an empty directory standing for the directory the
    /// log was in) what a power cut now could leave.
    pub fn crash_image(&self, source: &Path, dest: &Path, rng: &mut Rng) -> io::Result<()> {
        std::fs::create_dir_all(dest)?;
        for (path, t) in self.lock().iter() {
            if path.parent() != Some(source) {
                continue;
            }
            let (t, renamed) = match (&t.replaced, t.durable_name) {
                (_, true) => (t, false),
                (Some(old), false) => (&**old, true),
                (None, false) => continue,
            };
            let Some(name) = path.file_name() else {
                continue;
            };
            let name_str = name.to_string_lossy();
            let current = std::fs::read(path).unwrap_or_default();
            let content =
                if name_str.ends_with(INDEX_SUFFIX) || name_str.ends_with(TIME_INDEX_SUFFIX) {
                    match rng.below(3) {
                        0 => current,
                        1 => Vec::new(),
                        _ => (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect(),
                    }
                } else {
                    let mut content = t.durable.clone();
                    // Written after the last sync: a random prefix may have
                    // reached the disk, possibly torn.
                    if !renamed
                        && current.len() > content.len()
                        && current.starts_with(&content)
                        && rng.below(2) == 0
                    {
                        let extra = &current[content.len()..];
                        let keep = rng.below(extra.len() as u64 + 1) as usize;
                        let start = content.len();
                        content.extend_from_slice(&extra[..keep]);
                        if keep > 0 && rng.below(3) == 0 {
                            let at = start + rng.below(keep as u64) as usize;
                            content[at] ^= 1 + rng.below(255) as u8;
                        }
                    }
                    content
                };
            std::fs::write(dest.join(name), content)?;
        }
        Ok(())
    }
}

impl LogFile for CrashFile {
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        self.inner.write_at(buf, position)
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.inner.read_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()?;
        let content = read_all(&*self.inner)?;
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.entry(self.path.clone()).or_default().durable = content;
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn preallocate(&self, position: u64, len: u64) -> io::Result<()> {
        self.inner.preallocate(position, len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn os_file(&self) -> &File {
        self.inner.os_file()
    }
}

impl FileSystem for CrashFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn LogFile>> {
        let existed = path.exists();
        let inner = StdFs.open(path, mode)?;
        let mut files = self.lock();
        let t = files.entry(path.to_owned()).or_default();
        if !existed {
            *t = Tracked::default();
        }
        t.exists = true;
        Ok(Arc::new(CrashFile {
            inner,
            path: path.to_owned(),
            files: Arc::clone(&self.files),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)?;
        if let Some(t) = self.lock().get_mut(path) {
            t.exists = false;
        }
        Ok(())
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)?;
        self.lock().retain(|p, _| !p.starts_with(path));
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)?;
        let mut files = self.lock();
        let moved = files.remove(from).unwrap_or_default();
        let old = files.remove(to).filter(|o| o.durable_name);
        files.insert(
            to.to_owned(),
            Tracked {
                durable: moved.durable,
                durable_name: false,
                exists: true,
                replaced: old.map(Box::new),
            },
        );
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)?;
        self.lock().retain(|p, t| {
            if p.parent() != Some(path) {
                return true;
            }
            t.durable_name = t.exists;
            t.replaced = None;
            t.exists
        });
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}
