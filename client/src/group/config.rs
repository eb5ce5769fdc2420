//! [`GroupConfig`]: membership settings of a [`GroupConsumer`](super::GroupConsumer).

use std::time::Duration;

use super::assignor::AssignorKind;

/// How a group consumer takes part in its group.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Topics whose partitions the group shares.
    pub topics: Vec<String>,
    /// Static membership: a stable id for this instance. A static member
    /// that restarts within the session timeout gets its partitions back
    /// without a rebalance; it does not leave the group on close.
    pub group_instance_id: Option<String>,
    /// Sent with JoinGroup; shown by `sluice group describe`.
    pub client_id: String,
    /// The coordinator removes the member if no heartbeat arrives for this
    /// long. Default 10 s. A killed member's partitions move after about
    /// this long.
    pub session_timeout: Duration,
    /// How often the heartbeat task tells the coordinator the member is
    /// alive, and so how late it learns that a rebalance began. Default
    /// 250 ms: a member's clean leave reaches the others within one
    /// interval, which keeps takeover well under a second. Keep it well
    /// below `session_timeout`: at or above it the coordinator removes the
    /// member between two heartbeats (what a test of a lapsed session
    /// wants, so it is not refused here; `sluice consume` refuses it).
    pub heartbeat_interval: Duration,
    /// How long the coordinator waits for all members to rejoin during a
    /// rebalance. Default 30 s.
    pub rebalance_timeout: Duration,
    /// Assignors offered to the group, most preferred first; the
    /// coordinator picks one every member supports. Default
    /// `[cooperative-sticky]`.
    pub assignors: Vec<AssignorKind>,
    /// Commit the positions of partitions being revoked (and all positions
    /// before each rejoin and on close). Default on.
    pub commit_on_revoke: bool,
    /// How often the leader checks the subscribed topics' partition counts
    /// and starts a rebalance when one changed. Default 5 s.
    pub metadata_refresh: Duration,
}

impl GroupConfig {
    /// Defaults for a member subscribing to `topics`.
    pub fn new(topics: Vec<String>) -> Self {
        GroupConfig {
            topics,
            group_instance_id: None,
            client_id: "sluice".into(),
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_millis(250),
            rebalance_timeout: Duration::from_secs(30),
            assignors: vec![AssignorKind::CooperativeSticky],
            commit_on_revoke: true,
            metadata_refresh: Duration::from_secs(5),
        }
    }
}
