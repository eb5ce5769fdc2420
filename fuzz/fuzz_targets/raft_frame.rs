//! Fuzz target: the node-to-node frame decoder must never panic, and every
//! frame it accepts must re-encode to the bytes it consumed. Each frame's
//! body is also decoded as a partition group's AppendEntries whose entries
//! take their records from the frame's raw payload section: never a panic,
//! and a decoded request claims every payload byte. Each frame is also
//! judged as a connection's first frame (the hello): never a panic. The
//! body is also decoded as a pre-vote request and answer: never a panic,
//! and one that decodes re-encodes to a body that decodes the same.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_broker::replication::election::{PreVoteRequest, PreVoteResponse};
use sluice_broker::replication::partition::{AppendEntries, Records};
use sluice_broker::replication::transport::Frame;
use sluice_broker::replication::transport::hello::Hello;
use sluice_broker::replication::transport::raft::decode_request;

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
                let _ = Hello::check(&frame, "fuzz", 2, |id| id == 1);
                if let Ok(req) = decode_request::<PreVoteRequest>(&frame.body, frame.payload.clone())
                {
                    let again = postcard::to_allocvec(&req).unwrap();
                    assert_eq!(postcard::from_bytes::<PreVoteRequest>(&again).unwrap(), req);
                }
                if let Ok(resp) = postcard::from_bytes::<PreVoteResponse>(&frame.body) {
                    let again = postcard::to_allocvec(&resp).unwrap();
                    assert_eq!(postcard::from_bytes::<PreVoteResponse>(&again).unwrap(), resp);
                }
                let payload_len = frame.payload.len() as u64;
                if let Ok(req) = decode_request::<AppendEntries>(&frame.body, frame.payload) {
                    let claimed: u64 = req
                        .entries
                        .iter()
                        .filter_map(|e| match &e.payload {
                            openraft::EntryPayload::Normal(r) => match &r.records {
                                Records::Owned(b) => Some(b.len() as u64),
                                _ => None,
                            },
                            _ => None,
                        })
                        .sum();
                    assert_eq!(claimed, payload_len);
                    // What the follower checks before storing must not
                    // panic on any bytes either.
                    for e in &req.entries {
                        if let openraft::EntryPayload::Normal(r) = &e.payload {
                            let _ = r.check_received(e.log_id.leader_id.term);
                        }
                    }
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
