//! DescribeProducers: the idempotent producers each named partition's
//! leader holds state for, through the service. Sluice has no
//! transactions: every producer's coordinator epoch and open transaction
//! start are -1.

use sluice_protocol::kafka::describe_producers::{
    DescribeProducersPartition, DescribeProducersRequest, DescribeProducersResponse,
    DescribeProducersTopicResponse, ProducerState,
};
use sluice_protocol::kafka::error_code::{code, to_kafka_partition};

use super::{may_name_topic, partition_index};
use crate::server::native::connection::Conn;

/// Answers each partition in request order. A request naming more
/// partitions than `max_partitions_per_request` gets `INVALID_REQUEST` at
/// each, none looked up.
pub(super) fn describe_producers(
    conn: &Conn,
    r: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let svc = &conn.broker.service;
    let named: usize = r.topics.iter().map(|t| t.partition_indexes.len()).sum();
    let cap = svc.config.max_partitions_per_request as usize;
    let too_many = named > cap;
    let topics = r
        .topics
        .into_iter()
        .map(|t| DescribeProducersTopicResponse {
            partitions: t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let mut out = DescribeProducersPartition {
                        partition_index: index,
                        error_code: code::NONE,
                        error_message: None,
                        active_producers: Vec::new(),
                    };
                    let partition = partition_index(index).filter(|_| may_name_topic(&t.name));
                    let found = match (too_many, partition) {
                        (true, _) => {
                            out.error_code = code::INVALID_REQUEST;
                            out.error_message = Some(format!(
                                "{named} partitions in one request, more than {cap} (max_partitions_per_request)"
                            ));
                            return out;
                        }
                        (false, None) => Err(sluice_protocol::wire::ErrorCode::UnknownTopicOrPartition),
                        (false, Some(p)) => svc.producers_of(&t.name, p),
                    };
                    match found {
                        Ok(producers) => {
                            out.active_producers = producers
                                .into_iter()
                                .map(|p| ProducerState {
                                    producer_id: p.producer_id,
                                    producer_epoch: i32::from(p.epoch),
                                    last_sequence: p.last_sequence,
                                    last_timestamp: p.last_timestamp,
                                    coordinator_epoch: -1,
                                    current_txn_start_offset: -1,
                                })
                                .collect();
                        }
                        Err(c) => {
                            out.error_code = to_kafka_partition(c);
                            let p = u32::try_from(index).unwrap_or(u32::MAX);
                            out.error_message = Some(svc.refusal_message(c, &t.name, p));
                        }
                    }
                    out
                })
                .collect(),
            name: t.name,
        })
        .collect();
    DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
    }
}
