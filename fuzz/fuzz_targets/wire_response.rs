//! Fuzz target: the response side of the wire protocol over arbitrary bytes
//! — `check_frame`, `ResponseHeader::decode`, `decode_body` of every
//! response type and of `ErrorBody`, and the `check_tail` of Fetch and
//! FetchStream responses. None may panic, and what they accept must be
//! self-consistent (see `wire_request.rs`).
//!
//! Run: `./run-bounded.sh wire_response 60` from `fuzz/` (see `fuzz/README.md`).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::alter_topics::{AlterTopicConfigResponse, CreatePartitionsResponse};
use sluice_protocol::wire::api_versions::ApiVersionsResponse;
use sluice_protocol::wire::broker_status::{BrokerStatusResponse, BrokerStatusResponseV0};
use sluice_protocol::wire::create_topics::CreateTopicsResponse;
use sluice_protocol::wire::delete_groups::DeleteGroupsResponse;
use sluice_protocol::wire::delete_records::DeleteRecordsResponse;
use sluice_protocol::wire::delete_topics::DeleteTopicsResponse;
use sluice_protocol::wire::describe_groups::DescribeGroupsResponse;
use sluice_protocol::wire::fetch::{FetchPartitionResponse, FetchResponse};
use sluice_protocol::wire::fetch_stream::FetchStreamResponse;
use sluice_protocol::wire::find_coordinator::FindCoordinatorResponse;
use sluice_protocol::wire::frame::{LEN_PREFIX, RESPONSE_HEADER_LEN};
use sluice_protocol::wire::heartbeat::HeartbeatResponse;
use sluice_protocol::wire::init_producer_id::InitProducerIdResponse;
use sluice_protocol::wire::join_group::JoinGroupResponse;
use sluice_protocol::wire::leave_group::LeaveGroupResponse;
use sluice_protocol::wire::list_groups::ListGroupsResponse;
use sluice_protocol::wire::list_offsets::ListOffsetsResponse;
use sluice_protocol::wire::metadata::{MetadataResponse, MetadataResponseV0, MetadataResponseV1};
use sluice_protocol::wire::offset_commit::OffsetCommitResponse;
use sluice_protocol::wire::offset_fetch::OffsetFetchResponse;
use sluice_protocol::wire::partition_status::PartitionStatusResponse;
use sluice_protocol::wire::produce::ProduceResponse;
use sluice_protocol::wire::stats::StatsResponse;
use sluice_protocol::wire::sync_group::SyncGroupResponse;
use sluice_protocol::wire::{
    ErrorBody, ErrorCode, ResponseHeader, WireError, check_frame, decode_body, encode_body,
};

/// The client's `MAX_RESPONSE_BYTES`.
const MAX_FRAME: u32 = 1 << 30;

fuzz_target!(|data: &[u8]| {
    // As the client does: frame, decode the header, decode the body.
    match check_frame(data, MAX_FRAME, RESPONSE_HEADER_LEN) {
        Ok(Some(total)) => {
            assert!(total <= data.len());
            let frame = &data[..total];
            if let Ok((header, tail_len)) = ResponseHeader::decode(frame) {
                let body_start = LEN_PREFIX + RESPONSE_HEADER_LEN;
                let body_end = body_start + header.body_len as usize;
                assert_eq!(body_end + tail_len, total);
                let body = &frame[body_start..body_end];
                if header.error_code == ErrorCode::None {
                    decode_responses(body, tail_len);
                } else {
                    stable::<ErrorBody>(body);
                }
            }
        }
        Ok(None) => {}
        Err(WireError::FrameTooLarge { len, .. }) => assert!(len > MAX_FRAME),
        Err(WireError::FrameTooShort { len, .. }) => {
            assert!((len as usize) < RESPONSE_HEADER_LEN)
        }
        Err(e) => panic!("check_frame gave {e:?}"),
    }
    if let Ok((header, tail_len)) = ResponseHeader::decode(data) {
        assert!(
            LEN_PREFIX + RESPONSE_HEADER_LEN + header.body_len as usize + tail_len <= data.len()
        );
    }
    // Every body decoder on the raw bytes.
    decode_responses(data, data.len());
    stable::<ErrorBody>(data);
});

/// Record bytes a Fetch or FetchStream body says its tail holds.
fn listed(partitions: &[FetchPartitionResponse]) -> u64 {
    partitions.iter().map(|p| u64::from(p.records_len)).sum()
}

/// Decodes `body` as every response type (a response does not name its
/// API; the client knows it from the request).
fn decode_responses(body: &[u8], tail_len: usize) {
    stable::<ApiVersionsResponse>(body);
    stable::<MetadataResponse>(body);
    stable::<MetadataResponseV0>(body);
    stable::<MetadataResponseV1>(body);
    stable::<CreateTopicsResponse>(body);
    stable::<DeleteTopicsResponse>(body);
    stable::<ProduceResponse>(body);
    if let Some(resp) = stable::<FetchResponse>(body) {
        let checked = resp.check_tail(tail_len).is_ok();
        assert_eq!(checked, listed(&resp.partitions) == tail_len as u64);
    }
    if let Some(resp) = stable::<FetchStreamResponse>(body) {
        let checked = resp.check_tail(tail_len).is_ok();
        assert_eq!(checked, listed(&resp.partitions) == tail_len as u64);
    }
    stable::<ListOffsetsResponse>(body);
    stable::<OffsetCommitResponse>(body);
    stable::<OffsetFetchResponse>(body);
    stable::<StatsResponse>(body);
    stable::<InitProducerIdResponse>(body);
    stable::<PartitionStatusResponse>(body);
    stable::<BrokerStatusResponse>(body);
    stable::<BrokerStatusResponseV0>(body);
    stable::<JoinGroupResponse>(body);
    stable::<SyncGroupResponse>(body);
    stable::<HeartbeatResponse>(body);
    stable::<LeaveGroupResponse>(body);
    stable::<DescribeGroupsResponse>(body);
    stable::<ListGroupsResponse>(body);
    stable::<DeleteGroupsResponse>(body);
    stable::<FindCoordinatorResponse>(body);
    stable::<CreatePartitionsResponse>(body);
    stable::<AlterTopicConfigResponse>(body);
    stable::<DeleteRecordsResponse>(body);
}

/// Decodes `body` as a `T`; when it decodes, its re-encoding decodes to the
/// same value (the bytes may differ: postcard accepts over-long varints, and
/// an unknown error code re-encodes as `Unknown`).
fn stable<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) -> Option<T> {
    let value = decode_body::<T>(body).ok()?;
    let mut again = Vec::new();
    let n = encode_body(&value, &mut again);
    assert_eq!(n, again.len());
    assert!(n <= body.len(), "canonical encoding is never longer");
    assert_eq!(decode_body::<T>(&again).as_ref(), Ok(&value));
    Some(value)
}
