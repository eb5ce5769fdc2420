//! Fuzz target: every decompressor over arbitrary bytes, as the broker meets them in a
//! produced batch. None may panic or hold more output than its limit; what is
//! compressed must decompress to itself.
//!
//! Input: byte 0 picks the codec (1-4 after `% 4 + 1`), byte 1 the limit
//! (`(b + 1) * 256` bytes), the rest is the compressed stream.
//!
//! Run with `cargo +nightly fuzz run decompress` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::batch::compression::{Codec, compress, decompress};
use sluice_protocol::batch::{BatchBuilder, Compression, NewRecord, validate_decompressing};

fuzz_target!(|data: &[u8]| {
    let [codec, limit, stream @ ..] = data else {
        return;
    };
    let codec = Compression::from_code(codec % 4 + 1).expect("1..=4");
    let limit = (usize::from(*limit) + 1) * 256;

    let mut out = Vec::new();
    if decompress(codec, stream, limit, &mut out).is_ok() {
        assert!(out.len() <= limit);
    }
    assert!(out.len() <= limit + 1);

    // The same bytes as the records section of a CRC-valid batch with that codec.
    let mut batch = BatchBuilder::new();
    batch.push(&NewRecord {
        timestamp: 0,
        key: None,
        value: Some(b"v"),
        headers: &[],
    });
    let mut batch = batch.finish().to_vec();
    batch.truncate(61);
    batch.extend_from_slice(stream);
    let len = i32::try_from(batch.len() - 12).expect("small");
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    batch[21..23].copy_from_slice(&i16::from(codec.code()).to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut scratch = Vec::new();
    let _ = validate_decompressing(&batch, limit, &mut scratch);
    assert!(scratch.len() <= limit + 1);

    // Round trip of the input itself.
    let mut packed = Vec::new();
    compress(Codec::new(codec), stream, &mut packed).expect("default level");
    decompress(codec, &packed, stream.len(), &mut out).expect("own output decompresses");
    assert_eq!(out, stream);
});
