//! Kafka Produce: the record sets stay in the request frame and go to the
//! same service path as native produces (validation, compression,
//! idempotence checks). acks 0 gets no answer at all; 1 and -1 map to
//! Sluice's leader and all.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::batch::Compression;
use sluice_protocol::batch::compression::codecs;
use sluice_protocol::kafka::error_code::{KafkaCode, code, to_kafka_partition};
use sluice_protocol::kafka::produce::{
    ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
};

use super::{Req, may_name_topic, partition_index, respond};
use crate::server::native::connection::{Conn, ConnError};
use crate::service::Refused;
use crate::service::produce::{Acks, ProducePartition, ProduceRequest as SvcRequest};

/// Offset of the magic byte in a record batch header.
const MAGIC_AT: usize = 16;
/// The first Produce version that may carry zstd-compressed batches
/// (KIP-110); Kafka refuses them in older ones.
const ZSTD_FROM: i16 = 7;

/// Serves a Produce whose record sets lie at `base +` their positions in
/// `frame`.
pub(super) async fn produce(
    conn: &mut Conn,
    req: Req,
    r: ProduceRequest,
    frame: BytesMut,
    base: usize,
) -> Result<(), ConnError> {
    let acks = match r.acks {
        0 => Some(Acks::None),
        1 => Some(Acks::Leader),
        -1 => Some(Acks::All),
        _ => None,
    };
    // Per partition, in request order: an early answer, or the index of
    // its entry in the service request.
    let mut early: Vec<Result<usize, (KafkaCode, &'static str)>> = Vec::new();
    let mut parts = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            let outcome = if acks.is_none() {
                Err((code::INVALID_REQUIRED_ACKS, "acks must be 0, 1 or -1"))
            } else if r.transactional_id.is_some() {
                Err((
                    code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    "transactions are not supported",
                ))
            } else {
                match (partition_index(p.index), p.records) {
                    _ if !may_name_topic(&t.name) => Err((
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                        "no topic has so long a name",
                    )),
                    (None, _) => Err((code::UNKNOWN_TOPIC_OR_PARTITION, "negative partition")),
                    (_, None) => Err((code::CORRUPT_MESSAGE, "null record set")),
                    (Some(partition), Some(rec)) => {
                        let range = base + rec.start..base + rec.start + rec.len;
                        let magic = frame
                            .get(range.start + MAGIC_AT)
                            .copied()
                            .filter(|_| rec.len > MAGIC_AT);
                        if magic != Some(2) {
                            Err((
                                code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
                                "records must be RecordBatch v2 (magic 2)",
                            ))
                        } else if req.version < ZSTD_FROM
                            && frame
                                .get(range.clone())
                                .is_some_and(|r| codecs(r).any(|c| c == Compression::Zstd))
                        {
                            Err((
                                code::UNSUPPORTED_COMPRESSION_TYPE,
                                "zstd-compressed batches need Produce v7 or later",
                            ))
                        } else {
                            parts.push(ProducePartition {
                                topic: t.name.clone(),
                                partition,
                                records: range,
                            });
                            Ok(parts.len() - 1)
                        }
                    }
                }
            };
            early.push(outcome);
        }
    }
    let acks = acks.unwrap_or(Acks::Leader);
    let results = if parts.is_empty() {
        Ok(Vec::new())
    } else {
        let svc = Arc::clone(&conn.broker.service);
        svc.produce(SvcRequest {
            acks,
            timeout: Duration::from_millis(u64::try_from(r.timeout_ms).unwrap_or(0)),
            partitions: parts,
            records: frame,
        })
        .await
    };
    if r.acks == 0 {
        // The client reads no answer: a refused request or partition closes
        // the connection (as Kafka does), so the client learns of it.
        let refused = match &results {
            Err(Refused { code, message }) => Some((*code, message.clone())),
            Ok(done) => done
                .iter()
                .find(|d| !d.error_code.is_ok())
                .map(|d| (d.error_code, d.message.clone().unwrap_or_default())),
        };
        if let Some((code, message)) = refused {
            return Err(ConnError::Refused(code, message));
        }
        if let Some(Err((_, why))) = early.iter().find(|e| e.is_err()) {
            return Err(ConnError::Refused(
                sluice_protocol::wire::ErrorCode::InvalidRequest,
                (*why).to_owned(),
            ));
        }
        return Ok(());
    }
    if let Ok(done) = &results {
        // A tailing consumer's long poll these records woke answers first.
        conn.broker
            .service
            .let_woken_fetches_answer(
                done.iter()
                    .filter(|d| d.error_code.is_ok())
                    .map(|d| (d.topic.as_str(), d.partition)),
            )
            .await;
    }
    let mut early = early.into_iter();
    let mut resp = ProduceResponse::default();
    for t in r.topics {
        let mut out = ProduceTopicResponse {
            name: t.name,
            partitions: Vec::with_capacity(t.partitions.len()),
        };
        for p in t.partitions {
            let mut pr = ProducePartitionResponse {
                index: p.index,
                error_code: code::NONE,
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: -1,
                record_errors: Vec::new(),
                error_message: None,
            };
            match (early.next(), &results) {
                (Some(Err((c, why))), _) => {
                    pr.error_code = c;
                    pr.error_message = Some(why.to_owned());
                }
                (_, Err(refused)) => {
                    pr.error_code = to_kafka_partition(refused.code);
                    pr.error_message = Some(refused.message.clone());
                }
                (Some(Ok(i)), Ok(done)) => match done.get(i) {
                    Some(d) => {
                        pr.error_code = to_kafka_partition(d.error_code);
                        if d.error_code.is_ok() {
                            pr.base_offset = i64::try_from(d.base_offset).unwrap_or(-1);
                            pr.log_start_offset = i64::try_from(d.log_start_offset).unwrap_or(-1);
                        }
                        pr.error_message = d.message.clone();
                    }
                    None => pr.error_code = code::UNKNOWN_SERVER_ERROR,
                },
                (None, Ok(_)) => pr.error_code = code::UNKNOWN_SERVER_ERROR,
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    respond(conn, req, resp).await
}
