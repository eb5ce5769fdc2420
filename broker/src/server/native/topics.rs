//! Native-protocol glue for changing topics that exist (keys 22-24):
//! CreatePartitions, AlterTopicConfig and DeleteRecords. Decode, call the
//! service, encode. A request naming more than `max_partitions_per_request`
//! topics or partitions is refused whole (`TooManyPartitions`); a topic
//! named twice in one CreatePartitions or AlterTopicConfig request is
//! refused at each mention (`InvalidRequest`), as Kafka refuses it.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_protocol::wire::alter_topics::{
    AlterTopicConfigRequest, AlterTopicConfigResponse, CreatePartitionsRequest,
    CreatePartitionsResponse,
};
use sluice_protocol::wire::create_topics::TopicResult;
use sluice_protocol::wire::delete_records::{
    DeleteRecordsRequest, DeleteRecordsResponse, RecordsDeletedResult,
};
use sluice_protocol::wire::{ApiKey, ErrorCode};

use super::connection::{Conn, ConnError};
use super::{respond, topic_result};
use crate::service::check_partition_count;
use crate::service::records::RecordsDeletion;

/// Serves one request of a topic-changing API.
pub(super) async fn serve(
    conn: &mut Conn,
    id: u32,
    api: ApiKey,
    body: &[u8],
) -> Result<(), ConnError> {
    let svc = Arc::clone(&conn.broker.service);
    let max = conn.broker.config.max_partitions_per_request;
    macro_rules! decode {
        ($t:ty) => {
            decode_or_answer!(conn, id, api, body, $t)
        };
    }
    macro_rules! at_most {
        ($n:expr) => {
            if let Err(r) = check_partition_count($n, max) {
                return conn.write_error(id, r.code, &r.message).await;
            }
        };
    }
    match api {
        ApiKey::CreatePartitions => {
            let req = decode!(CreatePartitionsRequest);
            at_most!(req.topics.len());
            let twice = named_twice(req.topics.iter().map(|t| t.name.as_str()));
            let mut results = Vec::with_capacity(req.topics.len());
            for t in req.topics {
                if twice.contains(&t.name) {
                    results.push(refused_twice(t.name));
                    continue;
                }
                let o = svc
                    .create_partitions(t.name, t.count, req.validate_only)
                    .await;
                results.push(topic_result(o));
            }
            respond(conn, id, &CreatePartitionsResponse { results }).await
        }
        ApiKey::AlterTopicConfig => {
            let req = decode!(AlterTopicConfigRequest);
            at_most!(req.topics.len());
            let twice = named_twice(req.topics.iter().map(|t| t.name.as_str()));
            let mut results = Vec::with_capacity(req.topics.len());
            for change in req.topics {
                if twice.contains(&change.name) {
                    results.push(refused_twice(change.name));
                    continue;
                }
                let name = change.name.clone();
                let o = svc
                    .alter_topic_config(name, move |c| change.apply(c), req.validate_only)
                    .await;
                results.push(topic_result(o));
            }
            respond(conn, id, &AlterTopicConfigResponse { results }).await
        }
        ApiKey::DeleteRecords => {
            let req = decode!(DeleteRecordsRequest);
            at_most!(req.partitions.len());
            let deletions = req
                .partitions
                .into_iter()
                .map(|p| RecordsDeletion {
                    topic: p.topic,
                    partition: p.partition,
                    before: p.before,
                })
                .collect();
            let done = match svc.delete_records(deletions).await {
                Ok(d) => d,
                Err(r) => return conn.write_error(id, r.code, &r.message).await,
            };
            let partitions = done
                .into_iter()
                .map(|d| RecordsDeletedResult {
                    topic: d.topic,
                    partition: d.partition,
                    error_code: d.error_code,
                    log_start_offset: d.log_start_offset,
                })
                .collect();
            respond(conn, id, &DeleteRecordsResponse { partitions }).await
        }
        other => {
            let msg = format!("{other:?} is not a topic-changing API");
            conn.write_error(id, ErrorCode::InvalidRequest, &msg).await
        }
    }
}

/// The names given more than once.
fn named_twice<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *count.entry(n).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|&(_, c)| c > 1)
        .map(|(n, _)| n.to_owned())
        .collect()
}

fn refused_twice(name: String) -> TopicResult {
    TopicResult {
        message: Some(format!("topic {name:?} is named more than once")),
        name,
        error_code: ErrorCode::InvalidRequest,
    }
}
