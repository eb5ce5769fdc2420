//! Fuzz target: the recovery-point checkpoint decoder must never panic, and
//! whatever it accepts must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::log::format::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = Checkpoint::decode(data) {
        assert_eq!(&cp.encode()[..], data);
    }
});
