//! Produce: validate and append each partition's record set, make it
//! durable when the topic or the producer's `acks` asks for it (group
//! commit, off the reactor), then answer with each partition's base offset
//! or error.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::{
    Acks, ProducePartitionResponse, ProduceRequest, ProduceResponse,
};

use super::connection::{Conn, ConnError};
use super::handlers::{check_partition_list, respond};
use super::stats::Stats;
use crate::error::log_error_code;
use crate::log::FlushPolicy;
use crate::topics::Partition;

pub(super) async fn produce(
    conn: &mut Conn,
    id: u32,
    req: ProduceRequest,
    tail: &mut [u8],
) -> Result<(), ConnError> {
    let entries = req
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let max = conn.broker.config.max_partitions_per_request;
    if let Err((code, msg)) = check_partition_list(entries, max) {
        Stats::add(&conn.broker.stats.bad_requests, 1);
        if req.acks == Acks::None {
            // No answer is read (see below): close instead.
            return Err(ConnError::Refused(code, msg));
        }
        return conn.write_error(id, code, &msg).await;
    }
    if let Err(e) = req.check_tail(tail.len()) {
        Stats::add(&conn.broker.stats.bad_requests, 1);
        if req.acks == Acks::None {
            // The client reads no answer to acks=none: an error response
            // would be taken for the answer to a later request. Close the
            // connection instead, as Kafka does.
            return Err(ConnError::Wire(e));
        }
        return conn
            .write_error(id, ErrorCode::InvalidRequest, &e.to_string())
            .await;
    }
    let broker = Arc::clone(&conn.broker);
    let mut results = Vec::with_capacity(req.partitions.len());
    let mut to_flush: Vec<(usize, Arc<Partition>, u64)> = Vec::new();
    let mut rest = tail;
    for (i, p) in req.partitions.iter().enumerate() {
        let (records, after) = std::mem::take(&mut rest).split_at_mut(p.records_len as usize);
        rest = after;
        let mut result = ProducePartitionResponse {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: ErrorCode::None,
            base_offset: 0,
            message: None,
        };
        match broker.topics.partition(&p.topic, p.partition) {
            Err(code) => {
                result.error_code = code;
                result.message = Some(format!(
                    "no partition {} of topic {:?}",
                    p.partition, p.topic
                ));
            }
            Ok(part) => match part.log.append(records) {
                Ok(info) => {
                    Stats::add(&broker.stats.produce_bytes, records.len() as u64);
                    result.base_offset = info.base_offset;
                    if req.acks == Acks::All || part.log.config().flush == FlushPolicy::BeforeAck {
                        to_flush.push((i, part, info.next_offset));
                    } else {
                        part.notify();
                    }
                }
                Err(e) => {
                    result.error_code = log_error_code(&e);
                    result.message = Some(e.to_string());
                }
            },
        }
        results.push(result);
    }
    if !to_flush.is_empty() {
        let indexes: Vec<usize> = to_flush.iter().map(|(i, _, _)| *i).collect();
        let flush = tokio::task::spawn_blocking(move || {
            to_flush
                .into_iter()
                .map(|(i, part, offset)| {
                    let r = part.log.flush_to(offset);
                    part.notify();
                    (i, r.map_err(|e| (log_error_code(&e), e.to_string())))
                })
                .collect::<Vec<_>>()
        });
        let timeout = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
        match tokio::time::timeout(timeout, flush).await {
            Ok(Ok(outcomes)) => {
                for (i, outcome) in outcomes {
                    if let (Err((code, msg)), Some(r)) = (outcome, results.get_mut(i)) {
                        r.error_code = code;
                        r.message = Some(msg);
                    }
                }
            }
            Ok(Err(join)) => {
                for i in indexes {
                    if let Some(r) = results.get_mut(i) {
                        r.error_code = ErrorCode::Unknown;
                        r.message = Some(format!("flush task failed: {join}"));
                    }
                }
            }
            Err(_) => {
                for i in indexes {
                    if let Some(r) = results.get_mut(i) {
                        r.error_code = ErrorCode::RequestTimedOut;
                        r.message = Some(format!("not durable within {timeout:?}"));
                    }
                }
            }
        }
    }
    if req.acks == Acks::None {
        return Ok(());
    }
    respond(
        conn,
        id,
        &ProduceResponse {
            partitions: results,
        },
    )
    .await
}
