//! Fuzz target: the recovery-point checkpoint and log-start-offset decoders
//! must never panic, and whatever they accept must re-encode to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::log::format::{Checkpoint, LogStart};

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = Checkpoint::decode(data) {
        assert_eq!(&cp.encode()[..], data);
    }
    if let Ok(s) = LogStart::decode(data) {
        assert_eq!(&s.encode()[..], data);
    }
});
