//! LeaveGroup (key 16): members leave a group at once (a clean shutdown),
//! which starts a rebalance for the others without waiting for a session
//! timeout.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// One member leaving, by member id or (static members) by instance id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavingMember {
    /// Member id; may be empty when `group_instance_id` is set.
    pub member_id: String,
    /// Static id, if any.
    pub group_instance_id: Option<String>,
}

/// Members leave a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroupRequest {
    /// Group name.
    pub group: String,
    /// The members.
    pub members: Vec<LeavingMember>,
}

/// One member's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftMember {
    /// Member id as sent.
    pub member_id: String,
    /// Static id as sent.
    pub group_instance_id: Option<String>,
    /// Outcome (`UnknownMemberId`, `FencedInstanceId`, ...).
    pub error_code: ErrorCode,
}

/// The outcome of a leave: a group-level code, then one entry per member in
/// request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroupResponse {
    /// Group-level outcome (`InvalidGroupName`, `UnknownMemberId` for an
    /// unknown group, ...).
    pub error_code: ErrorCode,
    /// Per member.
    pub members: Vec<LeftMember>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            LeaveGroupRequest {
                group: String::new(),
                members: vec![],
            },
            LeaveGroupRequest {
                group: "billing".into(),
                members: vec![
                    LeavingMember {
                        member_id: "m-1".into(),
                        group_instance_id: None,
                    },
                    LeavingMember {
                        member_id: String::new(),
                        group_instance_id: Some("host-2".into()),
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            LeaveGroupResponse {
                error_code: ErrorCode::GroupIdNotFound,
                members: vec![],
            },
            LeaveGroupResponse {
                error_code: ErrorCode::None,
                members: vec![LeftMember {
                    member_id: "m-1".into(),
                    group_instance_id: Some("h".into()),
                    error_code: ErrorCode::FencedInstanceId,
                }],
            },
        ]);
    }
}
