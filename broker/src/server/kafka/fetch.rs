//! Kafka Fetch (versions 4–17; from 13 topics go by id): a long poll
//! through the service, answered as encoded bytes interleaved with each
//! partition's records sent from its segment file by
//! the gather writer (`sendfile`). The response's size is known before the
//! first byte leaves. Fetch sessions are declined (`session_id` 0 in every
//! answer); the request's `max_bytes` and per-partition limits follow
//! KIP-74 (the first batch comes whole even if larger).

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::batch::Compression;
use sluice_protocol::kafka::encode_cut;
use sluice_protocol::kafka::error_code::{KafkaCode, code, to_kafka, to_kafka_partition};
use sluice_protocol::kafka::fetch::{
    FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic, FetchTopicResponse,
};
use sluice_protocol::kafka::header;
use sluice_protocol::kafka::io::Records;
use sluice_protocol::wire::ErrorCode;

use super::{Req, finish, may_name_topic, partition_index, respond};
use crate::server::Broker;
use crate::server::native::connection::{Conn, ConnError};
use crate::service::Refused;
use crate::service::fetch::{self as svc, Chunk};
use crate::service::stats::Stats;
use crate::topics::TopicId;

/// The record set of a partition answered without the service (refused
/// here, or absent from its result): empty, and its index names no
/// partition of the result, so no file range is cut in for it.
const NO_RECORDS: Records = Records {
    start: usize::MAX,
    len: 0,
};

/// The first Fetch version that may be served zstd-compressed batches
/// (KIP-110).
const ZSTD_FROM: i16 = 10;

/// Serves a Fetch.
pub(super) async fn fetch(conn: &mut Conn, req: Req, mut r: FetchRequest) -> Result<(), ConnError> {
    let broker = Arc::clone(&conn.broker);
    // Every entry counts against the limit, also those refused here.
    let entries = r.topics.iter().map(|t| t.partitions.len()).sum();
    if let Err(Refused { code: c, message }) =
        crate::service::check_partition_count(entries, broker.config.max_partitions_per_request)
    {
        Stats::add(&broker.stats.bad_requests, 1);
        tracing::debug!(error = %message, "Kafka fetch refused");
        return respond(conn, req, refused_whole(r, to_kafka(c))).await;
    }
    if !matches!(r.session_epoch, -1 | 0) {
        // An incremental fetch of a session (Kafka reads every epoch but
        // the initial 0 and the final -1 so): none was ever handed out, the
        // client must start afresh. (A full fetch, epoch 0 or -1, naming a
        // session closes it in Kafka and is served: there is none to close.)
        let resp = FetchResponse {
            error_code: code::FETCH_SESSION_ID_NOT_FOUND,
            ..FetchResponse::default()
        };
        return respond(conn, req, resp).await;
    }
    // From version 13 topics go by id: an id no topic has is answered
    // here with UNKNOWN_TOPIC_ID.
    let mut unknown_id = vec![false; r.topics.len()];
    if req.version >= 13 {
        let names = names_by_id(&broker, &r.topics);
        for ((t, name), unknown) in r.topics.iter_mut().zip(names).zip(&mut unknown_id) {
            match name {
                Some(name) => t.topic = name,
                None => *unknown = true,
            }
        }
    }
    let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
    conn.wait_allowance = wait;
    // Partitions the service can look up, and those answered here.
    let mut local: Vec<Option<i16>> = Vec::new();
    let mut partitions = Vec::new();
    for (t, &unknown) in r.topics.iter().zip(&unknown_id) {
        // A topic that compresses with zstd is not served to a version
        // that may not read it, as Kafka answers (KIP-110).
        let zstd_topic = |partition: u32| {
            broker
                .service
                .topics
                .partition(&t.topic, partition)
                .is_ok_and(|p| p.log.compression() == Some(Compression::Zstd))
        };
        for p in &t.partitions {
            match (partition_index(p.partition), u64::try_from(p.fetch_offset)) {
                _ if unknown => local.push(Some(code::UNKNOWN_TOPIC_ID)),
                _ if !may_name_topic(&t.topic) => {
                    local.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION));
                }
                (Some(partition), Ok(_)) if req.version < ZSTD_FROM && zstd_topic(partition) => {
                    local.push(Some(code::UNSUPPORTED_COMPRESSION_TYPE));
                }
                (Some(partition), Ok(offset)) => {
                    local.push(None);
                    partitions.push(svc::FetchPartition {
                        topic: t.topic.clone(),
                        partition,
                        offset,
                        max_bytes: u64::try_from(p.partition_max_bytes).unwrap_or(0),
                    });
                }
                (None, _) => local.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION)),
                (_, Err(_)) => local.push(Some(code::OFFSET_OUT_OF_RANGE)),
            }
        }
    }
    let svc_req = svc::FetchRequest {
        max_wait: wait,
        min_bytes: u64::try_from(r.min_bytes).unwrap_or(0),
        max_bytes: u64::try_from(r.max_bytes).unwrap_or(0),
        partitions,
    };
    let result = match conn.fetch_until_closed(svc_req).await {
        Ok(res) => res,
        Err(Refused { code: c, message }) => {
            if matches!(
                c,
                ErrorCode::TooManyPartitions | ErrorCode::DuplicatePartition
            ) {
                Stats::add(&broker.stats.bad_requests, 1);
            }
            tracing::debug!(error = %message, "Kafka fetch refused");
            return respond(conn, req, refused_whole(r, to_kafka(c))).await;
        }
    };
    // A topic named by its id that was deleted (or deleted and created
    // again) while the fetch waited is answered as every later fetch of
    // that id is, with nothing of the topic now under its name.
    // (Looked up as the request's ids were: in a cluster a topic's id is the
    // controller's, which a topic listed before ids were kept need not
    // share with its local record.)
    let mut gone_id = vec![false; r.topics.len()];
    if req.version >= 13 {
        let names = names_by_id(&broker, &r.topics);
        for ((t, now), gone) in r.topics.iter().zip(names).zip(&mut gone_id) {
            *gone = now.as_deref() != Some(t.topic.as_str());
        }
    }
    // The answer, partition by partition in request order; a record set's
    // `start` is the index of its partition in `result`.
    let mut found = result.partitions.iter().enumerate();
    let mut local = local.into_iter();
    let mut resp = FetchResponse::default();
    // Partitions (indexes in `result`) whose records are not sent.
    let mut dropped = Vec::new();
    for (t, gone) in r.topics.into_iter().zip(gone_id) {
        let mut out = FetchTopicResponse {
            topic: t.topic,
            topic_id: t.topic_id,
            partitions: Vec::with_capacity(t.partitions.len()),
        };
        for p in t.partitions {
            let mut pr = no_records(p.partition, code::NONE);
            match local.next().flatten() {
                Some(c) => pr.error_code = c,
                None => {
                    if let Some((i, f)) = found.next() {
                        if gone {
                            pr.error_code = code::UNKNOWN_TOPIC_ID;
                            dropped.push(i);
                            out.partitions.push(pr);
                            continue;
                        }
                        pr.error_code = to_kafka_partition(f.error_code);
                        // An errored partition keeps -1 for its offsets, as
                        // Kafka answers: librdkafka compares the high
                        // watermark with its position before it looks at
                        // the error, and would take a 0 for the end of a
                        // partition read from 0.
                        if f.error_code.is_ok() {
                            let hw = i64::try_from(f.high_watermark).unwrap_or(i64::MAX);
                            pr.high_watermark = hw;
                            pr.last_stable_offset = hw;
                            pr.log_start_offset = i64::try_from(f.log_start_offset).unwrap_or(-1);
                        }
                        pr.records = Some(Records {
                            start: i,
                            len: f.records_len() as usize,
                        });
                    }
                }
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    let mut result = result;
    for i in dropped {
        if let Some(f) = result.partitions.get_mut(i) {
            result.total = result.total.saturating_sub(f.records_len());
            f.records = None;
        }
    }
    let start = header::start_response(
        &mut conn.out,
        req.correlation_id,
        req.api.response_header_version(req.version),
    );
    let cuts = match encode_cut(&mut resp, req.version, &mut conn.out) {
        Ok(c) => c,
        Err(e) => {
            conn.out.truncate(start);
            return Err(ConnError::Refused(
                ErrorCode::Unknown,
                format!("encoding a Kafka fetch response: {e}"),
            ));
        }
    };
    finish(conn, start, result.total)?;
    // Bytes up to each cut, then that partition's file range; the rest.
    let mut chunks = Vec::with_capacity(2 * cuts.len() + 1);
    let mut from = 0;
    for (at, i) in cuts {
        // `NO_RECORDS` (and an empty record set) sends nothing.
        let Some(range) = result.partitions.get(i).and_then(|f| f.records.clone()) else {
            continue;
        };
        chunks.push(Chunk::Bytes(conn.out.get(from..at).unwrap_or_default()));
        chunks.push(Chunk::File(range));
        from = at;
    }
    chunks.push(Chunk::Bytes(conn.out.get(from..).unwrap_or_default()));
    let timeout = Duration::from_millis(broker.config.write_timeout_ms);
    Stats::add(&broker.stats.response_sends, 1);
    let send = crate::server::gather::send(
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

/// The names of the topics `topics` give by id (v13+), in order; `None`
/// for an id no topic has.
fn names_by_id(broker: &Broker, topics: &[FetchTopic]) -> Vec<Option<String>> {
    let ids: Vec<TopicId> = topics.iter().map(|t| TopicId(t.topic_id)).collect();
    broker.service.topic_names(&ids)
}

/// A partition's answer without records.
fn no_records(partition: i32, error_code: KafkaCode) -> FetchPartitionResponse {
    FetchPartitionResponse {
        partition,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: None,
        preferred_read_replica: -1,
        records: Some(NO_RECORDS),
    }
}

/// The answer to a Fetch refused as a whole: the error at the top (v7+)
/// and on every partition asked for, since versions before 7 have no
/// top-level error and an answer without the partitions would say nothing.
fn refused_whole(r: FetchRequest, error_code: KafkaCode) -> FetchResponse {
    FetchResponse {
        error_code,
        topics: r
            .topics
            .into_iter()
            .map(|t| FetchTopicResponse {
                topic: t.topic,
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| no_records(p.partition, error_code))
                    .collect(),
            })
            .collect(),
        ..FetchResponse::default()
    }
}
