//! CreatePartitions: raising topics' partition counts through the service.
//! The broker places the new partitions (a manual assignment is refused
//! with `INVALID_REPLICA_ASSIGNMENT`, as in CreateTopics); a topic named
//! more than once in a request gets `INVALID_REQUEST` at each mention, as
//! Kafka answers it, and so does every topic of a request naming more than
//! `max_partitions_per_request` of them.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_protocol::kafka::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult,
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
    for t in &r.topics {
        let refused = if mentions[t.name.as_str()] > 1 {
            Some((
                code::INVALID_REQUEST,
                format!("topic {:?} is named more than once", t.name),
            ))
        } else if t.assignments.is_some() {
            Some((
                code::INVALID_REPLICA_ASSIGNMENT,
                "manual replica assignment is not supported".to_owned(),
            ))
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
