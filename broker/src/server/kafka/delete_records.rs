//! DeleteRecords: the records below an offset of each named partition are
//! deleted through the service (in a cluster, at the partition's leader,
//! through the controller). Answers each partition in request
//! order, with its log start offset afterwards as the low watermark; a
//! partition named more than once is deleted up to its last entry's offset
//! and answered once, as Kafka does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sluice_protocol::kafka::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult, HIGH_WATERMARK,
};
use sluice_protocol::kafka::error_code::{code, to_kafka_partition};

use crate::server::native::connection::Conn;
use crate::service::records::RecordsDeletion;

/// Answers a DeleteRecords request (a request over
/// `max_partitions_per_request` entries gets its error at every partition).
pub(super) async fn delete_records(conn: &Conn, r: DeleteRecordsRequest) -> DeleteRecordsResponse {
    // A partition named more than once is deleted up to its last entry's
    // offset and answered once, where it is first named, as Kafka answers
    // (a client matching answers to partitions by name may refuse an answer
    // that names one twice).
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            last.insert((t.name.as_str(), p.partition_index), p.offset);
        }
    }
    let mut answered: HashSet<(&str, i32)> = HashSet::new();
    let mut deletions = Vec::new();
    // Per partition of the request: its refusal, or its deletion's index;
    // `None` for a repeat, not answered.
    let mut slots: Vec<Vec<Option<Result<usize, i16>>>> = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let mut topic = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let key = (t.name.as_str(), p.partition_index);
            if !answered.insert(key) {
                topic.push(None);
                continue;
            }
            let offset = last.get(&key).copied().unwrap_or(p.offset);
            let Some(partition) = super::partition_index(p.partition_index)
                .filter(|_| super::may_name_topic(&t.name))
            else {
                topic.push(Some(Err(code::UNKNOWN_TOPIC_OR_PARTITION)));
                continue;
            };
            let before = match offset {
                HIGH_WATERMARK => None,
                o => match u64::try_from(o) {
                    Ok(o) => Some(o),
                    Err(_) => {
                        topic.push(Some(Err(code::OFFSET_OUT_OF_RANGE)));
                        continue;
                    }
                },
            };
            topic.push(Some(Ok(deletions.len())));
            deletions.push(RecordsDeletion {
                topic: t.name.clone(),
                partition,
                before,
            });
        }
        slots.push(topic);
    }
    let svc = Arc::clone(&conn.broker.service);
    let done = if deletions.is_empty() {
        Ok(Vec::new())
    } else {
        svc.delete_records(deletions).await
    };
    let topics = r
        .topics
        .iter()
        .zip(slots)
        // A topic entry whose every partition was named before it.
        .filter(|(t, slots)| t.partitions.is_empty() || slots.iter().any(Option::is_some))
        .map(|(t, slots)| DeleteRecordsTopicResult {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .zip(slots)
                .filter_map(|(p, slot)| slot.map(|slot| (p, slot)))
                .map(|(p, slot)| {
                    let (error_code, low_watermark) = match (slot, &done) {
                        (Err(c), _) => (c, -1),
                        (Ok(_), Err(refused)) => (to_kafka_partition(refused.code), -1),
                        (Ok(i), Ok(done)) => match done.get(i) {
                            Some(d) if d.error_code.is_ok() => {
                                (code::NONE, d.log_start_offset as i64)
                            }
                            Some(d) => (to_kafka_partition(d.error_code), -1),
                            None => (code::UNKNOWN_SERVER_ERROR, -1),
                        },
                    };
                    DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark,
                        error_code,
                    }
                })
                .collect(),
        })
        .collect();
    DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
    }
}
