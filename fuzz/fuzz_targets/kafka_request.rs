//! Fuzz target: the Kafka listener's request side over arbitrary bytes —
//! the request header decoder, and the body decoder of every served API and
//! version (api key and version from the first four bytes of the input,
//! the body after them). None may panic or allocate out of proportion to
//! the input, and what decodes re-encodes to bytes that decode to the same
//! value.
//!
//! Run: `./run-bounded.sh kafka_request 60` from `fuzz/` (see `fuzz/README.md`).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use sluice_protocol::kafka::acls::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use sluice_protocol::kafka::admin::*;
use sluice_protocol::kafka::alter_configs::{AlterConfigsRequest, IncrementalAlterConfigsRequest};
use sluice_protocol::kafka::api_versions::ApiVersionsRequest;
use sluice_protocol::kafka::consumer_group::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
};
use sluice_protocol::kafka::create_partitions::CreatePartitionsRequest;
use sluice_protocol::kafka::delete_records::DeleteRecordsRequest;
use sluice_protocol::kafka::describe_log_dirs::DescribeLogDirsRequest;
use sluice_protocol::kafka::describe_producers::DescribeProducersRequest;
use sluice_protocol::kafka::elect_leaders::ElectLeadersRequest;
use sluice_protocol::kafka::fetch::FetchRequest;
use sluice_protocol::kafka::groups::*;
use sluice_protocol::kafka::header::RequestHeader;
use sluice_protocol::kafka::list_offsets::ListOffsetsRequest;
use sluice_protocol::kafka::metadata::MetadataRequest;
use sluice_protocol::kafka::offset_delete::OffsetDeleteRequest;
use sluice_protocol::kafka::offsets::*;
use sluice_protocol::kafka::produce::ProduceRequest;
use sluice_protocol::kafka::{ApiKey, Message, decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok((_, at)) = RequestHeader::decode(data) {
        assert!(at <= data.len());
    }
    let (Some(key), Some(version), Some(body)) = (
        data.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])),
        data.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])),
        data.get(4..),
    ) else {
        return;
    };
    // Any key and version maps onto a served one, so every decoder runs.
    let api = ApiKey::ALL[key.unsigned_abs() as usize % ApiKey::ALL.len()];
    let (min, max) = api.versions();
    let version = min + (version.unsigned_abs() as i16 % (max - min + 1));
    match api {
        ApiKey::Produce => stable::<ProduceRequest>(body, version),
        ApiKey::Fetch => stable::<FetchRequest>(body, version),
        ApiKey::ListOffsets => stable::<ListOffsetsRequest>(body, version),
        ApiKey::Metadata => stable::<MetadataRequest>(body, version),
        ApiKey::OffsetCommit => stable::<OffsetCommitRequest>(body, version),
        ApiKey::OffsetFetch => stable::<OffsetFetchRequest>(body, version),
        ApiKey::FindCoordinator => stable::<FindCoordinatorRequest>(body, version),
        ApiKey::ApiVersions => stable::<ApiVersionsRequest>(body, version),
        ApiKey::CreateTopics => stable::<CreateTopicsRequest>(body, version),
        ApiKey::DeleteTopics => stable::<DeleteTopicsRequest>(body, version),
        ApiKey::InitProducerId => stable::<InitProducerIdRequest>(body, version),
        ApiKey::OffsetForLeaderEpoch => {
            stable::<sluice_protocol::kafka::offset_for_leader_epoch::OffsetForLeaderEpochRequest>(
                body, version,
            )
        }
        ApiKey::DescribeAcls => stable::<DescribeAclsRequest>(body, version),
        ApiKey::CreateAcls => stable::<CreateAclsRequest>(body, version),
        ApiKey::DeleteAcls => stable::<DeleteAclsRequest>(body, version),
        ApiKey::DescribeConfigs => stable::<DescribeConfigsRequest>(body, version),
        ApiKey::AlterConfigs => stable::<AlterConfigsRequest>(body, version),
        ApiKey::IncrementalAlterConfigs => {
            stable::<IncrementalAlterConfigsRequest>(body, version)
        }
        ApiKey::CreatePartitions => stable::<CreatePartitionsRequest>(body, version),
        ApiKey::DeleteRecords => stable::<DeleteRecordsRequest>(body, version),
        ApiKey::OffsetDelete => stable::<OffsetDeleteRequest>(body, version),
        ApiKey::ElectLeaders => stable::<ElectLeadersRequest>(body, version),
        ApiKey::DescribeLogDirs => stable::<DescribeLogDirsRequest>(body, version),
        ApiKey::JoinGroup => stable::<JoinGroupRequest>(body, version),
        ApiKey::Heartbeat => stable::<HeartbeatRequest>(body, version),
        ApiKey::LeaveGroup => stable::<LeaveGroupRequest>(body, version),
        ApiKey::SyncGroup => stable::<SyncGroupRequest>(body, version),
        ApiKey::DescribeGroups => stable::<DescribeGroupsRequest>(body, version),
        ApiKey::ListGroups => stable::<ListGroupsRequest>(body, version),
        ApiKey::DeleteGroups => stable::<DeleteGroupsRequest>(body, version),
        ApiKey::DescribeProducers => stable::<DescribeProducersRequest>(body, version),
        ApiKey::ConsumerGroupHeartbeat => stable::<ConsumerGroupHeartbeatRequest>(body, version),
        ApiKey::ConsumerGroupDescribe => stable::<ConsumerGroupDescribeRequest>(body, version),
    }
});

/// Decodes `body`; when it decodes, its re-encoding decodes to the same
/// value (record sets are positions, so they are re-read from `body`).
fn stable<M: Message + Clone + PartialEq + Debug>(body: &[u8], version: i16) {
    let Ok(m) = decode::<M>(body, version) else {
        return;
    };
    let mut again = Vec::new();
    encode(&mut m.clone(), version, &mut again, body).expect("re-encode");
    let back = decode::<M>(&again, version).expect("re-decode");
    let mut twice = Vec::new();
    encode(&mut back.clone(), version, &mut twice, &again).expect("re-encode");
    assert_eq!(again, twice);
}
