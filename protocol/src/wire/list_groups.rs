//! ListGroups (key 18): the groups the broker knows.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Lists groups, optionally only those in some states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListGroupsRequest {
    /// State names to keep (as in [`super::describe_groups::DescribedGroup`]);
    /// empty keeps all.
    pub states: Vec<String>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedGroup {
    /// Group name.
    pub group: String,
    /// Protocol type ("" for a group that only has committed offsets).
    pub protocol_type: String,
    /// State name.
    pub state: String,
}

/// Every group known, sorted by name: groups with members or metadata, and
/// groups that only have committed offsets (listed as "Empty").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListGroupsResponse {
    /// Outcome.
    pub error_code: ErrorCode,
    /// Groups.
    pub groups: Vec<ListedGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            ListGroupsRequest { states: vec![] },
            ListGroupsRequest {
                states: vec!["Stable".into(), "Empty".into()],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            ListGroupsResponse {
                error_code: ErrorCode::None,
                groups: vec![],
            },
            ListGroupsResponse {
                error_code: ErrorCode::None,
                groups: vec![ListedGroup {
                    group: "billing".into(),
                    protocol_type: "consumer".into(),
                    state: "Stable".into(),
                }],
            },
        ]);
    }
}
