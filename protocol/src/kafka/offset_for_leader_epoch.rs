//! OffsetForLeaderEpoch (key 23, versions 0–4): where each named leader
//! epoch of a partition ends, which a consumer asks after a leader change
//! to check that the records it read are still in the log (KIP-320).
//! Version 4 is flexible.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// The leader epoch and end offset meaning "unknown".
pub const UNDEFINED: i32 = -1;

/// One partition's question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochQuery {
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the client believes current (v2+; -1: none).
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked.
    pub leader_epoch: i32,
}

/// One topic's questions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochQueryTopic {
    /// Name.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<EpochQuery>,
}

/// OffsetForLeaderEpoch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetForLeaderEpochRequest {
    /// The asking broker (v3+); -1 or -2 for a consumer.
    pub replica_id: i32,
    /// Topics.
    pub topics: Vec<EpochQueryTopic>,
}

impl Message for OffsetForLeaderEpochRequest {
    const API: ApiKey = ApiKey::OffsetForLeaderEpoch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            s.i32(&mut self.replica_id)?;
        } else {
            self.replica_id = -2;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.topic)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition)?;
                if v >= 2 {
                    s.i32(&mut p.current_leader_epoch)?;
                } else {
                    p.current_leader_epoch = UNDEFINED;
                }
                s.i32(&mut p.leader_epoch)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One partition's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// Error code.
    pub error_code: i16,
    /// Partition index.
    pub partition: i32,
    /// The largest epoch at or below the one asked that the log knows
    /// (v1+; [`UNDEFINED`] when none).
    pub leader_epoch: i32,
    /// The end offset of that epoch ([`UNDEFINED`] when none).
    pub end_offset: i64,
}

/// One topic's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochEndOffsetTopic {
    /// Name.
    pub topic: String,
    /// Partitions, in request order.
    pub partitions: Vec<EpochEndOffset>,
}

/// OffsetForLeaderEpoch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetForLeaderEpochResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Topics, in request order.
    pub topics: Vec<EpochEndOffsetTopic>,
}

impl Message for OffsetForLeaderEpochResponse {
    const API: ApiKey = ApiKey::OffsetForLeaderEpoch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 2 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.topic)?;
            s.array(&mut t.partitions, |s, p| {
                s.i16(&mut p.error_code)?;
                s.i32(&mut p.partition)?;
                if v >= 1 {
                    s.i32(&mut p.leader_epoch)?;
                } else {
                    p.leader_epoch = UNDEFINED;
                }
                s.i64(&mut p.end_offset)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
