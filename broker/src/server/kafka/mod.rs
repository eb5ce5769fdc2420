//! The Kafka protocol front-end: decodes each Kafka request with the codec
//! in [`sluice_protocol::kafka`], calls the same [`Service`](crate::service::Service)
//! functions as the native front-end, and encodes Kafka's answer. Framing,
//! limits (frame size, request budget, timeouts, connection cap) and
//! response order come from the shared connection machinery.
//!
//! - `produce`, `fetch`: the data path (records stay in the request frame;
//!   fetched records are sent from the segment files by the gather writer).
//! - `admin`: Metadata, ApiVersions, topics, offsets, producer ids.
//! - `groups`: consumer groups, over the service's group coordinator.
//! - `configs`: Kafka topic config names ↔ Sluice's topic settings.
//!
//! A request whose header cannot be read closes the connection (Kafka has
//! no frame-level error answer); an API or version not served gets
//! `UNSUPPORTED_VERSION` (ApiVersions: its v0 answer, KIP-511); a body that
//! does not decode closes the connection.

mod acls;
mod admin;
mod alter_configs;
mod configs;
mod consumer_group;
mod create_partitions;
mod delete_records;
mod describe_log_dirs;
mod describe_producers;
mod elect_leaders;
mod epochs;
mod fetch;
mod groups;
mod offset_delete;
mod operations;
mod produce;

use bytes::BytesMut;
use sluice_protocol::kafka::alter_configs::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use sluice_protocol::kafka::api_versions::ApiVersionsResponse;
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::header::{self, LEN_PREFIX, RequestHeader};
use sluice_protocol::kafka::{ApiKey, KafkaError, Message, decode_capped, encode};
use sluice_protocol::wire::ErrorCode;

use super::native::connection::{Conn, ConnError};
use crate::service::element_cap;
use crate::service::stats::Stats;

/// What Kafka clients are told about this broker (Metadata,
/// FindCoordinator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// The broker's node id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
}

/// The request being served: what an answer needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
}

/// Serves one Kafka request frame (length prefix included).
pub(crate) async fn dispatch(conn: &mut Conn, frame: BytesMut) -> Result<(), ConnError> {
    let body = frame.get(LEN_PREFIX..).unwrap_or_default();
    let (h, body_at) = match RequestHeader::decode(body) {
        Ok(h) => h,
        Err(e) => return Err(bad(conn, "request header", &e)),
    };
    let Some(api) = ApiKey::from_i16(h.api_key).filter(|k| k.supports(h.api_version)) else {
        return unsupported(conn, &h).await;
    };
    let req = Req {
        api,
        version: h.api_version,
        correlation_id: h.correlation_id,
    };
    let body = body.get(body_at..).unwrap_or_default();
    // Answers held back (see `Conn::write_out`) leave now if this request
    // may wait: an answer never waits for a later request that blocks. In a
    // cluster the group calls below may wait for their coordinator (up to
    // `COORDINATOR_WAIT`), and Metadata creating topics on first use for
    // their leaders.
    let clustered = conn.broker.service.cluster.get().is_some();
    let never_waits = match api {
        ApiKey::ApiVersions | ApiKey::ListGroups => true,
        ApiKey::Metadata => !conn.broker.config.auto_create_topics,
        // (ConsumerGroupHeartbeat may store the group durably: it waits.)
        ApiKey::OffsetFetch
        | ApiKey::FindCoordinator
        | ApiKey::DescribeGroups
        | ApiKey::ConsumerGroupDescribe => !clustered,
        _ => false,
    };
    if !never_waits {
        conn.flush().await?;
    }
    if clustered && is_group_call(api) {
        // Waiting for a coordinator to be known and loaded is not slowness.
        conn.wait_allowance = crate::service::coordinator::COORDINATOR_WAIT;
    }
    match api {
        ApiKey::Produce => {
            let r = decode_or_close(conn, req, body)?;
            produce::produce(conn, req, r, frame, LEN_PREFIX + body_at).await
        }
        ApiKey::Fetch => {
            let r = decode_or_close(conn, req, body)?;
            drop(frame);
            fetch::fetch(conn, req, r).await
        }
        ApiKey::ApiVersions => {
            let r: sluice_protocol::kafka::api_versions::ApiVersionsRequest =
                decode_or_close(conn, req, body)?;
            if !r.is_valid(req.version) {
                Stats::add(&conn.broker.stats.bad_requests, 1);
                return respond(conn, req, ApiVersionsResponse::invalid()).await;
            }
            respond(conn, req, ApiVersionsResponse::served(code::NONE)).await
        }
        ApiKey::Metadata => {
            let r = decode_or_close(conn, req, body)?;
            if conn.broker.config.auto_create_topics {
                // Waiting for a created topic's leaders is not slowness.
                conn.wait_allowance =
                    std::time::Duration::from_millis(conn.broker.config.controller_timeout_ms);
            }
            let resp = admin::metadata(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::ListOffsets => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::list_offsets(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::OffsetCommit => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::offset_commit(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::OffsetFetch => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::offset_fetch(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::FindCoordinator => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::find_coordinator(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::CreateTopics => {
            let r = decode_or_close(conn, req, body)?;
            // Waiting for the new partitions' leaders is not slowness.
            conn.wait_allowance =
                std::time::Duration::from_millis(conn.broker.config.controller_timeout_ms);
            let resp = admin::create_topics(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::DeleteTopics => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::delete_topics(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::InitProducerId => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::init_producer_id(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::OffsetForLeaderEpoch => {
            let r = decode_or_close(conn, req, body)?;
            let resp = epochs::offset_for_leader_epoch(conn, r);
            respond(conn, req, resp).await
        }
        ApiKey::DescribeAcls => {
            let _: sluice_protocol::kafka::acls::DescribeAclsRequest =
                decode_or_close(conn, req, body)?;
            respond(conn, req, acls::describe()).await
        }
        ApiKey::CreateAcls => {
            let r = decode_or_close(conn, req, body)?;
            respond(conn, req, acls::create(&r)).await
        }
        ApiKey::DeleteAcls => {
            let r = decode_or_close(conn, req, body)?;
            respond(conn, req, acls::delete(&r)).await
        }
        ApiKey::DescribeConfigs => {
            let r = decode_or_close(conn, req, body)?;
            let resp = admin::describe_configs(conn, r);
            respond(conn, req, resp).await
        }
        ApiKey::AlterConfigs => {
            let r: AlterConfigsRequest = decode_or_close(conn, req, body)?;
            let mode = alter_configs::Mode::Replace;
            let out = alter_configs::alter(conn, r.resources, r.validate_only, mode).await;
            respond(conn, req, AlterConfigsResponse(out)).await
        }
        ApiKey::IncrementalAlterConfigs => {
            let r: IncrementalAlterConfigsRequest = decode_or_close(conn, req, body)?;
            let mode = alter_configs::Mode::Incremental;
            let out = alter_configs::alter(conn, r.resources, r.validate_only, mode).await;
            respond(conn, req, IncrementalAlterConfigsResponse(out)).await
        }
        ApiKey::DescribeLogDirs => {
            let r = decode_or_close(conn, req, body)?;
            let resp = describe_log_dirs::describe_log_dirs(conn, r, req.version);
            respond(conn, req, resp).await
        }
        ApiKey::OffsetDelete => {
            let r = decode_or_close(conn, req, body)?;
            let resp = offset_delete::offset_delete(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::DeleteRecords => {
            let r = decode_or_close(conn, req, body)?;
            let resp = delete_records::delete_records(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::ElectLeaders => {
            let r = decode_or_close(conn, req, body)?;
            // Waiting for the elections is not slowness.
            conn.wait_allowance = std::time::Duration::from_secs(15);
            let resp = elect_leaders::elect_leaders(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::CreatePartitions => {
            let r = decode_or_close(conn, req, body)?;
            let resp = create_partitions::create_partitions(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::JoinGroup => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::join(conn, r, req.version, h.client_id).await;
            respond(conn, req, resp).await
        }
        ApiKey::SyncGroup => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::sync(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::Heartbeat => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::heartbeat(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::LeaveGroup => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::leave(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
        ApiKey::DescribeGroups => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::describe(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::ListGroups => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::list(conn, r);
            respond(conn, req, resp).await
        }
        ApiKey::DeleteGroups => {
            let r = decode_or_close(conn, req, body)?;
            let resp = groups::delete(conn, r).await;
            respond(conn, req, resp).await
        }
        ApiKey::DescribeProducers => {
            let r = decode_or_close(conn, req, body)?;
            let resp = describe_producers::describe_producers(conn, r);
            respond(conn, req, resp).await
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let r = decode_or_close(conn, req, body)?;
            let resp = consumer_group::heartbeat(conn, r, req.version, h.client_id).await;
            respond(conn, req, resp).await
        }
        ApiKey::ConsumerGroupDescribe => {
            let r = decode_or_close(conn, req, body)?;
            let resp = consumer_group::describe(conn, r, req.version).await;
            respond(conn, req, resp).await
        }
    }
}

/// Counts a served Kafka request in `stats.kafka_apis`: its API's slot
/// (the last for keys not served), its latency (frame read whole to answer
/// written or queued, a fetch's long-poll wait included), and as errors an
/// API or version not served (35; it closes the connection unless it is
/// ApiVersions) or another request the broker refused by closing the
/// connection (42; `refused`: not a client that left before its answer).
/// No lock, no allocation.
pub(crate) fn account(
    stats: &Stats,
    api_key: Option<u16>,
    version: Option<i16>,
    elapsed: std::time::Duration,
    refused: bool,
) {
    let api = api_key.and_then(|k| ApiKey::from_i16(k as i16));
    let slot = api
        .and_then(|a| ApiKey::ALL.iter().position(|k| *k == a))
        .unwrap_or(ApiKey::ALL.len());
    let Some(s) = stats.kafka_apis.get(slot) else {
        return;
    };
    Stats::add(&s.requests, 1);
    s.latency.observe(elapsed);
    let served = api.zip(version).is_some_and(|(a, v)| a.supports(v));
    let error = if !served {
        Some(code::UNSUPPORTED_VERSION)
    } else if refused {
        Some(code::INVALID_REQUEST)
    } else {
        None
    };
    if let Some(c) = error.and_then(|c| s.errors.get(c as usize)) {
        Stats::add(c, 1);
    }
}

/// Counts a bad request and gives the error that closes the connection.
fn bad(conn: &Conn, what: &str, e: &KafkaError) -> ConnError {
    Stats::add(&conn.broker.stats.bad_requests, 1);
    ConnError::Refused(ErrorCode::InvalidRequest, format!("Kafka {what}: {e}"))
}

fn decode_or_close<M: Message>(conn: &Conn, req: Req, body: &[u8]) -> Result<M, ConnError> {
    decode_capped::<M>(body, req.version, element_cap(&conn.broker.config))
        .map_err(|e| bad(conn, &format!("{:?} v{} request", req.api, req.version), &e))
}

/// Answers an API or version not served: ApiVersions with its v0 answer
/// and error 35 (KIP-511). Anything else closes the connection after the
/// answers before it, as Kafka does: no answer would be in the layout the
/// client expects at that version, and clients that do not ask ApiVersions
/// first misread a bare error code (one looped forever on it).
async fn unsupported(conn: &mut Conn, h: &RequestHeader) -> Result<(), ConnError> {
    Stats::add(&conn.broker.stats.bad_requests, 1);
    if h.api_key == ApiKey::ApiVersions as i16 {
        tracing::debug!(
            api_version = h.api_version,
            "Kafka ApiVersions version not served; answered with v0"
        );
        let req = Req {
            api: ApiKey::ApiVersions,
            version: 0,
            correlation_id: h.correlation_id,
        };
        return respond(
            conn,
            req,
            ApiVersionsResponse::served(code::UNSUPPORTED_VERSION),
        )
        .await;
    }
    conn.write_out().await?;
    let served = ApiKey::from_i16(h.api_key).map(ApiKey::versions);
    let message = match served {
        Some((min, max)) => format!(
            "Kafka API {} version {} is not served (versions {min}-{max} are)",
            h.api_key, h.api_version
        ),
        None => format!("Kafka API {} is not served", h.api_key),
    };
    Err(ConnError::Refused(ErrorCode::UnsupportedVersion, message))
}

/// Fills in the frame length of the response started at `start` (followed
/// by `tail` bytes sent separately).
fn finish(conn: &mut Conn, start: usize, tail: u64) -> Result<(), ConnError> {
    header::finish_frame(&mut conn.out, start, tail).map_err(|e| {
        conn.out.truncate(start);
        ConnError::Refused(ErrorCode::MessageTooLarge, format!("Kafka response: {e}"))
    })
}

/// Encodes and writes (or holds back, see `Conn::write_out`) an answer.
async fn respond<M: Message>(conn: &mut Conn, req: Req, mut body: M) -> Result<(), ConnError> {
    let start = header::start_response(
        &mut conn.out,
        req.correlation_id,
        req.api.response_header_version(req.version),
    );
    if let Err(e) = encode(&mut body, req.version, &mut conn.out, &[]) {
        conn.out.truncate(start);
        return Err(ConnError::Refused(
            ErrorCode::Unknown,
            format!("encoding a Kafka {:?} response: {e}", req.api),
        ));
    }
    finish(conn, start, 0)?;
    conn.write_out().await
}

/// A Sluice partition index from a Kafka one (negative ones name none).
fn partition_index(p: i32) -> Option<u32> {
    u32::try_from(p).ok()
}

/// Whether `name` may name a topic: one longer than any topic name
/// ([`MAX_TOPIC_NAME_LEN`](crate::log::names::MAX_TOPIC_NAME_LEN)) names
/// none. Requests that list partitions under a topic answer such a
/// topic's partitions `UNKNOWN_TOPIC_OR_PARTITION` at once, without the
/// name being copied for each of them: a name of 32 KiB over thousands of
/// partition entries of a few bytes each would otherwise take a thousand
/// times the request's size in memory.
fn may_name_topic(name: &str) -> bool {
    name.len() <= crate::log::names::MAX_TOPIC_NAME_LEN
}

/// The calls that name a group and check its coordinator first
/// ([`crate::service::Service::check_coordinator`]).
fn is_group_call(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::DescribeGroups
            | ApiKey::DeleteGroups
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::OffsetDelete
            | ApiKey::ConsumerGroupHeartbeat
            | ApiKey::ConsumerGroupDescribe
    )
}
