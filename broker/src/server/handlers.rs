//! Request dispatch and the control-plane APIs: ApiVersions, Metadata,
//! CreateTopics, DeleteTopics, ListOffsets, OffsetCommit, OffsetFetch, Stats.

use std::sync::Arc;

use bytes::BytesMut;
use sluice_protocol::wire::api_versions::{ApiVersionRange, ApiVersionsResponse};
use sluice_protocol::wire::create_topics::{
    CreateTopicsRequest, CreateTopicsResponse, TopicResult,
};
use sluice_protocol::wire::delete_topics::{DeleteTopicsRequest, DeleteTopicsResponse};
use sluice_protocol::wire::frame::LEN_PREFIX;
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetSpec,
};
use sluice_protocol::wire::metadata::{
    MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};
use sluice_protocol::wire::offset_commit::{
    CommitPartitionResponse, OffsetCommitRequest, OffsetCommitResponse,
};
use sluice_protocol::wire::offset_fetch::{
    OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse,
};
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader, decode_body};

use super::Broker;
use super::connection::{Conn, ConnError};
use super::stats::Stats;
use crate::error::{BrokerError, log_error_code};
use crate::log::validate_topic_name;

/// Decodes the request header and serves the request, writing its response
/// (if the API has one). Frame-level problems (unknown API or version,
/// undecodable body) get an error response and the connection goes on.
pub(super) async fn dispatch(conn: &mut Conn, frame: &mut BytesMut) -> Result<(), ConnError> {
    let (header, tail_len) = match RequestHeader::decode(frame) {
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
    let body_start = LEN_PREFIX + sluice_protocol::wire::frame::REQUEST_HEADER_LEN;
    let body_end = body_start + header.body_len as usize;
    let (head, tail) = frame.split_at_mut(body_end);
    debug_assert_eq!(tail.len(), tail_len);
    let body = head.get(body_start..).unwrap_or_default();
    let broker = Arc::clone(&conn.broker);
    macro_rules! decode {
        ($t:ty) => {
            match decode_body::<$t>(body) {
                Ok(r) => r,
                Err(e) => {
                    Stats::add(&broker.stats.bad_requests, 1);
                    let msg = format!("{api:?} request: {e}");
                    return conn.write_error(id, ErrorCode::InvalidRequest, &msg).await;
                }
            }
        };
    }
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
            let req = decode!(MetadataRequest);
            let resp = metadata(&broker, req);
            respond(conn, id, &resp).await
        }
        ApiKey::CreateTopics => {
            let req = decode!(CreateTopicsRequest);
            let b = Arc::clone(&broker);
            let results = blocking(move || {
                req.topics
                    .iter()
                    .map(|t| {
                        topic_result(&t.name, b.topics.create(&t.name, t.partitions, &t.config))
                    })
                    .collect()
            })
            .await?;
            respond(conn, id, &CreateTopicsResponse { results }).await
        }
        ApiKey::DeleteTopics => {
            let req = decode!(DeleteTopicsRequest);
            let b = Arc::clone(&broker);
            let results = blocking(move || {
                req.names
                    .iter()
                    .map(|n| {
                        let deleted = b.topics.delete(n);
                        if deleted.is_ok() {
                            // Its committed offsets go too (and, should this
                            // fail, at the next start).
                            if let Err(e) = b.offsets.forget_topics(|t| t != n.as_str()) {
                                tracing::warn!(topic = %n, error = %e, "could not forget committed offsets of deleted topic");
                            }
                        }
                        topic_result(n, deleted)
                    })
                    .collect()
            })
            .await?;
            respond(conn, id, &DeleteTopicsResponse { results }).await
        }
        ApiKey::Produce => {
            let req = decode!(sluice_protocol::wire::produce::ProduceRequest);
            super::produce::produce(conn, id, req, tail).await
        }
        ApiKey::Fetch => {
            let req = decode!(sluice_protocol::wire::fetch::FetchRequest);
            super::fetch::fetch(conn, id, req).await
        }
        ApiKey::ListOffsets => {
            let req = decode!(ListOffsetsRequest);
            let b = Arc::clone(&broker);
            let resp = blocking(move || list_offsets(&b, req)).await?;
            respond(conn, id, &resp).await
        }
        ApiKey::OffsetCommit => {
            let req = decode!(OffsetCommitRequest);
            let b = Arc::clone(&broker);
            let resp = blocking(move || offset_commit(&b, req)).await?;
            respond(conn, id, &resp).await
        }
        ApiKey::OffsetFetch => {
            let req = decode!(OffsetFetchRequest);
            let resp = offset_fetch(&broker, req);
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
pub(super) async fn respond<T: serde::Serialize>(
    conn: &mut Conn,
    id: u32,
    body: &T,
) -> Result<(), ConnError> {
    match conn.encode_response(id, ErrorCode::None, body, 0) {
        Ok(()) => conn.write_out().await,
        Err(e) => {
            let msg = format!("response too large: {e}");
            conn.write_error(id, ErrorCode::MessageTooLarge, &msg).await
        }
    }
}

/// Checks the partition list of a Produce or Fetch request: at most `max`
/// entries, no (topic, partition) twice. The error is the code and message
/// that refuse the whole request.
pub(super) fn check_partition_list<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, u32)> + Clone,
    max: u32,
) -> Result<(), (ErrorCode, String)> {
    let n = entries.len();
    if n > max as usize {
        return Err((
            ErrorCode::TooManyPartitions,
            format!("{n} partitions in one request; at most {max} are accepted"),
        ));
    }
    let duplicate = |(topic, partition): (&str, u32)| {
        (
            ErrorCode::DuplicatePartition,
            format!("partition {partition} of topic {topic:?} is listed more than once"),
        )
    };
    if n <= 16 {
        // Short lists (the usual case): compare pairs, no allocation.
        for (i, a) in entries.clone().enumerate() {
            if entries.clone().skip(i + 1).any(|b| a == b) {
                return Err(duplicate(a));
            }
        }
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        for e in entries {
            if !seen.insert(e) {
                return Err(duplicate(e));
            }
        }
    }
    Ok(())
}

/// Runs blocking work (file creation, fsync) off the reactor.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ConnError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConnError::Io(std::io::Error::other(e)))
}

fn topic_result(name: &str, r: Result<(), BrokerError>) -> TopicResult {
    match r {
        Ok(()) => TopicResult {
            name: name.to_owned(),
            error_code: ErrorCode::None,
            message: None,
        },
        Err(e) => TopicResult {
            name: name.to_owned(),
            error_code: e.code(),
            message: Some(e.to_string()),
        },
    }
}

fn metadata(broker: &Broker, req: MetadataRequest) -> MetadataResponse {
    let defaults = broker.topics.defaults();
    let describe = |name: &str| match broker.topics.topic(name) {
        Some(t) => TopicMetadata {
            name: t.name.clone(),
            error_code: ErrorCode::None,
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| PartitionMetadata {
                    partition: i as u32,
                    error_code: if p.log.is_offline() {
                        ErrorCode::PartitionOffline
                    } else {
                        ErrorCode::None
                    },
                    log_start_offset: p.log.log_start_offset(),
                    high_watermark: p.log.high_watermark(),
                })
                .collect(),
            config: defaults.resolve(&t.config),
        },
        None => TopicMetadata {
            name: name.to_owned(),
            error_code: if validate_topic_name(name).is_ok() {
                ErrorCode::UnknownTopicOrPartition
            } else {
                ErrorCode::InvalidTopicName
            },
            partitions: Vec::new(),
            config: Default::default(),
        },
    };
    let topics = match req.topics {
        Some(names) => names.iter().map(|n| describe(n)).collect(),
        None => broker
            .topics
            .list()
            .iter()
            .map(|t| describe(&t.name))
            .collect(),
    };
    MetadataResponse { topics }
}

fn list_offsets(broker: &Broker, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let partitions = req
        .partitions
        .into_iter()
        .map(|p| {
            let result = broker
                .topics
                .partition(&p.topic, p.partition)
                .and_then(|part| {
                    let log = &part.log;
                    match p.spec {
                        OffsetSpec::Earliest => Ok(log.log_start_offset()),
                        OffsetSpec::Latest => Ok(log.high_watermark()),
                        OffsetSpec::Timestamp(ts) => log
                            .offset_for_timestamp(ts)
                            .map(|o| o.unwrap_or_else(|| log.high_watermark()))
                            .map_err(|e| log_error_code(&e)),
                    }
                });
            let (error_code, offset) = match result {
                Ok(o) => (ErrorCode::None, o),
                Err(code) => (code, 0),
            };
            ListOffsetsPartitionResponse {
                topic: p.topic,
                partition: p.partition,
                error_code,
                offset,
            }
        })
        .collect();
    ListOffsetsResponse { partitions }
}

/// Stores the request's offsets of existing partitions whose metadata fits
/// (`offset_metadata_max_bytes`); the others get their own error code.
fn offset_commit(broker: &Broker, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_code = if validate_topic_name(&req.group).is_ok() {
        ErrorCode::None
    } else {
        ErrorCode::InvalidGroupName
    };
    let max_metadata = broker.offsets.max_metadata_bytes();
    let own_codes: Vec<ErrorCode> = req
        .partitions
        .iter()
        .map(|p| {
            if broker.topics.partition(&p.topic, p.partition).is_err() {
                ErrorCode::UnknownTopicOrPartition
            } else if p.metadata.len() > max_metadata {
                ErrorCode::OffsetMetadataTooLarge
            } else {
                ErrorCode::None
            }
        })
        .collect();
    let to_store: Vec<_> = req
        .partitions
        .iter()
        .zip(&own_codes)
        .filter(|(_, c)| c.is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    let stored = if group_code.is_ok() {
        broker
            .offsets
            .commit(&req.group, &to_store)
            .map_err(|e| e.code())
    } else {
        Err(group_code)
    };
    let partitions = req
        .partitions
        .into_iter()
        .zip(own_codes)
        .map(|(p, own)| CommitPartitionResponse {
            topic: p.topic,
            partition: p.partition,
            error_code: match (&stored, own) {
                (Err(code), _) => *code,
                (Ok(()), own) => own,
            },
        })
        .collect();
    OffsetCommitResponse { partitions }
}

fn offset_fetch(broker: &Broker, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if validate_topic_name(&req.group).is_err() {
        return OffsetFetchResponse {
            error_code: ErrorCode::InvalidGroupName,
            partitions: Vec::new(),
        };
    }
    let partitions = match req.partitions {
        Some(list) => list
            .into_iter()
            .map(|tp| {
                let committed = broker.offsets.get(&req.group, &tp.topic, tp.partition);
                OffsetFetchPartition {
                    error_code: ErrorCode::None,
                    offset: committed.as_ref().map(|c| c.0),
                    metadata: committed.map(|c| c.1).unwrap_or_default(),
                    topic: tp.topic,
                    partition: tp.partition,
                }
            })
            .collect(),
        None => broker
            .offsets
            .group(&req.group)
            .into_iter()
            .map(
                |(topic, partition, offset, metadata)| OffsetFetchPartition {
                    topic,
                    partition,
                    offset: Some(offset),
                    metadata,
                    error_code: ErrorCode::None,
                },
            )
            .collect(),
    };
    OffsetFetchResponse {
        error_code: ErrorCode::None,
        partitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[(&str, u32)], max: u32) -> Result<(), ErrorCode> {
        check_partition_list(list.iter().copied(), max).map_err(|(code, _)| code)
    }

    #[test]
    fn partition_lists_are_capped_and_free_of_duplicates() {
        assert_eq!(check(&[], 1), Ok(()));
        assert_eq!(check(&[("a", 0), ("a", 1), ("b", 0)], 3), Ok(()));
        assert_eq!(
            check(&[("a", 0), ("a", 1), ("b", 0)], 2),
            Err(ErrorCode::TooManyPartitions)
        );
        assert_eq!(
            check(&[("a", 0), ("b", 0), ("a", 0)], 10),
            Err(ErrorCode::DuplicatePartition)
        );
        // Long lists take the hash-set path.
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let mut long: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 7)).collect();
        assert_eq!(check(&long, 40), Ok(()));
        long.push(("t39", 7));
        assert_eq!(check(&long, 41), Err(ErrorCode::DuplicatePartition));
    }
}
