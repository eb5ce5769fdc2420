//! Fuzz target: the group metadata value decoder (offsets-log key type 2,
//! `docs/storage-format.md`), for classic and consumer-protocol groups,
//! must never panic, and a value it accepts must re-encode to bytes that
//! decode to the same record; a consumer-protocol group restored from any
//! record it accepts must not panic either, and must store again as a
//! record that decodes. The same bytes also go through the offsets-log
//! record decoder as a group key's value.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sluice_broker::group::consumer::ConsumerGroup;
use sluice_broker::group::record::{ConsumerGroupRecord, GroupRecord, StoredGroup};
use sluice_broker::offsets::{OffsetRecord, decode_record, encode_group_key};

fuzz_target!(|data: &[u8]| {
    match StoredGroup::decode(data) {
        Ok(StoredGroup::Classic(record)) => {
            let again = record.encode();
            // A version 1 value gains the 8 bytes of its (unknown) time.
            assert!(
                again.len() <= data.len() + 8,
                "canonical encoding is never longer but for the time"
            );
            assert_eq!(GroupRecord::decode(&again).as_ref(), Ok(&record));
        }
        Ok(StoredGroup::Consumer(record)) => {
            let again = record.encode();
            assert_eq!(ConsumerGroupRecord::decode(&again).as_ref(), Ok(&record));
            let g = ConsumerGroup::from_record(record, Instant::now(), Duration::from_secs(45));
            let stored = g.to_record().encode();
            assert!(ConsumerGroupRecord::decode(&stored).is_ok());
        }
        Err(_) => {}
    }
    match decode_record(&encode_group_key("g"), Some(data)) {
        Ok(OffsetRecord::Group(group, Some(value))) => {
            assert_eq!(group, "g");
            assert_eq!(value, data);
        }
        other => panic!("a group key decoded as {other:?}"),
    }
});
