//! Offsets-log records turned back into group state, and the batch a
//! commit appends.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use bytes::{Buf, Bytes};
use sluice_protocol::batch::{BatchBuilder, BatchHeader, NewRecord, RecordBatch};

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
    /// watermark. Blocking (reads files). A batch that fails its checks
    /// (damage in a flushed segment, which recovery does not CRC-check) is
    /// skipped with an error naming it, and the batches after it are still
    /// applied ([`next_batch`]): its commits are lost, later ones are not.
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
            let mut expected = slice.first_offset;
            while let Some(batch) = next_batch(&mut bytes, expected, log.dir()) {
                expected = batch.header().next_offset() as u64;
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

/// Splits the next whole batch off `bytes` (batches read from the log in
/// `dir`, the next one expected to start at or after offset `expected`);
/// `None` when none is left. A batch that fails its checks (CRC, framing)
/// is skipped with an error naming `dir`, the offset and the bytes passed
/// over: reading resumes at the next position where a whole batch passes
/// them and starts at or after `expected`, so one damaged batch costs its
/// own records, not those after it.
pub(crate) fn next_batch(bytes: &mut Bytes, expected: u64, dir: &Path) -> Option<RecordBatch> {
    if bytes.is_empty() {
        return None;
    }
    let reason = match RecordBatch::split_first(bytes) {
        Ok(batch) => return Some(batch),
        Err(e) => e,
    };
    let skip = (1..bytes.len())
        .find(|&at| starts_batch(bytes, at, expected))
        .unwrap_or(bytes.len());
    tracing::error!(
        dir = %dir.display(),
        offset = expected,
        bytes_skipped = skip,
        %reason,
        "damaged batch in an offsets log skipped: the commits and group records in it are lost"
    );
    bytes.advance(skip);
    RecordBatch::split_first(bytes).ok()
}

/// Whether a whole batch that passes every check and starts at or after
/// offset `expected` begins at byte `at` of `bytes`.
fn starts_batch(bytes: &Bytes, at: usize, expected: u64) -> bool {
    let Some(rest) = bytes.get(at..) else {
        return false;
    };
    // The header first: most positions fail its magic byte or length.
    match BatchHeader::parse(rest) {
        Ok(h) if h.base_offset >= 0 && h.base_offset as u64 >= expected => {}
        _ => return false,
    }
    RecordBatch::split_first(&mut bytes.slice(at..)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change to one byte.
    type Change = fn(&mut u8);

    /// Five one-record batches at offsets 0..5, back to back.
    fn five_batches() -> (Vec<u8>, Vec<usize>) {
        let (mut bytes, mut starts) = (Vec::new(), Vec::new());
        for offset in 0..5i64 {
            let mut b = encode_batch(&[(vec![b'k'], Some(vec![b'v'; 40]))]);
            b[..8].copy_from_slice(&offset.to_be_bytes());
            starts.push(bytes.len());
            bytes.extend_from_slice(&b);
        }
        (bytes, starts)
    }

    fn bases(bytes: Vec<u8>) -> Vec<i64> {
        let mut bytes = Bytes::from(bytes);
        let mut expected = 0;
        let mut out = Vec::new();
        while let Some(b) = next_batch(&mut bytes, expected, Path::new("offsets")) {
            expected = b.header().next_offset() as u64;
            out.push(b.header().base_offset);
        }
        out
    }

    #[test]
    fn a_damaged_batch_is_skipped_and_the_next_whole_one_found() {
        let (clean, starts) = five_batches();
        assert_eq!(bases(clean.clone()), [0, 1, 2, 3, 4]);
        // A record byte (the CRC fails), the length grown or shrunk (the
        // framing fails), the magic byte, the whole header zeroed.
        let damage: [(usize, Change); 5] = [
            (70, |b| *b ^= 0x55),
            (10, |b| *b = b.wrapping_add(7)),
            (11, |b| *b = b.wrapping_sub(20)),
            (16, |b| *b = 0),
            (8, |b| *b = 0x7f),
        ];
        for (at, change) in damage {
            let mut bytes = clean.clone();
            change(&mut bytes[starts[2] + at]);
            assert_eq!(bases(bytes), [0, 1, 3, 4], "byte {at} of batch 2 damaged");
        }
        let mut bytes = clean.clone();
        bytes[starts[2]..starts[3]].fill(0);
        assert_eq!(bases(bytes), [0, 1, 3, 4], "batch 2 zeroed");
        // The last one damaged: nothing after it to find.
        let mut bytes = clean;
        bytes[starts[4] + 70] ^= 1;
        assert_eq!(bases(bytes), [0, 1, 2, 3]);
    }
}
