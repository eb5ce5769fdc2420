//! The typed requests and answers of the group coordinator, shared by every
//! front-end (native protocol, Kafka listener). No wire quirks: durations
//! are [`Duration`]s, states are [`GroupState`], bytes are opaque.

use std::time::Duration;

use sluice_protocol::wire::ErrorCode;

/// The state of a group, as Kafka's classic coordinator names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// No members (the group may still have committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment (SyncGroup).
    CompletingRebalance,
    /// Every member has its assignment and heartbeats.
    Stable,
    /// Being deleted, or unknown.
    Dead,
}

impl GroupState {
    /// Every state, in declaration order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The name on the wire and in metrics ("Stable", ...), as Kafka's.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Kafka's name of this state for a group of the consumer group
    /// protocol (KIP-848) or not: such a group handing partitions over
    /// between members is `Reconciling` (held as `CompletingRebalance`);
    /// otherwise [`GroupState::as_str`].
    pub fn kafka_name(self, consumer_protocol: bool) -> &'static str {
        match (self, consumer_protocol) {
            (GroupState::CompletingRebalance, true) => "Reconciling",
            _ => self.as_str(),
        }
    }

    /// Whether a state filter's `name` (any case) is one of Kafka's group
    /// states: a [`GroupState`] name, `Reconciling`, or `Assigning` (a
    /// consumer-protocol group whose target assignment is not computed yet,
    /// which a group here never is: it computes it at once).
    pub fn is_state_name(name: &str) -> bool {
        GroupState::parse(name).is_some()
            || ["Reconciling", "Assigning"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
    }

    /// Whether a group in this state, of the consumer group protocol or
    /// not, is one a state filter naming `names` (any case) asks for.
    pub fn matches_any(self, consumer_protocol: bool, names: &[impl AsRef<str>]) -> bool {
        let mine = self.kafka_name(consumer_protocol);
        names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(mine))
    }

    /// The state a name denotes (exact, case-insensitive), if any.
    pub fn parse(name: &str) -> Option<GroupState> {
        GroupState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// A member named in a request: by member id, and its static id if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// Member id (may be empty in a leave by instance id).
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
}

/// A JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroup {
    /// Group name.
    pub group: String,
    /// Member id, empty on a first join.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Client id (shown by describe).
    pub client_id: String,
    /// The member's address (shown by describe).
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// `(name, metadata)` of each supported protocol, preferred first.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// As Kafka's JoinGroup v4+: a first join of a dynamic member is
    /// answered `MemberIdRequired` with a generated id. `false` (Kafka v0-3)
    /// joins it at once under a generated id.
    pub require_known_member_id: bool,
}

/// One member's metadata, as given to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// The answer to a [`JoinGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Outcome.
    pub error: ErrorCode,
    /// Generation (-1 on error).
    pub generation_id: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// The member's id (also on `MemberIdRequired`).
    pub member_id: String,
    /// All members with metadata, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// An error answer.
    pub fn error(error: ErrorCode, member_id: impl Into<String>) -> JoinResult {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Group name.
    pub group: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// If set, must equal the group's protocol type.
    pub protocol_type: Option<String>,
    /// If set, must equal the group's protocol.
    pub protocol_name: Option<String>,
    /// `(member id, assignment)` pairs from the leader.
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// The answer to a [`SyncGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Outcome.
    pub error: ErrorCode,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Vec<u8>,
}

impl SyncResult {
    /// An error answer.
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        }
    }
}

/// A Heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Group name.
    pub group: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
}

/// The answer to a LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    /// Group-level outcome.
    pub error: ErrorCode,
    /// Each member's outcome, in request order.
    pub members: Vec<(MemberRef, ErrorCode)>,
}

/// Who commits offsets: a member of a generation, or (generation -1, empty
/// member id) a tool acting on a group with no members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitAs {
    /// Generation, or -1.
    pub generation_id: i32,
    /// Member id, or empty.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
}

impl CommitAs {
    /// A commit from outside the group (generation -1, no member).
    pub fn simple() -> CommitAs {
        CommitAs {
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Metadata for the chosen protocol.
    pub metadata: Vec<u8>,
    /// Assignment (empty unless Stable).
    pub assignment: Vec<u8>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// `None` or `InvalidGroupName`.
    pub error: ErrorCode,
    /// Group name.
    pub group: String,
    /// State (`Dead` for an unknown group).
    pub state: GroupState,
    /// Whether it is a group of Kafka's consumer group protocol (KIP-848).
    pub consumer_protocol: bool,
    /// Generation.
    pub generation_id: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// A listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group name.
    pub group: String,
    /// Protocol type.
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
    /// Whether it is a group of Kafka's consumer group protocol (KIP-848);
    /// otherwise a classic one (or one with only committed offsets).
    pub consumer_protocol: bool,
}

#[cfg(test)]
mod tests {
    use super::GroupState;

    #[test]
    fn consumer_protocol_groups_handing_partitions_over_are_reconciling() {
        let s = GroupState::CompletingRebalance;
        assert_eq!(s.kafka_name(true), "Reconciling");
        assert_eq!(s.kafka_name(false), "CompletingRebalance");
        assert_eq!(GroupState::Stable.kafka_name(true), "Stable");
        assert!(s.matches_any(true, &["reconciling"]));
        assert!(!s.matches_any(true, &["CompletingRebalance"]));
        assert!(s.matches_any(false, &["completingrebalance", "x"]));
        assert!(!s.matches_any(false, &["Reconciling"]));
        assert!(GroupState::is_state_name("RECONCILING"));
        assert!(GroupState::is_state_name("empty"));
        assert!(GroupState::is_state_name("assigning"));
        assert!(!GroupState::is_state_name("Assigned"));
    }
}
