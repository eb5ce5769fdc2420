//! Fuzz target: the node-to-node frame decoder must never panic, and every
//! frame it accepts must re-encode to the bytes it consumed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_broker::replication::transport::Frame;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match Frame::decode(&mut buf) {
            Ok(Some(frame)) => {
                let used = before - buf.len();
                let start = data.len() - before;
                let mut out = BytesMut::new();
                frame.encode(&mut out);
                assert_eq!(&out[..], &data[start..start + used]);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
