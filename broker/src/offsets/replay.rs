//! Offsets-log records turned back into group state, and the batch a
//! commit appends.

use std::collections::HashMap;
use std::time::SystemTime;

use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};

use super::record::{OffsetRecord, decode_record};
use crate::error::BrokerError;
use crate::log::{LogError, PartitionLog};

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

/// Group state rebuilt from offsets-log records: the latest value of each
/// key, tombstones applied.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Committed `(group, topic, partition) -> (offset, metadata,
    /// committed_ms)`.
    pub offsets: HashMap<(String, String, u32), (u64, String, i64)>,
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
