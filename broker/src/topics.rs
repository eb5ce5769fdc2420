//! The topics of a broker: their partitions' logs, and the metadata file
//! that lists them.
//!
//! `topics.meta` (layout in `docs/storage-format.md`) is the commit point:
//! creating a topic opens its partition directories first and then rewrites
//! the file; deleting rewrites the file first and then removes the
//! directories. At startup, partition directories that the file does not list
//! are leftovers of an interrupted create or delete and are removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;
use tokio::sync::watch;

use crate::config::TopicDefaults;
use crate::error::BrokerError;
use crate::log::io::{FileSystem, StdFs, read_file, write_file_atomically};
use crate::log::{LogError, PartitionLog, TopicPartition, validate_topic_name};

/// Name of the topic metadata file in the data directory.
pub const TOPICS_FILE: &str = "topics.meta";
const MAGIC: [u8; 4] = *b"SLTM";
const VERSION: u16 = 1;
/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;
/// Topic names starting with this are reserved for the broker's own use.
pub const INTERNAL_PREFIX: &str = "__";

/// One partition served by the broker: its log and a signal that fires when
/// its high watermark may have moved (wakes long-poll fetches).
#[derive(Debug)]
pub struct Partition {
    /// The partition log.
    pub log: PartitionLog,
    watermark: watch::Sender<u64>,
}

impl Partition {
    fn new(log: PartitionLog) -> Self {
        let (watermark, _) = watch::channel(log.high_watermark());
        Partition { log, watermark }
    }

    /// Publishes the current high watermark to waiting fetches.
    pub fn notify(&self) {
        let hw = self.log.high_watermark();
        self.watermark.send_if_modified(|v| {
            let changed = *v != hw;
            *v = hw;
            changed
        });
    }

    /// A receiver that sees every later high-watermark change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.watermark.subscribe()
    }
}

/// A topic: settings as requested and the partitions.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Settings as given at creation (unset fields follow the defaults).
    pub config: TopicConfig,
    /// Partitions in number order.
    pub partitions: Vec<Arc<Partition>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    partitions: u32,
    config: TopicConfig,
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
}

fn admin_err(code: ErrorCode, message: impl Into<String>) -> BrokerError {
    BrokerError::Request {
        code,
        message: message.into(),
    }
}

impl TopicStore {
    /// Opens every topic listed in the data directory's metadata file,
    /// recovering their partitions, and removes unlisted partition
    /// directories. Blocking.
    pub fn open(data_dir: &Path, defaults: TopicDefaults) -> Result<Self, BrokerError> {
        Self::open_with(Arc::new(StdFs), data_dir, defaults)
    }

    /// [`TopicStore::open`] with every partition log's file I/O going
    /// through `fs` (tests inject faults this way).
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        defaults: TopicDefaults,
    ) -> Result<Self, BrokerError> {
        fs.create_dir_all(data_dir)
            .map_err(|e| LogError::io("create directory", data_dir, e))?;
        let records = match read_file(&*fs, &data_dir.join(TOPICS_FILE))
            .map_err(|e| LogError::io("read", data_dir.join(TOPICS_FILE), e))?
        {
            Some(bytes) => decode_meta(&bytes).map_err(|reason| LogError::Corrupt {
                path: data_dir.join(TOPICS_FILE),
                reason,
            })?,
            None => Vec::new(),
        };
        let mut topics = BTreeMap::new();
        for r in records {
            let topic = open_topic(&fs, data_dir, &defaults, &r.name, r.partitions, &r.config)?;
            topics.insert(r.name.clone(), Arc::new(topic));
        }
        for name in fs
            .list_dir(data_dir)
            .map_err(|e| LogError::io("list", data_dir, e))?
        {
            let Ok(tp) = TopicPartition::from_dir_name(&name) else {
                continue;
            };
            if tp.topic().starts_with(INTERNAL_PREFIX) {
                continue;
            }
            let listed = topics
                .get(tp.topic())
                .is_some_and(|t| tp.partition() < t.partitions.len() as u32);
            if !listed {
                let path = data_dir.join(&name);
                tracing::warn!(dir = %path.display(), "removing partition directory of no listed topic");
                std::fs::remove_dir_all(&path).map_err(|e| LogError::io("remove", &path, e))?;
            }
        }
        Ok(TopicStore {
            data_dir: data_dir.to_owned(),
            defaults,
            fs,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
        })
    }

    /// The topic defaults.
    pub fn defaults(&self) -> &TopicDefaults {
        &self.defaults
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// A partition, or [`ErrorCode::UnknownTopicOrPartition`].
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, ErrorCode> {
        self.topics
            .read()
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize).cloned())
            .ok_or(ErrorCode::UnknownTopicOrPartition)
    }

    /// Every topic, in name order.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Every partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Creates a topic. Blocking (creates files and syncs them).
    pub fn create(
        &self,
        name: &str,
        partitions: u32,
        config: &TopicConfig,
    ) -> Result<(), BrokerError> {
        validate_topic_name(name)
            .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
        if name.starts_with(INTERNAL_PREFIX) {
            return Err(admin_err(
                ErrorCode::InvalidTopicName,
                format!("topic names starting with {INTERNAL_PREFIX:?} are reserved"),
            ));
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(admin_err(
                ErrorCode::InvalidPartitions,
                format!("partitions must be in 1..={MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        self.defaults
            .log_config(config)
            .validate()
            .map_err(|e| admin_err(ErrorCode::InvalidConfig, e))?;
        let _admin = self.admin.lock();
        if self.topics.read().contains_key(name) {
            return Err(admin_err(
                ErrorCode::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        let topic = open_topic(
            &self.fs,
            &self.data_dir,
            &self.defaults,
            name,
            partitions,
            config,
        )?;
        let mut records = self.records();
        records.push(TopicRecord {
            name: name.to_owned(),
            partitions,
            config: config.clone(),
        });
        self.write_meta(&records)?;
        self.topics.write().insert(name.to_owned(), Arc::new(topic));
        tracing::info!(topic = name, partitions, "created topic");
        Ok(())
    }

    /// Deletes a topic and its data. Fetches in flight keep reading the
    /// files they hold. Blocking.
    pub fn delete(&self, name: &str) -> Result<(), BrokerError> {
        let _admin = self.admin.lock();
        if !self.topics.read().contains_key(name) {
            return Err(admin_err(
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            ));
        }
        let records: Vec<_> = self
            .records()
            .into_iter()
            .filter(|r| r.name != name)
            .collect();
        self.write_meta(&records)?;
        let Some(topic) = self.topics.write().remove(name) else {
            return Ok(());
        };
        for (i, p) in topic.partitions.iter().enumerate() {
            if let Err(e) = p.log.shutdown() {
                tracing::warn!(topic = name, partition = i, error = %e, "closing deleted partition");
            }
            let dir = p.log.dir().to_owned();
            std::fs::remove_dir_all(&dir).map_err(|e| LogError::io("remove", &dir, e))?;
        }
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
                partitions: t.partitions.len() as u32,
                config: t.config.clone(),
            })
            .collect()
    }

    fn write_meta(&self, records: &[TopicRecord]) -> Result<(), BrokerError> {
        let bytes = encode_meta(records);
        write_file_atomically(&*self.fs, &self.data_dir, TOPICS_FILE, &bytes)
            .map_err(|e| LogError::io("write", self.data_dir.join(TOPICS_FILE), e).into())
    }
}

fn open_topic(
    fs: &Arc<dyn FileSystem>,
    data_dir: &Path,
    defaults: &TopicDefaults,
    name: &str,
    partitions: u32,
    config: &TopicConfig,
) -> Result<Topic, BrokerError> {
    let log_config = defaults.log_config(config);
    let mut parts = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let tp = TopicPartition::new(name, p)
            .map_err(|e| admin_err(ErrorCode::InvalidTopicName, e.to_string()))?;
        let (log, _report) = PartitionLog::open_with(
            Arc::clone(fs),
            data_dir.join(tp.dir_name()),
            log_config.clone(),
        )?;
        parts.push(Arc::new(Partition::new(log)));
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
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let len = u32::from_be_bytes([content[8], content[9], content[10], content[11]]) as usize;
    let body = content
        .get(12..)
        .filter(|b| b.len() == len)
        .ok_or("body length mismatch")?;
    postcard::from_bytes(body).map_err(|e| format!("malformed body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_detects_damage() {
        let records = vec![
            TopicRecord {
                name: "a".into(),
                partitions: 3,
                config: TopicConfig::default(),
            },
            TopicRecord {
                name: "b.c".into(),
                partitions: 1,
                config: TopicConfig {
                    retention_ms: Some(5),
                    ..TopicConfig::default()
                },
            },
        ];
        let bytes = encode_meta(&records);
        assert_eq!(&bytes[..4], b"SLTM");
        let back = decode_meta(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].config.retention_ms, Some(5));
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
        // A leftover directory of an interrupted create is removed.
        std::fs::create_dir(dir.path().join("stray-0")).unwrap();
        let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.topic("orders").unwrap().partitions.len(), 3);
        assert!(store.partition("orders", 3).is_err());
        assert!(!dir.path().join("stray-0").exists());
    }
}
