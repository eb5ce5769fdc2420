//! The native protocol front-end: decodes each request frame into the
//! service's typed request, calls the [`Service`](crate::service::Service),
//! and encodes the answer. It decides nothing about storage, acks or
//! visibility; what it owns is framing and the limits on what a client may
//! hold (see [`connection`]).

/// Decodes `$body` as the request `$t` of `$api` (its values bounded by
/// the body's size and its lists by [`element_cap`](crate::service::element_cap)),
/// or answers the request
/// `$id` on `$conn` with `InvalidRequest` (counted as a bad request) and
/// returns from the calling handler.
macro_rules! decode_or_answer {
    ($conn:expr, $id:expr, $api:expr, $body:expr, $t:ty) => {
        match sluice_protocol::wire::decode_body_capped::<$t>(
            $body,
            crate::service::element_cap(&$conn.broker.config),
        ) {
            Ok(r) => r,
            Err(e) => {
                crate::service::stats::Stats::add(&$conn.broker.stats.bad_requests, 1);
                let msg = format!("{:?} request: {e}", $api);
                return $conn
                    .write_error($id, sluice_protocol::wire::ErrorCode::InvalidRequest, &msg)
                    .await;
            }
        }
    };
}

pub(crate) mod connection;
mod groups;
mod stream;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::wire::api_versions::{ApiVersionRange, ApiVersionsResponse};
use sluice_protocol::wire::broker_status::{
    BrokerStatusRequest, BrokerStatusResponse, BrokerStatusResponseV0,
};
use sluice_protocol::wire::create_topics::{
    CreateTopicsRequest, CreateTopicsRequestV0, CreateTopicsRequestV1, CreateTopicsResponse,
    TopicResult,
};
use sluice_protocol::wire::delete_topics::{DeleteTopicsRequest, DeleteTopicsResponse};
use sluice_protocol::wire::fetch::{FetchPartitionResponse, FetchRequest, FetchResponse};
use sluice_protocol::wire::find_coordinator::{FindCoordinatorRequest, FindCoordinatorResponse};
use sluice_protocol::wire::frame::{LEN_PREFIX, REQUEST_HEADER_LEN};
use sluice_protocol::wire::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetSpec,
};
use sluice_protocol::wire::metadata::{
    BrokerMetadata, MetadataRequest, MetadataRequestV3, MetadataResponse, MetadataResponseV0,
    MetadataResponseV1, PartitionMetadata, TopicMetadata,
};
use sluice_protocol::wire::offset_commit::{
    CommitPartitionResponse, OffsetCommitRequest, OffsetCommitRequestV1, OffsetCommitResponse,
};
use sluice_protocol::wire::offset_fetch::{
    OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse,
};
use sluice_protocol::wire::partition_status::{
    PartitionState, PartitionStatusRequest, PartitionStatusResponse, TopicState,
};
use sluice_protocol::wire::produce::{
    Acks as WireAcks, ProducePartitionResponse, ProduceRequest, ProduceResponse,
};
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader};

use crate::service::admin::{NewTopic, OffsetLookup, OffsetQuery, TopicOutcome};
use crate::service::coordinator::GroupCoordinator;
use crate::service::fetch as svc_fetch;
use crate::service::groups::CommitAs;
use crate::service::offsets::Commit;
use crate::service::produce::{self as svc_produce, Acks};
use crate::service::stats::Stats;
use crate::service::{Refused, check_entry_count, check_partition_list};

/// Refuses a body whose leading list (of names) holds more than `max`
/// entries before it is decoded: a request naming millions of names costs
/// no more than reading its count.
pub(super) fn names_within(
    body: &[u8],
    optional: bool,
    max: u32,
    what: &str,
) -> Result<(), Refused> {
    let n = sluice_protocol::wire::leading_list_len(body, optional).unwrap_or(0);
    check_entry_count(usize::try_from(n).unwrap_or(usize::MAX), max, what)
}
use connection::{Conn, ConnError};

/// The Metadata answer (newest version): the cluster's brokers, and each
/// topic's partitions with their offsets and leadership; a name in
/// `refused` (not created on first use) is answered with its error. A
/// partition whose leader is a node this one has not been able to reach
/// for a while ([`crate::service::leadership::Leadership::unreachable`],
/// the rule by which the Kafka listener leaves a node out) is answered
/// without a leader: clients then keep keyless records off it and do not
/// wait on a dead node's address.
fn metadata(
    svc: &crate::service::Service,
    req: MetadataRequest,
    refused: &std::collections::HashMap<String, ErrorCode>,
) -> MetadataResponse {
    let leadership = svc.leadership.as_ref();
    let unreachable = leadership.unreachable();
    let brokers = leadership
        .brokers()
        .into_iter()
        .map(|b| BrokerMetadata {
            id: b.id,
            listen: b.listen,
            kafka: b.kafka,
        })
        .collect();
    let topics = svc
        .describe_topics(req.topics.as_deref())
        .into_iter()
        .map(|t| TopicMetadata {
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let l = crate::service::leadership::describe(leadership, &t.name, p.partition);
                    PartitionMetadata {
                        partition: p.partition,
                        error_code: p.error_code,
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        leader: l.leader.filter(|id| !unreachable.contains(id)),
                        leader_epoch: l.leader_epoch,
                        replicas: l.replicas,
                        isr: l.isr,
                    }
                })
                .collect(),
            error_code: refused.get(&t.name).copied().unwrap_or(t.error_code),
            name: t.name,
            config: t.config,
        })
        .collect();
    MetadataResponse { brokers, topics }
}

/// Decodes the request header and serves the request, writing its response
/// (if the API has one). Frame-level problems (unknown API or version,
/// undecodable body) get an error response and the connection goes on.
/// The frame is consumed: its buffer is freed once the request is served.
async fn dispatch(conn: &mut Conn, mut frame: BytesMut) -> Result<(), ConnError> {
    let (header, tail_len) = match RequestHeader::decode(&frame) {
        Ok(h) => h,
        Err(e) => {
            Stats::add(&conn.broker.stats.bad_requests, 1);
            let id = frame
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_be_bytes);
            return conn
                .write_error(id, ErrorCode::InvalidRequest, &e.to_string())
                .await;
        }
    };
    let id = header.correlation_id;
    let Some(api) = ApiKey::from_u16(header.api_key) else {
        Stats::add(&conn.broker.stats.bad_requests, 1);
        let msg = format!("unknown API key {}", header.api_key);
        return conn.write_error(id, ErrorCode::UnsupportedApi, &msg).await;
    };
    let (min, max) = api.versions();
    if header.api_version < min || header.api_version > max {
        Stats::add(&conn.broker.stats.bad_requests, 1);
        let msg = format!(
            "{api:?} version {} is not supported (supported: {min}..={max})",
            header.api_version
        );
        return conn
            .write_error(id, ErrorCode::UnsupportedVersion, &msg)
            .await;
    }
    if tail_len > 0 && api != ApiKey::Produce {
        // Only a produce carries bytes after its body. Taken, they would
        // stay in memory (and the frame's request budget held) as long as
        // the request lasts: a fetch stream, for hours.
        Stats::add(&conn.broker.stats.bad_requests, 1);
        let msg = format!("{api:?} carries no bytes after its body, this one has {tail_len}");
        return conn.write_error(id, ErrorCode::InvalidRequest, &msg).await;
    }
    let body_start = LEN_PREFIX + REQUEST_HEADER_LEN;
    let body_end = body_start + header.body_len as usize;
    // The records (produce) stay in the frame's buffer: split, not copied.
    let tail = frame.split_off(body_end.min(frame.len()));
    debug_assert_eq!(tail.len(), tail_len);
    let body = frame.get(body_start..).unwrap_or_default();
    // Responses held back for one send (see `Conn::write_out`) go out now
    // if this request may wait (long poll, fsync, file-system work): a
    // request's answer never waits for a later request that blocks.
    // In a cluster an offset fetch may wait for its group's coordinator
    // (up to `COORDINATOR_WAIT`); Metadata creating topics on first use
    // waits for their leaders.
    let clustered = conn.broker.service.cluster.get().is_some();
    let may_wait = match api {
        // A produce that may wait flushes itself (see `produce`).
        ApiKey::ApiVersions | ApiKey::Stats | ApiKey::Produce => false,
        ApiKey::Metadata => conn.broker.config.auto_create_topics,
        ApiKey::OffsetFetch => clustered,
        _ => true,
    };
    if may_wait {
        conn.flush().await?;
    }
    if clustered
        && matches!(
            api,
            ApiKey::FindCoordinator
                | ApiKey::SyncGroup
                | ApiKey::Heartbeat
                | ApiKey::LeaveGroup
                | ApiKey::DescribeGroups
                | ApiKey::DeleteGroups
                | ApiKey::OffsetCommit
                | ApiKey::OffsetFetch
        )
    {
        // Waiting for a coordinator to be known and loaded is not slowness
        // (JoinGroup allows its rebalance timeout).
        conn.wait_allowance = crate::service::coordinator::COORDINATOR_WAIT;
    }
    let broker = Arc::clone(&conn.broker);
    let svc = Arc::clone(&broker.service);
    macro_rules! decode {
        ($t:ty) => {
            decode_or_answer!(conn, id, api, body, $t)
        };
    }
    macro_rules! or_refuse {
        ($r:expr) => {
            match $r {
                Ok(v) => v,
                Err(Refused { code, message }) => {
                    return conn.write_error(id, code, &message).await;
                }
            }
        };
    }
    let max_entries = conn.broker.config.max_partitions_per_request;
    match api {
        ApiKey::ApiVersions => {
            let apis = ApiKey::ALL
                .iter()
                .map(|k| {
                    let (min_version, max_version) = k.versions();
                    ApiVersionRange {
                        api_key: *k as u16,
                        min_version,
                        max_version,
                    }
                })
                .collect();
            respond(conn, id, &ApiVersionsResponse { apis }).await
        }
        ApiKey::Metadata => {
            or_refuse!(names_within(body, true, max_entries, "topics"));
            let (req, allow_auto_create) = if header.api_version >= 3 {
                let r = decode!(MetadataRequestV3);
                let topics = r.topics;
                (MetadataRequest { topics }, r.allow_auto_create)
            } else {
                (decode!(MetadataRequest), false)
            };
            let refused = match &req.topics {
                Some(names) if allow_auto_create => svc.create_on_first_use(names, conn.peer).await,
                _ => std::collections::HashMap::new(),
            };
            let resp = metadata(&svc, req, &refused);
            // Answered in the version asked: v0 has no `compression`, v1
            // no brokers or leadership.
            match header.api_version {
                0 => respond(conn, id, &MetadataResponseV0::from(resp)).await,
                1 => respond(conn, id, &MetadataResponseV1::from(resp)).await,
                _ => respond(conn, id, &resp).await,
            }
        }
        ApiKey::CreateTopics => {
            let req = match header.api_version {
                0 => CreateTopicsRequest::from(decode!(CreateTopicsRequestV0)),
                1 => CreateTopicsRequest::from(decode!(CreateTopicsRequestV1)),
                _ => decode!(CreateTopicsRequest),
            };
            let topics = req
                .topics
                .into_iter()
                .map(|t| NewTopic {
                    name: t.name,
                    partitions: t.partitions,
                    config: t.config,
                    replication_factor: t.replication_factor,
                })
                .collect();
            // In a cluster, answered once the new partitions have leaders
            // (up to the controller timeout).
            let within = Duration::from_millis(conn.broker.config.controller_timeout_ms);
            conn.wait_allowance = within;
            let results = or_refuse!(svc.create_topics(topics, within).await);
            let results = results.into_iter().map(topic_result).collect();
            respond(conn, id, &CreateTopicsResponse { results }).await
        }
        ApiKey::DeleteTopics => {
            or_refuse!(names_within(body, false, max_entries, "topics"));
            let req = decode!(DeleteTopicsRequest);
            let results = or_refuse!(svc.delete_topics(req.names).await);
            let results = results.into_iter().map(topic_result).collect();
            respond(conn, id, &DeleteTopicsResponse { results }).await
        }
        ApiKey::Produce => {
            let req = decode!(ProduceRequest);
            drop(frame);
            produce(conn, id, req, tail).await
        }
        ApiKey::Fetch => {
            let req = decode!(FetchRequest);
            drop(frame);
            fetch(conn, id, req).await
        }
        ApiKey::FetchStream => {
            let req = decode!(FetchRequest);
            drop(frame);
            stream::fetch_stream(conn, id, req).await
        }
        ApiKey::ListOffsets => {
            let req = decode!(ListOffsetsRequest);
            let lookups = req
                .partitions
                .into_iter()
                .map(|p| OffsetLookup {
                    topic: p.topic,
                    partition: p.partition,
                    query: match p.spec {
                        OffsetSpec::Earliest => OffsetQuery::Earliest,
                        OffsetSpec::Latest => OffsetQuery::Latest,
                        OffsetSpec::Timestamp(ts) => OffsetQuery::Timestamp(ts),
                    },
                })
                .collect();
            let found = or_refuse!(svc.list_offsets(lookups).await);
            let partitions = found
                .into_iter()
                .map(|f| ListOffsetsPartitionResponse {
                    topic: f.topic,
                    partition: f.partition,
                    error_code: f.error_code,
                    offset: f.offset,
                })
                .collect();
            respond(conn, id, &ListOffsetsResponse { partitions }).await
        }
        ApiKey::OffsetCommit => {
            // Version 0 is a simple commit (generation -1, no member).
            let req = if header.api_version == 0 {
                OffsetCommitRequestV1::from(decode!(OffsetCommitRequest))
            } else {
                decode!(OffsetCommitRequestV1)
            };
            if let Err(r) = svc.check_coordinator(&req.group).await {
                return conn.write_error(id, r.code, &r.message).await;
            }
            let member = CommitAs {
                generation_id: req.generation_id,
                member_id: req.member_id,
                group_instance_id: req.group_instance_id,
            };
            let commits = req
                .partitions
                .into_iter()
                .map(|p| Commit {
                    topic: p.topic,
                    partition: p.partition,
                    offset: Some(p.offset),
                    metadata: p.metadata,
                })
                .collect();
            let done = or_refuse!(svc.commit_offsets_as(req.group, member, commits).await);
            let partitions = done
                .into_iter()
                .map(|c| CommitPartitionResponse {
                    topic: c.topic,
                    partition: c.partition,
                    error_code: c.error_code,
                })
                .collect();
            respond(conn, id, &OffsetCommitResponse { partitions }).await
        }
        ApiKey::OffsetFetch => {
            let req = decode!(OffsetFetchRequest);
            if let Err(r) = svc.check_coordinator_for_read(&req.group).await {
                return conn.write_error(id, r.code, &r.message).await;
            }
            let wanted = req
                .partitions
                .map(|l| l.into_iter().map(|tp| (tp.topic, tp.partition)).collect());
            let resp = match svc.fetch_offsets(&req.group, wanted) {
                Ok(list) => OffsetFetchResponse {
                    error_code: ErrorCode::None,
                    partitions: list
                        .into_iter()
                        .map(|c| OffsetFetchPartition {
                            topic: c.topic,
                            partition: c.partition,
                            error_code: ErrorCode::None,
                            offset: c.offset,
                            metadata: c.metadata,
                        })
                        .collect(),
                },
                Err(code) => OffsetFetchResponse {
                    error_code: code,
                    partitions: Vec::new(),
                },
            };
            respond(conn, id, &resp).await
        }
        ApiKey::PartitionStatus => {
            let req = decode!(PartitionStatusRequest);
            let topics = or_refuse!(svc.partition_status(req.topics).await);
            let topics = topics
                .into_iter()
                .map(|t| TopicState {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| PartitionState {
                            partition: p.partition,
                            log_start_offset: p.log_start_offset,
                            high_watermark: p.high_watermark,
                            log_end_offset: p.log_end_offset,
                            size_bytes: p.size_bytes,
                            segments: p.segments,
                            offline: p.offline,
                        })
                        .collect(),
                })
                .collect();
            respond(conn, id, &PartitionStatusResponse { topics }).await
        }
        ApiKey::BrokerStatus => {
            let _ = decode!(BrokerStatusRequest);
            let s = svc.broker_status();
            let v0 = BrokerStatusResponseV0 {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                uptime_ms: s.uptime_ms,
                listen: svc
                    .bound_listen
                    .get()
                    .copied()
                    .unwrap_or(svc.config.listen)
                    .to_string(),
                metrics_listen: String::from(svc.config.metrics_listen),
                data_dir: svc.config.data_dir.display().to_string(),
                disk_total_bytes: s.disk_total_bytes,
                disk_free_bytes: s.disk_free_bytes,
                connections_open: s.connections_open,
                topics: s.topics,
                partitions: s.partitions,
                partitions_offline: s.partitions_offline,
            };
            if header.api_version == 0 {
                return respond(conn, id, &v0).await;
            }
            let resp = BrokerStatusResponse {
                v0,
                kafka_listen: svc
                    .bound_kafka
                    .get()
                    .map_or_else(|| "none".to_owned(), ToString::to_string),
                node_id: svc.cluster.get().map(|c| c.config.local),
            };
            respond(conn, id, &resp).await
        }
        ApiKey::InitProducerId => {
            let _req = decode!(InitProducerIdRequest);
            let (producer_id, producer_epoch) = or_refuse!(svc.init_producer_id().await);
            let resp = InitProducerIdResponse {
                producer_id,
                producer_epoch,
            };
            respond(conn, id, &resp).await
        }
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::DeleteGroups => groups::serve(conn, id, api, body).await,
        ApiKey::CreatePartitions | ApiKey::AlterTopicConfig | ApiKey::DeleteRecords => {
            topics::serve(conn, id, api, body).await
        }
        ApiKey::FindCoordinator => {
            let req = decode!(FindCoordinatorRequest);
            // Waiting for a coordinator to be known is not slowness.
            conn.wait_allowance = crate::service::coordinator::COORDINATOR_WAIT;
            let deadline =
                std::time::Instant::now() + crate::service::coordinator::COORDINATOR_WAIT;
            let resp = match svc.group_coordinator_by(&req.group, deadline).await {
                GroupCoordinator::Local => FindCoordinatorResponse {
                    node_id: svc.leadership.local_node(),
                    address: svc
                        .bound_listen
                        .get()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                },
                GroupCoordinator::Remote(b) => FindCoordinatorResponse {
                    node_id: b.id,
                    address: b.listen,
                },
                GroupCoordinator::Unavailable => {
                    let msg = format!("the coordinator of group {:?} is not known yet", req.group);
                    return conn
                        .write_error(id, ErrorCode::CoordinatorNotAvailable, &msg)
                        .await;
                }
            };
            respond(conn, id, &resp).await
        }
        ApiKey::Stats => {
            let mut resp = broker.stats.snapshot();
            resp.counters.push(sluice_protocol::wire::stats::Counter {
                name: "request_bytes_held".to_owned(),
                value: broker.request_bytes_held(),
            });
            respond(conn, id, &resp).await
        }
    }
}

/// Encodes and writes a successful response.
async fn respond<T: serde::Serialize>(conn: &mut Conn, id: u32, body: &T) -> Result<(), ConnError> {
    match conn.encode_response(id, ErrorCode::None, body, 0) {
        Ok(()) => conn.write_out().await,
        Err(e) => {
            let msg = format!("response too large: {e}");
            conn.write_error(id, ErrorCode::MessageTooLarge, &msg).await
        }
    }
}

fn topic_result(o: TopicOutcome) -> TopicResult {
    TopicResult {
        name: o.name,
        error_code: o.error_code,
        message: o.message,
    }
}

async fn produce(
    conn: &mut Conn,
    id: u32,
    req: ProduceRequest,
    tail: BytesMut,
) -> Result<(), ConnError> {
    let entries = req
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let refused = check_partition_list(entries, conn.broker.config.max_partitions_per_request)
        .err()
        .or_else(|| {
            req.check_tail(tail.len()).err().map(|e| Refused {
                code: ErrorCode::InvalidRequest,
                message: e.to_string(),
            })
        });
    if let Some(Refused { code, message }) = refused {
        Stats::add(&conn.broker.stats.bad_requests, 1);
        if req.acks == WireAcks::None {
            // The client reads no answer to acks=none: an error response
            // would be taken for the answer to a later request. Close the
            // connection instead, as Kafka does.
            return Err(ConnError::Refused(code, message));
        }
        return conn.write_error(id, code, &message).await;
    }
    // acks=all waits for the flush or the replicas, and in a cluster
    // acks=leader for the leader's Raft append: answers held back leave
    // first.
    if req.acks == WireAcks::All
        || (req.acks == WireAcks::Leader && conn.broker.service.cluster.get().is_some())
    {
        conn.flush().await?;
    }
    let acks = match req.acks {
        WireAcks::None => Acks::None,
        WireAcks::Leader => Acks::Leader,
        WireAcks::All => Acks::All,
    };
    let mut start = 0usize;
    let partitions = req
        .partitions
        .into_iter()
        .map(|p| {
            let end = start + p.records_len as usize;
            let range = start..end;
            start = end;
            svc_produce::ProducePartition {
                topic: p.topic,
                partition: p.partition,
                records: range,
            }
        })
        .collect();
    let svc = Arc::clone(&conn.broker.service);
    let results = svc
        .produce(svc_produce::ProduceRequest {
            acks,
            timeout: Duration::from_millis(u64::from(req.timeout_ms)),
            partitions,
            records: tail,
        })
        .await;
    let results = match results {
        Ok(r) => r,
        Err(Refused { code, message }) if acks == Acks::None => {
            return Err(ConnError::Refused(code, message));
        }
        Err(Refused { code, message }) => return conn.write_error(id, code, &message).await,
    };
    if acks == Acks::None {
        return Ok(());
    }
    // A long poll these records woke is what a tailing consumer waits for;
    // this answer only frees the producer's slot.
    svc.let_woken_fetches_answer(
        results
            .iter()
            .filter(|r| r.error_code.is_ok())
            .map(|r| (r.topic.as_str(), r.partition)),
    )
    .await;
    let partitions = results
        .into_iter()
        .map(|r| ProducePartitionResponse {
            topic: r.topic,
            partition: r.partition,
            error_code: r.error_code,
            base_offset: r.base_offset,
            message: r.message,
        })
        .collect();
    respond(conn, id, &ProduceResponse { partitions }).await
}

async fn fetch(conn: &mut Conn, id: u32, req: FetchRequest) -> Result<(), ConnError> {
    conn.wait_allowance = Duration::from_millis(u64::from(req.max_wait_ms));
    let svc_req = service_fetch(req);
    let mut result = match conn.fetch_until_closed(svc_req).await {
        Ok(r) => r,
        Err(refused) => return refuse_fetch(conn, id, refused).await,
    };
    let partitions = partition_responses(&mut result);
    send_records(conn, id, &FetchResponse { partitions }, &result).await
}

/// The service's form of a fetch request.
fn service_fetch(req: FetchRequest) -> svc_fetch::FetchRequest {
    svc_fetch::FetchRequest {
        max_wait: Duration::from_millis(u64::from(req.max_wait_ms)),
        min_bytes: u64::from(req.min_bytes),
        max_bytes: u64::from(req.max_bytes),
        partitions: req
            .partitions
            .into_iter()
            .map(|p| svc_fetch::FetchPartition {
                topic: p.topic,
                partition: p.partition,
                offset: p.offset,
                max_bytes: u64::from(p.max_bytes),
            })
            .collect(),
    }
}

/// Answers a fetch (or a stream) the service refused as a whole.
async fn refuse_fetch(conn: &mut Conn, id: u32, refused: Refused) -> Result<(), ConnError> {
    let Refused { code, message } = refused;
    if matches!(
        code,
        ErrorCode::TooManyPartitions | ErrorCode::DuplicatePartition
    ) {
        Stats::add(&conn.broker.stats.bad_requests, 1);
    }
    conn.write_error(id, code, &message).await
}

/// Each partition's part of a fetch answer's body. The topic names move
/// out of `result` (sending needs only its ranges), not copied.
fn partition_responses(result: &mut svc_fetch::FetchResult) -> Vec<FetchPartitionResponse> {
    result
        .partitions
        .iter_mut()
        .map(|p| FetchPartitionResponse {
            topic: std::mem::take(&mut p.topic),
            partition: p.partition,
            error_code: p.error_code,
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            // `resolve` refuses ranges that do not fit a u32.
            records_len: p.records_len() as u32,
        })
        .collect()
}

/// Sends a response frame: `body`, then the records of `result` straight
/// from their files (the gather writer), within the write timeout.
async fn send_records<B: serde::Serialize>(
    conn: &mut Conn,
    id: u32,
    body: &B,
    result: &svc_fetch::FetchResult,
) -> Result<(), ConnError> {
    if let Err(e) = conn.encode_response(id, ErrorCode::None, body, result.total as usize) {
        let msg = format!("fetch response too large: {e}");
        return conn.write_error(id, ErrorCode::MessageTooLarge, &msg).await;
    }
    let broker = &conn.broker;
    let timeout = Duration::from_millis(broker.config.write_timeout_ms);
    let chunks = result.plan_after(&conn.out);
    Stats::add(&broker.stats.response_sends, 1);
    let send = super::gather::send(
        &conn.stream,
        &chunks,
        broker.config.fetch_path,
        &broker.stats,
    );
    let sent = match tokio::time::timeout(timeout, send).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnError::WriteTimeout(timeout)),
    };
    conn.out.clear();
    sent
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::service::leadership::tests::Scripted;
    use crate::service::tests::service_led_by;

    /// A cluster's view reaches the wire: every broker, and each
    /// partition's leader (or none), epoch, replicas and in-sync replicas.
    #[test]
    fn metadata_carries_the_cluster_view() {
        for leader in [Some(2), None] {
            let dir = tempfile::tempdir().unwrap();
            let svc = service_led_by(dir.path(), Arc::new(Scripted { local: 1, leader }));
            let m = metadata(
                &svc,
                MetadataRequest {
                    topics: Some(vec!["t".into()]),
                },
                &std::collections::HashMap::new(),
            );
            let ids: Vec<u64> = m.brokers.iter().map(|b| b.id).collect();
            assert_eq!(ids, [1, 2, 3]);
            assert_eq!(m.broker_address(2), Some("127.0.0.1:9292"));
            let p = &m.topics[0].partitions[0];
            assert_eq!(p.leader, leader);
            assert_eq!(p.leader_epoch, 4);
            assert_eq!(p.replicas, [1, 2, 3]);
            assert_eq!(p.isr, [1, 2]);
            assert_eq!(m.leader("t", 0), Some(leader));
        }
    }
}
