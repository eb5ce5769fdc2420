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

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;

use crate::error::BrokerError;
use crate::log::io::{read_file, write_file_atomically};
use crate::log::{FileSystem, FlushPolicy, LogConfig, LogError, PartitionLog};

/// Directory of the internal offsets log.
pub const OFFSETS_DIR: &str = "__consumer_offsets-0";
/// Name of the offsets snapshot file in the data directory.
pub const SNAPSHOT_FILE: &str = "__consumer_offsets.snapshot";
/// Key type of an offset commit record (big-endian `u16` at the start of
/// the key). Type 0 is never used: legacy keys are told apart by their
/// nonzero first byte.
pub const KEY_OFFSET_COMMIT: u16 = 1;
/// Key type of a group metadata record: the key is this `u16` BE, then the
/// postcard group name; the value is opaque here (the group coordinator's
/// versioned [`crate::group::record::GroupRecord`]).
pub const KEY_GROUP_METADATA: u16 = 2;
/// Key type of a checkpoint marker (group-state topic of a cluster only):
/// the key is this `u16` BE alone; the value is a [`CheckpointMarker`]. It
/// starts each batch of a checkpoint, which restates the live state of a
/// group-state partition (`replication::group_checkpoint`).
pub const KEY_CHECKPOINT: u16 = 3;
/// Version of the offset commit value layout (big-endian `u16` at the start
/// of the value).
pub const VALUE_VERSION: u16 = 1;

const SNAPSHOT_MAGIC: [u8; 4] = *b"SLOF";
/// Version 2 may hold group metadata entries; version 1 (offsets only) is
/// still read.
const SNAPSHOT_VERSION: u16 = 2;
/// Length of the snapshot header.
pub const SNAPSHOT_HEADER_LEN: usize = 32;
/// Commits of groups hashing to the same stripe are serialised.
const GROUP_STRIPES: usize = 64;

type Key = (String, String, u32);
type Value = (u64, String);

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

/// Encodes the log record key of an offset commit: `u16` BE
/// [`KEY_OFFSET_COMMIT`], then postcard `(group, topic, partition)`.
pub fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let out = KEY_OFFSET_COMMIT.to_be_bytes().to_vec();
    // Encoding strings and integers into a Vec cannot fail.
    postcard::to_extend(&(group, topic, partition), out).unwrap_or_default()
}

/// Encodes the log record value of an offset commit: `u16` BE
/// [`VALUE_VERSION`], then postcard `(offset, metadata)`.
pub fn encode_value(offset: u64, metadata: &str) -> Vec<u8> {
    let out = VALUE_VERSION.to_be_bytes().to_vec();
    postcard::to_extend(&(offset, metadata), out).unwrap_or_default()
}

/// Encodes the log record key of a group's metadata: `u16` BE
/// [`KEY_GROUP_METADATA`], then postcard `group`.
pub fn encode_group_key(group: &str) -> Vec<u8> {
    let out = KEY_GROUP_METADATA.to_be_bytes().to_vec();
    postcard::to_extend(&group, out).unwrap_or_default()
}

/// The value of a checkpoint marker record (key type [`KEY_CHECKPOINT`]):
/// which checkpoint its batch belongs to, and which part of it the batch
/// is. A checkpoint is complete once parts `0..parts` of one `(term,
/// started_at)` were all read, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMarker {
    /// Raft term (leader epoch) of the coordinator that wrote it.
    pub term: u64,
    /// The partition's high watermark when the checkpoint was started.
    pub started_at: u64,
    /// This batch's part number, from 0.
    pub part: u32,
    /// Number of parts (batches) of the checkpoint, at least 1.
    pub parts: u32,
}

/// Length of an encoded [`CheckpointMarker`] value.
pub const CHECKPOINT_VALUE_LEN: usize = 26;

impl CheckpointMarker {
    /// The record key: `u16` BE [`KEY_CHECKPOINT`].
    pub fn key() -> Vec<u8> {
        KEY_CHECKPOINT.to_be_bytes().to_vec()
    }

    /// The record value, [`CHECKPOINT_VALUE_LEN`] bytes, big-endian: `u16`
    /// version 1, `u64` term, `u64` started_at, `u32` part, `u32` parts.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_VALUE_LEN);
        out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.started_at.to_be_bytes());
        out.extend_from_slice(&self.part.to_be_bytes());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out
    }

    /// Decodes a value written by [`CheckpointMarker::encode`].
    pub fn decode(value: &[u8]) -> Result<CheckpointMarker, String> {
        let v: &[u8; CHECKPOINT_VALUE_LEN] = value
            .try_into()
            .map_err(|_| format!("checkpoint marker value of {} bytes", value.len()))?;
        let (version, rest) = v.split_at(2);
        if version != VALUE_VERSION.to_be_bytes() {
            return Err(format!("checkpoint marker version {version:?}"));
        }
        let (term, rest) = rest.split_at(8);
        let (started_at, rest) = rest.split_at(8);
        let (part, parts) = rest.split_at(4);
        let be64 = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let be32 = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or_default());
        let marker = CheckpointMarker {
            term: be64(term),
            started_at: be64(started_at),
            part: be32(part),
            parts: be32(parts),
        };
        if marker.parts == 0 || marker.part >= marker.parts {
            return Err(format!(
                "checkpoint marker part {} of {}",
                marker.part, marker.parts
            ));
        }
        Ok(marker)
    }
}

/// What one offsets-log record means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    /// The key's latest value (`None`: a tombstone, the key is forgotten).
    Commit(Key, Option<Value>),
    /// A group's metadata value (opaque here), or `None`: the group was
    /// deleted.
    Group(String, Option<Vec<u8>>),
    /// A checkpoint marker: the records after it in its batch restate the
    /// live state (replaying changes nothing).
    Checkpoint(CheckpointMarker),
    /// A key type this build does not know (written by a newer broker):
    /// skipped.
    Unknown(u16),
}

/// Decodes a log record (key, value) written by [`encode_key`] and
/// [`encode_value`] or by the unversioned format before them.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<OffsetRecord, String> {
    let (key, value) = match key {
        [0, t0, rest @ ..] => {
            let kind = u16::from_be_bytes([0, *t0]);
            if kind == KEY_CHECKPOINT {
                if !rest.is_empty() {
                    return Err(format!("checkpoint key of {} bytes", key.len()));
                }
                let value = value.ok_or("checkpoint marker without a value")?;
                return CheckpointMarker::decode(value).map(OffsetRecord::Checkpoint);
            }
            if kind == KEY_GROUP_METADATA {
                let group: String =
                    postcard::from_bytes(rest).map_err(|e| format!("group metadata key: {e}"))?;
                return Ok(OffsetRecord::Group(group, value.map(<[u8]>::to_vec)));
            }
            if kind != KEY_OFFSET_COMMIT {
                return Ok(OffsetRecord::Unknown(kind));
            }
            let key: Key =
                postcard::from_bytes(rest).map_err(|e| format!("offset commit key: {e}"))?;
            let value = match value {
                None => None,
                Some([v0, v1, rest @ ..]) => {
                    let version = u16::from_be_bytes([*v0, *v1]);
                    if version != VALUE_VERSION {
                        return Err(format!("offset commit value version {version}"));
                    }
                    Some(
                        postcard::from_bytes::<Value>(rest)
                            .map_err(|e| format!("offset commit value: {e}"))?,
                    )
                }
                Some(v) => return Err(format!("offset commit value of {} bytes", v.len())),
            };
            (key, value)
        }
        [0, ..] | [] => return Err(format!("offset record key of {} bytes", key.len())),
        legacy => {
            let key: Key = postcard::from_bytes(legacy).map_err(|e| format!("legacy key: {e}"))?;
            let value = value
                .map(postcard::from_bytes::<Value>)
                .transpose()
                .map_err(|e| format!("legacy value: {e}"))?;
            (key, value)
        }
    };
    Ok(OffsetRecord::Commit(key, value))
}

/// The content of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Every offsets-log record below this offset is reflected in `entries`.
    pub covers_to: u64,
    /// Every live key with its latest value.
    pub entries: Vec<(Key, Value)>,
    /// Every group's metadata value (key type 2).
    pub groups: Vec<(String, Vec<u8>)>,
}

impl Snapshot {
    /// Encodes as a 32-byte header — magic `SLOF`, `u16` version 2, `u16`
    /// zero, `u64` covers-to offset, `u32` entry count, `u32` body length,
    /// `u32` zero, `u32` CRC-32 (IEEE) of header bytes 0..28 followed by the
    /// body; big-endian — then the body: per entry `u32` key length, key
    /// ([`encode_key`] or [`encode_group_key`]), `u32` value length, value
    /// ([`encode_value`] or the group's metadata). Offset entries come
    /// first, then group entries.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        let mut put = |part: &[u8]| -> Result<(), String> {
            let len = u32::try_from(part.len()).map_err(|_| "entry too large")?;
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(part);
            Ok(())
        };
        for ((g, t, p), (o, m)) in &self.entries {
            put(&encode_key(g, t, *p))?;
            put(&encode_value(*o, m))?;
        }
        for (g, value) in &self.groups {
            put(&encode_group_key(g))?;
            put(value)?;
        }
        let count = u32::try_from(self.entries.len() + self.groups.len())
            .map_err(|_| "too many entries")?;
        let body_len = u32::try_from(body.len()).map_err(|_| "snapshot over 4 GiB")?;
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + body.len());
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.covers_to.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&body_len.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out);
        crc.update(&body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes and verifies bytes written by [`Snapshot::encode`].
    pub fn decode(buf: &[u8]) -> Result<Snapshot, String> {
        let (header, body) = buf
            .split_at_checked(SNAPSHOT_HEADER_LEN)
            .ok_or_else(|| format!("snapshot of {} bytes is shorter than its header", buf.len()))?;
        let be32 = |at: usize| -> u32 {
            let mut b = [0u8; 4];
            b.copy_from_slice(header.get(at..at + 4).unwrap_or(&[0; 4]));
            u32::from_be_bytes(b)
        };
        if header.get(0..4) != Some(&SNAPSHOT_MAGIC[..]) {
            return Err("snapshot magic is not \"SLOF\"".into());
        }
        let version = (be32(4) >> 16) as u16;
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(format!(
                "snapshot version {version} is not supported (this build reads {SNAPSHOT_VERSION})"
            ));
        }
        let stored = be32(28);
        let mut crc = crc32fast::Hasher::new();
        crc.update(header.get(0..28).unwrap_or_default());
        crc.update(body);
        let computed = crc.finalize();
        if stored != computed {
            return Err(format!(
                "snapshot CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        if be32(4) & 0xFFFF != 0 || be32(24) != 0 {
            return Err("snapshot reserved bytes are not zero".into());
        }
        let covers_to = (u64::from(be32(8)) << 32) | u64::from(be32(12));
        let count = be32(16) as usize;
        if be32(20) as usize != body.len() {
            return Err(format!(
                "snapshot body is {} bytes, header says {}",
                body.len(),
                be32(20)
            ));
        }
        let mut rest = body;
        let mut take = || -> Result<&[u8], String> {
            let (len, tail) = rest.split_at_checked(4).ok_or("truncated entry")?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (part, tail) = tail.split_at_checked(len).ok_or("truncated entry")?;
            rest = tail;
            Ok(part)
        };
        // At least 8 length bytes per entry: a lying count cannot allocate.
        let mut entries = Vec::with_capacity(count.min(body.len() / 8));
        let mut groups = Vec::new();
        for _ in 0..count {
            let key = take()?;
            let value = take()?;
            match decode_record(key, Some(value))? {
                OffsetRecord::Commit(k, Some(v)) if groups.is_empty() => entries.push((k, v)),
                OffsetRecord::Group(g, Some(v)) if version >= 2 => groups.push((g, v)),
                OffsetRecord::Commit(..)
                | OffsetRecord::Group(..)
                | OffsetRecord::Checkpoint(_)
                | OffsetRecord::Unknown(_) => {
                    return Err("snapshot entry of an unexpected type".into());
                }
            }
        }
        if !rest.is_empty() {
            return Err("bytes after the last snapshot entry".into());
        }
        Ok(Snapshot {
            covers_to,
            entries,
            groups,
        })
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
}

/// One record batch of `(key, value)` records (a `None` value is a
/// tombstone), stamped with the current wall-clock time: what the offsets
/// log, local or replicated, appends per commit.
pub(crate) fn encode_batch(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> bytes::BytesMut {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut builder = BatchBuilder::new();
    for (key, value) in records {
        builder.push(&NewRecord {
            timestamp: now,
            key: Some(key),
            value: value.as_deref(),
            headers: &[],
        });
    }
    builder.finish()
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

/// Group state rebuilt from offsets-log records: the latest value of each
/// key, tombstones applied.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Committed `(group, topic, partition) -> (offset, metadata)`.
    pub offsets: HashMap<(String, String, u32), (u64, String)>,
    /// Each group's metadata value (key type 2).
    pub groups: HashMap<String, Vec<u8>>,
    /// Records read.
    pub records: u64,
}

impl Replayed {
    /// Applies one record (the latest record of a key wins; a record
    /// without a value removes the key); undecodable records and unknown
    /// key types are skipped with a warning.
    pub fn apply(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
        match decode_record(key, value) {
            Ok(OffsetRecord::Commit(key, Some(value))) => {
                self.offsets.insert(key, value);
            }
            Ok(OffsetRecord::Commit(key, None)) => {
                self.offsets.remove(&key);
            }
            Ok(OffsetRecord::Group(group, Some(value))) => {
                self.groups.insert(group, value);
            }
            Ok(OffsetRecord::Group(group, None)) => {
                self.groups.remove(&group);
            }
            // Restates what the records before it left: nothing to do.
            Ok(OffsetRecord::Checkpoint(_)) => {}
            Ok(OffsetRecord::Unknown(kind)) => {
                tracing::warn!(offset, kind, "skipping offsets record of an unknown type")
            }
            Err(reason) => tracing::warn!(offset, reason, "skipping undecodable offsets record"),
        }
    }

    /// Applies every record of `log` from offset `from` up to its high
    /// watermark. Blocking (reads files).
    pub fn replay(&mut self, log: &PartitionLog, from: u64) -> Result<(), BrokerError> {
        let mut offset = from;
        while offset < log.high_watermark() {
            let slice = log.read(offset, 8 << 20)?;
            if slice.len == 0 {
                break;
            }
            let mut bytes = slice
                .read_bytes()
                .map_err(|e| LogError::io("read", log.dir(), e))?;
            while !bytes.is_empty() {
                let Ok(batch) = RecordBatch::split_first(&mut bytes) else {
                    break;
                };
                for record in batch.records().flatten() {
                    if (record.offset as u64) < offset {
                        continue;
                    }
                    match record.key {
                        Some(k) => self.apply(record.offset, &k, record.value.as_deref()),
                        None => self.records += 1,
                    }
                }
            }
            if slice.next_offset <= offset {
                break;
            }
            offset = slice.next_offset;
        }
        Ok(())
    }
}

fn store_error(code: ErrorCode, message: String) -> BrokerError {
    BrokerError::Request { code, message }
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
        let (log, _) =
            PartitionLog::open_with(Arc::clone(&fs), data_dir.join(OFFSETS_DIR), log_config)?;
        let mut state = Replayed {
            offsets: snapshot.entries.into_iter().collect(),
            groups: snapshot.groups.into_iter().collect(),
            records: 0,
        };
        if log.log_start_offset() > snapshot.covers_to {
            tracing::error!(
                log_start = log.log_start_offset(),
                snapshot = snapshot.covers_to,
                "offsets log starts after the snapshot ends: commits in between are lost"
            );
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
        };
        if store.log.next_offset() < snapshot.covers_to {
            // The log lost records the snapshot covers (its directory was
            // removed): new records would get offsets the snapshot claims, so
            // cover the log as it is now.
            tracing::warn!("offsets log is behind its snapshot; writing a new snapshot");
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
        self.commit_if(group, entries, |_| true)
    }

    /// [`OffsetStore::commit`], if every entry's topic still exists by
    /// `exists`, checked under the gate that [`OffsetStore::forget_topics`]
    /// takes exclusively: a commit racing a topic deletion either lands
    /// before the deletion forgets the topic's offsets (and is forgotten
    /// with them) or is refused with [`ErrorCode::UnknownTopicOrPartition`],
    /// so a re-created topic never inherits a stale offset. (Deletion
    /// unlists the topic before it forgets its offsets.)
    pub fn commit_if(
        &self,
        group: &str,
        entries: &[CommitPartition],
        exists: impl Fn(&str) -> bool,
    ) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
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
                    return Err(store_error(
                        ErrorCode::TooManyCommittedOffsets,
                        format!(
                            "the broker holds the most committed offsets it may ({}); \
                             delete topics or raise max_committed_offsets",
                            self.config.max_keys
                        ),
                    ));
                }
                c.reserved += new_keys;
                new_keys
            };
            let records: Vec<_> = entries
                .iter()
                .map(|e| {
                    (
                        encode_key(group, &e.topic, e.partition),
                        Some(encode_value(e.offset, &e.metadata)),
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
                    (e.offset, e.metadata.clone()),
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
            .cloned()
    }

    /// Every `(topic, partition, offset, metadata)` a group committed.
    pub fn group(&self, group: &str) -> Vec<(String, u32, u64, String)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .map
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), (o, m))| (t.clone(), *p, *o, m.clone()))
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
            .map(|((g, t, p), (o, _))| (g.clone(), t.clone(), *p, *o))
            .collect();
        out.sort();
        out
    }

    /// Durably stores a group's metadata value (`Some`) or its tombstone
    /// (`None`), then makes it visible to [`OffsetStore::group_records`].
    /// Blocking. A new group counts against `max_committed_offsets`
    /// ([`ErrorCode::TooManyCommittedOffsets`]).
    pub fn store_group(&self, group: &str, value: Option<Vec<u8>>) -> Result<(), BrokerError> {
        {
            let _group = self.group_lock(group).lock();
            let _gate = self.gate.read();
            {
                let c = self.committed.lock();
                let known = c.groups.contains_key(group);
                if value.is_none() && !known {
                    return Ok(());
                }
                if value.is_some()
                    && !known
                    && c.map.len() + c.groups.len() + c.reserved >= self.config.max_keys
                {
                    return Err(store_error(
                        ErrorCode::TooManyCommittedOffsets,
                        format!(
                            "the broker holds the most committed offsets and groups it may ({})",
                            self.config.max_keys
                        ),
                    ));
                }
            }
            self.append_durably(group, &[(encode_group_key(group), value.clone())])?;
            let mut c = self.committed.lock();
            match value {
                Some(v) => c.groups.insert(group.to_owned(), v),
                None => c.groups.remove(group),
            };
        }
        self.maybe_snapshot();
        Ok(())
    }

    /// Deletes a group: durably writes tombstones for its metadata and
    /// every offset it committed (one batch), then forgets them. Returns
    /// whether there was anything to delete. Blocking.
    pub fn delete_group(&self, group: &str) -> Result<bool, BrokerError> {
        {
            let _group = self.group_lock(group).lock();
            let _gate = self.gate.read();
            let (keys, had_meta) = {
                let c = self.committed.lock();
                let keys: Vec<Key> = c
                    .map
                    .keys()
                    .filter(|(g, _, _)| g == group)
                    .cloned()
                    .collect();
                (keys, c.groups.contains_key(group))
            };
            if keys.is_empty() && !had_meta {
                return Ok(false);
            }
            let mut records: Vec<_> = keys
                .iter()
                .map(|(g, t, p)| (encode_key(g, t, *p), None))
                .collect();
            if had_meta {
                records.push((encode_group_key(group), None));
            }
            self.append_durably(group, &records)?;
            let mut c = self.committed.lock();
            for k in &keys {
                c.map.remove(k);
            }
            c.groups.remove(group);
        }
        self.maybe_snapshot();
        Ok(true)
    }

    /// Every group's stored metadata value, sorted by group name.
    pub fn group_records(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .groups
            .iter()
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect();
        out.sort();
        out
    }

    /// Whether `group` has committed offsets or stored metadata.
    pub fn has_group(&self, group: &str) -> bool {
        let c = self.committed.lock();
        c.groups.contains_key(group) || c.map.keys().any(|(g, _, _)| g == group)
    }

    /// Names of the groups that have committed offsets, sorted.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .committed
            .lock()
            .map
            .keys()
            .map(|(g, _, _)| g.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Cluster mode, set once before any client is served: records go
    /// through `log` from now on, and what the local offsets log held is
    /// forgotten (not used in a cluster). Memory then holds only the groups
    /// that [`OffsetStore::replace_groups`] loads.
    pub fn use_replicated(&self, log: Arc<dyn GroupLog>) {
        let _gate = self.gate.write();
        if self.replicated.set(log).is_ok() {
            let mut c = self.committed.lock();
            c.map.clear();
            c.groups.clear();
        }
    }

    /// Replaces the offsets and metadata of every group `owned` selects
    /// with `state` (a coordinator that loaded a group-state partition).
    /// Memory only; waits for commits between append and update.
    pub fn replace_groups(&self, owned: impl Fn(&str) -> bool, state: Replayed) {
        let _gate = self.gate.write();
        let mut c = self.committed.lock();
        c.map.retain(|(g, _, _), _| !owned(g));
        c.groups.retain(|g, _| !owned(g));
        c.map
            .extend(state.offsets.into_iter().filter(|((g, _, _), _)| owned(g)));
        c.groups
            .extend(state.groups.into_iter().filter(|(g, _)| owned(g)));
    }

    /// Cluster mode, for a checkpoint of a group-state partition: calls
    /// `write` with the live state of every group `owned` selects, as
    /// offsets-log records (offsets sorted by key, then group records
    /// sorted by group; no tombstones), while holding the gate exclusively.
    /// No commit, group record, group deletion or topic forgetting is
    /// between its log append and its update of memory meanwhile, so the
    /// records are exactly the latest value of every live key in the log
    /// as far as this node wrote it, and nothing is written while `write`
    /// runs. Blocking.
    pub fn with_live_state<T>(
        &self,
        owned: impl Fn(&str) -> bool,
        write: impl FnOnce(Vec<(Vec<u8>, Option<Vec<u8>>)>) -> T,
    ) -> T {
        let _gate = self.gate.write();
        let records = {
            let c = self.committed.lock();
            let mut offsets: Vec<(&Key, &Value)> =
                c.map.iter().filter(|((g, _, _), _)| owned(g)).collect();
            offsets.sort();
            let mut groups: Vec<(&String, &Vec<u8>)> =
                c.groups.iter().filter(|(g, _)| owned(g)).collect();
            groups.sort();
            offsets
                .into_iter()
                .map(|((g, t, p), (o, m))| (encode_key(g, t, *p), Some(encode_value(*o, m))))
                .chain(
                    groups
                        .into_iter()
                        .map(|(g, v)| (encode_group_key(g), Some(v.clone()))),
                )
                .collect()
        };
        write(records)
    }

    /// Forgets, in memory only, every group `owned` selects (a coordinator
    /// that stopped leading their partition).
    pub fn drop_groups(&self, owned: impl Fn(&str) -> bool) {
        self.replace_groups(owned, Replayed::default());
    }

    /// Shuts the internal log down cleanly.
    pub fn shutdown(&self) {
        if let Err(e) = self.log.shutdown() {
            tracing::error!(error = %e, "unclean shutdown of the offsets log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::StdFs;

    fn entry(topic: &str, partition: u32, offset: u64) -> CommitPartition {
        CommitPartition {
            topic: topic.into(),
            partition,
            offset,
            metadata: format!("m{offset}"),
        }
    }

    fn open(dir: &Path, config: OffsetsConfig) -> OffsetStore {
        OffsetStore::open(Arc::new(StdFs), dir, config).unwrap()
    }

    /// Bytes of `.log` files in the offsets log directory.
    fn log_bytes_on_disk(dir: &Path) -> u64 {
        std::fs::read_dir(dir.join(OFFSETS_DIR))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn commits_survive_reopen_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), OffsetsConfig::default());
        store
            .commit("g1", &[entry("t", 0, 5), entry("t", 1, 7)])
            .unwrap();
        store.commit("g1", &[entry("t", 0, 9)]).unwrap();
        store.commit("g2", &[entry("t", 0, 1)]).unwrap();
        assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
        drop(store); // crash: no clean shutdown
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
        assert_eq!(store.get("g1", "t", 1), Some((7, "m7".into())));
        assert_eq!(store.get("g2", "t", 0), Some((1, "m1".into())));
        assert_eq!(store.get("g3", "t", 0), None);
        assert_eq!(store.group("g1").len(), 2);
    }

    /// Records written before keys were versioned (bare postcard key and
    /// value) still load, and newer records override them.
    #[test]
    fn unversioned_records_still_load() {
        let dir = tempfile::tempdir().unwrap();
        {
            let config = LogConfig {
                flush: FlushPolicy::BeforeAck,
                ..LogConfig::default()
            };
            let (log, _) = PartitionLog::open(dir.path().join(OFFSETS_DIR), config).unwrap();
            let mut b = BatchBuilder::new();
            let records = [(("g", "t", 0u32), (3u64, "old")), (("g", "t", 1), (4, "x"))];
            let encoded: Vec<_> = records
                .iter()
                .map(|(k, v)| {
                    (
                        postcard::to_stdvec(k).unwrap(),
                        postcard::to_stdvec(v).unwrap(),
                    )
                })
                .collect();
            for (k, v) in &encoded {
                b.push(&NewRecord {
                    timestamp: 1,
                    key: Some(k),
                    value: Some(v),
                    headers: &[],
                });
            }
            let mut batch = b.finish();
            let info = log.append(&mut batch).unwrap();
            log.flush_to(info.next_offset).unwrap();
        }
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.get("g", "t", 0), Some((3, "old".into())));
        store.commit("g", &[entry("t", 0, 8)]).unwrap();
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.get("g", "t", 0), Some((8, "m8".into())));
        assert_eq!(store.get("g", "t", 1), Some((4, "x".into())));
    }

    #[test]
    fn record_layout_known_bytes_and_round_trip() {
        let key = encode_key("g", "tp", 7);
        assert_eq!(key, [0, 1, 1, b'g', 2, b't', b'p', 7]);
        let value = encode_value(300, "m");
        assert_eq!(value, [0, 1, 0xAC, 0x02, 1, b'm']);
        assert_eq!(
            decode_record(&key, Some(&value)),
            Ok(OffsetRecord::Commit(
                ("g".into(), "tp".into(), 7),
                Some((300, "m".into()))
            ))
        );
        assert_eq!(
            decode_record(&key, None),
            Ok(OffsetRecord::Commit(("g".into(), "tp".into(), 7), None))
        );
        assert_eq!(
            decode_record(&[0, 9, 9, 9], Some(b"whatever")),
            Ok(OffsetRecord::Unknown(9))
        );
        let group_key = encode_group_key("g");
        assert_eq!(group_key, [0, 2, 1, b'g']);
        assert_eq!(
            decode_record(&group_key, Some(b"\x00\x01opaque")),
            Ok(OffsetRecord::Group(
                "g".into(),
                Some(b"\x00\x01opaque".to_vec())
            ))
        );
        assert_eq!(
            decode_record(&group_key, None),
            Ok(OffsetRecord::Group("g".into(), None))
        );
        assert!(decode_record(&[0, 2, 9, 9], None).is_err());
        assert!(decode_record(&[], None).is_err());
        assert!(decode_record(&key, Some(&[0, 9, 1, 1])).is_err());
    }

    /// The checkpoint marker layout of docs/storage-format.md.
    #[test]
    fn checkpoint_marker_layout_known_bytes_and_round_trip() {
        let marker = CheckpointMarker {
            term: 5,
            started_at: 0x0102_0304_0506_0708,
            part: 1,
            parts: 3,
        };
        assert_eq!(CheckpointMarker::key(), [0, 3]);
        let value = marker.encode();
        assert_eq!(
            value,
            [
                0, 1, // version
                0, 0, 0, 0, 0, 0, 0, 5, // term
                1, 2, 3, 4, 5, 6, 7, 8, // started_at
                0, 0, 0, 1, // part
                0, 0, 0, 3, // parts
            ]
        );
        assert_eq!(value.len(), CHECKPOINT_VALUE_LEN);
        assert_eq!(
            decode_record(&CheckpointMarker::key(), Some(&value)),
            Ok(OffsetRecord::Checkpoint(marker))
        );
        for len in 0..value.len() {
            assert!(
                decode_record(&[0, 3], Some(&value[..len])).is_err(),
                "cut at {len}"
            );
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(decode_record(&[0, 3], Some(&longer)).is_err());
        assert!(
            decode_record(&[0, 3], None).is_err(),
            "a marker has a value"
        );
        assert!(decode_record(&[0, 3, 0], Some(&value)).is_err());
        let mut version = value.clone();
        version[1] = 2;
        assert!(decode_record(&[0, 3], Some(&version)).is_err());
        let mut past = value.clone();
        past[21] = 3; // part 3 of 3
        assert!(decode_record(&[0, 3], Some(&past)).is_err());
        // Replaying a marker changes nothing.
        let mut state = Replayed::default();
        state.apply(0, &encode_key("g", "t", 0), Some(&encode_value(4, "")));
        state.apply(1, &CheckpointMarker::key(), Some(&value));
        assert_eq!(state.offsets.len(), 1);
        assert_eq!(state.records, 2);
    }

    #[test]
    fn snapshot_round_trips_and_rejects_damage() {
        let snap = Snapshot {
            covers_to: 0x0102_0304_0506_0708,
            entries: vec![
                (("g".into(), "t".into(), 0), (5, String::new())),
                (("g2".into(), "t".into(), 3), (9, "x".repeat(4096))),
            ],
            groups: vec![("g".into(), vec![0, 1, 7])],
        };
        let bytes = snap.encode().unwrap();
        assert_eq!(&bytes[0..8], b"SLOF\x00\x02\x00\x00");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 3]);
        // The group entry is last: key length, key, value length, value.
        assert_eq!(
            &bytes[bytes.len() - 15..],
            &[0, 0, 0, 4, 0, 2, 1, b'g', 0, 0, 0, 3, 0, 1, 7]
        );
        assert_eq!(
            u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize,
            bytes.len() - SNAPSHOT_HEADER_LEN
        );
        assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
        let empty = Snapshot::default();
        assert_eq!(Snapshot::decode(&empty.encode().unwrap()).unwrap(), empty);
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x41;
            assert!(Snapshot::decode(&bad).is_err(), "flip at {at}");
        }
        for len in 0..bytes.len() {
            assert!(Snapshot::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
    }

    /// A version 1 snapshot (offsets only, from before group metadata) is
    /// still read; group entries in it, or offsets after group entries, are
    /// refused.
    #[test]
    fn version_1_snapshots_still_load() {
        let with_crc = |mut bytes: Vec<u8>| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&bytes[..28]);
            crc.update(&bytes[32..]);
            bytes[28..32].copy_from_slice(&crc.finalize().to_be_bytes());
            bytes
        };
        let offsets_only = Snapshot {
            covers_to: 9,
            entries: vec![(("g".into(), "t".into(), 0), (5, String::new()))],
            groups: vec![],
        };
        let mut v1 = offsets_only.encode().unwrap();
        v1[5] = 1;
        assert_eq!(Snapshot::decode(&with_crc(v1)), Ok(offsets_only.clone()));
        let mut with_group = offsets_only.clone();
        with_group.groups.push(("g".into(), vec![0, 1]));
        let mut v1 = with_group.encode().unwrap();
        v1[5] = 1;
        assert!(Snapshot::decode(&with_crc(v1)).is_err());
    }

    #[test]
    fn group_metadata_survives_reopen_and_snapshots_and_is_deleted_with_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), OffsetsConfig::default());
        store.store_group("g", Some(vec![0, 1, 1])).unwrap();
        store.store_group("g", Some(vec![0, 1, 2])).unwrap();
        store.store_group("h", Some(vec![0, 1, 3])).unwrap();
        store.commit("g", &[entry("t", 0, 5)]).unwrap();
        store.commit("k", &[entry("t", 0, 6)]).unwrap();
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(
            store.group_records(),
            [("g".into(), vec![0, 1, 2]), ("h".into(), vec![0, 1, 3])]
        );
        assert!(store.has_group("k") && store.has_group("h") && !store.has_group("z"));
        assert!(store.delete_group("g").unwrap());
        assert!(!store.delete_group("g").unwrap(), "nothing left to delete");
        assert_eq!(store.get("g", "t", 0), None);
        store.snapshot().unwrap();
        store.store_group("h", None).unwrap();
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert!(store.group_records().is_empty());
        assert!(!store.has_group("g"));
        assert_eq!(store.get("k", "t", 0), Some((6, "m6".into())));
        assert_eq!(store.groups_with_offsets(), ["k"]);
        // In the snapshot too.
        store.store_group("s", Some(vec![0, 1, 9])).unwrap();
        store.snapshot().unwrap();
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.replayed_at_open(), 0);
        assert_eq!(store.group_records(), [("s".into(), vec![0, 1, 9])]);
    }

    #[test]
    fn oversized_metadata_and_too_many_keys_are_refused_unstored() {
        let dir = tempfile::tempdir().unwrap();
        let config = OffsetsConfig {
            max_keys: 3,
            ..OffsetsConfig::default()
        };
        let store = open(dir.path(), config);
        let mut big = entry("t", 0, 1);
        big.metadata = "x".repeat(4097);
        let err = store.commit("g", &[entry("t", 1, 1), big]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OffsetMetadataTooLarge);
        assert_eq!(
            store.get("g", "t", 1),
            None,
            "nothing of the request stored"
        );
        let mut fits = entry("t", 0, 1);
        fits.metadata = "x".repeat(4096);
        store.commit("g", &[fits, entry("t", 1, 1)]).unwrap();
        store.commit("g", &[entry("t", 2, 1)]).unwrap();
        let err = store.commit("h", &[entry("t", 0, 1)]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TooManyCommittedOffsets);
        // Updating keys already held is still allowed at the limit.
        store.commit("g", &[entry("t", 2, 5)]).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.log().next_offset(),
            4,
            "refused commits wrote nothing"
        );
    }

    /// Many commits: the log on disk stays bounded by the snapshot
    /// threshold, startup replays only the log after the snapshot, and
    /// every latest value survives restart.
    #[test]
    fn snapshots_bound_the_log_and_startup_replay() {
        let dir = tempfile::tempdir().unwrap();
        let config = OffsetsConfig {
            snapshot_bytes: 16 << 10,
            ..OffsetsConfig::default()
        };
        let store = open(dir.path(), config);
        let commits = 3000u64;
        for i in 0..commits {
            let group = format!("g{}", i % 7);
            store
                .commit(&group, &[entry("t", (i % 5) as u32, i)])
                .unwrap();
            // Bounded at all times: threshold plus one segment plus the
            // commit in flight.
            let on_disk = log_bytes_on_disk(dir.path());
            assert!(
                on_disk <= (16 << 10) + 4096 + 512,
                "{on_disk} bytes after {i}"
            );
        }
        assert!(dir.path().join(SNAPSHOT_FILE).exists());
        let expected: Vec<_> = (0..7).map(|g| store.group(&format!("g{g}"))).collect();
        drop(store);
        let store = open(dir.path(), config);
        assert!(
            store.replayed_at_open() < 1000,
            "replayed {} of {commits} records",
            store.replayed_at_open()
        );
        for (g, want) in expected.iter().enumerate() {
            assert_eq!(&store.group(&format!("g{g}")), want);
        }
        assert_eq!(store.get("g6", "t", 4), Some((2974, "m2974".into())));
    }

    /// Concurrent commits to the same keys: what memory says is what the
    /// log says after a restart.
    #[test]
    fn concurrent_commits_of_one_group_agree_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), OffsetsConfig::default()));
        let threads = 4;
        let keys = 150u32;
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    for k in 0..keys {
                        barrier.wait();
                        let offset = u64::from(k) * 100 + t as u64;
                        store.commit("g", &[entry("t", k, offset)]).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let in_memory = store.group("g");
        assert_eq!(in_memory.len(), keys as usize);
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.group("g"), in_memory, "memory and log disagree");
    }

    #[test]
    fn forgotten_topics_stay_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), OffsetsConfig::default());
        store
            .commit("g", &[entry("gone", 0, 1), entry("kept", 0, 2)])
            .unwrap();
        store.commit("h", &[entry("gone", 1, 3)]).unwrap();
        assert_eq!(store.forget_topics(|t| t != "gone").unwrap(), 2);
        assert_eq!(store.get("g", "gone", 0), None);
        drop(store);
        let store = open(dir.path(), OffsetsConfig::default());
        assert_eq!(store.get("g", "gone", 0), None);
        assert_eq!(store.get("h", "gone", 1), None);
        assert_eq!(store.get("g", "kept", 0), Some((2, "m2".into())));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_commit_for_a_deleted_topic_is_refused_under_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), OffsetsConfig::default());
        let err = store
            .commit_if("g", &[entry("kept", 0, 1), entry("gone", 0, 2)], |t| {
                t != "gone"
            })
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownTopicOrPartition);
        assert!(store.is_empty(), "nothing of a refused commit is stored");
        store
            .commit_if("g", &[entry("kept", 0, 3)], |t| t != "gone")
            .unwrap();
        assert_eq!(store.get("g", "kept", 0), Some((3, "m3".into())));
    }
}
