//! Group offsets: FindCoordinator (key 10, versions 0–4), OffsetCommit
//! (key 8, versions 0–9), OffsetFetch (key 9, versions 1–9). Version 9 of
//! both is the first a member of Kafka's consumer group protocol (KIP-848)
//! uses: OffsetCommit's generation is then the member epoch, and
//! OffsetFetch may name the member and its epoch.

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// FindCoordinator request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// The group (or transactional id), v0–3.
    pub key: String,
    /// 0 group, 1 transaction (v1+).
    pub key_type: i8,
    /// The keys (v4+).
    pub coordinator_keys: Vec<String>,
}

impl Message for FindCoordinatorRequest {
    const API: ApiKey = ApiKey::FindCoordinator;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v <= 3 {
            s.string(&mut self.key)?;
        }
        if v >= 1 {
            s.i8(&mut self.key_type)?;
        }
        if v >= 4 {
            s.array(&mut self.coordinator_keys, |s, k| s.string(k))?;
        }
        s.tags()
    }
}

/// One coordinator found (v4+; v0–3 carry one at top level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coordinator {
    /// The key.
    pub key: String,
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
}

/// FindCoordinator response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindCoordinatorResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// v0–3: the one coordinator (its `key` is not sent); v4+: one per key.
    pub coordinators: Vec<Coordinator>,
}

impl Message for FindCoordinatorResponse {
    const API: ApiKey = ApiKey::FindCoordinator;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        if v <= 3 {
            if self.coordinators.is_empty() {
                self.coordinators.push(Coordinator::default());
            }
            if let Some(c) = self.coordinators.first_mut() {
                s.i16(&mut c.error_code)?;
                if v >= 1 {
                    s.nullable_string(&mut c.error_message)?;
                }
                s.i32(&mut c.node_id)?;
                s.string(&mut c.host)?;
                s.i32(&mut c.port)?;
            }
        } else {
            s.array(&mut self.coordinators, |s, c| {
                s.string(&mut c.key)?;
                s.i32(&mut c.node_id)?;
                s.string(&mut c.host)?;
                s.i32(&mut c.port)?;
                s.i16(&mut c.error_code)?;
                s.nullable_string(&mut c.error_message)?;
                s.tags()
            })?;
        }
        s.tags()
    }
}

/// One partition's offset to commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    /// Partition index.
    pub partition_index: i32,
    /// The offset.
    pub committed_offset: i64,
    /// Commit time in milliseconds (v1 only; ignored).
    pub commit_timestamp_ms: i64,
    /// Leader epoch (v6+).
    pub committed_leader_epoch: i32,
    /// Metadata.
    pub committed_metadata: Option<String>,
}

/// One topic's commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetCommitPartition>,
}

/// OffsetCommit request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    /// Group.
    pub group_id: String,
    /// Generation (-1: a simple commit).
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static member id (v7+).
    pub group_instance_id: Option<String>,
    /// Retention (v2–4; ignored).
    pub retention_time_ms: i64,
    /// Topics.
    pub topics: Vec<OffsetCommitTopic>,
}

impl Message for OffsetCommitRequest {
    const API: ApiKey = ApiKey::OffsetCommit;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        if v >= 1 {
            s.i32(&mut self.generation_id)?;
            s.string(&mut self.member_id)?;
        } else {
            // v0 commits outside any generation: a simple commit.
            self.generation_id = -1;
            self.member_id.clear();
        }
        if v >= 7 {
            s.nullable_string(&mut self.group_instance_id)?;
        }
        if (2..=4).contains(&v) {
            s.i64(&mut self.retention_time_ms)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i64(&mut p.committed_offset)?;
                if v == 1 {
                    s.i64(&mut p.commit_timestamp_ms)?;
                }
                if v >= 6 {
                    s.i32(&mut p.committed_leader_epoch)?;
                }
                s.nullable_string(&mut p.committed_metadata)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// A (partition, error) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionError {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
}

/// One topic's commit outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<PartitionError>,
}

/// OffsetCommit response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<OffsetCommitTopicResponse>,
}

impl Message for OffsetCommitResponse {
    const API: ApiKey = ApiKey::OffsetCommit;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i16(&mut p.error_code)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// Topics whose offsets are wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partition_indexes: Vec<i32>,
}

/// One group's offsets wanted (v8+ lists several; v1–7 one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    /// Group.
    pub group_id: String,
    /// The asking member of a consumer-protocol group (v9+), or null.
    pub member_id: Option<String>,
    /// Its epoch (v9+), -1 when none.
    pub member_epoch: i32,
    /// Topics, or null for all.
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

/// OffsetFetch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    /// The groups (one before v8).
    pub groups: Vec<OffsetFetchGroup>,
    /// Require stable offsets (v7+).
    pub require_stable: bool,
}

fn fetch_topics<S: Io>(s: &mut S, t: &mut OffsetFetchTopic) -> Result<(), KafkaError> {
    s.string(&mut t.name)?;
    i32s(s, &mut t.partition_indexes)?;
    s.tags()
}

impl Message for OffsetFetchRequest {
    const API: ApiKey = ApiKey::OffsetFetch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 8 {
            s.array(&mut self.groups, |s, g| {
                s.string(&mut g.group_id)?;
                if v >= 9 {
                    s.nullable_string(&mut g.member_id)?;
                    s.i32(&mut g.member_epoch)?;
                } else {
                    g.member_epoch = -1;
                }
                s.nullable_array(&mut g.topics, fetch_topics)?;
                s.tags()
            })?;
        } else {
            if self.groups.is_empty() {
                self.groups.push(OffsetFetchGroup::default());
            }
            if let Some(g) = self.groups.first_mut() {
                g.member_epoch = -1;
                s.string(&mut g.group_id)?;
                if v >= 2 {
                    s.nullable_array(&mut g.topics, fetch_topics)?;
                } else {
                    let mut topics = g.topics.take().unwrap_or_default();
                    s.array(&mut topics, fetch_topics)?;
                    g.topics = Some(topics);
                }
            }
        }
        if v >= 7 {
            s.bool(&mut self.require_stable)?;
        }
        s.tags()
    }
}

/// One partition's committed offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchPartition {
    /// Partition index.
    pub partition_index: i32,
    /// The offset (-1: none).
    pub committed_offset: i64,
    /// Leader epoch (v5+).
    pub committed_leader_epoch: i32,
    /// Metadata.
    pub metadata: Option<String>,
    /// Error code.
    pub error_code: i16,
}

/// One topic's committed offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetFetchPartition>,
}

/// One group's committed offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchGroupResponse {
    /// Group (v8+).
    pub group_id: String,
    /// Topics.
    pub topics: Vec<OffsetFetchTopicResponse>,
    /// Group-level error (v2+).
    pub error_code: i16,
}

/// OffsetFetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// The groups (one before v8).
    pub groups: Vec<OffsetFetchGroupResponse>,
}

fn fetched_topics<S: Io>(
    s: &mut S,
    t: &mut OffsetFetchTopicResponse,
    v: i16,
) -> Result<(), KafkaError> {
    s.string(&mut t.name)?;
    s.array(&mut t.partitions, |s, p| {
        s.i32(&mut p.partition_index)?;
        s.i64(&mut p.committed_offset)?;
        if v >= 5 {
            s.i32(&mut p.committed_leader_epoch)?;
        }
        s.nullable_string(&mut p.metadata)?;
        s.i16(&mut p.error_code)?;
        s.tags()
    })?;
    s.tags()
}

impl Message for OffsetFetchResponse {
    const API: ApiKey = ApiKey::OffsetFetch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        if v >= 8 {
            s.array(&mut self.groups, |s, g| {
                s.string(&mut g.group_id)?;
                s.array(&mut g.topics, |s, t| fetched_topics(s, t, v))?;
                s.i16(&mut g.error_code)?;
                s.tags()
            })?;
        } else {
            if self.groups.is_empty() {
                self.groups.push(OffsetFetchGroupResponse::default());
            }
            if let Some(g) = self.groups.first_mut() {
                s.array(&mut g.topics, |s, t| fetched_topics(s, t, v))?;
                if v >= 2 {
                    s.i16(&mut g.error_code)?;
                }
            }
        }
        s.tags()
    }
}
