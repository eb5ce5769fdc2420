//! Fuzz target: the request side of the wire protocol over arbitrary bytes —
//! `check_frame`, `RequestHeader::decode` and `decode_body` of every request
//! type. None may panic, and what they accept must be self-consistent: a
//! framed header's body and tail lie inside the frame, and a decoded body
//! re-encodes to bytes that decode to the same value.
//!
//! Run: `./run-bounded.sh wire_request 60` from `fuzz/` (see `fuzz/README.md`).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::alter_topics::{AlterTopicConfigRequest, CreatePartitionsRequest};
use sluice_protocol::wire::api_versions::ApiVersionsRequest;
use sluice_protocol::wire::broker_status::BrokerStatusRequest;
use sluice_protocol::wire::create_topics::{
    CreateTopicsRequest, CreateTopicsRequestV0, CreateTopicsRequestV1,
};
use sluice_protocol::wire::delete_groups::DeleteGroupsRequest;
use sluice_protocol::wire::delete_records::DeleteRecordsRequest;
use sluice_protocol::wire::delete_topics::DeleteTopicsRequest;
use sluice_protocol::wire::describe_groups::DescribeGroupsRequest;
use sluice_protocol::wire::fetch::FetchRequest;
use sluice_protocol::wire::find_coordinator::FindCoordinatorRequest;
use sluice_protocol::wire::frame::{LEN_PREFIX, REQUEST_HEADER_LEN};
use sluice_protocol::wire::heartbeat::HeartbeatRequest;
use sluice_protocol::wire::init_producer_id::InitProducerIdRequest;
use sluice_protocol::wire::join_group::JoinGroupRequest;
use sluice_protocol::wire::leave_group::LeaveGroupRequest;
use sluice_protocol::wire::list_groups::ListGroupsRequest;
use sluice_protocol::wire::list_offsets::ListOffsetsRequest;
use sluice_protocol::wire::metadata::{MetadataRequest, MetadataRequestV3};
use sluice_protocol::wire::offset_commit::{OffsetCommitRequest, OffsetCommitRequestV1};
use sluice_protocol::wire::offset_fetch::OffsetFetchRequest;
use sluice_protocol::wire::partition_status::PartitionStatusRequest;
use sluice_protocol::wire::produce::ProduceRequest;
use sluice_protocol::wire::stats::StatsRequest;
use sluice_protocol::wire::sync_group::SyncGroupRequest;
use sluice_protocol::wire::{
    ApiKey, RequestHeader, WireError, check_frame, decode_body, encode_body,
};

/// The broker's default `max_frame_bytes`.
const MAX_FRAME: u32 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    // As the broker does: frame, decode the header, decode the body its API
    // key names.
    match check_frame(data, MAX_FRAME, REQUEST_HEADER_LEN) {
        Ok(Some(total)) => {
            assert!(total <= data.len());
            let frame = &data[..total];
            if let Ok((header, tail_len)) = RequestHeader::decode(frame) {
                let body_start = LEN_PREFIX + REQUEST_HEADER_LEN;
                let body_end = body_start + header.body_len as usize;
                assert_eq!(body_end + tail_len, total);
                if let Some(api) = ApiKey::from_u16(header.api_key) {
                    decode_request(api, &frame[body_start..body_end], tail_len);
                }
            }
        }
        Ok(None) => {}
        Err(WireError::FrameTooLarge { len, .. }) => assert!(len > MAX_FRAME),
        Err(WireError::FrameTooShort { len, .. }) => assert!((len as usize) < REQUEST_HEADER_LEN),
        Err(e) => panic!("check_frame gave {e:?}"),
    }
    // The header decoder on its own, on bytes that may not be a whole frame.
    if let Ok((header, tail_len)) = RequestHeader::decode(data) {
        assert!(
            LEN_PREFIX + REQUEST_HEADER_LEN + header.body_len as usize + tail_len <= data.len()
        );
    }
    // Every request body decoder on the raw bytes.
    for api in ApiKey::ALL {
        decode_request(api, data, data.len());
    }
});

/// Decodes `body` as the request of `api`, and checks its tail if it has one.
fn decode_request(api: ApiKey, body: &[u8], tail_len: usize) {
    match api {
        ApiKey::ApiVersions => {
            stable::<ApiVersionsRequest>(body);
        }
        ApiKey::Metadata => {
            stable::<MetadataRequest>(body);
            stable::<MetadataRequestV3>(body);
        }
        ApiKey::CreateTopics => {
            stable::<CreateTopicsRequest>(body);
            stable::<CreateTopicsRequestV0>(body);
            stable::<CreateTopicsRequestV1>(body);
        }
        ApiKey::DeleteTopics => {
            stable::<DeleteTopicsRequest>(body);
        }
        ApiKey::CreatePartitions => {
            stable::<CreatePartitionsRequest>(body);
        }
        ApiKey::AlterTopicConfig => {
            stable::<AlterTopicConfigRequest>(body);
        }
        ApiKey::DeleteRecords => {
            stable::<DeleteRecordsRequest>(body);
        }
        ApiKey::Produce => {
            if let Some(req) = stable::<ProduceRequest>(body) {
                let listed: u64 = req
                    .partitions
                    .iter()
                    .map(|p| u64::from(p.records_len))
                    .sum();
                assert_eq!(req.check_tail(tail_len).is_ok(), listed == tail_len as u64);
            }
        }
        ApiKey::Fetch | ApiKey::FetchStream => {
            stable::<FetchRequest>(body);
        }
        ApiKey::ListOffsets => {
            stable::<ListOffsetsRequest>(body);
        }
        ApiKey::OffsetCommit => {
            stable::<OffsetCommitRequest>(body);
            stable::<OffsetCommitRequestV1>(body);
        }
        ApiKey::OffsetFetch => {
            stable::<OffsetFetchRequest>(body);
        }
        ApiKey::Stats => {
            stable::<StatsRequest>(body);
        }
        ApiKey::InitProducerId => {
            stable::<InitProducerIdRequest>(body);
        }
        ApiKey::PartitionStatus => {
            stable::<PartitionStatusRequest>(body);
        }
        ApiKey::BrokerStatus => {
            stable::<BrokerStatusRequest>(body);
        }
        ApiKey::JoinGroup => {
            stable::<JoinGroupRequest>(body);
        }
        ApiKey::SyncGroup => {
            stable::<SyncGroupRequest>(body);
        }
        ApiKey::Heartbeat => {
            stable::<HeartbeatRequest>(body);
        }
        ApiKey::LeaveGroup => {
            stable::<LeaveGroupRequest>(body);
        }
        ApiKey::DescribeGroups => {
            stable::<DescribeGroupsRequest>(body);
        }
        ApiKey::ListGroups => {
            stable::<ListGroupsRequest>(body);
        }
        ApiKey::DeleteGroups => {
            stable::<DeleteGroupsRequest>(body);
        }
        ApiKey::FindCoordinator => {
            stable::<FindCoordinatorRequest>(body);
        }
    }
}

/// Decodes `body` as a `T`; when it decodes, its re-encoding decodes to the
/// same value (the bytes may differ: postcard accepts over-long varints).
fn stable<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) -> Option<T> {
    let value = decode_body::<T>(body).ok()?;
    let mut again = Vec::new();
    let n = encode_body(&value, &mut again);
    assert_eq!(n, again.len());
    assert!(n <= body.len(), "canonical encoding is never longer");
    assert_eq!(decode_body::<T>(&again).as_ref(), Ok(&value));
    Some(value)
}
