//! OffsetDelete (key 47, version 0): deleting a group's committed offsets
//! of some partitions. Not flexible.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// One topic's partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetDeleteTopic {
    /// Name.
    pub name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// OffsetDelete request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetDeleteRequest {
    /// Group.
    pub group_id: String,
    /// Topics.
    pub topics: Vec<OffsetDeleteTopic>,
}

impl Message for OffsetDeleteRequest {
    const API: ApiKey = ApiKey::OffsetDelete;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| s.i32(p))?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One topic's outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetDeleteTopicResult {
    /// Name.
    pub name: String,
    /// (partition index, error code), in request order.
    pub partitions: Vec<(i32, i16)>,
}

/// OffsetDelete response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    /// The group's error (then `topics` is empty).
    pub error_code: i16,
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Topics, in request order.
    pub topics: Vec<OffsetDeleteTopicResult>,
}

impl Message for OffsetDeleteResponse {
    const API: ApiKey = ApiKey::OffsetDelete;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i16(&mut self.error_code)?;
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, (p, e)| {
                s.i32(p)?;
                s.i16(e)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
