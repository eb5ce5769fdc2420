//! Fuzz target: Kafka ConsumerProtocol Subscription and Assignment decoders
//! (bytes any group member can send) must never panic or over-allocate,
//! and whatever they accept must survive an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::group::consumer_protocol::{Assignment, Subscription};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Subscription::decode(data) {
        assert_eq!(Subscription::decode(&s.encode()).as_ref(), Ok(&s));
    }
    if let Ok(a) = Assignment::decode(data) {
        assert_eq!(Assignment::decode(&a.encode()).as_ref(), Ok(&a));
    }
});
