//! Heartbeat (key 15): a member says it is alive, and learns whether a
//! rebalance is under way (`RebalanceInProgress`: rejoin).

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// A member's heartbeat in a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Group name.
    pub group: String,
    /// The member's generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static id, if any.
    pub group_instance_id: Option<String>,
}

/// The outcome of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// `None`, or why the member must rejoin (`RebalanceInProgress`,
    /// `IllegalGeneration`, `UnknownMemberId`, `FencedInstanceId`, ...).
    pub error_code: ErrorCode,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            HeartbeatRequest {
                group: String::new(),
                generation_id: i32::MIN,
                member_id: String::new(),
                group_instance_id: None,
            },
            HeartbeatRequest {
                group: "billing".into(),
                generation_id: 3,
                member_id: "m-1".into(),
                group_instance_id: Some("host".into()),
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            HeartbeatResponse {
                error_code: ErrorCode::None,
            },
            HeartbeatResponse {
                error_code: ErrorCode::RebalanceInProgress,
            },
        ]);
    }
}
