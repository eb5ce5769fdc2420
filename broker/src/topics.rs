//! The topics of a broker: their partitions' logs, and the metadata file
//! that lists them.
//!
//! `topics.meta` (layout in `docs/storage-format.md`) is the commit point:
//! creating a topic opens its partition directories first and then rewrites
//! the file; deleting renames the partition directories to pending-delete
//! names first, then rewrites the file, then removes the marked directories.
//! The broker never removes a directory that does not carry the delete
//! marker; see [`TopicStore::open`] for what startup does with leftovers.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::{FlushMode, TopicConfig};

use crate::config::TopicDefaults;
use crate::error::BrokerError;
use crate::log::io::{FileSystem, StdFs, read_file};
use crate::log::names::{
    DELETE_SUFFIX, STRAY_SUFFIX, parse_set_aside_dir_name, parse_whole_set_aside_dir_name,
};
use crate::log::{
    LogConfig, LogError, PartitionLog, Retention, TopicPartition, validate_topic_name,
};

/// Name of the topic metadata file in the data directory.
pub const TOPICS_FILE: &str = "topics.meta";
/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;
/// Default of the broker-wide limit on partitions over all topics
/// (`max_partitions`).
pub const DEFAULT_MAX_PARTITIONS: u32 = 10_000;
/// Whether a topic name is reserved for the broker's own use (Kafka's
/// internal topics, and `__sluice*`): clients cannot create, delete or
/// produce to such a topic; other names starting with `__` are ordinary.
pub use sluice_protocol::topic_name::is_reserved as is_internal;

pub use crate::partition::Partition;

mod dirs;
mod id;
mod map;
mod meta;
pub mod space_reserve;
use dirs::{holds_no_records, mark_for_deletion, remove_marked_dirs, set_aside};
pub use id::TopicId;
pub use meta::check_topics_file;
use meta::{TopicRecord, decode_meta, write_meta_file};
use space_reserve::SpaceReserve;

/// A topic: settings as requested and the partitions this broker hosts.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Id, unique to this incarnation of the name (kept in `topics.meta`;
    /// in a cluster the Kafka listener answers with the controller's, see
    /// [`crate::service::leadership::ClusterTopic`]).
    pub id: TopicId,
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

/// All topics of the broker. Thread-safe.
#[derive(Debug)]
pub struct TopicStore {
    data_dir: PathBuf,
    defaults: TopicDefaults,
    fs: Arc<dyn FileSystem>,
    topics: RwLock<map::TopicMap>,
    /// Serialises creates and deletes (and their metadata file writes).
    admin: Mutex<()>,
    /// Most partitions over all topics; creates beyond it are refused.
    max_partitions: u32,
    /// How refusals at `max_partitions` name it.
    max_partitions_name: String,
    /// Partitions that recovery opened offline (damaged flushed data).
    offline_at_open: u64,
    /// Disk space kept back for metadata writes on a full disk.
    reserve: SpaceReserve,
}

/// `InvalidTopicName` when one of `existing` collides with a new topic
/// `name` ([`crate::log::colliding_topic`]).
pub(crate) fn refuse_collision<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<(), BrokerError> {
    match crate::log::colliding_topic(name, existing) {
        Some(other) => Err(admin_err(
            ErrorCode::InvalidTopicName,
            format!(
                "topic {name:?} collides with topic {other:?}: names that differ only in '.' and '_' are refused, as in Kafka"
            ),
        )),
        None => Ok(()),
    }
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
    ///   is removed when it holds no records, else renamed to
    ///   `<topic>-<partition>.<id>-stray` and kept.
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
            .filter(|n| TopicPartition::from_dir_name(n).is_ok_and(|tp| !is_internal(tp.topic())))
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
                write_meta_file(&*fs, data_dir, None, &[])?;
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
            write_meta_file(&*fs, data_dir, Some(&reserve), &records)?;
        }
        if let Err(e) = remove_marked_dirs(&*fs, data_dir) {
            // They are unlisted and renamed; removing them can wait for the
            // next start (or the next topic creation, which requires it).
            tracing::warn!(error = %e, "cannot remove directories marked for deletion");
        }

        // A broker alone creates a partition's directory before the topic
        // is listed: a listed partition without one lost its records, and
        // opening it would start it empty and hand its offsets out again.
        // (A cluster node gets such a replica back from its peers; its data
        // directory holds `cluster/`.)
        // An interrupted deletion (delete markers at this start, some of
        // whose names may be cut too short to tell their topic) may have
        // taken a listed partition's directory: no check then.
        if marked.is_empty() && !fs.exists(&crate::replication::config::cluster_dir(data_dir)) {
            let missing: Vec<String> = names_of_listed(&records)
                .into_iter()
                .filter(|d| !fs.exists(&data_dir.join(d)))
                .collect();
            if let Some(first) = missing.first() {
                let one = missing.len() == 1;
                let (a, dirs, are, their, them) = if one {
                    ("A partition directory", "directory", "is", "its", "it")
                } else {
                    (
                        "Partition directories",
                        "directories",
                        "are",
                        "their",
                        "them",
                    )
                };
                return Err(LogError::Corrupt {
                    path: data_dir.join(first),
                    reason: format!(
                        "{a} listed in {TOPICS_FILE} {are} missing (e.g. {first:?}): {their} \
                         records are gone. Refusing to start so that no offset is handed out \
                         again unnoticed. Restore the {dirs} from a backup, or create {them} \
                         empty (mkdir) to start {them} with no records, from offset 0"
                    ),
                }
                .into());
            }
        }

        // Every hosted partition of every topic, opened on a few threads:
        // after a crash each may rescan its unflushed segments and fsync
        // them, and one topic's recovery does not wait for another's.
        let jobs: Vec<(usize, u32)> = records
            .iter()
            .enumerate()
            .flat_map(|(t, r)| {
                let hosting = r.hosting();
                (0..r.partitions)
                    .filter(move |&p| hosting.hosts(p))
                    .map(move |p| (t, p))
            })
            .collect();
        let threads = jobs.len().clamp(1, OPEN_THREADS);
        let opened = run_on_threads(&jobs, threads, |&(t, p)| {
            let r = records
                .get(t)
                .ok_or_else(|| admin_err(ErrorCode::Unknown, "no such topic record".to_owned()))?;
            open_partition(&fs, data_dir, &defaults.log_config(&r.config), &r.name, p)
        })?;
        let mut opened = jobs.iter().zip(opened).peekable();
        let mut topics = map::TopicMap::default();
        let mut offline_at_open = 0;
        for (t, r) in records.into_iter().enumerate() {
            let mut partitions: Vec<Option<Arc<Partition>>> = vec![None; r.partitions as usize];
            while let Some((&(_, p), partition)) = opened.next_if(|((job_t, _), _)| *job_t == t) {
                if let Some(slot) = partitions.get_mut(p as usize) {
                    *slot = Some(partition);
                }
            }
            let topic = Topic {
                name: r.name.clone(),
                id: TopicId(r.id),
                config: r.config.clone(),
                partitions,
            };
            offline_at_open += topic.hosted().filter(|(_, p)| p.log.is_offline()).count() as u64;
            topics.insert(Arc::new(topic));
        }
        let mut strays = 0;
        let names = fs
            .list_dir(data_dir)
            .map_err(|e| LogError::io("list", data_dir, e))?;
        for name in &names {
            let Ok(tp) = TopicPartition::from_dir_name(name) else {
                continue;
            };
            if is_internal(tp.topic()) {
                continue;
            }
            let hosted = topics
                .get(tp.topic())
                .is_some_and(|t| t.hosted_partition(tp.partition()).is_some());
            if hosted {
                continue;
            }
            let dir = data_dir.join(name);
            if holds_no_records(&*fs, &dir) {
                // Nothing to keep (a create interrupted before its metadata
                // write, most often): removed, where it used to be set
                // aside, one more at every such crash. A removal cut short
                // leaves a directory that still holds no records, removed
                // at the next start.
                fs.remove_dir_all(&dir)
                    .map_err(|e| LogError::io("remove", &dir, e))?;
                tracing::info!(dir = %name, "removed the empty partition directory of no listed topic or of a partition not hosted here (an interrupted create)");
            } else {
                let to = set_aside(&*fs, data_dir, &tp, STRAY_SUFFIX)?;
                tracing::warn!(dir = %name, kept_as = %to.display(),
                    "partition directory of no listed topic or of a partition not hosted here, with records (an interrupted create?) set aside; remove it by hand if it is not needed");
            }
            strays += 1;
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
            max_partitions_name: "max_partitions".to_owned(),
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

    /// How refusals at `max_partitions` name the limit
    /// ([`crate::config::BrokerConfig::max_partitions_name`]).
    pub fn with_max_partitions_name(mut self, name: String) -> Self {
        self.max_partitions_name = name;
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

    /// The name of the topic with id `id`, if any.
    pub fn name_of(&self, id: &TopicId) -> Option<String> {
        self.topics.read().name_of(id).map(str::to_owned)
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
        if is_internal(name) {
            return Err(admin_err(
                ErrorCode::InvalidTopicName,
                format!(
                    "topic name {name:?} is reserved for the broker's own use \
                     (Kafka's internal topics, and names starting with \"__sluice\")"
                ),
            ));
        }
        self.check_shape(name, partitions, config)
    }

    /// Everything [`TopicStore::create`] would refuse a topic for, without
    /// creating it: [`TopicStore::check_new`], a topic of that name
    /// (`TopicAlreadyExists`), the broker's `max_partitions`
    /// (`InvalidPartitions`). What it cannot foresee is a failure to write
    /// the files (a full disk).
    pub fn check_create(
        &self,
        name: &str,
        partitions: u32,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        self.check_new(name, partitions, config)?;
        self.check_absent(name)?;
        self.check_no_collision(name)?;
        self.check_room(0..partitions, Hosting::All)
    }

    /// `TopicAlreadyExists` when a topic of that name is listed.
    fn check_absent(&self, name: &str) -> Result<(), BrokerError> {
        if self.topics.read().contains_key(name) {
            return Err(admin_err(
                ErrorCode::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        Ok(())
    }

    /// `InvalidTopicName` when a listed topic collides with `name`
    /// ([`crate::log::colliding_topic`]). Checked for clients' creations
    /// only: a controller's topic is created as the controller decided.
    fn check_no_collision(&self, name: &str) -> Result<(), BrokerError> {
        refuse_collision(name, self.topics.read().keys().map(String::as_str))
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
        self.check_config(config)
    }

    /// Refuses (`InvalidConfig`) settings that are not valid, or below the
    /// resource floors, as this broker's defaults resolve them.
    fn check_config(&self, config: &TopicConfig) -> Result<(), BrokerError> {
        // The floors first: their messages give the smallest value a
        // topic may have.
        check_topic_limits(&self.defaults.resolve(config))
            .and_then(|()| self.defaults.log_config(config).validate())
            .map_err(|e| admin_err(ErrorCode::InvalidConfig, e))
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
        self.create_checked(
            name,
            TopicId::random(name),
            partitions,
            Hosting::All,
            config,
            true,
        )
    }

    /// Creates a topic with id `id` whose `hosting` partitions get a
    /// directory and a log here; the others are listed (they count in
    /// [`Topic::partition_count`]) but have no files. Blocking. Unlike
    /// [`TopicStore::create`], reserved names ([`is_internal`]) are accepted: this
    /// is how the controller's topics, among them the cluster's internal
    /// group-state topic, are created.
    pub fn create_hosting(
        &self,
        name: &str,
        id: TopicId,
        partitions: u32,
        hosting: Hosting<'_>,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        self.create_checked(name, id, partitions, hosting, config, false)
    }

    /// [`TopicStore::create_hosting`], refusing a name that collides with a
    /// listed topic's if `refuse_collisions` (under the admin lock, so two
    /// colliding creations at once cannot both be made).
    fn create_checked(
        &self,
        name: &str,
        id: TopicId,
        partitions: u32,
        hosting: Hosting<'_>,
        config: &TopicConfig,
        refuse_collisions: bool,
    ) -> Result<(), BrokerError> {
        // Internal names (`__…`) are accepted here, where the controller's
        // topics are created (the cluster's group-state topic); clients'
        // creations are checked with `check_new` first.
        self.check_shape(name, partitions, config)?;
        let _admin = self.admin.lock();
        self.check_absent(name)?;
        if refuse_collisions {
            self.check_no_collision(name)?;
        }
        self.check_room(0..partitions, hosting)?;
        self.clear_the_way(name, 0..partitions)?;
        let created = open_partitions(
            &self.fs,
            &self.data_dir,
            &self.defaults,
            name,
            0..partitions,
            hosting,
            config,
        )
        .and_then(|partitions| {
            let topic = Topic {
                name: name.to_owned(),
                id,
                config: config.clone(),
                partitions,
            };
            let mut records = self.records();
            records.push(TopicRecord {
                name: name.to_owned(),
                partitions: topic.partition_count(),
                config: config.clone(),
                hosted: topic.hosted_set(),
                id: id.0,
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
                self.remove_new_partitions(name, 0..partitions);
                return Err(e);
            }
        };
        self.topics.write().insert(Arc::new(topic));
        tracing::info!(topic = name, partitions, "created topic");
        Ok(())
    }

    /// Raises topic `name`'s partition count to `count`: the new
    /// partitions (those of them `hosting` names) get an empty log here,
    /// and the new count is in `topics.meta` before any client can see
    /// them. The existing partitions and their data are untouched. With
    /// `validate_only` it checks without changing anything.
    ///
    /// Refused: no such topic (`UnknownTopicOrPartition`); `count` not above
    /// the current count, or past [`MAX_PARTITIONS`] or the broker's
    /// `max_partitions` (`InvalidPartitions`). A crash before the metadata
    /// write leaves the topic as it was (the new directories are set aside
    /// at the next start, as after an interrupted create). Blocking.
    pub fn add_partitions(
        &self,
        name: &str,
        count: u32,
        hosting: Hosting<'_>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _admin = self.admin.lock();
        let old = self.listed(name)?;
        let from = old.partition_count();
        if count <= from {
            return Err(admin_err(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name:?} has {from} partition{}; the count can only rise, \
                     and {count} is not more",
                    if from == 1 { "" } else { "s" }
                ),
            ));
        }
        self.check_shape(name, count, &old.config)?;
        self.check_room(from..count, hosting)?;
        if validate_only {
            return Ok(());
        }
        self.clear_the_way(name, from..count)?;
        let added = open_partitions(
            &self.fs,
            &self.data_dir,
            &self.defaults,
            name,
            from..count,
            hosting,
            &old.config,
        )
        .and_then(|added| {
            let mut partitions = old.partitions.clone();
            partitions.extend(added);
            let topic = Topic {
                name: old.name.clone(),
                id: old.id,
                config: old.config.clone(),
                partitions,
            };
            let mut records = self.records();
            for r in records.iter_mut().filter(|r| r.name == name) {
                r.partitions = topic.partition_count();
                r.hosted = topic.hosted_set();
            }
            self.write_meta(&records)?;
            Ok(topic)
        });
        let topic = match added {
            Ok(topic) => topic,
            Err(e) => {
                self.remove_new_partitions(name, from..count);
                return Err(e);
            }
        };
        self.topics.write().insert(Arc::new(topic));
        tracing::info!(topic = name, from, to = count, "added partitions");
        Ok(())
    }

    /// Topic `name`, or `UnknownTopicOrPartition`.
    fn listed(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        self.topic(name).ok_or_else(|| {
            admin_err(
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            )
        })
    }

    /// Refuses new partitions `range` (those `hosting` names) past the
    /// broker's `max_partitions` over all topics.
    fn check_room(&self, range: Range<u32>, hosting: Hosting<'_>) -> Result<(), BrokerError> {
        let existing: u64 = self
            .topics
            .read()
            .values()
            .map(|t| t.hosted().count() as u64)
            .sum();
        let new = range.filter(|&p| hosting.hosts(p)).count() as u64;
        if existing + new > u64::from(self.max_partitions) {
            return Err(admin_err(
                ErrorCode::InvalidPartitions,
                format!(
                    "the broker serves {existing} partitions and its limit is {} \
                     ({}); {new} more do not fit",
                    self.max_partitions, self.max_partitions_name
                ),
            ));
        }
        Ok(())
    }

    /// Before partitions `range` of `name` are made: marked directories
    /// left by a deletion whose removal step failed go (at the next start
    /// a marker of a listed partition would otherwise read as an
    /// interrupted deletion of it), and a directory left by an earlier
    /// failed create is not reused: a new partition starts empty. It is
    /// removed if it holds no records, else set aside.
    fn clear_the_way(&self, name: &str, range: Range<u32>) -> Result<(), BrokerError> {
        remove_marked_dirs(&*self.fs, &self.data_dir)?;
        let mut cleared_any = false;
        for p in range {
            if let Ok(tp) = TopicPartition::new(name, p) {
                let dir = self.data_dir.join(tp.dir_name());
                if !self.fs.exists(&dir) {
                    continue;
                }
                if holds_no_records(&*self.fs, &dir) {
                    self.fs
                        .remove_dir_all(&dir)
                        .map_err(|e| LogError::io("remove", &dir, e))?;
                } else {
                    set_aside(&*self.fs, &self.data_dir, &tp, STRAY_SUFFIX)?;
                }
                cleared_any = true;
            }
        }
        if cleared_any {
            self.fs
                .sync_dir(&self.data_dir)
                .map_err(|e| LogError::io("fsync", &self.data_dir, e))?;
        }
        Ok(())
    }

    /// Gives topic `name` the settings `edit` makes of its settings as
    /// given (unset fields follow the defaults); with `validate_only` it
    /// checks without changing anything. The edit runs under the lock that
    /// serialises creates, deletes and changes, so concurrent changes of
    /// one topic each see the other's result. The retention, the segment
    /// size and age and the codec may change; the flush policy is fixed
    /// when the topic is created, and new settings that resolve to another
    /// one (or that `edit` refuses) are refused with
    /// [`ErrorCode::InvalidConfig`] (see [`TopicStore::check_change`]). The
    /// new settings are in `topics.meta` before the open partitions go by
    /// them: the retention at their next retention pass, the segment size
    /// and age at their next append (an active segment already past them
    /// rolls then), the codec for batches produced from then on.
    /// Blocking (rewrites `topics.meta`).
    pub fn alter_config(
        &self,
        name: &str,
        edit: impl FnOnce(&TopicConfig) -> Result<TopicConfig, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _admin = self.admin.lock();
        let old = self.listed(name)?;
        let config = edit(&old.config).map_err(|e| admin_err(ErrorCode::InvalidConfig, e))?;
        let config = &config;
        self.check_change(name, &old.config, config)?;
        if validate_only {
            return Ok(());
        }
        let topic = Topic {
            name: old.name.clone(),
            id: old.id,
            config: config.clone(),
            partitions: old.partitions.clone(),
        };
        let mut records = self.records();
        for r in records.iter_mut().filter(|r| r.name == name) {
            r.config = config.clone();
        }
        self.write_meta(&records)?;
        let log_config = self.defaults.log_config(config);
        for (_, p) in topic.hosted() {
            p.log.set_retention(Retention {
                age: log_config.retention_age,
                bytes: log_config.retention_bytes,
            });
            p.log
                .set_roll(log_config.segment_bytes, log_config.segment_age);
            p.log.set_compression(log_config.compression);
            p.log.set_max_batch_bytes(log_config.max_batch_bytes);
        }
        self.topics.write().insert(Arc::new(topic));
        tracing::info!(topic = name, config = ?config, "changed topic settings");
        Ok(())
    }

    /// Refuses (`InvalidConfig`) new settings `config` of topic `name`,
    /// whose settings are `old`, that change its flush policy (fixed at
    /// creation: it decides what an acknowledgement promises, compared as
    /// this broker's defaults resolve it), or that are not valid settings.
    /// The retention, the segment size and age, and the codec may change.
    pub fn check_change(
        &self,
        name: &str,
        old: &TopicConfig,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        let (was, now) = (self.defaults.resolve(old), self.defaults.resolve(config));
        if was.flush != now.flush {
            return Err(admin_err(
                ErrorCode::InvalidConfig,
                format!(
                    "flush (flush.ms) of topic {name:?} is fixed when the topic is created \
                     (it decides what an acknowledgement promises); retention, segment \
                     size and age, and compression can change"
                ),
            ));
        }
        self.check_config(config)
    }

    /// Runs `free`, a change that frees disk space but must first write a
    /// little (a deletion of records: the partition's new log start). Should
    /// it find the disk full, the space reserve is released (if held) and
    /// `free` runs once more; the reserve is taken again afterwards, as far
    /// as the space freed allows. Blocking.
    pub fn freeing_space<T>(&self, free: impl Fn() -> Result<T, LogError>) -> Result<T, LogError> {
        let mut done = free();
        if done.as_ref().is_err_and(LogError::is_disk_full) && self.reserve.release(&*self.fs) {
            done = free();
            self.reserve.take(&*self.fs);
        }
        done
    }

    /// Deletes a topic and its data. Blocking (call it off the reactor).
    ///
    /// Each partition log is closed (appends refused, nothing flushed: see
    /// [`PartitionLog::close_for_deletion`]) and its directory renamed to a
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
        for (_, p) in topic.hosted() {
            // Its files are about to go: no flush, no clean-shutdown marker.
            p.log.close_for_deletion();
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
        write_meta_file(&*self.fs, &self.data_dir, Some(&self.reserve), &records)?;
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

    /// Shuts every partition down cleanly (see [`PartitionLog::shutdown`]),
    /// on up to [`OPEN_THREADS`] threads: each waits for a few `fsync`s
    /// (segment, checkpoint, marker, directory), and one after another a
    /// broker of 600 empty partitions took about 5 s to stop.
    pub fn shutdown(&self) {
        let all = self.all_partitions();
        let threads = all
            .len()
            .div_ceil(PARTITIONS_PER_CLOSE_THREAD)
            .clamp(1, OPEN_THREADS);
        let _ = run_on_threads(&all, threads, |p| {
            if let Err(e) = p.log.shutdown() {
                tracing::error!(dir = %p.log.dir().display(), error = %e, "unclean partition shutdown");
            }
            Ok(())
        });
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
                id: t.id.0,
            })
            .collect()
    }

    /// Removes the directories of partitions `range` that a failed create
    /// or addition made (directories that existed before it were set aside
    /// first, so every one is new).
    fn remove_new_partitions(&self, name: &str, range: Range<u32>) {
        for p in range {
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

    /// Writes `topics.meta` for anything but a deletion (which may use the
    /// space reserve: see [`write_meta_file`]).
    fn write_meta(&self, records: &[TopicRecord]) -> Result<(), BrokerError> {
        write_meta_file(&*self.fs, &self.data_dir, None, records)
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
    if let Some(bytes) = config
        .segment_bytes
        .filter(|&b| !(MIN_SEGMENT_BYTES..=i32::MAX as u64).contains(&b))
    {
        return Err(format!(
            "segment_bytes (Kafka's segment.bytes) must be between {MIN_SEGMENT_BYTES} and {}, \
             got {bytes}",
            i32::MAX
        ));
    }
    if let Some(ms) = config.segment_ms.filter(|&m| m > 0 && m < MIN_SEGMENT_MS) {
        return Err(format!(
            "segment_ms (Kafka's segment.ms) must be 0 (never) or at least {MIN_SEGMENT_MS}, got {ms}"
        ));
    }
    // Kafka's configs are Java longs: a larger value could be neither
    // described to a Kafka client nor told apart from another.
    for (name, value) in [
        ("segment_ms (Kafka's segment.ms)", config.segment_ms),
        ("retention_ms (Kafka's retention.ms)", config.retention_ms),
        (
            "retention_bytes (Kafka's retention.bytes)",
            config.retention_bytes,
        ),
        (
            "flush (Kafka's flush.ms)",
            match config.flush {
                Some(FlushMode::IntervalMs(ms)) => Some(ms),
                _ => None,
            },
        ),
    ] {
        if let Some(v) = value.filter(|&v| v > i64::MAX as u64) {
            return Err(format!("{name} must be at most {}, got {v}", i64::MAX));
        }
    }
    if let Some(bytes) = config.max_message_bytes.filter(|&b| b > i32::MAX as u32) {
        return Err(format!(
            "max_message_bytes (Kafka's max.message.bytes) must be at most {}, got {bytes}",
            i32::MAX
        ));
    }
    Ok(())
}

fn open_partitions(
    fs: &Arc<dyn FileSystem>,
    data_dir: &Path,
    defaults: &TopicDefaults,
    name: &str,
    range: Range<u32>,
    hosting: Hosting<'_>,
    config: &TopicConfig,
) -> Result<Vec<Option<Arc<Partition>>>, BrokerError> {
    let log_config = defaults.log_config(config);
    // Creating a partition waits mostly on fsyncs of its new files and
    // directory: a few threads overlap those waits for large topics.
    let all: Vec<u32> = range.collect();
    let threads = all
        .len()
        .div_ceil(PARTITIONS_PER_OPEN_THREAD)
        .clamp(1, OPEN_THREADS);
    run_on_threads(&all, threads, |&p| {
        if !hosting.hosts(p) {
            return Ok(None);
        }
        open_partition(fs, data_dir, &log_config, name, p).map(Some)
    })
}

/// The directory names of every hosted partition `records` list.
fn names_of_listed(records: &[TopicRecord]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| {
            let hosting = r.hosting();
            (0..r.partitions)
                .filter(move |&p| hosting.hosts(p))
                .filter_map(move |p| TopicPartition::new(&r.name, p).ok())
                .map(|tp| tp.dir_name())
        })
        .collect()
}

/// Opens (creating or recovering) partition `p` of topic `name`.
fn open_partition(
    fs: &Arc<dyn FileSystem>,
    data_dir: &Path,
    log_config: &LogConfig,
    name: &str,
    p: u32,
) -> Result<Arc<Partition>, BrokerError> {
    let tp = TopicPartition::new(name, p)
        .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
    let (log, _report) = PartitionLog::open_with(
        Arc::clone(fs),
        data_dir.join(tp.dir_name()),
        log_config.clone(),
    )?;
    Ok(Arc::new(Partition::new(log)))
}

/// Runs `f` over every job on `threads` threads (one: on this thread), each
/// taking the next job when it is done with one, so a slow job (a long
/// recovery) holds up no fixed share of the others. Returns the results in
/// job order, or the first error in job order.
fn run_on_threads<J: Sync, T: Send>(
    jobs: &[J],
    threads: usize,
    f: impl Fn(&J) -> Result<T, BrokerError> + Sync,
) -> Result<Vec<T>, BrokerError> {
    if threads <= 1 || jobs.len() <= 1 {
        return jobs.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(i) else {
                return done;
            };
            done.push((i, f(job)));
        }
    };
    let mut results: Vec<(usize, Result<T, BrokerError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(jobs.len()))
            .map(|_| scope.spawn(worker))
            .collect();
        let mut all = Vec::with_capacity(jobs.len());
        for h in handles {
            match h.join() {
                Ok(done) => all.extend(done),
                Err(_) => all.push((
                    usize::MAX,
                    Err(admin_err(
                        ErrorCode::Unknown,
                        "a thread opening partitions panicked".to_owned(),
                    )),
                )),
            }
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Partitions a topic needs before a second thread opens some of them.
const PARTITIONS_PER_OPEN_THREAD: usize = 64;
/// Most threads opening partitions (of one new topic, or all at start), or
/// closing them at shutdown.
const OPEN_THREADS: usize = 8;
/// Partitions the broker's shutdown closes before a second thread helps.
const PARTITIONS_PER_CLOSE_THREAD: usize = 16;

#[cfg(test)]
mod hosting_tests;

#[cfg(test)]
mod tests;
