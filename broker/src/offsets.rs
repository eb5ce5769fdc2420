//! Committed offsets of consumer groups, stored durably by the broker.
//!
//! Commits are records in an internal partition log, `__consumer_offsets-0`
//! in the data directory, flushed before a commit is acknowledged
//! ([`FlushPolicy::BeforeAck`]). Each record's key is the postcard encoding
//! of `(group, topic, partition)` and its value of `(offset, metadata)`; the
//! latest record for a key wins. At startup the log is replayed into memory.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use parking_lot::Mutex;
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::offset_commit::CommitPartition;

use crate::error::BrokerError;
use crate::log::io::read_full_at;
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog};

/// Directory of the internal offsets log.
pub const OFFSETS_DIR: &str = "__consumer_offsets-0";

type Key = (String, String, u32);

/// Committed offsets of every group. Thread-safe; commits are blocking.
#[derive(Debug)]
pub struct OffsetStore {
    log: PartitionLog,
    committed: Mutex<HashMap<Key, (u64, String)>>,
}

impl OffsetStore {
    /// Opens (recovering) the internal log and replays it. Blocking.
    pub fn open(data_dir: &Path) -> Result<Self, BrokerError> {
        let config = LogConfig {
            segment_bytes: 64 << 20,
            segment_age: None,
            retention_age: None,
            retention_bytes: None,
            flush: FlushPolicy::BeforeAck,
            ..LogConfig::default()
        };
        let (log, _) = PartitionLog::open(data_dir.join(OFFSETS_DIR), config)?;
        let mut committed = HashMap::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let slice = log.read(offset, 8 << 20)?;
            let Some(file) = slice.file.as_ref().filter(|_| slice.len > 0) else {
                break;
            };
            let mut buf = vec![0u8; slice.len as usize];
            let n = read_full_at(&**file, &mut buf, slice.position)
                .map_err(|e| LogError::io("read", log.dir(), e))?;
            buf.truncate(n);
            let mut bytes = Bytes::from(buf);
            while !bytes.is_empty() {
                let Ok(batch) = RecordBatch::split_first(&mut bytes) else {
                    break;
                };
                for record in batch.records().flatten() {
                    let (Some(k), Some(v)) = (record.key, record.value) else {
                        continue;
                    };
                    match (
                        postcard::from_bytes::<Key>(&k),
                        postcard::from_bytes::<(u64, String)>(&v),
                    ) {
                        (Ok(key), Ok(value)) => {
                            committed.insert(key, value);
                        }
                        _ => tracing::warn!(
                            offset = record.offset,
                            "skipping undecodable offset commit"
                        ),
                    }
                }
            }
            offset = slice.next_offset;
        }
        Ok(OffsetStore {
            log,
            committed: Mutex::new(committed),
        })
    }

    /// Stores `entries` for `group` durably (one appended batch, then
    /// `fdatasync`), then makes them visible to [`OffsetStore::fetch`].
    /// Blocking.
    pub fn commit(&self, group: &str, entries: &[CommitPartition]) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for e in entries {
            let key = postcard::to_stdvec(&(group, &e.topic, e.partition)).unwrap_or_default();
            let value = postcard::to_stdvec(&(e.offset, &e.metadata)).unwrap_or_default();
            builder.push(&NewRecord {
                timestamp: now,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            });
        }
        let mut batch = builder.finish();
        let info = self.log.append(&mut batch)?;
        self.log.flush_to(info.next_offset)?;
        let mut committed = self.committed.lock();
        for e in entries {
            committed.insert(
                (group.to_owned(), e.topic.clone(), e.partition),
                (e.offset, e.metadata.clone()),
            );
        }
        Ok(())
    }

    /// The committed `(offset, metadata)` of a group's partition.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<(u64, String)> {
        self.committed
            .lock()
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .cloned()
    }

    /// Every `(topic, partition, offset, metadata)` a group committed.
    pub fn group(&self, group: &str) -> Vec<(String, u32, u64, String)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), (o, m))| (t.clone(), *p, *o, m.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: &str, partition: u32, offset: u64) -> CommitPartition {
        CommitPartition {
            topic: topic.into(),
            partition,
            offset,
            metadata: format!("m{offset}"),
        }
    }

    #[test]
    fn commits_survive_reopen_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        store
            .commit("g1", &[entry("t", 0, 5), entry("t", 1, 7)])
            .unwrap();
        store.commit("g1", &[entry("t", 0, 9)]).unwrap();
        store.commit("g2", &[entry("t", 0, 1)]).unwrap();
        assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
        drop(store); // crash: no clean shutdown
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
        assert_eq!(store.get("g1", "t", 1), Some((7, "m7".into())));
        assert_eq!(store.get("g2", "t", 0), Some((1, "m1".into())));
        assert_eq!(store.get("g3", "t", 0), None);
        assert_eq!(store.group("g1").len(), 2);
    }
}
