//! DescribeGroups (key 17): the state, protocol and members of groups.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Describes the named groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeGroupsRequest {
    /// Group names.
    pub groups: Vec<String>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static id, if any.
    pub group_instance_id: Option<String>,
    /// The client id it joined with.
    pub client_id: String,
    /// The address it joined from (IP, as the broker saw it).
    pub client_host: String,
    /// Its metadata for the group's protocol (empty unless the group is
    /// Stable or CompletingRebalance).
    pub metadata: Vec<u8>,
    /// Its assignment (empty unless the group is Stable).
    pub assignment: Vec<u8>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedGroup {
    /// `None`, `InvalidGroupName`; an unknown group is described as "Dead"
    /// with no members, as Kafka does.
    pub error_code: ErrorCode,
    /// Group name.
    pub group: String,
    /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead".
    pub state: String,
    /// The current generation (0 for a group that never had one).
    pub generation_id: i32,
    /// Protocol type ("" if none).
    pub protocol_type: String,
    /// Chosen protocol ("" unless Stable or CompletingRebalance).
    pub protocol: String,
    /// Members.
    pub members: Vec<DescribedMember>,
}

/// One entry per requested group, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeGroupsResponse {
    /// Groups.
    pub groups: Vec<DescribedGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            DescribeGroupsRequest { groups: vec![] },
            DescribeGroupsRequest {
                groups: vec!["a".into(), "billing-😀".into()],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            DescribeGroupsResponse { groups: vec![] },
            DescribeGroupsResponse {
                groups: vec![
                    DescribedGroup {
                        error_code: ErrorCode::None,
                        group: "billing".into(),
                        state: "Stable".into(),
                        generation_id: 4,
                        protocol_type: "consumer".into(),
                        protocol: "range".into(),
                        members: vec![DescribedMember {
                            member_id: "m-1".into(),
                            group_instance_id: Some("host-1".into()),
                            client_id: "sluice".into(),
                            client_host: "127.0.0.1".into(),
                            metadata: vec![1, 2],
                            assignment: vec![3],
                        }],
                    },
                    DescribedGroup {
                        error_code: ErrorCode::InvalidGroupName,
                        group: String::new(),
                        state: "Dead".into(),
                        generation_id: 0,
                        protocol_type: String::new(),
                        protocol: String::new(),
                        members: vec![],
                    },
                ],
            },
        ]);
    }
}
