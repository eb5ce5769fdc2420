//! Property tests across builder, validation and iteration.
#![allow(clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::testutil::{RefRecord, encode_batch, fix_crc};
use super::*;

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -1_000i64..1_000,
        1_600_000_000_000i64..1_700_000_000_000,
    ]
}

fn record() -> impl Strategy<Value = RefRecord> {
    (
        timestamp(),
        option::of(vec(any::<u8>(), 0..40)),
        option::of(vec(any::<u8>(), 0..200)),
        vec(("\\PC{0,8}", option::of(vec(any::<u8>(), 0..20))), 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| RefRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

fn build(base_offset: i64, records: &[RefRecord]) -> Bytes {
    let mut b = BatchBuilder::new().base_offset(base_offset);
    for r in records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.push(&NewRecord {
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
        });
    }
    b.finish().freeze()
}

/// Reads a batch back into reference records, checking offsets on the way.
fn read_back(batch: &RecordBatch) -> Vec<RefRecord> {
    let base = batch.header().base_offset;
    batch
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.unwrap();
            assert_eq!(r.offset, base.wrapping_add(i as i64));
            RefRecord {
                timestamp: r.timestamp,
                key: r.key.as_ref().map(|b| b.to_vec()),
                value: r.value.as_ref().map(|b| b.to_vec()),
                headers: r
                    .headers()
                    .map(|h| {
                        let (k, v) = h.unwrap();
                        (k.to_owned(), v.map(|b| b.to_vec()))
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Runs every decoder over `buf`; none may panic.
fn decode_everything(buf: &[u8]) {
    let _ = BatchHeader::parse(buf);
    let _ = peek_offset_and_len(buf);
    let _ = verify_crc(buf);
    let validated = validate(buf);
    for item in BatchIter::new(buf) {
        if item.is_err() {
            break;
        }
    }
    let mut bytes = Bytes::copy_from_slice(buf);
    if let Ok(batch) = RecordBatch::split_first(&mut bytes) {
        let h = validated.unwrap();
        let mut n = 0;
        for r in batch.records() {
            match r {
                Ok(r) => {
                    n += 1;
                    for h in r.headers() {
                        h.unwrap();
                    }
                }
                Err(e) => assert!(
                    h.compression() != Compression::None,
                    "uncompressed batch that validated failed to iterate: {e}"
                ),
            }
        }
        if h.compression() == Compression::None {
            assert_eq!(n, h.record_count);
        }
    }
}

proptest! {
    #[test]
    fn build_validate_iterate_round_trip(
        base in any::<i64>(),
        records in vec(record(), 0..12),
    ) {
        let bytes = build(base, &records);
        prop_assert_eq!(&bytes[..], &encode_batch(base, &records)[..]);
        let header = validate(&bytes).unwrap();
        prop_assert_eq!(header.record_count as usize, records.len());
        prop_assert_eq!(header.total_len(), bytes.len());
        // The measured largest timestamp is the one readers see, even
        // where a record's `baseTimestamp + timestampDelta` wraps.
        let measured = validate_measuring(&bytes, 1 << 20, &mut Vec::new()).unwrap();
        prop_assert_eq!(measured.max_record_timestamp, records.iter().map(|r| r.timestamp).max());
        let batch = RecordBatch::new(bytes).unwrap();
        prop_assert_eq!(read_back(&batch), records);
    }

    #[test]
    fn any_single_byte_corruption_in_crc_range_is_detected(
        records in vec(record(), 1..6),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut raw = build(0, &records).to_vec();
        let pos = CRC_START + at.index(raw.len() - CRC_START);
        raw[pos] ^= flip;
        prop_assert!(
            matches!(validate(&raw), Err(BatchError::CrcMismatch { .. })),
            "corruption at {} not reported as CRC mismatch", pos
        );
    }

    #[test]
    fn set_base_offset_keeps_batch_valid_and_moves_offsets(
        records in vec(record(), 1..6),
        new_base in 0i64..i64::MAX / 2,
        epoch in any::<i32>(),
    ) {
        let mut raw = build(0, &records).to_vec();
        set_base_offset(&mut raw, new_base).unwrap();
        set_partition_leader_epoch(&mut raw, epoch).unwrap();
        let h = validate(&raw).unwrap();
        prop_assert_eq!((h.base_offset, h.partition_leader_epoch), (new_base, epoch));
        prop_assert_eq!(h.next_offset(), new_base + records.len() as i64);
        let batch = RecordBatch::new(raw.into()).unwrap();
        let offsets: Vec<i64> = batch.records().map(|r| r.unwrap().offset).collect();
        let want: Vec<i64> = (0..records.len() as i64).map(|i| new_base + i).collect();
        prop_assert_eq!(offsets, want);
    }

    #[test]
    fn batch_iter_yields_exactly_the_whole_batches(
        batches in vec(vec(record(), 0..4), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let encoded: Vec<Bytes> = batches
            .iter()
            .enumerate()
            .map(|(i, r)| build(i as i64 * 100, r))
            .collect();
        let (whole, tail) = encoded.split_at(encoded.len() - 1);
        let tail = &tail[0];
        let cut = cut.index(tail.len());
        let mut buf: Vec<u8> = whole.iter().flat_map(|b| b.iter().copied()).collect();
        let whole_len = buf.len();
        buf.extend_from_slice(&tail[..cut]);
        let mut it = BatchIter::new(&buf);
        let got: Vec<&[u8]> = it.by_ref().map(|r| r.unwrap().1).collect();
        prop_assert_eq!(got.len(), whole.len());
        for (g, w) in got.iter().zip(whole) {
            prop_assert_eq!(*g, &w[..]);
            prop_assert!(validate(g).is_ok());
        }
        prop_assert_eq!(it.position(), whole_len);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(buf in vec(any::<u8>(), 0..200)) {
        decode_everything(&buf);
    }

    #[test]
    fn decoders_never_panic_on_mutated_batches_with_fixed_crc(
        records in vec(record(), 0..5),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in option::of(any::<prop::sample::Index>()),
    ) {
        let mut raw = build(0, &records).to_vec();
        for (at, byte) in edits {
            let pos = CRC_START + at.index(raw.len() - CRC_START);
            raw[pos] = byte;
        }
        fix_crc(&mut raw);
        decode_everything(&raw);
        if let Some(t) = truncate {
            decode_everything(&raw[..t.index(raw.len())]);
        }
    }
}
