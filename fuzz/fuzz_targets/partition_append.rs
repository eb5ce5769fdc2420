//! Fuzz target: `PartitionLog::append` fed CRC-valid batches whose headers
//! lie (arbitrary `lastOffsetDelta`, `recordCount`, attributes, timestamps,
//! base offsets; the CRC is recomputed so it passes), several batches per
//! append, with small segments so appends roll, and a log that may start just
//! below the offset ceiling.
//!
//! Invariants: no panic; an append either fails and changes nothing, or
//! takes exactly the records its batches hold, contiguously from the old
//! next offset; only honest, uncompressed, non-empty batches stamped no
//! further ahead than the bound are accepted; the next offset never passes
//! `OFFSET_CEILING`; reads (before and after a clean reopen) return exactly
//! the accepted records at their offsets. Batches whose edited producer
//! fields name an idempotent producer (id >= 0) may also be refused for their
//! sequence, or answered as a duplicate that appends nothing.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use sluice_broker::log::{LogConfig, PartitionLog};
use sluice_protocol::batch::{BatchBuilder, BatchIter, NewRecord};

/// Reads fuzzer bytes; runs out as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.bytes())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.bytes())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.bytes())
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const AHEAD: Duration = Duration::from_secs(3600);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One batch built honestly, then its header edited as the input says and
/// its CRC recomputed. Returns the bytes, whether the header is still honest
/// (and so the batch acceptable if its timestamp is), and its values.
fn hostile_batch(input: &mut Input, tag: u32) -> (Vec<u8>, bool, Vec<Vec<u8>>) {
    let n = usize::from(input.u8() % 6);
    let ts_mode = input.u8();
    let base_ts = match ts_mode % 4 {
        0 => 1_000,
        1 => now_ms(),
        2 => now_ms() + AHEAD.as_millis() as i64 * 2,
        _ => input.i64(),
    };
    let mut values = Vec::with_capacity(n);
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let len = usize::from(input.u8() % 40);
        let mut v = format!("{tag}-{i}-").into_bytes();
        v.resize(v.len() + len, b'v');
        b.push(&NewRecord {
            timestamp: base_ts.saturating_add(i64::from(input.u8() % 4)),
            key: None,
            value: Some(&v),
            headers: &[],
        });
        values.push(v);
    }
    let mut bytes = b.finish().to_vec();
    let edits = input.u8();
    let mut honest = n > 0;
    if edits & 1 != 0 {
        bytes[0..8].copy_from_slice(&input.i64().to_be_bytes()); // baseOffset: ignored
    }
    if edits & 2 != 0 {
        let a = input.i16();
        bytes[21..23].copy_from_slice(&a.to_be_bytes());
        // A codec, or the transactional or control bit, is refused.
        honest &= a & 0x07 == 0 && a & 0x30 == 0;
    }
    if edits & 4 != 0 {
        let d = input.i32();
        bytes[23..27].copy_from_slice(&d.to_be_bytes());
        honest &= i64::from(d) == n as i64 - 1;
    }
    if edits & 8 != 0 {
        let c = input.i32();
        bytes[57..61].copy_from_slice(&c.to_be_bytes());
        honest &= i64::from(c) == n as i64;
    }
    if edits & 16 != 0 {
        bytes[35..43].copy_from_slice(&input.i64().to_be_bytes()); // maxTimestamp
    }
    if edits & 32 != 0 {
        bytes[27..35].copy_from_slice(&input.i64().to_be_bytes()); // baseTimestamp
    }
    if edits & 64 != 0 {
        bytes[43..57].copy_from_slice(&input.bytes::<14>()); // producer fields
    }
    let crc = crc32c::crc32c(&bytes[21..]);
    if edits & 128 == 0 {
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    } else {
        // Keep the CRC as built: stale if an edit changed covered bytes.
        honest &= bytes[17..21] == crc.to_be_bytes();
    }
    (bytes, honest, values)
}

/// Every visible record as (offset, value), checking batch continuity.
fn read_all(log: &PartitionLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let slice = log.read(offset, 512).expect("read inside the log");
        if slice.len == 0 {
            assert_eq!(offset, log.high_watermark());
            return out;
        }
        let file = slice.file.as_ref().expect("non-empty slice has a file");
        let mut buf = vec![0u8; slice.len as usize];
        let n = sluice_broker::log::io::read_full_at(&**file, &mut buf, slice.position)
            .expect("read segment");
        assert_eq!(n, buf.len());
        let mut expect = slice.first_offset;
        for b in BatchIter::new(&buf) {
            let (header, bytes) = b.expect("whole batches");
            assert_eq!(header.base_offset as u64, expect, "contiguous batches");
            let batch = sluice_protocol::batch::RecordBatch::new(bytes.to_vec().into())
                .expect("stored batches are valid");
            assert_eq!(header.record_count, header.last_offset_delta + 1);
            // Every batch is stored as create-time with its largest record
            // timestamp as `maxTimestamp`, whatever was sent.
            let mut largest = i64::MIN;
            for r in batch.records() {
                let r = r.expect("valid record");
                largest = largest.max(r.timestamp);
                if r.offset as u64 >= offset {
                    out.push((r.offset as u64, r.value.expect("value").to_vec()));
                }
            }
            assert_eq!(header.attributes & 0x08, 0, "stored as create-time");
            assert_eq!(header.max_timestamp, largest, "stored maxTimestamp");
            expect = header.next_offset() as u64;
        }
        assert_eq!(expect, slice.next_offset);
        assert!(slice.next_offset > offset, "reads make progress");
        offset = slice.next_offset;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.u8();
    // tmpfs where there is one: the log fsyncs on open and close.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let Ok(dir) = dir else { return };
    let p = dir.path().join("t-0");
    let start = if flags & 1 != 0 {
        PartitionLog::OFFSET_CEILING - u64::from(input.u8() % 32)
    } else {
        0
    };
    if start > 0 {
        if std::fs::create_dir_all(&p).is_err() {
            return;
        }
        let _ = std::fs::write(p.join(format!("{start:020}.log")), b"");
    }
    let config = LogConfig {
        segment_bytes: 1024 + u64::from(flags >> 4) * 256,
        segment_age: None,
        index_interval_bytes: 64,
        index_max_bytes: 64,
        retention_age: None,
        retention_bytes: None,
        max_timestamp_ahead: Some(AHEAD),
        ..LogConfig::default()
    };
    let Ok((log, _)) = PartitionLog::open(&p, config.clone()) else {
        return;
    };
    assert_eq!(log.next_offset(), start);
    let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut tag = 0u32;
    for _ in 0..24 {
        if input.is_empty() {
            break;
        }
        let batches = 1 + usize::from(input.u8() % 4);
        let mut buf = Vec::new();
        let mut all_honest = true;
        let mut idempotent = false;
        let mut values = Vec::new();
        for _ in 0..batches {
            tag += 1;
            let (b, honest, v) = hostile_batch(&mut input, tag);
            all_honest &= honest;
            idempotent |= i64::from_be_bytes(b[43..51].try_into().unwrap_or([0xff; 8])) >= 0;
            buf.extend_from_slice(&b);
            values.extend(v);
        }
        let before = log.next_offset();
        let segments = log.segment_count();
        let before_ms = now_ms();
        match log.append(&mut buf) {
            Ok(info) if info.duplicate => {
                // A retry of batches this producer already appended.
                assert!(idempotent, "a duplicate without a producer id: {info:?}");
                assert_eq!(log.next_offset(), before, "a duplicate appended");
                assert!(info.last_offset < before);
            }
            Ok(info) => {
                assert!(all_honest, "accepted a batch whose header lies: {info:?}");
                assert!(info.max_timestamp <= now_ms() + AHEAD.as_millis() as i64);
                assert_eq!(info.base_offset, before);
                assert_eq!(info.next_offset - before, values.len() as u64);
                assert_eq!(log.next_offset(), info.next_offset);
                assert!(info.next_offset <= PartitionLog::OFFSET_CEILING);
                assert_eq!(info.batches as usize, batches);
                for (i, v) in values.into_iter().enumerate() {
                    model.push((before + i as u64, v));
                }
            }
            Err(e) => {
                assert_eq!(
                    log.next_offset(),
                    before,
                    "failed append moved the log: {e}"
                );
                assert_eq!(log.segment_count(), segments, "failed append rolled: {e}");
                // An honest append fails only for its timestamp or the ceiling.
                if all_honest {
                    let msg = e.to_string();
                    let producer_check =
                        idempotent && (msg.contains("producer") || msg.contains("retried batches"));
                    assert!(
                        msg.contains("ahead of the broker's clock")
                            || msg.contains("offset ceiling")
                            || producer_check,
                        "honest append refused: {e} (started {before_ms})"
                    );
                }
            }
        }
    }
    assert_eq!(read_all(&log), model);
    if log.close().is_err() {
        return;
    }
    let Ok((log, report)) = PartitionLog::open(&p, config) else {
        panic!("a cleanly closed log reopens");
    };
    assert!(report.clean_shutdown);
    assert_eq!(log.next_offset(), start + model.len() as u64);
    assert_eq!(read_all(&log), model);
});
