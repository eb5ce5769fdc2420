//! Committed offsets of consumer groups, stored durably by the broker.
//!
//! Two files hold them (layouts in `docs/storage-format.md`):
//!
//! - the offsets log, an internal partition log `__consumer_offsets-0` in
//!   the data directory. Each commit is one appended batch, flushed before
//!   the commit is acknowledged ([`FlushPolicy::BeforeAck`]). A record's key
//!   starts with a big-endian `u16` key type: [`KEY_OFFSET_COMMIT`] for a
//!   committed offset, [`KEY_GROUP_METADATA`] for a group's membership
//!   (the value is a [`crate::group::record::GroupRecord`]); the latest
//!   record for a key wins, and a record without a value (a tombstone)
//!   removes the key. [`KEY_CHECKPOINT`] markers appear only in a
//!   cluster's group-state topic (`replication::group_checkpoint`) and
//!   change nothing when replayed.
//! - the snapshot `__consumer_offsets.snapshot`: every live key with its
//!   latest value, and the log offset it covers up to. It is rewritten
//!   atomically (write, `fdatasync`, rename, directory sync) once the log has
//!   grown by `offsets_snapshot_bytes` (and by at least the size of the last
//!   snapshot), after which the log's sealed segments, all below that
//!   offset, are deleted. The log on disk therefore stays below about
//!   `offsets_snapshot_bytes` plus one segment, and startup reads the
//!   snapshot and replays only the log after it.
//!
//! Guarantees:
//!
//! - A commit is acknowledged only after it is durable (it survives a power
//!   cut), and only then becomes visible to [`OffsetStore::get`].
//! - Commits of one group are serialised (append, flush and the update of
//!   memory happen under one lock per group), so memory and the log always
//!   agree on the latest value of every key.
//! - Metadata is at most `offset_metadata_max_bytes` bytes and the store
//!   holds at most `max_committed_offsets` keys; commits over either limit
//!   are refused with a clear error code, before anything is written.
//! - All file I/O goes through the broker's [`FileSystem`], so fault
//!   injection and crash images cover it.
//!
//! Records written before keys were versioned (a bare postcard
//! `(group, topic, partition)` key, which never starts with a zero byte
//! because group names are never empty) are still read.
//!
//! Layout: `record` (the offsets log's keys and values), `snapshot` (the
//! snapshot file), `replay` (records back into state; the batch a commit
//! appends), `groups` (group metadata and a cluster coordinator's hand-over),
//! this file (the store and its committed offsets).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;

use crate::error::BrokerError;
use crate::log::io::{read_file, write_file_atomically};
use crate::log::{FileSystem, FlushPolicy, LogConfig, LogError, PartitionLog};

mod expiry;
mod groups;
mod record;
mod replay;
mod snapshot;
#[cfg(test)]
mod tests;

pub use expiry::Expired;
pub use record::{
    CHECKPOINT_VALUE_LEN, CheckpointMarker, KEY_CHECKPOINT, KEY_GROUP_METADATA, KEY_OFFSET_COMMIT,
    OFFSET_VALUE_VERSION, OffsetRecord, VALUE_VERSION, decode_record, encode_group_key, encode_key,
    encode_value,
};
use record::{Key, Value};
pub use replay::Replayed;
pub(crate) use replay::{encode_batch, next_batch};
pub use snapshot::{SNAPSHOT_HEADER_LEN, Snapshot};

/// Directory of the internal offsets log.
pub const OFFSETS_DIR: &str = "__consumer_offsets-0";
/// Name of the offsets snapshot file in the data directory.
pub const SNAPSHOT_FILE: &str = "__consumer_offsets.snapshot";
/// Commits of groups hashing to the same stripe are serialised.
const GROUP_STRIPES: usize = 64;

/// Limits of the offset store (from the broker settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetsConfig {
    /// Largest metadata string of one committed offset, in bytes.
    pub max_metadata_bytes: usize,
    /// Most `(group, topic, partition)` keys held.
    pub max_keys: usize,
    /// Bytes of offsets log after which a snapshot is written and the log
    /// below it deleted (at least the size of the previous snapshot).
    pub snapshot_bytes: u64,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        OffsetsConfig {
            max_metadata_bytes: 4096,
            max_keys: 100_000,
            snapshot_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct Committed {
    map: HashMap<Key, Value>,
    /// Each group's metadata value (key type 2).
    groups: HashMap<String, Vec<u8>>,
    /// New keys of commits in flight, counted against the limit.
    reserved: usize,
}

/// Committed offsets of every group. Thread-safe; commits are blocking.
#[derive(Debug)]
pub struct OffsetStore {
    fs: Arc<dyn FileSystem>,
    data_dir: PathBuf,
    log: PartitionLog,
    config: OffsetsConfig,
    committed: Mutex<Committed>,
    /// Shared by commits (from append to the update of memory), exclusive
    /// while a snapshot is taken or a topic forgotten.
    gate: RwLock<()>,
    /// One lock per stripe of group names: commits of a group are serialised.
    groups: Vec<Mutex<()>>,
    /// Size in bytes of the last snapshot written or read.
    snapshot_len: AtomicU64,
    /// Records replayed from the log at open (after the snapshot).
    replayed: u64,
    /// Cluster mode: where records go instead of the local log.
    replicated: OnceLock<Arc<dyn GroupLog>>,
    /// When the store was opened, or last loaded groups (cluster mode), in
    /// milliseconds since the Unix epoch: the earliest a key whose commit
    /// time is not known counts its age from (see `expiry`).
    opened_ms: AtomicI64,
}

/// Where a cluster writes group state instead of the local offsets log:
/// the partition of the replicated group-state topic that holds the group.
pub trait GroupLog: std::fmt::Debug + Send + Sync {
    /// Appends `group`'s `(key, value)` records as one batch and returns
    /// once a majority of the partition's replicas hold them durably.
    /// Blocking (called on the blocking pool). Fails, with nothing made
    /// visible, when this node does not lead (or has not loaded) the
    /// group's partition or the write is not committed in time.
    fn append(
        &self,
        group: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), BrokerError>;
}

/// The wall-clock time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    crate::log::partition::unix_millis(SystemTime::now())
}

fn store_error(code: ErrorCode, message: String) -> BrokerError {
    BrokerError::Request { code, message }
}

/// The refusal of a commit or a group past `max_keys` keys
/// (`max_committed_offsets`), logged as a warning at most once a minute
/// (with the count held back): the Kafka answers carry only the code, so
/// the log is where an operator learns why commits and new groups fail.
fn full_error(max_keys: usize) -> BrokerError {
    store_error(ErrorCode::TooManyCommittedOffsets, warn_full(max_keys))
}

/// The message of [`full_error`], logged as it says.
fn warn_full(max_keys: usize) -> String {
    static FULL: crate::throttle::Throttle =
        crate::throttle::Throttle::new(std::time::Duration::from_secs(60));
    let message = format!(
        "the broker holds the most committed offsets and groups it may ({max_keys}); \
         delete groups or topics, or raise max_committed_offsets"
    );
    if let Some(held_back) = FULL.allow() {
        tracing::warn!(
            held_back,
            "{message}: commits adding offsets and new groups are refused"
        );
    }
    message
}

impl OffsetStore {
    /// Opens the store in `data_dir` through `fs`: reads the snapshot, opens
    /// (recovering) the offsets log and replays it from the snapshot on.
    /// Blocking.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        config: OffsetsConfig,
    ) -> Result<Self, BrokerError> {
        let log_config = LogConfig {
            // Small segments, so that sealed ones can go after a snapshot.
            segment_bytes: (config.snapshot_bytes / 4).clamp(4096, 64 << 20),
            segment_age: None,
            retention_age: None,
            // Retention runs only right after a snapshot (see
            // `maybe_snapshot`); then it deletes every sealed segment.
            retention_bytes: Some(0),
            flush: FlushPolicy::BeforeAck,
            ..LogConfig::default()
        };
        let snapshot_path = data_dir.join(SNAPSHOT_FILE);
        let snapshot_bytes =
            read_file(&*fs, &snapshot_path).map_err(|e| LogError::io("read", &snapshot_path, e))?;
        let snapshot = match &snapshot_bytes {
            Some(b) => Snapshot::decode(b).map_err(|reason| LogError::Corrupt {
                path: snapshot_path.clone(),
                reason,
            })?,
            None => Snapshot::default(),
        };
        let log_dir = data_dir.join(OFFSETS_DIR);
        let (log, report) = PartitionLog::open_with(Arc::clone(&fs), log_dir.clone(), log_config)?;
        if let Some(reason) = report.offline {
            // An offline log would serve the committed offsets before the
            // damage as the latest and refuse every commit: consumers would
            // go back without a word. Like a damaged snapshot, the operator
            // must look.
            return Err(BrokerError::Log(LogError::Corrupt {
                path: log_dir,
                reason: format!(
                    "the offsets log is damaged ({reason}): starting would serve committed \
                     offsets older than those acknowledged. Repair or move away the damaged \
                     segment files (docs/durability.md, Recovery), or remove the directory \
                     and {SNAPSHOT_FILE} to start with no committed offsets"
                ),
            }));
        }
        let mut state = Replayed {
            offsets: snapshot.entries.into_iter().collect(),
            groups: snapshot.groups.into_iter().collect(),
            records: 0,
        };
        if log.log_start_offset() > snapshot.covers_to {
            // The log below its start was deleted only once a snapshot
            // covering it was in place: that snapshot is missing, or an
            // older one was put back. Starting would lose the offsets it
            // held without a word, as a damaged one would.
            let found = match &snapshot_bytes {
                Some(_) => format!("covers the log only up to offset {}", snapshot.covers_to),
                None => "is missing".to_owned(),
            };
            return Err(BrokerError::Log(LogError::Corrupt {
                path: snapshot_path,
                reason: format!(
                    "the offsets snapshot {found}, but the offsets log ({}) starts at offset {}: the committed offsets before it would be lost. Restore the snapshot, or remove both to start with no committed offsets",
                    data_dir.join(OFFSETS_DIR).display(),
                    log.log_start_offset()
                ),
            }));
        }
        let from = log.log_start_offset().max(snapshot.covers_to);
        state.replay(&log, from)?;
        let Replayed {
            offsets: map,
            groups,
            records: replayed,
        } = state;
        let store = OffsetStore {
            fs,
            data_dir: data_dir.to_owned(),
            config,
            committed: Mutex::new(Committed {
                map,
                groups,
                reserved: 0,
            }),
            gate: RwLock::new(()),
            groups: (0..GROUP_STRIPES).map(|_| Mutex::new(())).collect(),
            snapshot_len: AtomicU64::new(snapshot_bytes.as_ref().map_or(0, |b| b.len() as u64)),
            replayed,
            log,
            replicated: OnceLock::new(),
            opened_ms: AtomicI64::new(now_ms()),
        };
        if store.log.next_offset() < snapshot.covers_to {
            // The log lost records the snapshot covers (its directory was
            // removed): new records would get offsets the snapshot claims, so
            // cover the log as it is now.
            // Commits acknowledged after the snapshot are gone with it: said
            // as the loss it is, not as routine upkeep.
            tracing::error!(
                log_end = store.log.next_offset(),
                snapshot_covers_to = snapshot.covers_to,
                dir = OFFSETS_DIR,
                "offsets log is behind its snapshot (its directory was removed or emptied): \
                 offsets committed after the snapshot are lost; going on from the snapshot \
                 and writing a new one"
            );
            store.snapshot()?;
        }
        Ok(store)
    }

    /// Records replayed from the log when the store was opened (those after
    /// the snapshot).
    pub fn replayed_at_open(&self) -> u64 {
        self.replayed
    }

    /// Number of `(group, topic, partition)` keys held.
    pub fn len(&self) -> usize {
        self.committed.lock().map.len()
    }

    /// Whether no offsets are committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offsets log.
    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// The metadata limit, in bytes.
    pub fn max_metadata_bytes(&self) -> usize {
        self.config.max_metadata_bytes
    }

    fn group_lock(&self, group: &str) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        group.hash(&mut h);
        let i = (h.finish() % GROUP_STRIPES as u64) as usize;
        &self.groups[i]
    }

    /// Stores `entries` for `group` durably (one appended batch, then
    /// `fdatasync`), then makes them visible to [`OffsetStore::get`].
    /// Blocking. Refused with [`ErrorCode::OffsetMetadataTooLarge`] if any
    /// metadata is over the limit and with
    /// [`ErrorCode::TooManyCommittedOffsets`] if the new keys would exceed
    /// the key limit; nothing is stored then.
    pub fn commit(&self, group: &str, entries: &[CommitPartition]) -> Result<(), BrokerError> {
        self.commit_if(group, entries, |_| true, || Ok(()))
    }

    /// Asks `allowed` under `group`'s lock (see [`OffsetStore::commit_if`]).
    fn check_allowed(
        group: &str,
        allowed: impl Fn() -> Result<(), ErrorCode>,
    ) -> Result<(), BrokerError> {
        allowed().map_err(|code| {
            store_error(
                code,
                format!("the commit to group {group:?} is no longer allowed: {code}"),
            )
        })
    }

    /// [`OffsetStore::commit`], if every entry's topic still exists by
    /// `exists`, checked under the gate that [`OffsetStore::forget_topics`]
    /// takes exclusively: a commit racing a topic deletion either lands
    /// before the deletion forgets the topic's offsets (and is forgotten
    /// with them) or is refused with [`ErrorCode::UnknownTopicOrPartition`],
    /// so a re-created topic never inherits a stale offset. (Deletion
    /// unlists the topic before it forgets its offsets.) `allowed` is
    /// asked under the group's lock, which deleting the group takes too:
    /// a commit the group's coordinator fenced or whose group was deleted
    /// after an earlier check is refused with its code, never stored after
    /// a later commit or the deletion.
    pub fn commit_if(
        &self,
        group: &str,
        entries: &[CommitPartition],
        exists: impl Fn(&str) -> bool,
        allowed: impl Fn() -> Result<(), ErrorCode>,
    ) -> Result<(), BrokerError> {
        if entries.is_empty() {
            let _group = self.group_lock(group).lock();
            return Self::check_allowed(group, allowed);
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.metadata.len() > self.config.max_metadata_bytes)
        {
            return Err(store_error(
                ErrorCode::OffsetMetadataTooLarge,
                format!(
                    "metadata of {} bytes for {}-{} is over the limit of {} bytes",
                    e.metadata.len(),
                    e.topic,
                    e.partition,
                    self.config.max_metadata_bytes
                ),
            ));
        }
        {
            let _group = self.group_lock(group).lock();
            Self::check_allowed(group, &allowed)?;
            let _gate = self.gate.read();
            if let Some(e) = entries.iter().find(|e| !exists(&e.topic)) {
                return Err(store_error(
                    ErrorCode::UnknownTopicOrPartition,
                    format!(
                        "topic {:?} was deleted while its offsets were committed",
                        e.topic
                    ),
                ));
            }
            let new_keys = {
                let mut c = self.committed.lock();
                let new_keys = entries
                    .iter()
                    .filter(|e| {
                        !c.map
                            .contains_key(&(group.to_owned(), e.topic.clone(), e.partition))
                    })
                    .count();
                if c.map.len() + c.groups.len() + c.reserved + new_keys > self.config.max_keys {
                    return Err(full_error(self.config.max_keys));
                }
                c.reserved += new_keys;
                new_keys
            };
            let now = now_ms();
            let records: Vec<_> = entries
                .iter()
                .map(|e| {
                    (
                        encode_key(group, &e.topic, e.partition),
                        Some(encode_value(e.offset, &e.metadata, now)),
                    )
                })
                .collect();
            let written = self.append_durably(group, &records);
            let mut c = self.committed.lock();
            c.reserved -= new_keys;
            written?;
            for e in entries {
                c.map.insert(
                    (group.to_owned(), e.topic.clone(), e.partition),
                    (e.offset, e.metadata.clone(), now),
                );
            }
        }
        self.maybe_snapshot();
        Ok(())
    }

    /// Appends one batch of `group`'s `(key, value)` records and flushes
    /// it; in cluster mode, through the [`GroupLog`] instead.
    fn append_durably(
        &self,
        group: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), BrokerError> {
        if let Some(replicated) = self.replicated.get() {
            return replicated.append(group, records);
        }
        let mut batch = encode_batch(records);
        let info = self.log.append(&mut batch)?;
        self.log.flush_to(info.next_offset)?;
        Ok(())
    }

    /// Forgets the committed offsets of every topic for which `keep` is
    /// false (deleted topics): durably writes tombstones, then removes the
    /// keys from memory. Blocking.
    pub fn forget_topics(&self, keep: impl Fn(&str) -> bool) -> Result<usize, BrokerError> {
        let removed = {
            let _gate = self.gate.write();
            let doomed: Vec<Key> = self
                .committed
                .lock()
                .map
                .keys()
                .filter(|(_, t, _)| !keep(t))
                .cloned()
                .collect();
            if doomed.is_empty() {
                return Ok(0);
            }
            // One batch per group: in cluster mode each group's records go
            // to its own partition.
            let mut by_group: HashMap<&str, Vec<&Key>> = HashMap::new();
            for k in &doomed {
                by_group.entry(k.0.as_str()).or_default().push(k);
            }
            let mut removed = 0;
            let mut failed = None;
            for (group, keys) in by_group {
                let records: Vec<_> = keys
                    .iter()
                    .map(|(g, t, p)| (encode_key(g, t, *p), None))
                    .collect();
                match self.append_durably(group, &records) {
                    Ok(()) => {
                        let mut c = self.committed.lock();
                        for k in keys {
                            c.map.remove(k);
                        }
                        removed += records.len();
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            removed
        };
        tracing::info!(keys = removed, "forgot committed offsets of deleted topics");
        self.maybe_snapshot();
        Ok(removed)
    }

    /// Deletes `group`'s committed offsets of `partitions` (those it has):
    /// durably writes tombstones, then removes them from memory. Returns
    /// how many there were. Blocking.
    pub fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, u32)],
    ) -> Result<usize, BrokerError> {
        self.delete_offsets_if(group, partitions, || Ok(()))
    }

    /// [`OffsetStore::delete_offsets`] if `allowed`, asked under the
    /// group's lock (a commit clearing offsets, checked as
    /// [`OffsetStore::commit_if`] checks one storing them).
    pub fn delete_offsets_if(
        &self,
        group: &str,
        partitions: &[(String, u32)],
        allowed: impl Fn() -> Result<(), ErrorCode>,
    ) -> Result<usize, BrokerError> {
        let deleted = {
            let _group = self.group_lock(group).lock();
            Self::check_allowed(group, allowed)?;
            let _gate = self.gate.read();
            let mut doomed: Vec<Key> = {
                let c = self.committed.lock();
                partitions
                    .iter()
                    .map(|(t, p)| (group.to_owned(), t.clone(), *p))
                    .filter(|k| c.map.contains_key(k))
                    .collect()
            };
            doomed.sort();
            doomed.dedup();
            if doomed.is_empty() {
                return Ok(0);
            }
            let records: Vec<_> = doomed
                .iter()
                .map(|(g, t, p)| (encode_key(g, t, *p), None))
                .collect();
            self.append_durably(group, &records)?;
            let mut c = self.committed.lock();
            for k in &doomed {
                c.map.remove(k);
            }
            doomed.len()
        };
        self.maybe_snapshot();
        Ok(deleted)
    }

    /// Writes a snapshot if the log has grown enough since the last one.
    /// Failures are logged: the log still holds everything.
    fn maybe_snapshot(&self) {
        if self.replicated.get().is_some() {
            return;
        }
        let due = || {
            let threshold = self
                .config
                .snapshot_bytes
                .max(self.snapshot_len.load(Ordering::Relaxed));
            self.log.size_in_bytes() >= threshold && !self.log.is_offline()
        };
        if !due() {
            return;
        }
        let _gate = self.gate.write();
        if !due() {
            return;
        }
        if let Err(e) = self.snapshot_locked() {
            tracing::warn!(error = %e, "could not snapshot committed offsets");
        }
    }

    /// Writes a snapshot now and deletes the log it covers. Blocking.
    pub fn snapshot(&self) -> Result<(), BrokerError> {
        let _gate = self.gate.write();
        self.snapshot_locked()
    }

    /// With the gate held exclusively: no commit is between its append and
    /// its update of memory, so memory reflects every record below
    /// `next_offset`, all of them flushed.
    fn snapshot_locked(&self) -> Result<(), BrokerError> {
        let covers_to = self.log.next_offset();
        let mut entries: Vec<(Key, Value)> = self
            .committed
            .lock()
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries.sort();
        let mut groups: Vec<(String, Vec<u8>)> = self
            .committed
            .lock()
            .groups
            .iter()
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect();
        groups.sort();
        let bytes = Snapshot {
            covers_to,
            entries,
            groups,
        }
        .encode()
        .map_err(|m| store_error(ErrorCode::Unknown, m))?;
        write_file_atomically(&*self.fs, &self.data_dir, SNAPSHOT_FILE, &bytes)
            .map_err(|e| LogError::io("write", self.data_dir.join(SNAPSHOT_FILE), e))?;
        self.snapshot_len
            .store(bytes.len() as u64, Ordering::Relaxed);
        // Every sealed segment lies below `covers_to`.
        let outcome = self.log.retain(SystemTime::now())?;
        tracing::debug!(
            covers_to,
            segments_deleted = outcome.segments,
            "snapshot of committed offsets written"
        );
        Ok(())
    }

    /// The committed `(offset, metadata)` of a group's partition.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<(u64, String)> {
        self.committed
            .lock()
            .map
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .map(|(o, m, _)| (*o, m.clone()))
    }

    /// Every `(topic, partition, offset, metadata)` a group committed.
    pub fn group(&self, group: &str) -> Vec<(String, u32, u64, String)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .map
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), (o, m, _))| (t.clone(), *p, *o, m.clone()))
            .collect();
        out.sort();
        out
    }

    /// Every committed `(group, topic, partition, offset)`, sorted (at most
    /// `max_committed_offsets` entries).
    pub fn all(&self) -> Vec<(String, String, u32, u64)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .map
            .iter()
            .map(|((g, t, p), (o, _, _))| (g.clone(), t.clone(), *p, *o))
            .collect();
        out.sort();
        out
    }

    /// Shuts the internal log down cleanly.
    pub fn shutdown(&self) {
        if let Err(e) = self.log.shutdown() {
            tracing::error!(error = %e, "unclean shutdown of the offsets log");
        }
    }
}
