//! Fuzz target: opening a controller log of arbitrary bytes must never
//! panic; it keeps a prefix of whole records or refuses the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::replication::controller::log_store::LogStore;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = sluice_broker::replication::controller::files::LOG_MAGIC.to_vec();
    bytes.extend_from_slice(data);
    std::fs::write(dir.path().join("controller.log"), &bytes).expect("write");
    if LogStore::open(dir.path().to_owned()).is_ok() {
        // A second open finds the file already cut to whole records.
        let len = std::fs::metadata(dir.path().join("controller.log"))
            .expect("len")
            .len();
        assert!(LogStore::open(dir.path().to_owned()).is_ok());
        assert_eq!(
            std::fs::metadata(dir.path().join("controller.log"))
                .expect("len")
                .len(),
            len
        );
    }
});
