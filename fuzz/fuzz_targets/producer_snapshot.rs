//! Fuzz target: the producer-state snapshot decoder (`<offset>.snapshot`,
//! `docs/storage-format.md`) and the producer id file decoder must never
//! panic; a snapshot they accept must survive an encode/decode round trip
//! unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::producer::{ids, snapshot};

fn check(data: &[u8]) {
    if let Ok((offset, table)) = snapshot::decode(data) {
        let bytes = snapshot::encode(offset, &table);
        assert_eq!(snapshot::decode(&bytes), Ok((offset, table)));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes with a correct CRC, so the body decoder is reached.
    if data.len() >= snapshot::HEADER_LEN {
        let mut fixed = data.to_vec();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&fixed[..20]);
        crc.update(&fixed[snapshot::HEADER_LEN..]);
        fixed[20..24].copy_from_slice(&crc.finalize().to_be_bytes());
        check(&fixed);
    }
    if let Ok(next) = ids::decode(data) {
        assert_eq!(ids::decode(&ids::encode(next)), Ok(next));
    }
});
