//! Fuzz target: the Raft index record and side-file frame decoders must never
//! panic; every record they accept re-encodes to the same bytes, and the
//! frames they accept re-encode to the valid prefix they reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::replication::partition::format::{
    IndexRecord, RECORD_LEN, decode_frames, encode_frame,
};

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks(RECORD_LEN) {
        if let Some(rec) = IndexRecord::decode(chunk) {
            assert_eq!(&rec.encode()[..], chunk);
        }
    }
    let (frames, valid) = decode_frames(data);
    let mut again = Vec::new();
    for f in &frames {
        encode_frame(f, &mut again);
    }
    assert_eq!(&again[..], &data[..valid]);
});
