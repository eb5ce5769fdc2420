//! The controller's Raft log and vote, in `controller.log` and `vote`
//! (layouts in [`super::files`]). The whole log is also kept in memory
//! (the controller log is small: it is purged after each snapshot).
//!
//! Every write is durable before it is reported: appends are fsynced
//! before openraft's `LogFlushed` callback, the vote file is replaced
//! atomically. File I/O runs on the blocking pool.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::TypeConfig;
use super::files::{self, COMMITTED_MAGIC, LOG_MAGIC, VOTE_MAGIC};
use crate::log::io::{StdFs, is_disk_full};
use crate::topics::space_reserve::{RESERVE_BYTES, SpaceReserve};

/// The file [`LogStore::save_committed`] keeps the committed log id in.
const COMMITTED_FILE: &str = "committed";

/// One record of `controller.log`.
// Built one at a time, to be encoded or as it is decoded: the size of the
// entry variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub enum LogRecord {
    /// A Raft entry.
    Entry(Entry<TypeConfig>),
    /// Entries up to this id were purged (the first record of a rewritten
    /// log).
    Purged(LogId<u64>),
}

struct Inner {
    dir: PathBuf,
    file: std::fs::File,
    /// Entries by index, with the file position of their record.
    entries: BTreeMap<u64, (Entry<TypeConfig>, u64)>,
    purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    /// The last committed log id saved (see [`LogStore::read_committed`]).
    committed: Option<LogId<u64>>,
    /// End of the last whole record.
    end: u64,
    /// Disk blocks kept back for the controller's own writes
    /// ([`LogStore::blocking`]).
    reserve: SpaceReserve,
    /// When the reserve was last found released and taken again (at most
    /// every [`RETAKE_EVERY`]).
    retaken: Option<std::time::Instant>,
}

/// How often a released reserve is taken again (best effort: on a disk
/// still full it stays released).
const RETAKE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The controller's log storage; clones share it.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStore")
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn sto(e: std::io::Error) -> StorageError<u64> {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// Opens (or creates) the log and vote files in `dir`, cutting a torn
    /// or corrupt tail off the log. Blocking.
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("controller.log");
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if bytes.len() < 8 {
            // New (or cut inside its header before anything was in it).
            bytes = LOG_MAGIC.to_vec();
            files::write_atomically(&path, &bytes)?;
        } else if bytes[..8] != LOG_MAGIC {
            // Whatever follows is the node's metadata log: never start over
            // on it.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: the header is damaged ({} bytes follow it); restore the file, or \
                     empty this node's data directory to rejoin it as a new node",
                    path.display(),
                    bytes.len() - 8
                ),
            ));
        }
        let mut entries = BTreeMap::new();
        let mut purged = None;
        let mut pos = 8usize;
        while let Some((payload, len)) = files::get_record(&bytes[pos..]) {
            match postcard::from_bytes::<LogRecord>(payload).map_err(io_err)? {
                LogRecord::Entry(e) => {
                    entries.insert(e.log_id.index, (e, pos as u64));
                }
                LogRecord::Purged(id) => purged = Some(id),
            }
            pos += len;
        }
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        if pos < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = pos,
                cut = bytes.len() - pos,
                "cutting a torn tail off the controller log"
            );
            file.set_len(pos as u64)?;
            file.sync_all()?;
        }
        let vote: Option<Vote<u64>> = files::read_single(&dir.join("vote"), VOTE_MAGIC)?
            .map(|p| postcard::from_bytes(&p).map_err(io_err))
            .transpose()?;
        // Entries of a term past 0 (a leader's) or a purge come only after
        // a vote was saved (openraft saves it before it appends what a
        // leader sends, or before it leads). Without it this node could
        // vote twice in one term.
        let led = purged.is_some() || entries.values().any(|(e, _)| e.log_id.leader_id.term > 0);
        if vote.is_none() && led {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: the vote is missing but the controller log holds entries of an \
                     elected leader (the node could vote twice in one term); restore the \
                     file, or empty this node's data directory to rejoin it as a new node",
                    dir.join("vote").display()
                ),
            ));
        }
        // Written without fsync: a damaged or missing one is unknown.
        let committed = files::read_single(&dir.join(COMMITTED_FILE), COMMITTED_MAGIC)
            .ok()
            .flatten()
            .and_then(|p| postcard::from_bytes::<LogId<u64>>(&p).ok());
        let reserve = SpaceReserve::new(&dir);
        reserve.take(&StdFs);
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir,
                file,
                entries,
                purged,
                vote,
                committed,
                end: pos as u64,
                reserve,
                retaken: None,
            })),
        })
    }

    /// The index of the last purged entry, if any.
    pub fn purged_index(&self) -> Option<u64> {
        self.inner.lock().purged.map(|p| p.index)
    }

    /// Runs a write of the controller's state on the blocking pool. On a
    /// full disk the controller's reserve ([`SpaceReserve`], 1 MiB in the
    /// controller directory) is released and the write tried once more: a
    /// failed write stops the controller's Raft core, and with it the node,
    /// which on a restart with the disk still full stopped again — so a
    /// cluster whose disks filled up went down and could not come back to
    /// delete what filled them. Its records are small next to the
    /// reserve. Taken again once the disk has room.
    async fn blocking<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Inner) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StorageError<u64>> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut inner = inner.lock();
            let r = match f(&mut inner) {
                Err(e) if is_disk_full(&e) && inner.reserve.release(&StdFs) => f(&mut inner),
                r => r,
            };
            if r.is_ok() {
                inner.retake_reserve();
            }
            r
        })
        .await
        .map_err(|e| sto(io_err(e)))?
        .map_err(sto)
    }
}

impl Inner {
    /// Takes the reserve again if it was released, at most every
    /// [`RETAKE_EVERY`], and only when the disk has room for it twice over:
    /// taken back from the last free blocks, it would leave the next write
    /// to fail with nothing left to release.
    fn retake_reserve(&mut self) {
        if self.reserve.held() {
            return;
        }
        let now = std::time::Instant::now();
        if self
            .retaken
            .is_some_and(|t| now.duration_since(t) < RETAKE_EVERY)
        {
            return;
        }
        self.retaken = Some(now);
        let free = crate::log::io::disk_space(&self.dir).map_or(0, |(_, free)| free);
        if free >= 2 * RESERVE_BYTES {
            self.reserve.take(&StdFs);
        }
    }

    fn append(&mut self, records: &[(u64, Entry<TypeConfig>, Vec<u8>)]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        let mut positions = Vec::with_capacity(records.len());
        for (_, _, payload) in records {
            positions.push(self.end + bytes.len() as u64);
            files::put_record(&mut bytes, payload);
        }
        self.file.seek(SeekFrom::Start(self.end))?;
        if let Err(e) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            // Back to the last whole record.
            let _ = self.file.set_len(self.end);
            return Err(e);
        }
        self.end += bytes.len() as u64;
        for ((index, entry, _), pos) in records.iter().zip(positions) {
            self.entries.insert(*index, (entry.clone(), pos));
        }
        Ok(())
    }

    fn truncate(&mut self, index: u64) -> std::io::Result<()> {
        let Some((_, pos)) = self.entries.get(&index).map(|(e, p)| (e.log_id, *p)) else {
            return Ok(());
        };
        self.file.set_len(pos)?;
        self.file.sync_all()?;
        self.end = pos;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Rewrites the log without the entries up to `id` (temp file, fsync,
    /// rename, directory fsync).
    fn purge(&mut self, id: LogId<u64>) -> std::io::Result<()> {
        let kept = self.entries.split_off(&(id.index + 1));
        let mut bytes = LOG_MAGIC.to_vec();
        let rec = postcard::to_allocvec(&LogRecord::Purged(id)).map_err(io_err)?;
        files::put_record(&mut bytes, &rec);
        let mut entries = BTreeMap::new();
        for (index, (entry, _)) in kept {
            let pos = bytes.len() as u64;
            let rec = postcard::to_allocvec(&LogRecord::Entry(entry.clone())).map_err(io_err)?;
            files::put_record(&mut bytes, &rec);
            entries.insert(index, (entry, pos));
        }
        let path = self.dir.join("controller.log");
        files::write_atomically(&path, &bytes)?;
        self.file = std::fs::OpenOptions::new().write(true).open(&path)?;
        self.end = bytes.len() as u64;
        self.entries = entries;
        self.purged = Some(id);
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        Ok(self
            .inner
            .lock()
            .entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let inner = self.inner.lock();
        let last = inner
            .entries
            .last_key_value()
            .map(|(_, (e, _))| e.log_id)
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let vote = *vote;
        let payload = postcard::to_allocvec(&vote).map_err(|e| sto(io_err(e)))?;
        self.blocking(move |inner| {
            files::write_single(&inner.dir.join("vote"), VOTE_MAGIC, &payload)?;
            inner.vote = Some(vote);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().vote)
    }

    /// Kept (without fsync), so that a restarted node applies the entries
    /// it knows committed at once, before any leader is reachable: its
    /// metadata is then that of its last commit, not of its last snapshot.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        let Some(committed) = committed else {
            return Ok(());
        };
        let payload = postcard::to_allocvec(&committed).map_err(|e| sto(io_err(e)))?;
        self.blocking(move |inner| {
            files::write_single_unsynced(
                &inner.dir.join(COMMITTED_FILE),
                COMMITTED_MAGIC,
                &payload,
            )?;
            inner.committed = Some(committed);
            Ok(())
        })
        .await
    }

    /// The committed log id saved last, if this log holds that entry (or
    /// purged past it, into a snapshot): a value saved without fsync may
    /// have outlived entries a crash took back, and then it is not given.
    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let inner = self.inner.lock();
        Ok(inner.committed.filter(|c| {
            inner
                .entries
                .get(&c.index)
                .is_some_and(|(e, _)| e.log_id == *c)
                || inner.purged.is_some_and(|p| p.index >= c.index)
        }))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        for e in entries {
            let payload =
                postcard::to_allocvec(&LogRecord::Entry(e.clone())).map_err(|e| sto(io_err(e)))?;
            records.push((e.log_id.index, e, payload));
        }
        let r = self.blocking(move |inner| inner.append(&records)).await;
        match &r {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(io_err(e))),
        }
        r
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |inner| inner.truncate(log_id.index))
            .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |inner| inner.purge(log_id)).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    /// A log in `dir` holding entries 1..=n (of term 1, with the vote
    /// that came before them).
    fn store_of(dir: &std::path::Path, n: u64) -> LogStore {
        let store = LogStore::open(dir.to_owned()).unwrap();
        let vote = postcard::to_allocvec(&Vote::new_committed(1, 1)).unwrap();
        files::write_single(&dir.join("vote"), VOTE_MAGIC, &vote).unwrap();
        let recs: Vec<_> = (1..=n)
            .map(|i| {
                let e = entry(i);
                let p = postcard::to_allocvec(&LogRecord::Entry(e.clone())).unwrap();
                (i, e, p)
            })
            .collect();
        store.inner.lock().append(&recs).unwrap();
        store
    }

    #[test]
    fn reopen_keeps_whole_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(dir.path(), 3);
        store.inner.lock().truncate(3).unwrap();
        drop(store);
        let path = dir.path().join("controller.log");
        let whole = std::fs::read(&path).unwrap().len();
        // A torn third record: half of it reached the disk.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[0, 0, 0, 40, 1, 2]).unwrap();
        drop(f);
        let store = LogStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), whole);
        let keys: Vec<u64> = store.inner.lock().entries.keys().copied().collect();
        assert_eq!(keys, [1, 2]);
        // Appends continue after the cut.
        let e = entry(3);
        let p = postcard::to_allocvec(&LogRecord::Entry(e.clone())).unwrap();
        store.inner.lock().append(&[(3, e, p)]).unwrap();
        store.inner.lock().purge(entry(2).log_id).unwrap();
        drop(store);
        let store = LogStore::open(dir.path().to_owned()).unwrap();
        let inner = store.inner.lock();
        assert_eq!(inner.purged, Some(entry(2).log_id));
        assert_eq!(inner.entries.keys().copied().collect::<Vec<_>>(), [3]);
    }

    /// A damaged header, or a missing vote under a leader's entries, makes
    /// the open fail and changes nothing; a node that crashed between its
    /// first (term 0) entry and its first vote opens.
    #[test]
    fn a_damaged_header_or_a_lost_vote_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_of(dir.path(), 3));
        let path = dir.path().join("controller.log");
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[2] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = LogStore::open(dir.path().to_owned()).unwrap_err();
        assert!(e.to_string().contains("header is damaged"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), bad);
        std::fs::write(&path, &good).unwrap();
        std::fs::remove_file(dir.path().join("vote")).unwrap();
        let e = LogStore::open(dir.path().to_owned()).unwrap_err();
        assert!(e.to_string().contains("the vote is missing"), "{e}");
        // Only an initial entry of term 0: no vote was due yet.
        let fresh = tempfile::tempdir().unwrap();
        let store = LogStore::open(fresh.path().to_owned()).unwrap();
        let e = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
            payload: EntryPayload::Blank,
        };
        let p = postcard::to_allocvec(&LogRecord::Entry(e.clone())).unwrap();
        store.inner.lock().append(&[(0, e, p)]).unwrap();
        drop(store);
        assert!(LogStore::open(fresh.path().to_owned()).is_ok());
    }

    /// The committed log id is kept across a reopen, and given back only
    /// while the log holds that entry (or purged past it).
    #[test]
    fn the_committed_log_id_outlives_a_restart_while_the_log_holds_it() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(dir.path(), 3);
        let mut s = store.clone();
        rt.block_on(s.save_committed(Some(entry(2).log_id)))
            .unwrap();
        drop((s, store));
        let mut store = LogStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(
            rt.block_on(store.read_committed()).unwrap(),
            Some(entry(2).log_id)
        );
        // Another term's entry 2: not the one committed.
        let other = LogId::new(CommittedLeaderId::new(2, 1), 2);
        rt.block_on(store.save_committed(Some(other))).unwrap();
        assert_eq!(rt.block_on(store.read_committed()).unwrap(), None);
        // Past the log's end (entries a crash took back): not given.
        rt.block_on(store.save_committed(Some(entry(9).log_id)))
            .unwrap();
        assert_eq!(rt.block_on(store.read_committed()).unwrap(), None);
        // Purged past it: given.
        rt.block_on(store.save_committed(Some(entry(2).log_id)))
            .unwrap();
        store.inner.lock().purge(entry(3).log_id).unwrap();
        assert_eq!(
            rt.block_on(store.read_committed()).unwrap(),
            Some(entry(2).log_id)
        );
        // A damaged file is no committed id, not an error.
        drop(store);
        std::fs::write(dir.path().join(COMMITTED_FILE), b"SLCMTD\0\x01junk").unwrap();
        let mut store = LogStore::open(dir.path().to_owned()).unwrap();
        assert_eq!(rt.block_on(store.read_committed()).unwrap(), None);
    }
}
