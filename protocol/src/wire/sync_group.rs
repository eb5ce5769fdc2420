//! SyncGroup (key 14): after a join, the leader sends each member's
//! assignment and every member receives its own.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// One member's assignment, sent by the leader. The bytes are opaque to the
/// broker (for "consumer" groups, a Kafka `ConsumerProtocolAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupAssignment {
    /// Member id.
    pub member_id: String,
    /// Opaque assignment.
    pub assignment: Vec<u8>,
}

/// Asks for the member's assignment in a generation; the leader also gives
/// everyone's (followers send an empty list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupRequest {
    /// Group name.
    pub group: String,
    /// The generation from the join.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id, if any.
    pub group_instance_id: Option<String>,
    /// If set, must match the group's protocol type.
    pub protocol_type: Option<String>,
    /// If set, must match the group's chosen protocol.
    pub protocol_name: Option<String>,
    /// Every member's assignment (leader only).
    pub assignments: Vec<SyncGroupAssignment>,
}

/// The member's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupResponse {
    /// Outcome.
    pub error_code: ErrorCode,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The group's protocol.
    pub protocol_name: Option<String>,
    /// Opaque assignment (empty if the leader gave none for this member).
    pub assignment: Vec<u8>,
}

impl SyncGroupResponse {
    /// A response carrying only an error.
    pub fn error(error_code: ErrorCode) -> SyncGroupResponse {
        SyncGroupResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
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
            SyncGroupRequest {
                group: "g".into(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![],
            },
            SyncGroupRequest {
                group: "billing".into(),
                generation_id: 7,
                member_id: "m-1".into(),
                group_instance_id: Some("host-1".into()),
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: vec![
                    SyncGroupAssignment {
                        member_id: "m-1".into(),
                        assignment: vec![0, 1, 2],
                    },
                    SyncGroupAssignment {
                        member_id: "m-2".into(),
                        assignment: vec![],
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            SyncGroupResponse::error(ErrorCode::RebalanceInProgress),
            SyncGroupResponse {
                error_code: ErrorCode::None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("roundrobin".into()),
                assignment: vec![0xAB; 200],
            },
        ]);
    }
}
