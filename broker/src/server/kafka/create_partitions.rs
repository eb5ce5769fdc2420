//! CreatePartitions: raising topics' partition counts through the service.
//! The broker places the new partitions (a manual assignment is refused
//! with `INVALID_REPLICA_ASSIGNMENT`, as in CreateTopics); a topic named
//! more than once in a request gets one `INVALID_REQUEST` answer and is not
//! changed, as Kafka answers it, and every topic of a request naming more
//! than `max_partitions_per_request` of them gets `INVALID_REQUEST`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sluice_protocol::kafka::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult, PartitionAssignment,
};
use sluice_protocol::kafka::error_code::{code, to_kafka};

use crate::server::native::connection::Conn;

/// Answers one result per topic, in request order.
pub(super) async fn create_partitions(
    conn: &Conn,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // More topics than a request may name partitions: refused whole, each
    // topic answered without being looked at.
    let cap = conn.broker.config.max_partitions_per_request as usize;
    if r.topics.len() > cap {
        let message = format!("more than {cap} topics in one request (max_partitions_per_request)");
        return CreatePartitionsResponse {
            throttle_time_ms: 0,
            results: r
                .topics
                .into_iter()
                .enumerate()
                .map(|(i, t)| CreatePartitionsResult {
                    name: t.name,
                    error_code: code::INVALID_REQUEST,
                    // Said once: the answer stays the size of the request.
                    error_message: (i == 0).then(|| message.clone()),
                })
                .collect(),
        };
    }
    let mut mentions: HashMap<&str, usize> = HashMap::new();
    for t in &r.topics {
        *mentions.entry(t.name.as_str()).or_default() += 1;
    }
    let svc = Arc::clone(&conn.broker.service);
    let mut results = Vec::with_capacity(r.topics.len());
    let mut answered_twice = HashSet::new();
    for t in &r.topics {
        let refused = if mentions[t.name.as_str()] > 1 {
            // Answered once, where first named, as Kafka answers.
            if !answered_twice.insert(t.name.as_str()) {
                continue;
            }
            Some((code::INVALID_REQUEST, "Duplicate topic name.".to_owned()))
        } else if let Some(refused) = t.assignments.as_ref().and_then(|a| {
            let clustered = conn.broker.service.cluster.get().is_some();
            let current = conn.broker.service.topics.topic(&t.name);
            let adding = current.map(|c| i64::from(t.count) - i64::from(c.partition_count()));
            single_broker_assignment(a, adding, clustered)
        }) {
            Some((code::INVALID_REPLICA_ASSIGNMENT, refused))
        } else if t.count <= 0 {
            Some((
                code::INVALID_PARTITIONS,
                format!("partition count {} is not positive", t.count),
            ))
        } else {
            None
        };
        let (error_code, error_message) = match refused {
            Some((c, m)) => (c, Some(m)),
            None => {
                let o = svc
                    .create_partitions(t.name.clone(), t.count as u32, r.validate_only)
                    .await;
                (to_kafka(o.error_code), o.message)
            }
        };
        results.push(CreatePartitionsResult {
            name: t.name.clone(),
            error_code,
            error_message,
        });
    }
    CreatePartitionsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// Why a CreatePartitions manual assignment cannot be kept, if it cannot:
/// on a single broker, every new partition on node 0 is what the broker
/// does anyway, given one per partition added (a count that adds none is
/// refused by the count's own check, an unknown topic by its own); a
/// cluster refuses manual assignments.
fn single_broker_assignment(
    assignments: &[PartitionAssignment],
    adding: Option<i64>,
    clustered: bool,
) -> Option<String> {
    if clustered {
        return Some("manual replica assignment is not supported in a cluster".to_owned());
    }
    if let Some(n) = adding.filter(|&n| n > 0 && n != assignments.len() as i64) {
        return Some(format!(
            "{n} partitions are added, but {} are assigned",
            assignments.len()
        ));
    }
    assignments.iter().find(|a| a.broker_ids != [0]).map(|a| {
        format!(
            "a new partition is assigned to brokers {:?}: this single broker is node 0, \
                 and each partition has one replica, on it",
            a.broker_ids
        )
    })
}
