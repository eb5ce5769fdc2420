//! Fuzz target: the group metadata value decoder (offsets-log key type 2,
//! `docs/storage-format.md`) must never panic, and a value it accepts must
//! re-encode to bytes that decode to the same record. The same bytes also
//! go through the offsets-log record decoder as a group key's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::group::record::GroupRecord;
use sluice_broker::offsets::{OffsetRecord, decode_record, encode_group_key};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = GroupRecord::decode(data) {
        let again = record.encode();
        // A version 1 value gains the 8 bytes of its (unknown) time.
        assert!(
            again.len() <= data.len() + 8,
            "canonical encoding is never longer but for the time"
        );
        assert_eq!(GroupRecord::decode(&again).as_ref(), Ok(&record));
    }
    match decode_record(&encode_group_key("g"), Some(data)) {
        Ok(OffsetRecord::Group(group, Some(value))) => {
            assert_eq!(group, "g");
            assert_eq!(value, data);
        }
        other => panic!("a group key decoded as {other:?}"),
    }
});
