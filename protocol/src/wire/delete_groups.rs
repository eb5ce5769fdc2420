//! DeleteGroups (key 19): delete groups that have no members, with their
//! committed offsets.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Deletes the named groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteGroupsRequest {
    /// Group names.
    pub groups: Vec<String>,
}

/// One group's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedGroup {
    /// Group name.
    pub group: String,
    /// `None`, `NonEmptyGroup` (it has members), `GroupIdNotFound`,
    /// `InvalidGroupName`, or a storage error.
    pub error_code: ErrorCode,
}

/// One entry per requested group, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteGroupsResponse {
    /// Results.
    pub results: Vec<DeletedGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            DeleteGroupsRequest { groups: vec![] },
            DeleteGroupsRequest {
                groups: vec!["a".into(), "b".into()],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            DeleteGroupsResponse { results: vec![] },
            DeleteGroupsResponse {
                results: vec![
                    DeletedGroup {
                        group: "a".into(),
                        error_code: ErrorCode::NonEmptyGroup,
                    },
                    DeletedGroup {
                        group: "b".into(),
                        error_code: ErrorCode::None,
                    },
                ],
            },
        ]);
    }
}
