//! CreatePartitions (key 37, versions 0–3): raising topics' partition
//! counts. Versions 2 and up are flexible; 1 to 3 differ from 0 only in
//! what the broker may answer.

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// The replicas asked for one new partition (a manual assignment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionAssignment {
    /// Broker ids, the preferred leader first.
    pub broker_ids: Vec<i32>,
}

/// One topic whose partition count is to rise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePartitionsTopic {
    /// Name.
    pub name: String,
    /// The partition count wanted (the total, not the number to add).
    pub count: i32,
    /// Per new partition, its replicas; null for the broker's choice.
    pub assignments: Option<Vec<PartitionAssignment>>,
}

/// CreatePartitions request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePartitionsRequest {
    /// Topics.
    pub topics: Vec<CreatePartitionsTopic>,
    /// How long the client waits.
    pub timeout_ms: i32,
    /// Check only.
    pub validate_only: bool,
}

impl Message for CreatePartitionsRequest {
    const API: ApiKey = ApiKey::CreatePartitions;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.i32(&mut t.count)?;
            s.nullable_array(&mut t.assignments, |s, a| {
                i32s(s, &mut a.broker_ids)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.i32(&mut self.timeout_ms)?;
        s.bool(&mut self.validate_only)?;
        s.tags()
    }
}

/// One topic's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePartitionsResult {
    /// Name.
    pub name: String,
    /// Error code.
    pub error_code: i16,
    /// Why it failed.
    pub error_message: Option<String>,
}

/// CreatePartitions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePartitionsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// One per topic, in request order.
    pub results: Vec<CreatePartitionsResult>,
}

impl Message for CreatePartitionsResponse {
    const API: ApiKey = ApiKey::CreatePartitions;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.results, |s, r| {
            s.string(&mut r.name)?;
            s.i16(&mut r.error_code)?;
            s.nullable_string(&mut r.error_message)?;
            s.tags()
        })?;
        s.tags()
    }
}
