//! Helpers shared by the partition log tests.

use bytes::{Bytes, BytesMut};
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};

use crate::log::io::read_full_at;
use crate::log::{FlushPolicy, LogConfig, PartitionLog};

/// A batch of `n` records whose values are `"{tag}-{i}"` padded to `len`
/// bytes, with timestamps `ts, ts+1, …`.
pub(super) fn batch(tag: &str, n: usize, len: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut value = format!("{tag}-{i}").into_bytes();
        value.resize(len.max(value.len()), b'.');
        b.push(&NewRecord {
            timestamp: ts + i as i64,
            key: None,
            value: Some(&value),
            headers: &[],
        });
    }
    b.finish()
}

/// Small segments and a dense index, so tests roll and index often.
pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        segment_age: None,
        index_interval_bytes: 512,
        index_max_bytes: 1024,
        retention_age: None,
        retention_bytes: None,
        flush: FlushPolicy::Never,
        max_timestamp_ahead: Some(std::time::Duration::from_secs(3600)),
        ..LogConfig::default()
    }
}

/// Every visible record as (offset, value), read slice by slice from the
/// files the log hands out, checking CRCs and offset continuity.
pub(super) fn read_all(log: &PartitionLog, max_bytes: u64) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let slice = match log.read(offset, max_bytes) {
            Ok(slice) => slice,
            // An offline log refuses a read at the end of its valid data.
            Err(crate::log::LogError::Offline { .. })
                if log.is_offline() && offset == log.next_offset() =>
            {
                break;
            }
            Err(e) => panic!("read at {offset}: {e}"),
        };
        if slice.len == 0 {
            assert_eq!(offset, log.high_watermark());
            break;
        }
        let mut buf = vec![0u8; slice.len as usize];
        let file = slice.file.as_ref().unwrap();
        assert_eq!(
            read_full_at(&**file, &mut buf, slice.position).unwrap(),
            buf.len()
        );
        let mut bytes = Bytes::from(buf);
        let mut expect_base = slice.first_offset;
        while !bytes.is_empty() {
            let batch = RecordBatch::split_first(&mut bytes).expect("whole valid batches");
            assert_eq!(batch.header().base_offset as u64, expect_base);
            expect_base = batch.header().next_offset() as u64;
            for r in batch.records() {
                let r = r.unwrap();
                if r.offset as u64 >= offset {
                    out.push((r.offset as u64, r.value.unwrap()));
                }
            }
        }
        assert_eq!(expect_base, slice.next_offset, "slice ends at next_offset");
        assert!(slice.next_offset > offset, "reads make progress");
        offset = slice.next_offset;
    }
    out
}

/// Checks that `records` are offsets `start..` with contiguous numbering.
pub(super) fn assert_contiguous(records: &[(u64, Bytes)], start: u64) {
    for (i, (o, _)) in records.iter().enumerate() {
        assert_eq!(*o, start + i as u64);
    }
}
