//! The Raft index of a partition: a dense, durable map from Raft log index
//! to (term, kind, Kafka offset range), kept in `raft/<first>.ridx` files of
//! fixed-size records, plus the small CRC-framed side files (`membership`,
//! `meta`, `snapshot`). The data bytes themselves live only in the segment
//! files. All I/O goes through the log's [`FileSystem`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{BasicNode, LogId, Membership, Vote};
use serde::{Deserialize, Serialize};

use super::format::{
    IndexRecord, RECORD_LEN, decode_frames, encode_frame, index_file_name, parse_index_file_name,
};
use crate::log::io::{read_file, read_full_at, write_all_at, write_file_atomically};
use crate::log::{FileSystem, LogFile, OpenMode};

/// Records per index file before a new one starts (so a purge can delete
/// whole files).
pub(crate) const RECORDS_PER_FILE: u64 = 1 << 16;

const MEMBERSHIP_FILE: &str = "membership";
const META_FILE: &str = "meta";
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";

/// What the `meta` side file keeps (JSON in one frame).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The last vote saved.
    pub(crate) vote: Option<Vote<u64>>,
    /// The last log id purged (entries up to it are gone).
    pub(crate) purged: Option<LogId<u64>>,
    /// The Kafka log end after the last purged entry.
    pub(crate) purged_kafka_end: u64,
    /// Whether the index held the entry `purged` names (same index, term
    /// and leader) when it was purged. openraft runs the purge of a
    /// snapshot install without waiting for the state machine's
    /// `install_snapshot`, which then finds the entry gone: this says
    /// whether it was there. Absent (false) in older `meta` files.
    #[serde(default)]
    pub(crate) purged_held: bool,
}

/// The Raft index in memory and its files.
#[derive(Debug)]
pub(crate) struct RaftIndex {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// Raft index of `records[0]`.
    first: u64,
    records: Vec<IndexRecord>,
    /// Index files, by first Raft index, oldest first.
    files: Vec<(u64, Arc<dyn LogFile>)>,
    memberships: BTreeMap<u64, Membership<u64, BasicNode>>,
    /// Saved vote, committed and purge point.
    pub meta: Meta,
}

fn frame_json<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(v).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(json.len() + 8);
    encode_frame(&json, &mut out);
    Ok(out)
}

/// Reads the one-frame JSON side file `name`, `None` if missing or damaged.
pub(crate) fn read_json<T: for<'a> Deserialize<'a>>(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
) -> io::Result<Option<T>> {
    let Some(buf) = read_file(fs, &dir.join(name))? else {
        return Ok(None);
    };
    let (frames, _) = decode_frames(&buf);
    Ok(frames.first().and_then(|f| serde_json::from_slice(f).ok()))
}

/// Replaces the one-frame JSON side file `name` durably and atomically.
pub(crate) fn write_json<T: Serialize>(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    v: &T,
) -> io::Result<()> {
    write_file_atomically(fs, dir, name, &frame_json(v)?)
}

impl RaftIndex {
    /// Opens (creating if missing) the Raft index in `dir`, keeping the
    /// longest valid dense prefix of records: a torn or corrupt record and
    /// everything after it is cut off the files. `log_end` is the Kafka
    /// log end when no record or purge point says otherwise.
    #[cfg(test)]
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        log_end: u64,
    ) -> io::Result<RaftIndex> {
        Self::open_keeping(fs, dir, log_end, 0)
    }

    /// [`RaftIndex::open`], refusing (with `InvalidData`, nothing changed)
    /// to cut at a bad record that valid records follow when the records
    /// before it end below `flushed` (the log's checkpointed recovery
    /// point): that is damage to records synced long ago — a flipped bit —
    /// not the torn tail of a crash, and cutting there would cut the log's
    /// flushed records with it. A bad record with only bad or partial
    /// records after it, or past `flushed`, is a torn tail and is cut.
    pub(crate) fn open_keeping(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        log_end: u64,
        flushed: u64,
    ) -> io::Result<RaftIndex> {
        fs.create_dir_all(&dir)?;
        let fresh = !fs.exists(&dir.join(META_FILE));
        let mut meta: Meta = read_json(&*fs, &dir, META_FILE)?.unwrap_or_default();
        if fresh {
            meta.purged_kafka_end = log_end;
        }
        let mut names: Vec<(u64, String)> = fs
            .list_dir(&dir)?
            .into_iter()
            .filter_map(|n| parse_index_file_name(&n).map(|f| (f, n)))
            .collect();
        names.sort_unstable();
        let start = meta.purged.map_or(0, |p| p.index + 1);
        let mut index = RaftIndex {
            fs: Arc::clone(&fs),
            dir: dir.clone(),
            first: start,
            records: Vec::new(),
            files: Vec::new(),
            memberships: BTreeMap::new(),
            meta,
        };
        let mut broken = false;
        let last_file = names.last().map(|(f, _)| *f);
        for (file_first, name) in names {
            let path = dir.join(&name);
            let next_expected = index.first + index.records.len() as u64;
            let usable =
                !broken && file_first <= next_expected && file_first + RECORDS_PER_FILE > start;
            if !usable {
                // Wholly purged, or after a gap or a cut: not part of the log.
                fs.remove_file(&path)?;
                continue;
            }
            let file = fs.open(&path, OpenMode::Existing)?;
            let len = file.len()?;
            let mut buf = vec![0u8; len as usize];
            let n = read_full_at(&*file, &mut buf, 0)?;
            buf.truncate(n);
            let mut valid = 0u64;
            for (i, chunk) in buf.chunks(RECORD_LEN).enumerate() {
                let Some(rec) = IndexRecord::decode(chunk) else {
                    let valid_after = Some(file_first) != last_file
                        || buf
                            .chunks_exact(RECORD_LEN)
                            .skip(i + 1)
                            .any(|c| IndexRecord::decode(c).is_some());
                    let kept_end = index
                        .records
                        .last()
                        .map_or(index.meta.purged_kafka_end, |r| r.next);
                    if valid_after && kept_end < flushed {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{}: Raft index record {} is damaged and valid records follow it, below the \
                                 log's checkpointed recovery point {flushed}: not a torn tail; the files \
                                 are left as they are",
                                path.display(),
                                file_first + i as u64
                            ),
                        ));
                    }
                    broken = true;
                    break;
                };
                let idx = file_first + i as u64;
                valid += RECORD_LEN as u64;
                if idx < start {
                    continue;
                }
                if idx != index.first + index.records.len() as u64 {
                    broken = true;
                    break;
                }
                index.records.push(rec);
            }
            if valid != len {
                file.set_len(valid)?;
                file.sync_data()?;
            }
            index.files.push((file_first, file));
        }
        index.load_memberships()?;
        Ok(index)
    }

    fn load_memberships(&mut self) -> io::Result<()> {
        let Some(buf) = read_file(&*self.fs, &self.dir.join(MEMBERSHIP_FILE))? else {
            return Ok(());
        };
        let (frames, _) = decode_frames(&buf);
        for f in frames {
            let Some((idx, json)) = f.split_first_chunk::<8>() else {
                continue;
            };
            if let Ok(m) = serde_json::from_slice(json) {
                self.memberships.insert(u64::from_be_bytes(*idx), m);
            }
        }
        let end = self.end();
        self.memberships.retain(|&i, _| i < end);
        Ok(())
    }

    /// Raft index just after the last record.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// The first Raft index still held.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The record at Raft index `idx`.
    pub(crate) fn get(&self, idx: u64) -> Option<IndexRecord> {
        let at = usize::try_from(idx.checked_sub(self.first)?).ok()?;
        self.records.get(at).copied()
    }

    /// The last record and its Raft index.
    pub(crate) fn last(&self) -> Option<(u64, IndexRecord)> {
        self.records.last().map(|r| (self.end() - 1, *r))
    }

    /// The last entry held whose Kafka range ends at or before `kafka`
    /// (every offset it holds is below `kafka`), with its Raft index.
    pub(crate) fn last_below(&self, kafka: u64) -> Option<(u64, IndexRecord)> {
        let n = self.records.partition_point(|r| r.next <= kafka);
        let at = n.checked_sub(1)?;
        self.records.get(at).map(|r| (self.first + at as u64, *r))
    }

    /// The Kafka log end the index describes: the `next` of the last
    /// record, or the purge point's.
    pub(crate) fn kafka_end(&self) -> u64 {
        self.records
            .last()
            .map_or(self.meta.purged_kafka_end, |r| r.next)
    }

    /// The membership stored for the entry at `idx`.
    pub(crate) fn membership(&self, idx: u64) -> Option<&Membership<u64, BasicNode>> {
        self.memberships.get(&idx)
    }

    /// Writes records for Raft indexes `end()..` (not yet durable: see
    /// [`RaftIndex::sync_handles`]), membership payloads first.
    pub(crate) fn append(
        &mut self,
        records: &[IndexRecord],
        memberships: Vec<(u64, Membership<u64, BasicNode>)>,
    ) -> io::Result<()> {
        if !memberships.is_empty() {
            let mut buf = Vec::new();
            for (idx, m) in &memberships {
                let mut payload = idx.to_be_bytes().to_vec();
                payload.extend(serde_json::to_vec(m).map_err(io::Error::other)?);
                encode_frame(&payload, &mut buf);
            }
            let path = self.dir.join(MEMBERSHIP_FILE);
            let created = !self.fs.exists(&path);
            let file = self.fs.open(&path, OpenMode::Create)?;
            let at = file.len()?;
            write_all_at(&*file, &buf, at)?;
            file.sync_data()?;
            if created {
                self.fs.sync_dir(&self.dir)?;
            }
            self.memberships.extend(memberships);
        }
        for rec in records {
            let idx = self.end();
            let file = self.file_for(idx)?;
            let (file_first, file) = file;
            write_all_at(
                &*file,
                &rec.encode(),
                (idx - file_first) * RECORD_LEN as u64,
            )?;
            self.records.push(*rec);
        }
        Ok(())
    }

    /// The file that holds Raft index `idx` (the last one), starting a new
    /// one (created, directory synced) on a file boundary.
    fn file_for(&mut self, idx: u64) -> io::Result<(u64, Arc<dyn LogFile>)> {
        if let Some((first, f)) = self.files.last() {
            if idx < first + RECORDS_PER_FILE {
                return Ok((*first, Arc::clone(f)));
            }
        }
        let path = self.dir.join(index_file_name(idx));
        let file = self.fs.open(&path, OpenMode::Create)?;
        file.set_len(0)?;
        self.fs.sync_dir(&self.dir)?;
        self.files.push((idx, Arc::clone(&file)));
        Ok((idx, file))
    }

    /// The handles to `fdatasync` to make every appended record durable
    /// (taken under the caller's lock, synced without it).
    pub(crate) fn sync_handles(&self) -> Vec<Arc<dyn LogFile>> {
        self.files
            .iter()
            .rev()
            .take(2)
            .map(|(_, f)| Arc::clone(f))
            .collect()
    }

    /// Removes every record at Raft index `from` and after, durably.
    pub(crate) fn truncate_from(&mut self, from: u64) -> io::Result<()> {
        if from >= self.end() {
            return Ok(());
        }
        let keep = from.saturating_sub(self.first) as usize;
        self.records.truncate(keep);
        while let Some((first, _)) = self.files.last() {
            if *first >= from && *first > self.first {
                let first = *first;
                self.files.pop();
                self.fs
                    .remove_file(&self.dir.join(index_file_name(first)))?;
            } else {
                break;
            }
        }
        if let Some((first, f)) = self.files.last() {
            f.set_len(from.saturating_sub(*first) * RECORD_LEN as u64)?;
            f.sync_data()?;
        }
        self.fs.sync_dir(&self.dir)?;
        if self.memberships.range(from..).next().is_some() {
            self.memberships.retain(|&i, _| i < from);
            self.rewrite_memberships()?;
        }
        Ok(())
    }

    fn rewrite_memberships(&self) -> io::Result<()> {
        let mut buf = Vec::new();
        for (idx, m) in &self.memberships {
            let mut payload = idx.to_be_bytes().to_vec();
            payload.extend(serde_json::to_vec(m).map_err(io::Error::other)?);
            encode_frame(&payload, &mut buf);
        }
        write_file_atomically(&*self.fs, &self.dir, MEMBERSHIP_FILE, &buf)
    }

    /// Forgets every record up to and including `log_id` (saving the purge
    /// point first) and deletes index files wholly below it.
    /// Whether this index holds entry `log_id` (its index with the same
    /// term and leader), or held it when a purge up to it removed it.
    /// openraft purges the log up to an installed snapshot's last entry
    /// without waiting for the state machine's install, which may then find
    /// the entry gone: the purge noted whether it was there.
    pub(crate) fn holds(&self, log_id: LogId<u64>) -> bool {
        self.get(log_id.index).is_some_and(|r| {
            r.term == log_id.leader_id.term && r.leader == log_id.leader_id.node_id
        }) || (self.meta.purged == Some(log_id) && self.meta.purged_held)
    }

    pub(crate) fn purge(&mut self, log_id: LogId<u64>) -> io::Result<()> {
        let kafka_end = self
            .get(log_id.index)
            .map_or(self.meta.purged_kafka_end, |r| r.next);
        let held = self.holds(log_id);
        let mut meta = self.meta.clone();
        meta.purged = Some(log_id);
        meta.purged_kafka_end = kafka_end;
        meta.purged_held = held;
        self.save_meta(meta)?;
        let drop = (log_id.index + 1).saturating_sub(self.first) as usize;
        self.records.drain(..drop.min(self.records.len()));
        self.first = self.first.max(log_id.index + 1);
        while self.files.len() > 1 {
            let Some((first, _)) = self.files.get(1) else {
                break;
            };
            if *first > self.first {
                break;
            }
            let (old, _) = self.files.remove(0);
            self.fs.remove_file(&self.dir.join(index_file_name(old)))?;
        }
        Ok(())
    }

    /// Drops every record and restarts the index after `last` (an installed
    /// snapshot), whose Kafka log end is `kafka_end`.
    pub(crate) fn reset(&mut self, last: LogId<u64>, kafka_end: u64) -> io::Result<()> {
        let mut meta = self.meta.clone();
        meta.purged = Some(last);
        meta.purged_kafka_end = kafka_end;
        meta.purged_held = false;
        self.save_meta(meta)?;
        for (first, _) in self.files.drain(..) {
            self.fs
                .remove_file(&self.dir.join(index_file_name(first)))?;
        }
        self.records.clear();
        self.first = last.index + 1;
        self.memberships.clear();
        self.rewrite_memberships()?;
        self.fs.sync_dir(&self.dir)
    }

    /// Replaces the `meta` side file durably, then the copy in memory.
    pub(crate) fn save_meta(&mut self, meta: Meta) -> io::Result<()> {
        write_json(&*self.fs, &self.dir, META_FILE, &meta)?;
        self.meta = meta;
        Ok(())
    }

    /// Drops records at the tail whose Kafka range passes `log_end` (the
    /// segment files lost them in a crash), durably. Returns how many.
    pub(crate) fn cut_to_log_end(&mut self, log_end: u64) -> io::Result<usize> {
        let keep = self
            .records
            .iter()
            .take_while(|r| r.next <= log_end)
            .count();
        let dropped = self.records.len() - keep;
        if dropped > 0 {
            self.truncate_from(self.first + keep as u64)?;
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::StdFs;
    use crate::replication::partition::format::EntryKind;
    use openraft::CommittedLeaderId;

    fn id(term: u64, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// An index of entries 1..=n of term 3, led by node 1, one offset each.
    fn index_of(dir: &Path, n: u64) -> RaftIndex {
        let mut index = RaftIndex::open(Arc::new(StdFs), dir.to_path_buf(), 0).unwrap();
        index.purge(id(0, 0)).unwrap();
        let records: Vec<IndexRecord> = (1..=n)
            .map(|i| IndexRecord {
                term: 3,
                leader: 1,
                kind: EntryKind::Data,
                base: i - 1,
                next: i,
            })
            .collect();
        index.append(&records, Vec::new()).unwrap();
        index
    }

    /// A purge up to an entry the index held keeps saying it held it (the
    /// snapshot install that openraft runs alongside the purge decides by
    /// it), also after a reopen; a purge past what it held, or of an entry
    /// of another term, does not.
    #[test]
    fn a_purged_entry_is_still_known_as_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_of(dir.path(), 8);
        assert!(index.holds(id(3, 5)));
        index.purge(id(3, 5)).unwrap();
        assert!(index.get(5).is_none());
        assert!(index.holds(id(3, 5)), "the purge forgot it held entry 5");
        assert!(!index.holds(id(2, 5)));
        assert_eq!(index.get(6).map(|r| r.next), Some(6));
        drop(index);
        let index = RaftIndex::open(Arc::new(StdFs), dir.path().to_path_buf(), 0).unwrap();
        assert!(index.holds(id(3, 5)));

        let other = tempfile::tempdir().unwrap();
        let mut index = index_of(other.path(), 3);
        index.purge(id(3, 5)).unwrap();
        assert!(!index.holds(id(3, 5)), "entry 5 was never held");
        let third = tempfile::tempdir().unwrap();
        let mut index = index_of(third.path(), 8);
        index.purge(id(4, 5)).unwrap();
        assert!(!index.holds(id(4, 5)), "entry 5 was of term 3");
    }

    /// A bad record with valid ones after it, below the log's flushed
    /// point, is damage: the open refuses and leaves the file as it was. A
    /// bad last record (a torn tail), or damage past the flushed point, is
    /// cut as before.
    #[test]
    fn damage_below_the_flushed_point_is_refused_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        drop(index_of(dir.path(), 8));
        let file = std::fs::read_dir(dir.path().join(""))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "ridx"))
            .expect("an index file");
        let good = std::fs::read(&file).unwrap();
        let open = |flushed: u64| {
            RaftIndex::open_keeping(Arc::new(StdFs), dir.path().to_path_buf(), 0, flushed)
        };
        // Entry 1 (the first record) flipped: records 2..=8 follow it.
        let mut bad = good.clone();
        bad[5] ^= 1;
        std::fs::write(&file, &bad).unwrap();
        let e = open(8).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("not a torn tail"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), bad, "nothing changed");
        // Past the flushed point (nothing was flushed): cut there.
        let index = open(0).unwrap();
        assert_eq!(index.kafka_end(), 0);
        drop(index);
        // The last record torn: cut, however far the flushed point is.
        let mut torn = good.clone();
        let at = torn.len() - 3;
        torn[at] ^= 1;
        std::fs::write(&file, &torn).unwrap();
        let index = open(8).unwrap();
        assert_eq!(index.kafka_end(), 7);
    }
}
