//! Kafka's consumer group protocol (KIP-848): ConsumerGroupHeartbeat (key
//! 68, versions 0–1) and ConsumerGroupDescribe (key 69, versions 0–1). The
//! broker computes the assignment; a member learns it, and gives up
//! partitions, through its heartbeats. Every version is flexible.

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// Partitions of one topic, by topic id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Topic id.
    pub topic_id: [u8; 16],
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

fn topic_partitions<S: Io>(s: &mut S, t: &mut TopicPartitions) -> Result<(), KafkaError> {
    s.uuid(&mut t.topic_id)?;
    i32s(s, &mut t.partitions)?;
    s.tags()
}

/// ConsumerGroupHeartbeat request. Fields a member does not change since
/// its last heartbeat are sent null (-1 for the rebalance timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupHeartbeatRequest {
    /// Group.
    pub group_id: String,
    /// Member id: empty on a first join at v0 (the broker picks one); from
    /// v1 the member's own, the same for its whole life.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave,
    /// else the member's current epoch.
    pub member_epoch: i32,
    /// Static member id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// Topics subscribed to by name, null when unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Topics subscribed to by regular expression (v1+), null when
    /// unchanged.
    pub subscribed_topic_regex: Option<String>,
    /// The server-side assignor asked for, null for the broker's default.
    pub server_assignor: Option<String>,
    /// The partitions the member owns, null when unchanged.
    pub topic_partitions: Option<Vec<TopicPartitions>>,
}

impl Message for ConsumerGroupHeartbeatRequest {
    const API: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        s.string(&mut self.member_id)?;
        s.i32(&mut self.member_epoch)?;
        s.nullable_string(&mut self.instance_id)?;
        s.nullable_string(&mut self.rack_id)?;
        s.i32(&mut self.rebalance_timeout_ms)?;
        s.nullable_array(&mut self.subscribed_topic_names, |s, t| s.string(t))?;
        if v >= 1 {
            s.nullable_string(&mut self.subscribed_topic_regex)?;
        }
        s.nullable_string(&mut self.server_assignor)?;
        s.nullable_array(&mut self.topic_partitions, topic_partitions)?;
        s.tags()
    }
}

/// ConsumerGroupHeartbeat response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupHeartbeatResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// The member's id (the broker's pick on a first join at v0).
    pub member_id: Option<String>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's whole assignment, null when it did not change.
    pub assignment: Option<Vec<TopicPartitions>>,
}

impl Message for ConsumerGroupHeartbeatResponse {
    const API: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.i16(&mut self.error_code)?;
        s.nullable_string(&mut self.error_message)?;
        s.nullable_string(&mut self.member_id)?;
        s.i32(&mut self.member_epoch)?;
        s.i32(&mut self.heartbeat_interval_ms)?;
        // A nullable struct: an i8 marker, -1 for null, 1 before the struct.
        let mut marker: i8 = if self.assignment.is_some() { 1 } else { -1 };
        s.i8(&mut marker)?;
        match marker {
            -1 => self.assignment = None,
            1 => {
                let mut partitions = self.assignment.take().unwrap_or_default();
                s.array(&mut partitions, topic_partitions)?;
                s.tags()?;
                self.assignment = Some(partitions);
            }
            _ => {
                return Err(KafkaError::Invalid {
                    offset: 0,
                    what: "nullable struct marker other than -1 or 1",
                });
            }
        }
        s.tags()
    }
}

/// ConsumerGroupDescribe request (key 69, versions 0–1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupDescribeRequest {
    /// Groups.
    pub group_ids: Vec<String>,
    /// Whether to answer the authorized operations.
    pub include_authorized_operations: bool,
}

impl Message for ConsumerGroupDescribeRequest {
    const API: ApiKey = ApiKey::ConsumerGroupDescribe;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.group_ids, |s, g| s.string(g))?;
        s.bool(&mut self.include_authorized_operations)?;
        s.tags()
    }
}

/// Partitions of one topic, by id and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedTopicPartitions {
    /// Topic id.
    pub topic_id: [u8; 16],
    /// Topic name.
    pub topic_name: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

fn described_assignment<S: Io>(
    s: &mut S,
    a: &mut Vec<DescribedTopicPartitions>,
) -> Result<(), KafkaError> {
    s.array(a, |s, t| {
        s.uuid(&mut t.topic_id)?;
        s.string(&mut t.topic_name)?;
        i32s(s, &mut t.partitions)?;
        s.tags()
    })?;
    s.tags()
}

/// One member of a described group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// What it holds.
    pub assignment: Vec<DescribedTopicPartitions>,
    /// What the group's target gives it.
    pub target_assignment: Vec<DescribedTopicPartitions>,
    /// 0 classic, 1 consumer, -1 unknown (v1+).
    pub member_type: i8,
}

/// One described group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedConsumerGroup {
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// Group.
    pub group_id: String,
    /// "Empty", "Assigning", "Reconciling", "Stable" or "Dead".
    pub group_state: String,
    /// Group epoch.
    pub group_epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// Assignor.
    pub assignor_name: String,
    /// Members.
    pub members: Vec<ConsumerGroupMember>,
    /// Authorized operations, or `i32::MIN` when not asked for.
    pub authorized_operations: i32,
}

/// ConsumerGroupDescribe response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupDescribeResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Groups, in the order asked.
    pub groups: Vec<DescribedConsumerGroup>,
}

impl Message for ConsumerGroupDescribeResponse {
    const API: ApiKey = ApiKey::ConsumerGroupDescribe;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.groups, |s, g| {
            s.i16(&mut g.error_code)?;
            s.nullable_string(&mut g.error_message)?;
            s.string(&mut g.group_id)?;
            s.string(&mut g.group_state)?;
            s.i32(&mut g.group_epoch)?;
            s.i32(&mut g.assignment_epoch)?;
            s.string(&mut g.assignor_name)?;
            s.array(&mut g.members, |s, m| {
                s.string(&mut m.member_id)?;
                s.nullable_string(&mut m.instance_id)?;
                s.nullable_string(&mut m.rack_id)?;
                s.i32(&mut m.member_epoch)?;
                s.string(&mut m.client_id)?;
                s.string(&mut m.client_host)?;
                s.array(&mut m.subscribed_topic_names, |s, t| s.string(t))?;
                s.nullable_string(&mut m.subscribed_topic_regex)?;
                described_assignment(s, &mut m.assignment)?;
                described_assignment(s, &mut m.target_assignment)?;
                if v >= 1 {
                    s.i8(&mut m.member_type)?;
                } else {
                    m.member_type = -1;
                }
                s.tags()
            })?;
            s.i32(&mut g.authorized_operations)?;
            s.tags()
        })?;
        s.tags()
    }
}
