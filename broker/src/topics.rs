//! The topics of a broker: their partitions' logs, and the metadata file
//! that lists them.
//!
//! `topics.meta` (layout in `docs/storage-format.md`) is the commit point:
//! creating a topic opens its partition directories first and then rewrites
//! the file; deleting renames the partition directories to pending-delete
//! names first, then rewrites the file, then removes the marked directories.
//! The broker never removes a directory that does not carry the delete
//! marker; see [`TopicStore::open`] for what startup does with leftovers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::{TopicConfig, TopicConfigV0};

use crate::config::TopicDefaults;
use crate::error::BrokerError;
use crate::log::io::{FileSystem, StdFs, read_file, write_file_atomically};
use crate::log::names::{
    DELETE_SUFFIX, STRAY_SUFFIX, parse_set_aside_dir_name, parse_whole_set_aside_dir_name,
    set_aside_dir_name,
};
use crate::log::{LogError, PartitionLog, TopicPartition, validate_topic_name};

/// Name of the topic metadata file in the data directory.
pub const TOPICS_FILE: &str = "topics.meta";
const MAGIC: [u8; 4] = *b"SLTM";
/// Version 3 adds each topic's hosted partitions; version 2 added its
/// `compression`. Versions 1 and 2 are still read (and rewritten as version
/// 3 by the next create or delete).
const VERSION: u16 = 3;
/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;
/// Default of the broker-wide limit on partitions over all topics
/// (`max_partitions`).
pub const DEFAULT_MAX_PARTITIONS: u32 = 10_000;
/// Topic names starting with this are reserved for the broker's own use.
pub const INTERNAL_PREFIX: &str = "__";

pub use crate::partition::Partition;

pub mod space_reserve;
use space_reserve::SpaceReserve;

/// A topic: settings as requested and the partitions this broker hosts.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Settings as given at creation (unset fields follow the defaults).
    pub config: TopicConfig,
    /// Every partition of the topic in number order: `Some` for one this
    /// broker hosts (has a log of), `None` for one it does not (in cluster
    /// mode, a partition with no replica on this node). A broker without
    /// `--cluster` hosts every partition.
    pub partitions: Vec<Option<Arc<Partition>>>,
}

impl Topic {
    /// How many partitions the topic has, hosted here or not.
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The hosted partitions with their numbers, in number order.
    pub fn hosted(&self) -> impl Iterator<Item = (u32, &Arc<Partition>)> + Clone {
        self.partitions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i as u32, p)))
    }

    /// The hosted partition `partition`, if any.
    pub fn hosted_partition(&self, partition: u32) -> Option<&Arc<Partition>> {
        self.partitions.get(partition as usize)?.as_ref()
    }

    /// The hosted partition numbers as `topics.meta` records them: `None`
    /// when every partition is hosted.
    fn hosted_set(&self) -> Option<Vec<u32>> {
        if self.partitions.iter().all(Option::is_some) {
            return None;
        }
        Some(self.hosted().map(|(i, _)| i).collect())
    }
}

/// Which partitions of a topic a broker hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting<'a> {
    /// Every partition (a broker without `--cluster`).
    All,
    /// Only these partition numbers (a cluster node: those it holds a
    /// replica of). Numbers at or past the partition count are ignored.
    Only(&'a [u32]),
}

impl Hosting<'_> {
    fn hosts(&self, partition: u32) -> bool {
        match self {
            Hosting::All => true,
            Hosting::Only(set) => set.contains(&partition),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    partitions: u32,
    config: TopicConfig,
    /// The hosted partitions, ascending; `None` for all of them.
    hosted: Option<Vec<u32>>,
}

impl TopicRecord {
    fn hosting(&self) -> Hosting<'_> {
        match &self.hosted {
            None => Hosting::All,
            Some(set) => Hosting::Only(set),
        }
    }
}

/// A topic as version 2 of `topics.meta` records it (every partition
/// hosted).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicRecordV2 {
    name: String,
    partitions: u32,
    config: TopicConfig,
}

/// A topic as version 1 of `topics.meta` records it (no `compression`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicRecordV1 {
    name: String,
    partitions: u32,
    config: TopicConfigV0,
}

/// All topics of the broker. Thread-safe.
#[derive(Debug)]
pub struct TopicStore {
    data_dir: PathBuf,
    defaults: TopicDefaults,
    fs: Arc<dyn FileSystem>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises creates and deletes (and their metadata file writes).
    admin: Mutex<()>,
    /// Most partitions over all topics; creates beyond it are refused.
    max_partitions: u32,
    /// Partitions that recovery opened offline (damaged flushed data).
    offline_at_open: u64,
    /// Disk space kept back for metadata writes on a full disk.
    reserve: SpaceReserve,
}

/// Writes `topics.meta` atomically; on a full disk releases the space
/// reserve (if held) and tries once more.
fn write_meta_file(
    fs: &dyn FileSystem,
    data_dir: &Path,
    reserve: &SpaceReserve,
    records: &[TopicRecord],
) -> Result<(), BrokerError> {
    let bytes = encode_meta(records);
    let write = || write_file_atomically(fs, data_dir, TOPICS_FILE, &bytes);
    let written = match write() {
        Err(e) if crate::log::io::is_disk_full(&e) && reserve.release(fs) => write(),
        r => r,
    };
    written.map_err(|e| LogError::io("write", data_dir.join(TOPICS_FILE), e).into())
}

fn admin_err(code: ErrorCode, message: impl Into<String>) -> BrokerError {
    BrokerError::Request {
        code,
        message: message.into(),
    }
}

impl TopicStore {
    /// Opens every topic listed in the data directory's metadata file,
    /// recovering their partitions. Blocking.
    ///
    /// Startup never deletes data on ambiguity:
    /// - a missing or unreadable `topics.meta` while partition directories
    ///   exist is an error (the message says how to recover); nothing is
    ///   touched. A data directory without partition directories (a first
    ///   start) gets an empty `topics.meta`.
    /// - Only directories carrying the delete marker
    ///   (`<topic>-<partition>.<id>-delete`, see [`crate::log::names`]) are
    ///   removed: they are deletions that were interrupted. If the topic of
    ///   such a directory is still listed, its deletion had not reached the
    ///   metadata file; it is finished (its other partition directories are
    ///   marked, the topic is unlisted).
    /// - A partition directory that no topic lists (an interrupted create)
    ///   is renamed to `<topic>-<partition>.<id>-stray` and kept.
    pub fn open(data_dir: &Path, defaults: TopicDefaults) -> Result<Self, BrokerError> {
        Self::open_with(Arc::new(StdFs), data_dir, defaults)
    }

    /// [`TopicStore::open`] with all file I/O (partition logs, metadata file,
    /// directory renames and removals) going through `fs` (tests inject
    /// faults this way).
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        defaults: TopicDefaults,
    ) -> Result<Self, BrokerError> {
        fs.create_dir_all(data_dir)
            .map_err(|e| LogError::io("create directory", data_dir, e))?;
        let reserve = SpaceReserve::new(data_dir);
        let meta_path = data_dir.join(TOPICS_FILE);
        let names = fs
            .list_dir(data_dir)
            .map_err(|e| LogError::io("list", data_dir, e))?;
        let partition_dirs: Vec<&String> = names
            .iter()
            .filter(|n| {
                TopicPartition::from_dir_name(n)
                    .is_ok_and(|tp| !tp.topic().starts_with(INTERNAL_PREFIX))
            })
            .collect();
        let refuse = |what: String| -> BrokerError {
            let example = partition_dirs.first().map_or("", |n| n.as_str());
            LogError::Corrupt {
                path: meta_path.clone(),
                reason: format!(
                    "{what}, but the data directory holds {} partition director{} (e.g. {example:?}); \
                     refusing to start so that nothing is deleted. To recover, restore {TOPICS_FILE} \
                     from a backup, or move the partition directories out of {} if their data is \
                     to be discarded, then start again",
                    partition_dirs.len(),
                    if partition_dirs.len() == 1 { "y" } else { "ies" },
                    data_dir.display(),
                ),
            }
            .into()
        };
        let read = read_file(&*fs, &meta_path);
        let mut records = match read {
            Ok(Some(bytes)) => match decode_meta(&bytes) {
                Ok(records) => records,
                Err(reason) if partition_dirs.is_empty() => {
                    return Err(LogError::Corrupt {
                        path: meta_path,
                        reason: format!(
                            "{reason}; restore it from a backup, or remove it if the broker \
                             is to start with no topics"
                        ),
                    }
                    .into());
                }
                Err(reason) => return Err(refuse(format!("{TOPICS_FILE} is damaged ({reason})"))),
            },
            Ok(None) if partition_dirs.is_empty() => {
                // A first start: record that there are no topics, so a later
                // missing file is known to be a loss.
                write_meta_file(&*fs, data_dir, &reserve, &[])?;
                Vec::new()
            }
            Ok(None) => return Err(refuse(format!("{TOPICS_FILE} is missing"))),
            Err(e) if partition_dirs.is_empty() => {
                return Err(LogError::io("read", &meta_path, e).into());
            }
            Err(e) => return Err(refuse(format!("{TOPICS_FILE} cannot be read ({e})"))),
        };

        // Interrupted deletions: finish those whose topic is still listed.
        let marked: Vec<&String> = names
            .iter()
            .filter(|n| parse_set_aside_dir_name(n, DELETE_SUFFIX).is_some())
            .collect();
        let unfinished: Vec<String> = records
            .iter()
            .filter(|r| {
                // A marker whose name was cut short cannot say which topic it
                // came from (it could read as another topic's partition):
                // it is removed below, but it finishes no deletion.
                marked.iter().any(|m| {
                    parse_whole_set_aside_dir_name(m, DELETE_SUFFIX)
                        .and_then(|d| TopicPartition::from_dir_name(d).ok())
                        .is_some_and(|tp| tp.topic() == r.name && tp.partition() < r.partitions)
                })
            })
            .map(|r| r.name.clone())
            .collect();
        if !unfinished.is_empty() {
            for r in records.iter().filter(|r| unfinished.contains(&r.name)) {
                tracing::warn!(topic = %r.name, "finishing an interrupted topic deletion");
                for p in 0..r.partitions {
                    let Ok(tp) = TopicPartition::new(&r.name, p) else {
                        continue;
                    };
                    let dir = data_dir.join(tp.dir_name());
                    if fs.exists(&dir) {
                        mark_for_deletion(&*fs, data_dir, &tp)?;
                    }
                }
            }
            fs.sync_dir(data_dir)
                .map_err(|e| LogError::io("fsync", data_dir, e))?;
            records.retain(|r| !unfinished.contains(&r.name));
            write_meta_file(&*fs, data_dir, &reserve, &records)?;
        }
        if let Err(e) = remove_marked_dirs(&*fs, data_dir) {
            // They are unlisted and renamed; removing them can wait for the
            // next start (or the next topic creation, which requires it).
            tracing::warn!(error = %e, "cannot remove directories marked for deletion");
        }

        let mut topics = BTreeMap::new();
        let mut offline_at_open = 0;
        for r in records {
            let topic = open_topic(
                &fs,
                data_dir,
                &defaults,
                &r.name,
                r.partitions,
                r.hosting(),
                &r.config,
            )?;
            offline_at_open += topic.hosted().filter(|(_, p)| p.log.is_offline()).count() as u64;
            topics.insert(r.name.clone(), Arc::new(topic));
        }
        let mut strays = 0;
        let names = fs
            .list_dir(data_dir)
            .map_err(|e| LogError::io("list", data_dir, e))?;
        for name in &names {
            let Ok(tp) = TopicPartition::from_dir_name(name) else {
                continue;
            };
            if tp.topic().starts_with(INTERNAL_PREFIX) {
                continue;
            }
            let hosted = topics
                .get(tp.topic())
                .is_some_and(|t| t.hosted_partition(tp.partition()).is_some());
            if !hosted {
                let to = set_aside(&*fs, data_dir, &tp, STRAY_SUFFIX)?;
                tracing::warn!(dir = %name, kept_as = %to.display(),
                    "partition directory of no listed topic or of a partition not hosted here (an interrupted create?) set aside; remove it by hand if it is not needed");
                strays += 1;
            }
        }
        if strays > 0 {
            fs.sync_dir(data_dir)
                .map_err(|e| LogError::io("fsync", data_dir, e))?;
        }
        reserve.take(&*fs);
        Ok(TopicStore {
            data_dir: data_dir.to_owned(),
            defaults,
            fs,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            max_partitions: DEFAULT_MAX_PARTITIONS,
            reserve,
            offline_at_open,
        })
    }

    /// Sets the most partitions, over all topics, that the broker serves;
    /// creates beyond it are refused. Existing topics are kept either way.
    pub fn with_max_partitions(mut self, max_partitions: u32) -> Self {
        self.max_partitions = max_partitions;
        self
    }

    /// How many partitions recovery opened offline at startup, because data
    /// that was flushed is damaged (see [`crate::log::RecoveryReport`]).
    pub fn partitions_offline_at_open(&self) -> u64 {
        self.offline_at_open
    }

    /// The topic defaults.
    pub fn defaults(&self) -> &TopicDefaults {
        &self.defaults
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// A hosted partition; [`ErrorCode::NotLeaderForPartition`] for a
    /// partition of a listed topic that this broker does not host (cluster
    /// mode), [`ErrorCode::UnknownTopicOrPartition`] for one that does not
    /// exist.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, ErrorCode> {
        let topics = self.topics.read();
        match topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
        {
            Some(Some(p)) => Ok(Arc::clone(p)),
            Some(None) => Err(ErrorCode::NotLeaderForPartition),
            None => Err(ErrorCode::UnknownTopicOrPartition),
        }
    }

    /// Whether `topic` is listed here with a partition `partition`,
    /// hosted here or not.
    pub fn has_partition(&self, topic: &str, partition: u32) -> bool {
        self.topics
            .read()
            .get(topic)
            .is_some_and(|t| partition < t.partition_count())
    }

    /// Every topic, in name order.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Every hosted partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.hosted().map(|(_, p)| Arc::clone(p)))
            .collect()
    }

    /// Checks a topic to create: its name, partition count and settings
    /// (not whether it exists). Creating it may still fail for that, or
    /// for the partition limit.
    pub fn check_new(
        &self,
        name: &str,
        partitions: u32,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        if name.starts_with(INTERNAL_PREFIX) {
            return Err(admin_err(
                ErrorCode::InvalidTopicName,
                format!("topic names starting with {INTERNAL_PREFIX:?} are reserved"),
            ));
        }
        self.check_shape(name, partitions, config)
    }

    /// [`TopicStore::check_new`] without refusing internal names.
    fn check_shape(
        &self,
        name: &str,
        partitions: u32,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        validate_topic_name(name)
            .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(admin_err(
                ErrorCode::InvalidPartitions,
                format!("partitions must be in 1..={MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        self.defaults
            .log_config(config)
            .validate()
            .and_then(|()| check_topic_limits(&self.defaults.resolve(config)))
            .map_err(|e| admin_err(ErrorCode::InvalidConfig, e))?;
        Ok(())
    }

    /// Creates a topic hosting every partition. Blocking (creates files
    /// and syncs them).
    pub fn create(
        &self,
        name: &str,
        partitions: u32,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        self.check_new(name, partitions, config)?;
        self.create_hosting(name, partitions, Hosting::All, config)
    }

    /// Creates a topic whose `hosting` partitions get a directory and a
    /// log here; the others are listed (they count in
    /// [`Topic::partition_count`]) but have no files. Blocking. Unlike
    /// [`TopicStore::create`], names starting with `__` are accepted: this
    /// is how the controller's topics, among them the cluster's internal
    /// group-state topic, are created.
    pub fn create_hosting(
        &self,
        name: &str,
        partitions: u32,
        hosting: Hosting<'_>,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        // Internal names (`__…`) are accepted here, where the controller's
        // topics are created (the cluster's group-state topic); clients'
        // creations are checked with `check_new` first.
        self.check_shape(name, partitions, config)?;
        let _admin = self.admin.lock();
        if self.topics.read().contains_key(name) {
            return Err(admin_err(
                ErrorCode::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        let existing: u64 = self
            .topics
            .read()
            .values()
            .map(|t| t.hosted().count() as u64)
            .sum();
        let new = (0..partitions).filter(|&p| hosting.hosts(p)).count() as u64;
        if existing + new > u64::from(self.max_partitions) {
            return Err(admin_err(
                ErrorCode::InvalidPartitions,
                format!(
                    "the broker serves {existing} partitions and its limit is {} \
                     (max_partitions); {new} more do not fit",
                    self.max_partitions
                ),
            ));
        }
        // Marked directories left by a deletion whose removal step failed go
        // now: at the next start a marker of a listed topic would otherwise
        // read as an interrupted deletion of this new topic.
        remove_marked_dirs(&*self.fs, &self.data_dir)?;
        // A directory left by an earlier failed create is set aside, not
        // reused: a new topic starts empty.
        let mut set_aside_any = false;
        for p in 0..partitions {
            if let Ok(tp) = TopicPartition::new(name, p) {
                if self.fs.exists(&self.data_dir.join(tp.dir_name())) {
                    set_aside(&*self.fs, &self.data_dir, &tp, STRAY_SUFFIX)?;
                    set_aside_any = true;
                }
            }
        }
        if set_aside_any {
            self.fs
                .sync_dir(&self.data_dir)
                .map_err(|e| LogError::io("fsync", &self.data_dir, e))?;
        }
        let created = open_topic(
            &self.fs,
            &self.data_dir,
            &self.defaults,
            name,
            partitions,
            hosting,
            config,
        )
        .and_then(|topic| {
            let mut records = self.records();
            records.push(TopicRecord {
                name: name.to_owned(),
                partitions,
                config: config.clone(),
                hosted: topic.hosted_set(),
            });
            self.write_meta(&records)?;
            Ok(topic)
        });
        let topic = match created {
            Ok(topic) => topic,
            Err(e) => {
                // Nothing was stored in the new partitions: remove them,
                // rather than leave directories for the next start to set
                // aside (a full disk is the usual cause).
                self.remove_new_partitions(name, partitions);
                return Err(e);
            }
        };
        self.topics.write().insert(name.to_owned(), Arc::new(topic));
        tracing::info!(topic = name, partitions, "created topic");
        Ok(())
    }

    /// Deletes a topic and its data. Blocking (call it off the reactor).
    ///
    /// Each partition log is shut down and its directory renamed to a
    /// pending-delete name (`<topic>-<partition>.<id>-delete`); the data
    /// directory is synced, the topic is removed from `topics.meta`, and
    /// only then are the marked directories removed. A crash at any point
    /// leaves either the topic listed and whole, or marked directories that
    /// the next start removes (finishing the deletion if the metadata file
    /// still lists the topic). Fetches in flight keep reading the files they
    /// hold.
    pub fn delete(&self, name: &str) -> Result<(), BrokerError> {
        let _admin = self.admin.lock();
        let Some(topic) = self.topics.write().remove(name) else {
            return Err(admin_err(
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            ));
        };
        for (i, p) in topic.hosted() {
            if let Err(e) = p.log.shutdown() {
                tracing::warn!(topic = name, partition = i, error = %e, "closing deleted partition");
            }
            // Long polls on it answer now, not at their deadline.
            p.retire();
        }
        for (p, _) in topic.hosted() {
            let tp = TopicPartition::new(name, p)
                .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
            if self.fs.exists(&self.data_dir.join(tp.dir_name())) {
                mark_for_deletion(&*self.fs, &self.data_dir, &tp)?;
            }
        }
        self.fs
            .sync_dir(&self.data_dir)
            .map_err(|e| LogError::io("fsync", &self.data_dir, e))?;
        let records: Vec<_> = self
            .records()
            .into_iter()
            .filter(|r| r.name != name)
            .collect();
        self.write_meta(&records)?;
        // The topic is deleted now; its marked directories are removed here,
        // or else at the next start or topic creation.
        if let Err(e) = remove_marked_dirs(&*self.fs, &self.data_dir) {
            tracing::warn!(topic = name, error = %e, "cannot remove directories marked for deletion");
        }
        // Space was freed: hold the reserve again if it was used.
        self.reserve.take(&*self.fs);
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Shuts every partition down cleanly (see [`PartitionLog::shutdown`]).
    pub fn shutdown(&self) {
        for p in self.all_partitions() {
            if let Err(e) = p.log.shutdown() {
                tracing::error!(dir = %p.log.dir().display(), error = %e, "unclean partition shutdown");
            }
        }
    }

    fn records(&self) -> Vec<TopicRecord> {
        self.topics
            .read()
            .values()
            .map(|t| TopicRecord {
                name: t.name.clone(),
                partitions: t.partition_count(),
                config: t.config.clone(),
                hosted: t.hosted_set(),
            })
            .collect()
    }

    /// Removes the directories a failed create made (directories that
    /// existed before it were set aside first, so every one is new).
    fn remove_new_partitions(&self, name: &str, partitions: u32) {
        for p in 0..partitions {
            let Ok(tp) = TopicPartition::new(name, p) else {
                continue;
            };
            let dir = self.data_dir.join(tp.dir_name());
            if self.fs.exists(&dir) {
                if let Err(e) = self.fs.remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a partition directory of a failed create");
                }
            }
        }
    }

    fn write_meta(&self, records: &[TopicRecord]) -> Result<(), BrokerError> {
        write_meta_file(&*self.fs, &self.data_dir, &self.reserve, records)
    }
}

/// Smallest `segment_bytes` a topic may have: smaller segments would cost
/// files, descriptors and index maps out of proportion to their data.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// Smallest `segment_ms` (other than 0, never) a topic may have.
pub const MIN_SEGMENT_MS: u64 = 1000;

/// Checks the resource floors of a topic's effective settings (see
/// [`MIN_SEGMENT_BYTES`], [`MIN_SEGMENT_MS`]); the error names the setting.
pub fn check_topic_limits(config: &TopicConfig) -> Result<(), String> {
    if let Some(bytes) = config.segment_bytes.filter(|&b| b < MIN_SEGMENT_BYTES) {
        return Err(format!(
            "segment_bytes must be at least {MIN_SEGMENT_BYTES}, got {bytes}"
        ));
    }
    if let Some(ms) = config.segment_ms.filter(|&m| m > 0 && m < MIN_SEGMENT_MS) {
        return Err(format!(
            "segment_ms must be 0 (never) or at least {MIN_SEGMENT_MS}, got {ms}"
        ));
    }
    Ok(())
}

/// Renames the directory of `tp` to a fresh set-aside name with `suffix`
/// and returns the new path. The caller syncs the data directory.
fn set_aside(
    fs: &dyn FileSystem,
    data_dir: &Path,
    tp: &TopicPartition,
    suffix: &str,
) -> Result<PathBuf, BrokerError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let from = data_dir.join(tp.dir_name());
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = nanos
            .rotate_left(17)
            .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
            ^ u64::from(std::process::id());
        let to = data_dir.join(set_aside_dir_name(&tp.dir_name(), id, suffix));
        if fs.exists(&to) {
            continue;
        }
        fs.rename(&from, &to)
            .map_err(|e| LogError::io("rename", &from, e))?;
        return Ok(to);
    }
}

fn mark_for_deletion(
    fs: &dyn FileSystem,
    data_dir: &Path,
    tp: &TopicPartition,
) -> Result<(), BrokerError> {
    set_aside(fs, data_dir, tp, DELETE_SUFFIX).map(|_| ())
}

/// Removes every directory of `data_dir` that carries the delete marker,
/// and nothing else.
fn remove_marked_dirs(fs: &dyn FileSystem, data_dir: &Path) -> Result<(), BrokerError> {
    let names = fs
        .list_dir(data_dir)
        .map_err(|e| LogError::io("list", data_dir, e))?;
    for name in names {
        if parse_set_aside_dir_name(&name, DELETE_SUFFIX).is_some() {
            let path = data_dir.join(&name);
            tracing::info!(dir = %path.display(), "removing directory marked for deletion");
            fs.remove_dir_all(&path)
                .map_err(|e| LogError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

fn open_topic(
    fs: &Arc<dyn FileSystem>,
    data_dir: &Path,
    defaults: &TopicDefaults,
    name: &str,
    partitions: u32,
    hosting: Hosting<'_>,
    config: &TopicConfig,
) -> Result<Topic, BrokerError> {
    let log_config = defaults.log_config(config);
    let mut parts = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        if !hosting.hosts(p) {
            parts.push(None);
            continue;
        }
        let tp = TopicPartition::new(name, p)
            .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
        let (log, _report) = PartitionLog::open_with(
            Arc::clone(fs),
            data_dir.join(tp.dir_name()),
            log_config.clone(),
        )?;
        parts.push(Some(Arc::new(Partition::new(log))));
    }
    Ok(Topic {
        name: name.to_owned(),
        config: config.clone(),
        partitions: parts,
    })
}

/// Decodes the bytes of a `topics.meta` file and returns how many topics it
/// lists, or why it is damaged. Never panics (fuzzed by `fuzz/`).
pub fn check_topics_file(bytes: &[u8]) -> Result<usize, String> {
    decode_meta(bytes).map(|topics| topics.len())
}

/// `SLTM | u16 version | u16 0 | u32 body_len | body (postcard) | u32 crc32`.
fn encode_meta(records: &[TopicRecord]) -> Vec<u8> {
    let body = postcard::to_stdvec(records).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn decode_meta(buf: &[u8]) -> Result<Vec<TopicRecord>, String> {
    let crc_at = buf
        .len()
        .checked_sub(4)
        .filter(|&n| n >= 12)
        .ok_or_else(|| format!("{} bytes is too short", buf.len()))?;
    let (content, crc) = buf.split_at(crc_at);
    let stored = u32::from_be_bytes(crc.try_into().map_err(|_| "bad crc field")?);
    let computed = crc32fast::hash(content);
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    if content.get(0..4) != Some(&MAGIC[..]) {
        return Err("bad magic".into());
    }
    let version = u16::from_be_bytes([content[4], content[5]]);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("unsupported version {version}"));
    }
    let len = u32::from_be_bytes([content[8], content[9], content[10], content[11]]) as usize;
    let body = content
        .get(12..)
        .filter(|b| b.len() == len)
        .ok_or("body length mismatch")?;
    if version == 1 {
        let old: Vec<TopicRecordV1> = decode_whole(body)?;
        return Ok(old
            .into_iter()
            .map(|r| TopicRecord {
                name: r.name,
                partitions: r.partitions,
                config: r.config.into(),
                hosted: None,
            })
            .collect());
    }
    if version == 2 {
        let old: Vec<TopicRecordV2> = decode_whole(body)?;
        return Ok(old
            .into_iter()
            .map(|r| TopicRecord {
                name: r.name,
                partitions: r.partitions,
                config: r.config,
                hosted: None,
            })
            .collect());
    }
    let records: Vec<TopicRecord> = decode_whole(body)?;
    for r in &records {
        if let Some(set) = &r.hosted {
            if set.windows(2).any(|w| w[0] >= w[1])
                || set.last().is_some_and(|&l| l >= r.partitions)
            {
                return Err(format!(
                    "topic {:?}: hosted partitions {set:?} are not ascending below {}",
                    r.name, r.partitions
                ));
            }
        }
    }
    Ok(records)
}

/// Decodes a postcard body that must span all of `body`.
fn decode_whole<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| format!("malformed body: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after the body", rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod hosting_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::wire::topic_config::TopicCompression;

    #[test]
    fn meta_round_trips_and_detects_damage() {
        let records = vec![
            TopicRecord {
                name: "a".into(),
                partitions: 3,
                config: TopicConfig::default(),
                hosted: Some(vec![0, 2]),
            },
            TopicRecord {
                name: "b.c".into(),
                partitions: 1,
                config: TopicConfig {
                    retention_ms: Some(5),
                    compression: Some(TopicCompression::Zstd),
                    ..TopicConfig::default()
                },
                hosted: None,
            },
        ];
        let bytes = encode_meta(&records);
        assert_eq!(&bytes[..4], b"SLTM");
        assert_eq!(&bytes[4..6], [0, 3], "version 3");
        let back = decode_meta(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].hosted, Some(vec![0, 2]));
        assert_eq!(back[1].hosted, None);
        assert_eq!(back[1].config.retention_ms, Some(5));
        assert_eq!(back[1].config.compression, Some(TopicCompression::Zstd));
        assert_eq!(back[0].config, TopicConfig::default());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode_meta(&bad).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(decode_meta(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn create_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        store.create("orders", 3, &TopicConfig::default()).unwrap();
        store.create("gone", 1, &TopicConfig::default()).unwrap();
        assert!(matches!(
            store.create("orders", 1, &TopicConfig::default()),
            Err(BrokerError::Request {
                code: ErrorCode::TopicAlreadyExists,
                ..
            })
        ));
        for (bad, code) in [
            ("../x", ErrorCode::InvalidTopicName),
            ("", ErrorCode::InvalidTopicName),
            ("__internal", ErrorCode::InvalidTopicName),
        ] {
            assert!(matches!(
                store.create(bad, 1, &TopicConfig::default()),
                Err(BrokerError::Request { code: c, .. }) if c == code
            ));
        }
        assert!(matches!(
            store.create("zero", 0, &TopicConfig::default()),
            Err(BrokerError::Request {
                code: ErrorCode::InvalidPartitions,
                ..
            })
        ));
        store.delete("gone").unwrap();
        assert!(!dir.path().join("gone-0").exists());
        store.shutdown();
        drop(store);
        // A leftover directory of an interrupted create is set aside, not
        // removed.
        std::fs::create_dir(dir.path().join("stray-0")).unwrap();
        std::fs::write(dir.path().join("stray-0/keep"), b"x").unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.topic("orders").unwrap().partitions.len(), 3);
        assert!(store.partition("orders", 3).is_err());
        assert!(!dir.path().join("stray-0").exists());
        let kept = dir_names(dir.path())
            .into_iter()
            .find(|n| n.starts_with("stray-0.") && n.ends_with("-stray"))
            .expect("stray directory kept");
        assert_eq!(
            std::fs::read(dir.path().join(kept).join("keep")).unwrap(),
            b"x"
        );
    }

    /// The entries of `dir`, sorted, without the space reserve (which the
    /// store keeps there whenever it can).
    pub(super) fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != super::space_reserve::RESERVE_FILE)
            .collect();
        names.sort();
        names
    }

    /// Every file under `dir` with its length, sorted.
    fn tree(dir: &Path) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if e.file_type().unwrap().is_dir() {
                for (n, len) in tree(&e.path()) {
                    out.push((format!("{name}/{n}"), len));
                }
            } else {
                out.push((name, e.metadata().unwrap().len()));
            }
        }
        out.sort();
        out
    }

    pub(super) fn append_some(store: &TopicStore, topic: &str, partition: u32) {
        let log = &store.partition(topic, partition).unwrap().log;
        let mut b = sluice_protocol::batch::BatchBuilder::new();
        for v in [&b"one"[..], b"two", b"three"] {
            b.push(&sluice_protocol::batch::NewRecord {
                timestamp: 1,
                key: None,
                value: Some(v),
                headers: &[],
            });
        }
        log.append(&mut b.finish()).unwrap();
    }

    /// A version 1 file (one topic "a", 3 partitions, retention_ms 5),
    /// as brokers before per-topic compression wrote it.
    const V1_FILE: &str = "534c544d000100000000000a01016103000001050000de9c5aeb";

    pub(super) fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn version_1_file_loads_and_is_migrated_on_the_next_write() {
        let v1 = unhex(V1_FILE);
        let records = decode_meta(&v1).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "a");
        assert_eq!(records[0].partitions, 3);
        assert_eq!(
            records[0].config,
            TopicConfig {
                retention_ms: Some(5),
                ..TopicConfig::default()
            }
        );
        // A version 2 body under a version 1 header is refused (and the
        // reverse), whatever the CRC says.
        let mut v2 = encode_meta(&records);
        v2[5] = 1;
        let n = v2.len() - 4;
        let crc = crc32fast::hash(&v2[..n]);
        v2[n..].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_meta(&v2).is_err());

        // A broker opening it keeps the topic; the next create rewrites
        // the file as version 2 with both topics.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOPICS_FILE), &v1).unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        let a = store.topic("a").unwrap();
        assert_eq!(a.partitions.len(), 3);
        assert_eq!(a.config.retention_ms, Some(5));
        let zstd = TopicConfig {
            compression: Some(TopicCompression::Zstd),
            ..TopicConfig::default()
        };
        store.create("z", 1, &zstd).unwrap();
        store.shutdown();
        drop(store);
        let now = std::fs::read(dir.path().join(TOPICS_FILE)).unwrap();
        assert_eq!(&now[4..6], [0, 3]);
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.topic("a").unwrap().config.retention_ms, Some(5));
        assert_eq!(store.topic("z").unwrap().config, zstd);
        assert_eq!(
            store.partition("z", 0).unwrap().log.config().compression,
            Some(sluice_protocol::batch::Compression::Zstd)
        );
    }

    #[test]
    fn missing_or_damaged_metadata_refuses_to_start_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A fresh, empty data directory starts and records that it has no topics.
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert!(dir.path().join(TOPICS_FILE).exists());
        store.create("orders", 2, &TopicConfig::default()).unwrap();
        append_some(&store, "orders", 1);
        store.shutdown();
        drop(store);
        let meta = std::fs::read(dir.path().join(TOPICS_FILE)).unwrap();

        std::fs::remove_file(dir.path().join(TOPICS_FILE)).unwrap();
        let before = tree(dir.path());
        let err = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("topics.meta is missing"), "{msg}");
        assert!(msg.contains("refusing to start"), "{msg}");
        assert!(msg.contains("restore"), "{msg}");
        assert_eq!(tree(dir.path()), before, "nothing may change");

        let mut bad = meta.clone();
        bad[10] ^= 0xff;
        std::fs::write(dir.path().join(TOPICS_FILE), &bad).unwrap();
        let before = tree(dir.path());
        let msg = TopicStore::open(dir.path(), TopicDefaults::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("damaged"), "{msg}");
        assert!(msg.contains("refusing to start"), "{msg}");
        assert_eq!(tree(dir.path()), before, "nothing may change");

        // Restored, the broker opens with the data in place.
        std::fs::write(dir.path().join(TOPICS_FILE), &meta).unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.partition("orders", 1).unwrap().log.next_offset(), 3);
    }

    #[test]
    fn interrupted_deletions_are_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        for t in ["half", "marked", "kept"] {
            store.create(t, 2, &TopicConfig::default()).unwrap();
            append_some(&store, t, 0);
        }
        store.shutdown();
        drop(store);
        // "half": the deletion crashed after renaming partition 0, before
        // the metadata file was updated.
        std::fs::rename(
            dir.path().join("half-0"),
            dir.path().join("half-0.00000000000000aa-delete"),
        )
        .unwrap();
        // A marked directory of a topic already unlisted (the crash came
        // after the metadata update), with a recreated topic of that name
        // that must not be touched.
        std::fs::rename(
            dir.path().join("marked-1"),
            dir.path().join("marked-1.00000000000000bb-delete"),
        )
        .unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert!(store.topic("half").is_none(), "deletion finished");
        let names = dir_names(dir.path());
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("half-") || n.ends_with("-delete")),
            "{names:?}"
        );
        // "marked" is still listed (its marker was left by an earlier
        // deletion): finished too, as the marker says it was being deleted.
        assert!(store.topic("marked").is_none());
        assert_eq!(store.partition("kept", 0).unwrap().log.next_offset(), 3);
        assert!(names.contains(&"kept-0".to_owned()) && names.contains(&"kept-1".to_owned()));
        store.shutdown();
        drop(store);
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.list().len(), 1);
    }

    #[test]
    fn a_cut_short_delete_marker_finishes_no_other_topics_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        // `long-10` partition 0's marker, cut to 255 bytes, reads as `long`
        // partition 1.
        let long = "a".repeat(229);
        let longer = format!("{long}-10");
        store.create(&long, 4, &TopicConfig::default()).unwrap();
        store.create(&longer, 1, &TopicConfig::default()).unwrap();
        append_some(&store, &long, 1);
        store.shutdown();
        drop(store);
        // The deletion of `longer` crashed after its rename.
        let tp = TopicPartition::new(&longer, 0).unwrap();
        std::fs::rename(
            dir.path().join(tp.dir_name()),
            dir.path().join(crate::log::names::set_aside_dir_name(
                &tp.dir_name(),
                0xcc,
                DELETE_SUFFIX,
            )),
        )
        .unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert!(store.topic(&long).is_some(), "the other topic is kept");
        assert_eq!(store.partition(&long, 1).unwrap().log.next_offset(), 3);
        assert!(!dir_names(dir.path()).iter().any(|n| n.ends_with("-delete")));
        store.shutdown();
    }

    #[test]
    fn delete_marks_directories_before_removing_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        store.create("gone", 3, &TopicConfig::default()).unwrap();
        store.create("kept", 1, &TopicConfig::default()).unwrap();
        append_some(&store, "gone", 2);
        store.delete("gone").unwrap();
        assert_eq!(dir_names(dir.path()), vec!["kept-0", TOPICS_FILE]);
        assert!(store.topic("gone").is_none());
        // The name is free again, and the new topic starts empty.
        store.create("gone", 3, &TopicConfig::default()).unwrap();
        assert_eq!(store.partition("gone", 2).unwrap().log.next_offset(), 0);
    }

    #[test]
    fn a_recreated_topic_is_not_taken_for_an_interrupted_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        // An earlier deletion of "x" renamed its directory but could not
        // remove it.
        std::fs::create_dir(dir.path().join("x-0.00000000000000cc-delete")).unwrap();
        store.create("x", 1, &TopicConfig::default()).unwrap();
        append_some(&store, "x", 0);
        store.shutdown();
        drop(store);
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.partition("x", 0).unwrap().log.next_offset(), 3);
    }

    #[test]
    fn partition_limit_and_segment_floors_are_enforced_at_creation() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default())
            .unwrap()
            .with_max_partitions(5);
        store.create("a", 3, &TopicConfig::default()).unwrap();
        let err = store.create("b", 3, &TopicConfig::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidPartitions);
        assert!(err.to_string().contains("max_partitions"), "{err}");
        assert!(!dir.path().join("b-0").exists());
        store.create("b", 2, &TopicConfig::default()).unwrap();
        for (config, needle) in [
            (
                TopicConfig {
                    segment_bytes: Some(MIN_SEGMENT_BYTES - 1),
                    ..TopicConfig::default()
                },
                "segment_bytes",
            ),
            (
                TopicConfig {
                    segment_ms: Some(1),
                    ..TopicConfig::default()
                },
                "segment_ms",
            ),
        ] {
            let store = TopicStore::open(
                tempfile::tempdir().unwrap().path(),
                TopicDefaults::default(),
            )
            .unwrap();
            let err = store.create("c", 1, &config).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
