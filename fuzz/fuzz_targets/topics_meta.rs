//! Fuzz target: the `topics.meta` decoder (the broker's list of topics) must
//! never panic on any file content.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_broker::topics::check_topics_file(data);
});
