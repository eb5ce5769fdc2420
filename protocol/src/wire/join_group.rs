//! JoinGroup (key 13): join a consumer group, or rejoin it for a rebalance.
//! Semantics are those of Kafka's classic group protocol (JoinGroup v5+):
//! see `docs/protocol.md`, "Consumer groups".

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// One protocol (assignor) a member supports, with its metadata. The bytes
/// are opaque to the broker (for `protocol_type` "consumer", a Kafka
/// `ConsumerProtocolSubscription`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinProtocol {
    /// Protocol name (for example "range").
    pub name: String,
    /// Opaque metadata.
    pub metadata: Vec<u8>,
}

/// Joins a group. A member without an id sends an empty `member_id`; unless
/// it is a static member (`group_instance_id` set) the broker answers
/// `MemberIdRequired` with a generated id in `member_id`, and the member
/// joins again with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupRequest {
    /// Group name (same rules as topic names).
    pub group: String,
    /// The member is removed if the broker hears nothing from it for this long.
    pub session_timeout_ms: u32,
    /// How long the broker waits for each member to rejoin during a rebalance.
    pub rebalance_timeout_ms: u32,
    /// The id the broker gave, or empty on the first join.
    pub member_id: String,
    /// Static membership: a stable id across restarts of the member.
    pub group_instance_id: Option<String>,
    /// Free-form client name, shown by DescribeGroups.
    pub client_id: String,
    /// The kind of group (for example "consumer"); all members must agree.
    pub protocol_type: String,
    /// Supported protocols, most preferred first (at least one).
    pub protocols: Vec<JoinProtocol>,
}

/// One member as the leader sees it in a [`JoinGroupResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Its static id, if any.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// The outcome of a join: the new generation, or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupResponse {
    /// Outcome. With `MemberIdRequired`, `member_id` holds the id to use.
    pub error_code: ErrorCode,
    /// The generation the member is now in (-1 on error).
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The protocol every member supports, chosen by the broker.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's own id.
    pub member_id: String,
    /// Every member with its metadata, for the leader only (empty for others).
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    /// A response carrying only an error (and possibly a member id).
    pub fn error(error_code: ErrorCode, member_id: String) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            JoinGroupRequest {
                group: String::new(),
                session_timeout_ms: 0,
                rebalance_timeout_ms: 0,
                member_id: String::new(),
                group_instance_id: None,
                client_id: String::new(),
                protocol_type: String::new(),
                protocols: vec![],
            },
            JoinGroupRequest {
                group: "billing".into(),
                session_timeout_ms: 45_000,
                rebalance_timeout_ms: u32::MAX,
                member_id: "m-1".into(),
                group_instance_id: Some("host-3 📦".into()),
                client_id: "sluice".into(),
                protocol_type: "consumer".into(),
                protocols: vec![
                    JoinProtocol {
                        name: "cooperative-sticky".into(),
                        metadata: vec![0, 1, 0xFF],
                    },
                    JoinProtocol {
                        name: "range".into(),
                        metadata: vec![],
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            JoinGroupResponse::error(ErrorCode::MemberIdRequired, "m-1".into()),
            JoinGroupResponse {
                error_code: ErrorCode::None,
                generation_id: i32::MAX,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: "m-1".into(),
                member_id: "m-1".into(),
                members: vec![
                    JoinGroupMember {
                        member_id: "m-1".into(),
                        group_instance_id: None,
                        metadata: vec![9; 300],
                    },
                    JoinGroupMember {
                        member_id: "m-2".into(),
                        group_instance_id: Some("i".into()),
                        metadata: vec![],
                    },
                ],
            },
        ]);
    }
}
