//! ElectLeaders (key 43, versions 0–2): have partitions' leaderships moved
//! to their preferred replicas (or, from v1, an unclean election asked
//! for). Flexible from v2.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// Preferred election: the first replica of the list becomes the leader.
pub const ELECTION_PREFERRED: i8 = 0;
/// Unclean election: a replica out of sync may become the leader.
pub const ELECTION_UNCLEAN: i8 = 1;

/// One topic's partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectLeadersTopic {
    /// Name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// ElectLeaders request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectLeadersRequest {
    /// [`ELECTION_PREFERRED`] or [`ELECTION_UNCLEAN`] (v1+; preferred
    /// before).
    pub election_type: i8,
    /// The partitions; `None`: every partition.
    pub topic_partitions: Option<Vec<ElectLeadersTopic>>,
    /// How long to wait for the elections, in milliseconds.
    pub timeout_ms: i32,
}

impl Message for ElectLeadersRequest {
    const API: ApiKey = ApiKey::ElectLeaders;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i8(&mut self.election_type)?;
        }
        s.nullable_array(&mut self.topic_partitions, |s, t| {
            s.string(&mut t.topic)?;
            s.array(&mut t.partitions, |s, p| s.i32(p))?;
            s.tags()
        })?;
        s.i32(&mut self.timeout_ms)?;
        s.tags()
    }
}

/// One partition's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectLeadersPartitionResult {
    /// Partition index.
    pub partition_id: i32,
    /// Error code.
    pub error_code: i16,
    /// What went wrong, if anything.
    pub error_message: Option<String>,
}

/// One topic's outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectLeadersTopicResult {
    /// Name.
    pub topic: String,
    /// Per partition.
    pub partition_result: Vec<ElectLeadersPartitionResult>,
}

/// ElectLeaders response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectLeadersResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The request's error (v1+).
    pub error_code: i16,
    /// Per topic.
    pub replica_election_results: Vec<ElectLeadersTopicResult>,
}

impl Message for ElectLeadersResponse {
    const API: ApiKey = ApiKey::ElectLeaders;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        if v >= 1 {
            s.i16(&mut self.error_code)?;
        }
        s.array(&mut self.replica_election_results, |s, t| {
            s.string(&mut t.topic)?;
            s.array(&mut t.partition_result, |s, p| {
                s.i32(&mut p.partition_id)?;
                s.i16(&mut p.error_code)?;
                s.nullable_string(&mut p.error_message)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
