//! ElectLeaders: preferred elections through the service
//! ([`crate::service::Service::elect_preferred_leaders`]). Unclean elections are never run:
//! a partition group elects only a replica holding every committed record,
//! so an unclean election asked for is `ELECTION_NOT_NEEDED` for a
//! partition with a leader and `ELIGIBLE_LEADERS_NOT_AVAILABLE` for one
//! without. Results come per topic, in the order the topics were first
//! named; a partition named twice is answered once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::kafka::elect_leaders::{
    ELECTION_PREFERRED, ELECTION_UNCLEAN, ElectLeadersPartitionResult, ElectLeadersRequest,
    ElectLeadersResponse, ElectLeadersTopicResult,
};
use sluice_protocol::kafka::error_code::{code, to_kafka};

use crate::server::native::connection::Conn;
use crate::service::elections::Election;

/// Partitions as named: (topic, index).
type Named = Vec<(String, i32)>;

/// One partition's answer: topic, index, error code, message.
type Row = (String, i32, i16, Option<String>);

/// Answers an ElectLeaders request of version `version`.
pub(super) async fn elect_leaders(
    conn: &Conn,
    r: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let svc = Arc::clone(&conn.broker.service);
    // Counted as sent (a topic with no partitions as one), before anything
    // is built from the request.
    let entries: usize = r
        .topic_partitions
        .as_ref()
        .map_or(0, |t| t.iter().map(|t| t.partitions.len().max(1)).sum());
    let too_many = entries > conn.broker.config.max_partitions_per_request as usize;
    let named: Option<Named> = r.topic_partitions.as_ref().map(|topics| {
        let mut seen = HashSet::with_capacity(entries);
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |&p| (t.topic.as_str(), p)))
            .filter(|&key| seen.insert(key))
            .map(|(t, p)| (t.to_owned(), p))
            .collect()
    });
    let bad_type = !matches!(r.election_type, ELECTION_PREFERRED | ELECTION_UNCLEAN);
    if too_many || bad_type {
        // From v1 the request's own error; v0 has none, so each partition
        // named carries it.
        let partitions = if version >= 1 {
            Vec::new()
        } else {
            named.unwrap_or_default()
        };
        let message = if bad_type {
            format!("unknown election type {}", r.election_type)
        } else {
            "more partitions than max_partitions_per_request".to_owned()
        };
        return answer(
            version,
            code::INVALID_REQUEST,
            partitions
                .into_iter()
                .map(|(t, p)| (t, p, code::INVALID_REQUEST, Some(message.clone())))
                .collect(),
        );
    }
    // Negative indexes name no partition.
    let asked_all = named.is_none();
    let (valid, invalid): (Named, Named) = named
        .unwrap_or_default()
        .into_iter()
        .partition(|(_, p)| *p >= 0);
    let asked: Option<Vec<(String, u32)>> =
        (!asked_all).then(|| valid.into_iter().map(|(t, p)| (t, p as u32)).collect());
    let outcomes = if r.election_type == ELECTION_UNCLEAN {
        svc.elect_unclean_leaders(asked)
    } else {
        let wait = Duration::from_millis(r.timeout_ms.max(0) as u64);
        svc.elect_preferred_leaders(asked, wait).await
    };
    let mut results: Vec<Row> = outcomes
        .into_iter()
        .map(|e| {
            let (code, message) = match e.outcome {
                Election::Elected => (code::NONE, None),
                Election::NotNeeded => (code::ELECTION_NOT_NEEDED, None),
                Election::PreferredNotInSync => (
                    code::PREFERRED_LEADER_NOT_AVAILABLE,
                    Some("the preferred replica is not in sync with the leader".to_owned()),
                ),
                Election::Unknown => (code::UNKNOWN_TOPIC_OR_PARTITION, None),
                Election::NoEligibleLeader => (code::ELIGIBLE_LEADERS_NOT_AVAILABLE, None),
                Election::TimedOut => (
                    code::REQUEST_TIMED_OUT,
                    Some("the preferred replica did not take the leadership in time".to_owned()),
                ),
                Election::Failed(code, why) => (to_kafka(code), Some(why)),
            };
            (e.topic, e.partition as i32, code, message)
        })
        .collect();
    results.extend(
        invalid
            .into_iter()
            .map(|(t, p)| (t, p, code::UNKNOWN_TOPIC_OR_PARTITION, None)),
    );
    answer(version, code::NONE, results)
}

/// The response: `results` grouped by topic, topics in first-seen order.
fn answer(version: i16, error_code: i16, results: Vec<Row>) -> ElectLeadersResponse {
    let mut topics: Vec<ElectLeadersTopicResult> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (topic, partition_id, error_code, error_message) in results {
        let result = ElectLeadersPartitionResult {
            partition_id,
            error_code,
            error_message,
        };
        match at.get(&topic) {
            Some(&i) => topics[i].partition_result.push(result),
            None => {
                at.insert(topic.clone(), topics.len());
                topics.push(ElectLeadersTopicResult {
                    topic,
                    partition_result: vec![result],
                });
            }
        }
    }
    ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: if version >= 1 { error_code } else { code::NONE },
        replica_election_results: topics,
    }
}
