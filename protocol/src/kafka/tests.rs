//! Round trips of every message at every served version, truncation,
//! arbitrary bytes through every request decoder, and request bytes
//! captured from real Kafka clients.

use proptest::prelude::*;

use super::acls::*;
use super::admin::*;
use super::alter_configs::*;
use super::api_versions::*;
use super::consumer_group::*;
use super::create_partitions::*;
use super::delete_records::*;
use super::describe_log_dirs::*;
use super::describe_producers::*;
use super::elect_leaders::*;
use super::fetch::*;
use super::groups::*;
use super::header::RequestHeader;
use super::io::Records;
use super::list_offsets::*;
use super::metadata::*;
use super::offset_delete::*;
use super::offsets::*;
use super::produce::*;
use super::*;

/// Encodes `m` at `v`, decodes it back and checks the bytes re-encode the
/// same; every strict prefix of the encoding fails to decode (no panic).
fn round_trip<M: Message + Clone + std::fmt::Debug + PartialEq>(m: &M, v: i16, src: &[u8]) -> M {
    let mut bytes = Vec::new();
    encode(&mut m.clone(), v, &mut bytes, src).expect("encode");
    let mut back: M = decode(&bytes, v).expect("decode");
    let mut again = Vec::new();
    encode(&mut back.clone(), v, &mut again, &bytes).expect("re-encode");
    assert_eq!(bytes, again, "{} v{v}", std::any::type_name::<M>());
    for cut in 0..bytes.len() {
        assert!(
            decode::<M>(bytes.get(..cut).unwrap_or_default(), v).is_err(),
            "{} v{v}: prefix of {cut} bytes decoded",
            std::any::type_name::<M>()
        );
    }
    // Record sets come back as positions in the encoded bytes.
    let _ = &mut back;
    back
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (a, b) = api.versions();
    a..=b
}

fn s(x: &str) -> String {
    x.to_owned()
}

#[test]
fn requests_round_trip_at_every_version() {
    let records = b"0123456789abcdef".to_vec();
    for v in versions(ApiKey::Produce) {
        let req = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1500,
            topics: vec![ProduceTopicData {
                name: s("t"),
                partitions: vec![
                    ProducePartitionData {
                        index: 0,
                        records: Some(Records { start: 2, len: 10 }),
                    },
                    ProducePartitionData {
                        index: 1,
                        records: None,
                    },
                ],
            }],
        };
        let back = round_trip(&req, v, &records);
        assert_eq!(back.acks, -1);
        let r = back.topics[0].partitions[0].records.expect("records");
        assert_eq!(r.len, 10);
    }
    for v in versions(ApiKey::Fetch) {
        // Up to version 12 topics go by name, from 13 by id.
        let (topic, topic_id) = if v >= 13 {
            (String::new(), [7; 16])
        } else {
            (s("t"), [0; 16])
        };
        let req = FetchRequest {
            replica_id: if v <= 14 { -1 } else { 0 },
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 0,
            session_id: 0,
            session_epoch: if v >= 7 { -1 } else { 0 },
            topics: vec![FetchTopic {
                topic: topic.clone(),
                topic_id,
                partitions: vec![FetchPartition {
                    partition: 3,
                    current_leader_epoch: if v >= 9 { -1 } else { 0 },
                    fetch_offset: 42,
                    last_fetched_epoch: if v >= 12 { -1 } else { 0 },
                    log_start_offset: if v >= 5 { -1 } else { 0 },
                    partition_max_bytes: 1 << 20,
                }],
            }],
            forgotten: if v >= 7 {
                vec![ForgottenTopic {
                    topic,
                    topic_id,
                    partitions: vec![1, 2],
                }]
            } else {
                Vec::new()
            },
            rack_id: String::new(),
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::Metadata) {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: [0; 16],
                name: Some(s("t")),
            }]),
            allow_auto_topic_creation: v >= 4,
            include_cluster_authorized_operations: (8..=10).contains(&v),
            include_topic_authorized_operations: v >= 8,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::ApiVersions) {
        let req = ApiVersionsRequest {
            client_software_name: if v >= 3 { s("x") } else { String::new() },
            client_software_version: if v >= 3 { s("1") } else { String::new() },
        };
        let mut bytes = Vec::new();
        encode(&mut req.clone(), v, &mut bytes, &[]).expect("encode");
        assert_eq!(decode::<ApiVersionsRequest>(&bytes, v), Ok(req));
    }
    for v in versions(ApiKey::ListOffsets) {
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: s("t"),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: if v >= 4 { -1 } else { 0 },
                    timestamp: EARLIEST,
                }],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::OffsetCommit) {
        let req = OffsetCommitRequest {
            group_id: s("g"),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: if (2..=4).contains(&v) { -1 } else { 0 },
            topics: vec![OffsetCommitTopic {
                name: s("t"),
                partitions: vec![OffsetCommitPartition {
                    partition_index: 1,
                    committed_offset: 7,
                    commit_timestamp_ms: if v == 1 { 1_700_000_000_000 } else { 0 },
                    committed_leader_epoch: if v >= 6 { -1 } else { 0 },
                    committed_metadata: Some(s("m")),
                }],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::OffsetFetch) {
        let req = OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: s("g"),
                member_id: None,
                member_epoch: -1,
                topics: Some(vec![OffsetFetchTopic {
                    name: s("t"),
                    partition_indexes: vec![0, 1],
                }]),
            }],
            require_stable: v >= 7,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::FindCoordinator) {
        let req = FindCoordinatorRequest {
            key: if v <= 3 { s("g") } else { String::new() },
            key_type: 0,
            coordinator_keys: if v >= 4 { vec![s("g")] } else { Vec::new() },
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::CreateTopics) {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: s("t"),
                num_partitions: 3,
                replication_factor: -1,
                assignments: Vec::new(),
                configs: vec![ConfigEntry {
                    name: s("retention.ms"),
                    value: Some(s("1000")),
                }],
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::DeleteTopics) {
        let req = DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(s("t")),
                topic_id: [0; 16],
            }],
            timeout_ms: 1000,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: s("t"),
                configuration_keys: None,
            }],
            include_synonyms: v >= 1,
            include_documentation: v >= 3,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    let resource = |operation| AlterConfigsResource {
        resource_type: RESOURCE_TOPIC,
        resource_name: s("t"),
        configs: vec![
            AlterableConfig {
                name: s("retention.ms"),
                operation,
                value: Some(s("1000")),
            },
            AlterableConfig {
                name: s("retention.bytes"),
                operation,
                value: None,
            },
        ],
    };
    for v in versions(ApiKey::AlterConfigs) {
        let req = AlterConfigsRequest {
            resources: vec![resource(OP_SET)],
            validate_only: true,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let req = IncrementalAlterConfigsRequest {
            resources: vec![resource(OP_DELETE)],
            validate_only: false,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
    let outcome = AlterConfigsOutcome {
        throttle_time_ms: 0,
        responses: vec![AlterConfigsResult {
            error_code: 40,
            error_message: Some(s("no")),
            resource_type: RESOURCE_TOPIC,
            resource_name: s("t"),
        }],
    };
    for v in versions(ApiKey::AlterConfigs) {
        let resp = AlterConfigsResponse(outcome.clone());
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let resp = IncrementalAlterConfigsResponse(outcome.clone());
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::CreatePartitions) {
        for assignments in [
            None,
            Some(vec![
                PartitionAssignment {
                    broker_ids: vec![1, 2],
                },
                PartitionAssignment::default(),
            ]),
        ] {
            let req = CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: s("t"),
                    count: 4,
                    assignments,
                }],
                timeout_ms: 30_000,
                validate_only: true,
            };
            assert_eq!(round_trip(&req, v, &[]), req);
        }
        let resp = CreatePartitionsResponse {
            throttle_time_ms: 0,
            results: vec![CreatePartitionsResult {
                name: s("t"),
                error_code: 37,
                error_message: Some(s("no")),
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DeleteRecords) {
        let req = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: s("t"),
                partitions: vec![
                    DeleteRecordsPartition {
                        partition_index: 0,
                        offset: 42,
                    },
                    DeleteRecordsPartition {
                        partition_index: 3,
                        offset: HIGH_WATERMARK,
                    },
                ],
            }],
            timeout_ms: 30_000,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics: vec![DeleteRecordsTopicResult {
                name: s("t"),
                partitions: vec![DeleteRecordsPartitionResult {
                    partition_index: 3,
                    low_watermark: 42,
                    error_code: 1,
                }],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        use crate::kafka::offset_for_leader_epoch::*;
        let req = OffsetForLeaderEpochRequest {
            replica_id: if v >= 3 { -1 } else { -2 },
            topics: vec![EpochQueryTopic {
                topic: s("t"),
                partitions: vec![
                    EpochQuery {
                        partition: 0,
                        current_leader_epoch: if v >= 2 { 7 } else { UNDEFINED },
                        leader_epoch: 5,
                    },
                    EpochQuery {
                        partition: 2,
                        current_leader_epoch: UNDEFINED,
                        leader_epoch: 0,
                    },
                ],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = OffsetForLeaderEpochResponse {
            throttle_time_ms: if v >= 2 { 3 } else { 0 },
            topics: vec![EpochEndOffsetTopic {
                topic: s("t"),
                partitions: vec![EpochEndOffset {
                    error_code: 6,
                    partition: 2,
                    leader_epoch: if v >= 1 { 5 } else { UNDEFINED },
                    end_offset: 1234,
                }],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::OffsetDelete) {
        let req = OffsetDeleteRequest {
            group_id: s("g"),
            topics: vec![OffsetDeleteTopic {
                name: s("t"),
                partitions: vec![0, 7],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = OffsetDeleteResponse {
            error_code: 0,
            throttle_time_ms: 0,
            topics: vec![OffsetDeleteTopicResult {
                name: s("t"),
                partitions: vec![(0, 0), (7, 86)],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DescribeAcls) {
        // v0 carries no pattern type: literal.
        let pattern_type = if v >= 1 { 1 } else { PATTERN_LITERAL };
        let filter = AclFilter {
            resource_type: 2,
            resource_name: Some(s("t")),
            pattern_type,
            principal: None,
            host: Some(s("*")),
            operation: 1,
            permission_type: 3,
        };
        let req = DescribeAclsRequest {
            filter: filter.clone(),
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DescribeAclsResponse {
            throttle_time_ms: 0,
            error_code: super::error_code::code::SECURITY_DISABLED,
            error_message: Some(s("No Authorizer is configured.")),
            resources: vec![DescribeAclsResource {
                resource_type: 2,
                resource_name: s("t"),
                pattern_type: if v >= 1 { 3 } else { 0 },
                acls: vec![AclDescription {
                    principal: s("User:a"),
                    host: s("*"),
                    operation: 3,
                    permission_type: 3,
                }],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
        let req = CreateAclsRequest {
            creations: vec![AclCreation {
                resource_type: 2,
                resource_name: s("t"),
                pattern_type,
                principal: s("User:a"),
                host: s("*"),
                operation: 3,
                permission_type: 3,
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let outcome = AclOutcome {
            error_code: super::error_code::code::SECURITY_DISABLED,
            error_message: Some(s("No Authorizer is configured.")),
        };
        let resp = CreateAclsResponse {
            throttle_time_ms: 0,
            results: vec![outcome.clone(), AclOutcome::default()],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
        let req = DeleteAclsRequest {
            filters: vec![
                filter.clone(),
                AclFilter {
                    pattern_type,
                    ..AclFilter::default()
                },
            ],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DeleteAclsResponse {
            throttle_time_ms: 0,
            filter_results: vec![
                DeleteAclsFilterResult {
                    outcome: outcome.clone(),
                    matching_acls: Vec::new(),
                },
                DeleteAclsFilterResult {
                    outcome: AclOutcome::default(),
                    matching_acls: vec![AclMatch {
                        outcome: AclOutcome::default(),
                        acl: AclCreation {
                            resource_type: 2,
                            resource_name: s("t"),
                            pattern_type,
                            principal: s("User:a"),
                            host: s("*"),
                            operation: 3,
                            permission_type: 3,
                        },
                    }],
                },
            ],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DescribeProducers) {
        let req = DescribeProducersRequest {
            topics: vec![DescribeProducersTopic {
                name: s("t"),
                partition_indexes: vec![0, 4],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DescribeProducersResponse {
            throttle_time_ms: 0,
            topics: vec![DescribeProducersTopicResponse {
                name: s("t"),
                partitions: vec![
                    DescribeProducersPartition {
                        partition_index: 0,
                        error_code: 0,
                        error_message: None,
                        active_producers: vec![ProducerState {
                            producer_id: 7,
                            producer_epoch: 1,
                            last_sequence: 41,
                            last_timestamp: 1_700_000_000_000,
                            coordinator_epoch: -1,
                            current_txn_start_offset: -1,
                        }],
                    },
                    DescribeProducersPartition {
                        partition_index: 4,
                        error_code: super::error_code::code::UNKNOWN_TOPIC_OR_PARTITION,
                        error_message: Some(s("no partition 4")),
                        active_producers: Vec::new(),
                    },
                ],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::ElectLeaders) {
        for topic_partitions in [
            None,
            Some(vec![ElectLeadersTopic {
                topic: s("t"),
                partitions: vec![0, 3],
            }]),
        ] {
            let req = ElectLeadersRequest {
                // v0 carries no election type: preferred.
                election_type: if v >= 1 {
                    ELECTION_UNCLEAN
                } else {
                    ELECTION_PREFERRED
                },
                topic_partitions,
                timeout_ms: 5000,
            };
            assert_eq!(round_trip(&req, v, &[]), req);
        }
        let resp = ElectLeadersResponse {
            throttle_time_ms: 0,
            error_code: if v >= 1 {
                super::error_code::code::INVALID_REQUEST
            } else {
                0
            },
            replica_election_results: vec![ElectLeadersTopicResult {
                topic: s("t"),
                partition_result: vec![
                    ElectLeadersPartitionResult {
                        partition_id: 0,
                        error_code: super::error_code::code::ELECTION_NOT_NEEDED,
                        error_message: None,
                    },
                    ElectLeadersPartitionResult {
                        partition_id: 3,
                        error_code: super::error_code::code::PREFERRED_LEADER_NOT_AVAILABLE,
                        error_message: Some(s("not in sync")),
                    },
                ],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DescribeLogDirs) {
        for topics in [
            None,
            Some(vec![DescribableLogDirTopic {
                topic: s("t"),
                partitions: vec![0, 2],
            }]),
        ] {
            let req = DescribeLogDirsRequest { topics };
            assert_eq!(round_trip(&req, v, &[]), req);
        }
        let resp = DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            results: vec![LogDirResult {
                error_code: 0,
                log_dir: s("/data"),
                topics: vec![LogDirTopic {
                    name: s("t"),
                    partitions: vec![LogDirPartition {
                        partition_index: 2,
                        partition_size: 1 << 40,
                        offset_lag: 0,
                        is_future_key: false,
                    }],
                }],
                total_bytes: if v >= 4 { 1 << 41 } else { 0 },
                usable_bytes: if v >= 4 { 1 << 30 } else { 0 },
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::InitProducerId) {
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: if v >= 3 { -1 } else { 0 },
            producer_epoch: if v >= 3 { -1 } else { 0 },
        };
        assert_eq!(round_trip(&req, v, &[]), req);
    }
}

#[test]
fn responses_round_trip_at_every_version() {
    for v in versions(ApiKey::ApiVersions) {
        let resp = ApiVersionsResponse::served(0);
        let mut bytes = Vec::new();
        encode(&mut resp.clone(), v, &mut bytes, &[]).expect("encode");
        assert_eq!(decode::<ApiVersionsResponse>(&bytes, v), Ok(resp));
    }
    for v in versions(ApiKey::Metadata) {
        let resp = MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataBroker {
                node_id: 0,
                host: s("127.0.0.1"),
                port: 9092,
                rack: None,
            }],
            cluster_id: Some(s("sluice")),
            controller_id: 0,
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some(s("t")),
                topic_id: [0; 16],
                is_internal: false,
                partitions: vec![MetadataPartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 0,
                    leader_epoch: 0,
                    replica_nodes: vec![0],
                    isr_nodes: vec![0],
                    offline_replicas: Vec::new(),
                }],
                topic_authorized_operations: i32::MIN,
            }],
            cluster_authorized_operations: i32::MIN,
        };
        let mut want = resp.clone();
        if v < 8 {
            want.topics[0].topic_authorized_operations = 0;
        }
        if !(8..=10).contains(&v) {
            want.cluster_authorized_operations = 0;
        }
        if v < 2 {
            want.cluster_id = None;
        }
        assert_eq!(round_trip(&resp, v, &[]), want);
    }
    let records = vec![7u8; 32];
    for v in versions(ApiKey::Fetch) {
        let resp = FetchResponse {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![FetchTopicResponse {
                topic: if v >= 13 { String::new() } else { s("t") },
                topic_id: if v >= 13 { [9; 16] } else { [0; 16] },
                partitions: vec![FetchPartitionResponse {
                    partition: 0,
                    error_code: 0,
                    high_watermark: 10,
                    last_stable_offset: 10,
                    log_start_offset: 0,
                    aborted_transactions: None,
                    preferred_read_replica: if v >= 11 { -1 } else { 0 },
                    records: Some(Records { start: 0, len: 32 }),
                }],
            }],
        };
        let back = round_trip(&resp, v, &records);
        assert_eq!(
            back.topics[0].partitions[0].records.map(|r| r.len),
            Some(32)
        );
        assert_eq!(back.topics[0].topic, resp.topics[0].topic, "v{v}");
        assert_eq!(back.topics[0].topic_id, resp.topics[0].topic_id, "v{v}");
        // Cut: the same bytes without the records, which belong at the cut.
        let mut cut = Vec::new();
        let cuts = encode_cut(&mut resp.clone(), v, &mut cut).expect("cut");
        let mut whole = Vec::new();
        encode(&mut resp.clone(), v, &mut whole, &records).expect("encode");
        let (at, id) = cuts[0];
        assert_eq!(id, 0);
        let mut joined = cut[..at].to_vec();
        joined.extend_from_slice(&records);
        joined.extend_from_slice(&cut[at..]);
        assert_eq!(joined, whole, "v{v}");
    }
    for v in versions(ApiKey::Produce) {
        let resp = ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: s("t"),
                partitions: vec![ProducePartitionResponse {
                    index: 0,
                    error_code: 0,
                    base_offset: 5,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                    record_errors: Vec::new(),
                    error_message: None,
                }],
            }],
            throttle_time_ms: 0,
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::OffsetFetch) {
        let resp = OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: vec![OffsetFetchGroupResponse {
                group_id: if v >= 8 { s("g") } else { String::new() },
                topics: vec![OffsetFetchTopicResponse {
                    name: s("t"),
                    partitions: vec![OffsetFetchPartition {
                        partition_index: 0,
                        committed_offset: 3,
                        committed_leader_epoch: if v >= 5 { -1 } else { 0 },
                        metadata: Some(String::new()),
                        error_code: 0,
                    }],
                }],
                error_code: 0,
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::FindCoordinator) {
        let resp = FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![Coordinator {
                key: if v >= 4 { s("g") } else { String::new() },
                node_id: 0,
                host: s("localhost"),
                port: 9092,
                error_code: 0,
                error_message: None,
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let resp = DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                error_code: 0,
                error_message: None,
                resource_type: RESOURCE_TOPIC,
                resource_name: s("t"),
                configs: vec![DescribedConfig {
                    name: s("retention.ms"),
                    value: Some(s("1")),
                    read_only: false,
                    is_default: v == 0,
                    config_source: if v >= 1 { 1 } else { 0 },
                    is_sensitive: false,
                    synonyms: Vec::new(),
                    config_type: if v >= 3 { 5 } else { 0 },
                    documentation: None,
                }],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
}

#[test]
fn group_messages_round_trip_at_every_version() {
    for v in versions(ApiKey::JoinGroup) {
        let req = JoinGroupRequest {
            group_id: s("g"),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: if v >= 1 { 30_000 } else { 0 },
            member_id: String::new(),
            group_instance_id: if v >= 5 { Some(s("i")) } else { None },
            protocol_type: s("consumer"),
            protocols: vec![JoinProtocol {
                name: s("range"),
                metadata: vec![0, 1, 2],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            generation_id: 3,
            protocol_type: if v >= 7 { Some(s("consumer")) } else { None },
            protocol_name: Some(s("range")),
            leader: s("m1"),
            member_id: s("m1"),
            members: vec![JoinGroupMember {
                member_id: s("m1"),
                group_instance_id: None,
                metadata: vec![9],
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::SyncGroup) {
        let req = SyncGroupRequest {
            group_id: s("g"),
            generation_id: 3,
            member_id: s("m1"),
            group_instance_id: None,
            protocol_type: if v >= 5 { Some(s("consumer")) } else { None },
            protocol_name: if v >= 5 { Some(s("range")) } else { None },
            assignments: vec![SyncAssignment {
                member_id: s("m1"),
                assignment: vec![1, 2],
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = SyncGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            protocol_type: None,
            protocol_name: None,
            assignment: vec![7; 5],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::Heartbeat) {
        let req = HeartbeatRequest {
            group_id: s("g"),
            generation_id: 1,
            member_id: s("m"),
            group_instance_id: None,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: 27,
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::LeaveGroup) {
        let req = LeaveGroupRequest {
            group_id: s("g"),
            members: vec![LeavingMember {
                member_id: s("m"),
                group_instance_id: None,
            }],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            members: if v >= 3 {
                vec![LeftMember {
                    member_id: s("m"),
                    group_instance_id: None,
                    error_code: 0,
                }]
            } else {
                Vec::new()
            },
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DescribeGroups) {
        let req = DescribeGroupsRequest {
            groups: vec![s("g")],
            include_authorized_operations: v >= 3,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![DescribedGroup {
                error_code: 0,
                group_id: s("g"),
                group_state: s("Stable"),
                protocol_type: s("consumer"),
                protocol_data: s("range"),
                members: vec![DescribedMember {
                    member_id: s("m"),
                    group_instance_id: None,
                    client_id: s("c"),
                    client_host: s("/127.0.0.1"),
                    member_metadata: vec![1],
                    member_assignment: vec![2],
                }],
                authorized_operations: if v >= 3 { i32::MIN } else { 0 },
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::ListGroups) {
        let req = ListGroupsRequest {
            states_filter: if v >= 4 {
                vec![s("Stable")]
            } else {
                Vec::new()
            },
            types_filter: if v >= 5 {
                vec![s("consumer"), s("classic")]
            } else {
                Vec::new()
            },
        };
        let mut bytes = Vec::new();
        encode(&mut req.clone(), v, &mut bytes, &[]).expect("encode");
        assert_eq!(decode::<ListGroupsRequest>(&bytes, v), Ok(req));
        let resp = ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups: vec![ListedGroup {
                group_id: s("g"),
                protocol_type: s("consumer"),
                group_state: if v >= 4 { s("Empty") } else { String::new() },
                group_type: if v >= 5 { s("classic") } else { String::new() },
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
    for v in versions(ApiKey::DeleteGroups) {
        let req = DeleteGroupsRequest {
            groups_names: vec![s("g")],
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let resp = DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: vec![DeletedGroup {
                group_id: s("g"),
                error_code: 68,
            }],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
}

#[test]
fn consumer_group_heartbeats_round_trip_at_every_version() {
    let id = [7u8; 16];
    for v in versions(ApiKey::ConsumerGroupHeartbeat) {
        let join = ConsumerGroupHeartbeatRequest {
            group_id: s("g"),
            member_id: s("m"),
            member_epoch: 0,
            instance_id: Some(s("i")),
            rack_id: None,
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: Some(vec![s("a"), s("b")]),
            subscribed_topic_regex: (v >= 1).then(String::new),
            server_assignor: Some(s("uniform")),
            topic_partitions: Some(vec![]),
        };
        assert_eq!(round_trip(&join, v, &[]), join);
        let steady = ConsumerGroupHeartbeatRequest {
            member_epoch: 3,
            instance_id: None,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            topic_partitions: None,
            ..join.clone()
        };
        assert_eq!(round_trip(&steady, v, &[]), steady);
        for assignment in [
            None,
            Some(vec![]),
            Some(vec![TopicPartitions {
                topic_id: id,
                partitions: vec![0, 2],
            }]),
        ] {
            let resp = ConsumerGroupHeartbeatResponse {
                throttle_time_ms: 0,
                error_code: 0,
                error_message: None,
                member_id: Some(s("m")),
                member_epoch: 4,
                heartbeat_interval_ms: 5000,
                assignment,
            };
            assert_eq!(round_trip(&resp, v, &[]), resp);
        }
    }
    // The regex is read from v1 only: a v0 body is a byte shorter.
    let r = ConsumerGroupHeartbeatRequest::default();
    let (mut v0, mut v1) = (Vec::new(), Vec::new());
    encode(&mut r.clone(), 0, &mut v0, &[]).expect("v0");
    encode(&mut r.clone(), 1, &mut v1, &[]).expect("v1");
    assert_eq!(v1.len(), v0.len() + 1);
    // A nullable struct marker other than -1 or 1 is refused.
    let mut bad = Vec::new();
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    encode(&mut resp, 1, &mut bad, &[]).expect("encode");
    let marker = bad.len() - 2;
    assert_eq!(bad[marker], 0xff);
    bad[marker] = 2;
    assert!(decode::<ConsumerGroupHeartbeatResponse>(&bad, 1).is_err());
}

#[test]
fn consumer_group_describes_round_trip_at_every_version() {
    for v in versions(ApiKey::ConsumerGroupDescribe) {
        let req = ConsumerGroupDescribeRequest {
            group_ids: vec![s("a"), s("b")],
            include_authorized_operations: true,
        };
        assert_eq!(round_trip(&req, v, &[]), req);
        let part = |n: &str| DescribedTopicPartitions {
            topic_id: [3; 16],
            topic_name: s(n),
            partitions: vec![1, 2],
        };
        let resp = ConsumerGroupDescribeResponse {
            throttle_time_ms: 0,
            groups: vec![
                DescribedConsumerGroup {
                    error_code: 0,
                    error_message: None,
                    group_id: s("a"),
                    group_state: s("Reconciling"),
                    group_epoch: 7,
                    assignment_epoch: 7,
                    assignor_name: s("uniform"),
                    members: vec![ConsumerGroupMember {
                        member_id: s("m"),
                        instance_id: Some(s("i")),
                        rack_id: None,
                        member_epoch: 6,
                        client_id: s("c"),
                        client_host: s("/127.0.0.1"),
                        subscribed_topic_names: vec![s("t")],
                        subscribed_topic_regex: None,
                        assignment: vec![part("t")],
                        target_assignment: vec![part("t"), part("u")],
                        member_type: if v >= 1 { 1 } else { -1 },
                    }],
                    authorized_operations: i32::MIN,
                },
                DescribedConsumerGroup {
                    error_code: 69,
                    error_message: Some(s("not a consumer group")),
                    group_id: s("b"),
                    group_state: s("Dead"),
                    ..DescribedConsumerGroup::default()
                },
            ],
        };
        assert_eq!(round_trip(&resp, v, &[]), resp);
    }
}

#[test]
fn offset_fetch_names_the_member_from_version_9() {
    let req = OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: s("g"),
            member_id: Some(s("m")),
            member_epoch: 5,
            topics: None,
        }],
        require_stable: true,
    };
    let back = round_trip(&req, 9, &[]);
    assert_eq!(back, req);
    let back = round_trip(&req, 8, &[]);
    assert_eq!(back.groups[0].member_id, None);
    assert_eq!(back.groups[0].member_epoch, -1);
}

/// Thousands of short group names decode to values many times their wire
/// size (80 bytes from 8): within the budget's 1 MiB, as a client may send
/// them; past it a request is refused.
#[test]
fn an_offset_fetch_of_thousands_of_short_group_names_decodes() {
    let group = |i: usize| OffsetFetchGroup {
        group_id: format!("{i:05}"),
        member_id: None,
        member_epoch: -1,
        topics: None,
    };
    let req = OffsetFetchRequest {
        groups: (0..4_000).map(group).collect(),
        require_stable: false,
    };
    let mut body = Vec::new();
    encode(&mut req.clone(), 8, &mut body, &[]).unwrap();
    assert!(body.len() < 40_000, "{}", body.len());
    let back: OffsetFetchRequest = decode_capped(&body, 8, 200_000).unwrap();
    assert_eq!(back, req);
    let many = OffsetFetchRequest {
        groups: (0..100_000).map(group).collect(),
        require_stable: false,
    };
    let mut body = Vec::new();
    encode(&mut many.clone(), 8, &mut body, &[]).unwrap();
    assert!(matches!(
        decode_capped::<OffsetFetchRequest>(&body, 8, 200_000),
        Err(KafkaError::TooLarge { .. })
    ));
}

#[test]
fn request_headers_follow_the_api_version() {
    // Metadata v12 is flexible: header v2 (tagged fields after the client id).
    let h = RequestHeader {
        api_key: 3,
        api_version: 12,
        correlation_id: 9,
        client_id: Some(s("rdkafka")),
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    assert_eq!(out.len(), 8 + 2 + 7 + 1);
    assert_eq!(RequestHeader::decode(&out), Ok((h.clone(), out.len())));
    // Metadata v4: header v1, no tagged fields.
    let h1 = RequestHeader {
        api_version: 4,
        ..h
    };
    let mut out = Vec::new();
    h1.encode(&mut out);
    assert_eq!(RequestHeader::decode(&out), Ok((h1, 17)));
    // An unknown key is read as v1.
    let mut out = Vec::new();
    RequestHeader {
        api_key: 999,
        api_version: 0,
        correlation_id: 1,
        client_id: None,
    }
    .encode(&mut out);
    assert_eq!(RequestHeader::decode(&out).map(|(_, n)| n), Ok(10));
    for cut in 0..10 {
        assert!(RequestHeader::decode(&out[..cut]).is_err());
    }
    // A client id that is not UTF-8 is read with replacement characters, as
    // Kafka reads it, not refused.
    let mut out = vec![0, 3, 0, 4, 0, 0, 0, 5, 0, 3, b'a', 0xff, 0xfe];
    let (h, n) = RequestHeader::decode(&out).unwrap();
    assert_eq!(n, 13);
    assert_eq!(h.client_id.as_deref(), Some("a\u{fffd}\u{fffd}"));
    out.truncate(12);
    assert!(RequestHeader::decode(&out).is_err());
}

/// Decodes `body` as the request of `api` at `version`; if it decodes, it
/// re-encodes to bytes that decode to the same value.
pub(crate) fn check_request(api: ApiKey, version: i16, body: &[u8]) -> bool {
    fn stable<M: Message + Clone + PartialEq + std::fmt::Debug>(body: &[u8], v: i16) -> bool {
        let Ok(m) = decode::<M>(body, v) else {
            return false;
        };
        let mut again = Vec::new();
        encode(&mut m.clone(), v, &mut again, body).expect("re-encode");
        assert_eq!(decode::<M>(&again, v).as_ref(), Ok(&m));
        true
    }
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
        ApiKey::OffsetForLeaderEpoch => stable::<
            crate::kafka::offset_for_leader_epoch::OffsetForLeaderEpochRequest,
        >(body, version),
        ApiKey::DescribeAcls => stable::<DescribeAclsRequest>(body, version),
        ApiKey::CreateAcls => stable::<CreateAclsRequest>(body, version),
        ApiKey::DeleteAcls => stable::<DeleteAclsRequest>(body, version),
        ApiKey::DescribeConfigs => stable::<DescribeConfigsRequest>(body, version),
        ApiKey::AlterConfigs => stable::<AlterConfigsRequest>(body, version),
        ApiKey::IncrementalAlterConfigs => stable::<IncrementalAlterConfigsRequest>(body, version),
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
}

proptest! {
    #[test]
    fn arbitrary_bytes_through_every_request_decoder(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        for api in ApiKey::ALL {
            for v in versions(api) {
                check_request(api, v, &body);
            }
        }
    }
}

/// Request frames captured from real clients against the listener (length
/// prefix removed), with the API and version each client chose.
#[test]
fn captured_client_requests_decode() {
    let mut seen = std::collections::HashSet::<i16>::new();
    for (name, hex) in fixtures::ALL {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let (h, body_at) = RequestHeader::decode(&bytes).expect(name);
        let api = ApiKey::from_i16(h.api_key).expect(name);
        assert!(api.supports(h.api_version), "{name}: v{}", h.api_version);
        assert!(
            check_request(api, h.api_version, &bytes[body_at..]),
            "{name}"
        );
        seen.insert(h.api_key);
    }
    // Every API the clients used to produce, consume and administer.
    for api in [0, 1, 2, 3, 10, 18, 19, 20, 22] {
        assert!(seen.contains(&api), "no fixture of API {api}");
    }
}

#[path = "fixtures.rs"]
mod fixtures;
