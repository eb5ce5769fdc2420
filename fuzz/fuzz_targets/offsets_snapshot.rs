//! Fuzz target: the committed-offsets snapshot decoder and the offsets-log
//! record decoder must never panic; a snapshot they accept must survive an
//! encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::offsets::{Snapshot, decode_record};

fn check_snapshot(data: &[u8]) {
    if let Ok(snapshot) = Snapshot::decode(data) {
        let bytes = snapshot.encode().expect("an accepted snapshot encodes");
        assert_eq!(Snapshot::decode(&bytes).as_ref(), Ok(&snapshot));
    }
}

fuzz_target!(|data: &[u8]| {
    check_snapshot(data);
    // The same bytes with a correct CRC, so the body decoder is reached.
    if data.len() >= 32 {
        let mut fixed = data.to_vec();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&fixed[..28]);
        crc.update(&fixed[32..]);
        fixed[28..32].copy_from_slice(&crc.finalize().to_be_bytes());
        check_snapshot(&fixed);
    }
    // The same bytes as an offsets-log record: key, then value (if any).
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (key, value) = data.split_at(split);
    let _ = decode_record(key, Some(value));
    let _ = decode_record(data, None);
});
