//! OffsetForLeaderEpoch: where a leader epoch of a partition ends, which a
//! consumer asks after a leader change before it fetches again (KIP-320:
//! it checks that the records it read are still in the log).
//!
//! Sluice never truncates records a consumer can have read: a consumer
//! reads up to the high watermark, and in a cluster every record below it
//! is committed by a Raft majority, which every later leader holds. So the
//! answer for an epoch at or below the partition's current one is that
//! epoch (the current one if asked for a later one) and the log end offset:
//! never below a consumer's position, so never a truncation. Kafka answers
//! an older epoch with where that epoch ended; a consumer only compares the
//! answer with its position, which is at or below both. An undefined epoch
//! (-1) is answered with -1 and -1, as Kafka does. The epoch the client
//! believes current (`current_leader_epoch`) is not checked, as Fetch does
//! not check it: a partition led elsewhere is `NOT_LEADER_OR_FOLLOWER`.

use sluice_protocol::kafka::error_code::{code, to_kafka_partition};
use sluice_protocol::kafka::offset_for_leader_epoch::{
    EpochEndOffset, EpochEndOffsetTopic, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    UNDEFINED,
};

use super::partition_index;
use crate::server::native::connection::Conn;
use crate::service::leadership;

/// Answers each partition in request order; a request naming more
/// partitions than `max_partitions_per_request` gets `INVALID_REQUEST` at
/// each.
pub(super) fn offset_for_leader_epoch(
    conn: &Conn,
    r: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let svc = &conn.broker.service;
    let named: usize = r.topics.iter().map(|t| t.partitions.len()).sum();
    let too_many = named > svc.config.max_partitions_per_request as usize;
    let topics = r
        .topics
        .into_iter()
        .map(|t| EpochEndOffsetTopic {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset {
                        error_code: code::NONE,
                        partition: p.partition,
                        leader_epoch: UNDEFINED,
                        end_offset: i64::from(UNDEFINED),
                    };
                    if too_many {
                        out.error_code = code::INVALID_REQUEST;
                        return out;
                    }
                    let Some(partition) = partition_index(p.partition) else {
                        out.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                        return out;
                    };
                    match svc.led_partition(&t.topic, partition) {
                        Err(c) => out.error_code = to_kafka_partition(c),
                        Ok(_) if p.leader_epoch < 0 => {}
                        Ok(part) => {
                            let current =
                                leadership::describe(svc.leadership.as_ref(), &t.topic, partition)
                                    .leader_epoch;
                            let current = i32::try_from(current).unwrap_or(i32::MAX);
                            out.leader_epoch = p.leader_epoch.min(current);
                            out.end_offset =
                                i64::try_from(part.log.next_offset()).unwrap_or(i64::MAX);
                        }
                    }
                    out
                })
                .collect(),
            topic: t.topic,
        })
        .collect();
    OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics,
    }
}
