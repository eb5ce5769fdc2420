//! Fuzz target: every RecordBatch decoder over arbitrary bytes. None may panic, and the
//! decoders must agree with each other.
//!
//! Run with `cargo +nightly fuzz run record_batch` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::batch::{
    BatchHeader, BatchIter, Compression, RecordBatch, peek_offset_and_len, validate, verify_crc,
};

fuzz_target!(|data: &[u8]| {
    check(data);
    // A random CRC almost never matches, which would hide the record walk from the fuzzer:
    // also try the input with the CRC of its first batch made right.
    if let Ok((_, total_len)) = peek_offset_and_len(data) {
        if let Some(covered) = data.get(21..total_len.min(data.len())) {
            let mut fixed = data.to_vec();
            fixed[17..21].copy_from_slice(&crc32c::crc32c(covered).to_be_bytes());
            check(&fixed);
        }
    }
});

/// Runs every decoder over `data` and checks that they agree.
fn check(data: &[u8]) {
    let header = BatchHeader::parse(data);
    let peeked = peek_offset_and_len(data);
    let crc_checked = verify_crc(data);
    let validated = validate(data);

    // Each level of checking implies the previous one.
    if let Ok(h) = &validated {
        assert_eq!(crc_checked.as_ref().ok(), Some(h));
    }
    if let Ok(h) = &crc_checked {
        assert_eq!(header.as_ref().ok(), Some(h));
        assert_eq!(peeked.ok(), Some((h.base_offset, h.total_len())));
        assert!(h.total_len() <= data.len());
    }

    // Walking concatenated batches: consumed bytes are exactly the yielded batches.
    let mut iter = BatchIter::new(data);
    let mut consumed = 0;
    for item in iter.by_ref() {
        match item {
            Ok((h, bytes)) => {
                assert_eq!(bytes.len(), h.total_len());
                consumed += bytes.len();
                let _ = validate(bytes);
            }
            Err(_) => break,
        }
    }
    assert_eq!(iter.position(), consumed);

    // The zero-copy view: a validated uncompressed batch yields exactly its records; a
    // compressed one its records or an error (its records are not walked by `validate`).
    let mut bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(batch) = RecordBatch::split_first(&mut bytes) {
        let h = *batch.header();
        let mut count = 0i32;
        for record in batch.records() {
            match record {
                Ok(record) => {
                    assert_eq!(record.offset, h.base_offset.wrapping_add(i64::from(count)));
                    count += 1;
                    for header in record.headers() {
                        assert!(header.is_ok());
                    }
                }
                Err(e) => assert!(h.compression() != Compression::None, "{e}"),
            }
        }
        if h.compression() == Compression::None {
            assert_eq!(count, h.record_count);
        }
    }
    let _ = RecordBatch::new(bytes::Bytes::copy_from_slice(data));
}
