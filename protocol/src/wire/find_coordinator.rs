//! FindCoordinator (key 20): which broker coordinates a consumer group.
//! Any broker answers; the group's calls (JoinGroup to DeleteGroups,
//! OffsetCommit, OffsetFetch) then go to the coordinator, and a broker that
//! is not the coordinator refuses them with `NotCoordinator`.

use serde::{Deserialize, Serialize};

/// Asks for a group's coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindCoordinatorRequest {
    /// Group name.
    pub group: String,
}

/// The group's coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindCoordinatorResponse {
    /// Node id of the coordinator (0 for a broker without `--cluster`).
    pub node_id: u64,
    /// Its native listener, `host:port`: where the group's calls go. Empty
    /// when the broker does not know it; the client then stays on the
    /// broker that answered.
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            FindCoordinatorRequest {
                group: String::new(),
            },
            FindCoordinatorRequest {
                group: "billing".into(),
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            FindCoordinatorResponse {
                node_id: 0,
                address: String::new(),
            },
            FindCoordinatorResponse {
                node_id: u64::MAX,
                address: "127.0.0.1:9292".into(),
            },
        ]);
    }

    /// The layout written in docs/protocol.md.
    #[test]
    fn layout_is_as_documented() {
        assert_eq!(
            encode(&FindCoordinatorRequest { group: "g1".into() }),
            [0x02, b'g', b'1']
        );
        assert_eq!(
            encode(&FindCoordinatorResponse {
                node_id: 300,
                address: "h:1".into()
            }),
            [0xAC, 0x02, 0x03, b'h', b':', b'1']
        );
    }
}
