//! Consumer groups (Kafka's classic protocol): JoinGroup (key 11, versions
//! 0–7), Heartbeat (12, 0–4), LeaveGroup (13, 0–4), SyncGroup (14, 0–5),
//! DescribeGroups (15, 0–5), ListGroups (16, 0–5), DeleteGroups (42, 0–2).
//! Member metadata and assignments are opaque bytes.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// A protocol a joining member supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinProtocol {
    /// Name ("range", "cooperative-sticky", ...).
    pub name: String,
    /// Opaque metadata.
    pub metadata: Vec<u8>,
}

/// JoinGroup request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupRequest {
    /// Group.
    pub group_id: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Member id, empty on a first join.
    pub member_id: String,
    /// Static member id (v5+).
    pub group_instance_id: Option<String>,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Supported protocols, preferred first.
    pub protocols: Vec<JoinProtocol>,
}

impl Message for JoinGroupRequest {
    const API: ApiKey = ApiKey::JoinGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        s.i32(&mut self.session_timeout_ms)?;
        if v >= 1 {
            s.i32(&mut self.rebalance_timeout_ms)?;
        }
        s.string(&mut self.member_id)?;
        if v >= 5 {
            s.nullable_string(&mut self.group_instance_id)?;
        }
        s.string(&mut self.protocol_type)?;
        s.array(&mut self.protocols, |s, p| {
            s.string(&mut p.name)?;
            s.bytes(&mut p.metadata)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// A member as the leader learns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static id (v5+).
    pub group_instance_id: Option<String>,
    /// Metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// JoinGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Generation.
    pub generation_id: i32,
    /// Protocol type (v7+).
    pub protocol_type: Option<String>,
    /// Chosen protocol (nullable from v7).
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Members, for the leader.
    pub members: Vec<JoinGroupMember>,
}

impl Message for JoinGroupResponse {
    const API: ApiKey = ApiKey::JoinGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 2 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.i16(&mut self.error_code)?;
        s.i32(&mut self.generation_id)?;
        if v >= 7 {
            s.nullable_string(&mut self.protocol_type)?;
            s.nullable_string(&mut self.protocol_name)?;
        } else {
            let mut name = self.protocol_name.take().unwrap_or_default();
            s.string(&mut name)?;
            self.protocol_name = Some(name);
        }
        s.string(&mut self.leader)?;
        s.string(&mut self.member_id)?;
        s.array(&mut self.members, |s, m| {
            s.string(&mut m.member_id)?;
            if v >= 5 {
                s.nullable_string(&mut m.group_instance_id)?;
            }
            s.bytes(&mut m.metadata)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One member's assignment from the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncAssignment {
    /// Member id.
    pub member_id: String,
    /// Opaque assignment.
    pub assignment: Vec<u8>,
}

/// SyncGroup request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroupRequest {
    /// Group.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id (v3+).
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol (v5+).
    pub protocol_name: Option<String>,
    /// Assignments (from the leader).
    pub assignments: Vec<SyncAssignment>,
}

impl Message for SyncGroupRequest {
    const API: ApiKey = ApiKey::SyncGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        s.i32(&mut self.generation_id)?;
        s.string(&mut self.member_id)?;
        if v >= 3 {
            s.nullable_string(&mut self.group_instance_id)?;
        }
        if v >= 5 {
            s.nullable_string(&mut self.protocol_type)?;
            s.nullable_string(&mut self.protocol_name)?;
        }
        s.array(&mut self.assignments, |s, a| {
            s.string(&mut a.member_id)?;
            s.bytes(&mut a.assignment)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// SyncGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol (v5+).
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Vec<u8>,
}

impl Message for SyncGroupResponse {
    const API: ApiKey = ApiKey::SyncGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.i16(&mut self.error_code)?;
        if v >= 5 {
            s.nullable_string(&mut self.protocol_type)?;
            s.nullable_string(&mut self.protocol_name)?;
        }
        s.bytes(&mut self.assignment)?;
        s.tags()
    }
}

/// Heartbeat request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// Group.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id (v3+).
    pub group_instance_id: Option<String>,
}

impl Message for HeartbeatRequest {
    const API: ApiKey = ApiKey::Heartbeat;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        s.i32(&mut self.generation_id)?;
        s.string(&mut self.member_id)?;
        if v >= 3 {
            s.nullable_string(&mut self.group_instance_id)?;
        }
        s.tags()
    }
}

/// A response that is a throttle time and an error code: Heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
}

impl Message for HeartbeatResponse {
    const API: ApiKey = ApiKey::Heartbeat;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.i16(&mut self.error_code)?;
        s.tags()
    }
}

/// A member leaving (v3+; v0–2 one member by id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeavingMember {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
}

/// LeaveGroup request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    /// Group.
    pub group_id: String,
    /// The members (one before v3).
    pub members: Vec<LeavingMember>,
}

impl Message for LeaveGroupRequest {
    const API: ApiKey = ApiKey::LeaveGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.string(&mut self.group_id)?;
        if v >= 3 {
            s.array(&mut self.members, |s, m| {
                s.string(&mut m.member_id)?;
                s.nullable_string(&mut m.group_instance_id)?;
                s.tags()
            })?;
        } else {
            if self.members.is_empty() {
                self.members.push(LeavingMember::default());
            }
            if let Some(m) = self.members.first_mut() {
                s.string(&mut m.member_id)?;
            }
        }
        s.tags()
    }
}

/// One member's leave outcome (v3+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftMember {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Error code.
    pub error_code: i16,
}

/// LeaveGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Members (v3+).
    pub members: Vec<LeftMember>,
}

impl Message for LeaveGroupResponse {
    const API: ApiKey = ApiKey::LeaveGroup;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.i16(&mut self.error_code)?;
        if v >= 3 {
            s.array(&mut self.members, |s, m| {
                s.string(&mut m.member_id)?;
                s.nullable_string(&mut m.group_instance_id)?;
                s.i16(&mut m.error_code)?;
                s.tags()
            })?;
        }
        s.tags()
    }
}

/// DescribeGroups request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    /// Groups.
    pub groups: Vec<String>,
    /// v3+.
    pub include_authorized_operations: bool,
}

impl Message for DescribeGroupsRequest {
    const API: ApiKey = ApiKey::DescribeGroups;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.groups, |s, g| s.string(g))?;
        if v >= 3 {
            s.bool(&mut self.include_authorized_operations)?;
        }
        s.tags()
    }
}

/// A member of a described group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static id (v4+).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata.
    pub member_metadata: Vec<u8>,
    /// Assignment.
    pub member_assignment: Vec<u8>,
}

/// A described group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedGroup {
    /// Error code.
    pub error_code: i16,
    /// Group.
    pub group_id: String,
    /// State name.
    pub group_state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol_data: String,
    /// Members.
    pub members: Vec<DescribedMember>,
    /// Authorized operations (v3+).
    pub authorized_operations: i32,
}

/// DescribeGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Groups.
    pub groups: Vec<DescribedGroup>,
}

impl Message for DescribeGroupsResponse {
    const API: ApiKey = ApiKey::DescribeGroups;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.array(&mut self.groups, |s, g| {
            s.i16(&mut g.error_code)?;
            s.string(&mut g.group_id)?;
            s.string(&mut g.group_state)?;
            s.string(&mut g.protocol_type)?;
            s.string(&mut g.protocol_data)?;
            s.array(&mut g.members, |s, m| {
                s.string(&mut m.member_id)?;
                if v >= 4 {
                    s.nullable_string(&mut m.group_instance_id)?;
                }
                s.string(&mut m.client_id)?;
                s.string(&mut m.client_host)?;
                s.bytes(&mut m.member_metadata)?;
                s.bytes(&mut m.member_assignment)?;
                s.tags()
            })?;
            if v >= 3 {
                s.i32(&mut g.authorized_operations)?;
            }
            s.tags()
        })?;
        s.tags()
    }
}

/// ListGroups request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsRequest {
    /// States to list (v4+; empty: all).
    pub states_filter: Vec<String>,
    /// Group types to list, `classic` or `consumer` (v5+; empty: all).
    pub types_filter: Vec<String>,
}

impl Message for ListGroupsRequest {
    const API: ApiKey = ApiKey::ListGroups;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 4 {
            s.array(&mut self.states_filter, |s, x| s.string(x))?;
        }
        if v >= 5 {
            s.array(&mut self.types_filter, |s, x| s.string(x))?;
        }
        s.tags()
    }
}

/// A listed group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group.
    pub group_id: String,
    /// Protocol type.
    pub protocol_type: String,
    /// State (v4+).
    pub group_state: String,
    /// Type, `classic` or `consumer` (v5+).
    pub group_type: String,
}

/// ListGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Groups.
    pub groups: Vec<ListedGroup>,
}

impl Message for ListGroupsResponse {
    const API: ApiKey = ApiKey::ListGroups;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.i16(&mut self.error_code)?;
        s.array(&mut self.groups, |s, g| {
            s.string(&mut g.group_id)?;
            s.string(&mut g.protocol_type)?;
            if v >= 4 {
                s.string(&mut g.group_state)?;
            }
            if v >= 5 {
                s.string(&mut g.group_type)?;
            }
            s.tags()
        })?;
        s.tags()
    }
}

/// DeleteGroups request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteGroupsRequest {
    /// Groups.
    pub groups_names: Vec<String>,
}

impl Message for DeleteGroupsRequest {
    const API: ApiKey = ApiKey::DeleteGroups;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.groups_names, |s, g| s.string(g))?;
        s.tags()
    }
}

/// One group's deletion outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedGroup {
    /// Group.
    pub group_id: String,
    /// Error code.
    pub error_code: i16,
}

/// DeleteGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteGroupsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Results.
    pub results: Vec<DeletedGroup>,
}

impl Message for DeleteGroupsResponse {
    const API: ApiKey = ApiKey::DeleteGroups;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.results, |s, r| {
            s.string(&mut r.group_id)?;
            s.i16(&mut r.error_code)?;
            s.tags()
        })?;
        s.tags()
    }
}
