//! OffsetDelete: a group's committed offsets of some partitions deleted
//! through the service, but those of topics the group's members read
//! (`GROUP_SUBSCRIBED_TO_TOPIC` for each of their partitions). A topic or
//! partition that does not exist gets `UNKNOWN_TOPIC_OR_PARTITION`; a
//! group-wide refusal (not the coordinator, unknown group, a non-empty
//! group of another protocol type) is the top-level error, as Kafka
//! answers.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_protocol::kafka::error_code::{code, to_kafka};
use sluice_protocol::kafka::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteTopicResult,
};

use crate::server::native::connection::Conn;

/// Answers an OffsetDelete request.
pub(super) async fn offset_delete(conn: &Conn, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let svc = Arc::clone(&conn.broker.service);
    let refused = |error_code| OffsetDeleteResponse {
        error_code,
        throttle_time_ms: 0,
        topics: Vec::new(),
    };
    // A topic entry counts as at least one: one with no partitions still
    // costs a name and a look-up.
    let total: usize = r.topics.iter().map(|t| t.partitions.len().max(1)).sum();
    if total > conn.broker.config.max_partitions_per_request as usize {
        return refused(code::INVALID_REQUEST);
    }
    // Partition counts of the named topics (each looked up once).
    let names: Vec<String> = r.topics.iter().map(|t| t.name.clone()).collect();
    let counts: HashMap<String, u32> = svc
        .describe_topics(Some(&names))
        .into_iter()
        .filter(|t| t.error_code.is_ok())
        .map(|t| (t.name, t.partitions.len() as u32))
        .collect();
    let exists = |topic: &str, p: i32| {
        u32::try_from(p)
            .ok()
            .filter(|p| counts.get(topic).is_some_and(|n| p < n))
    };
    let asked: Vec<(String, u32)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter_map(|&p| exists(&t.name, p).map(|p| (t.name.clone(), p)))
        })
        .collect();
    let kept = match svc.delete_offsets(r.group_id, asked).await {
        Ok(kept) => kept,
        Err(e) => return refused(to_kafka(e.code)),
    };
    let mut kept = kept.into_iter();
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let error_code = match exists(&t.name, p) {
                        None => code::UNKNOWN_TOPIC_OR_PARTITION,
                        Some(_) if kept.next() == Some(true) => code::GROUP_SUBSCRIBED_TO_TOPIC,
                        Some(_) => code::NONE,
                    };
                    (p, error_code)
                })
                .collect();
            OffsetDeleteTopicResult {
                name: t.name,
                partitions,
            }
        })
        .collect();
    OffsetDeleteResponse {
        error_code: code::NONE,
        throttle_time_ms: 0,
        topics,
    }
}
