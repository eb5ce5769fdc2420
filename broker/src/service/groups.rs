//! Consumer groups: join, sync, heartbeat, leave, describe, list, delete,
//! and commits checked against the group's generation (fencing). Every
//! front-end (native protocol, Kafka listener) calls these with typed
//! values; the coordinator itself is [`crate::group`].
//!
//! Joins and syncs that must wait for the other members are futures
//! completed by the coordinator, never a blocked thread.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;

pub use crate::group::{
    CommitAs, GroupDescription, GroupListing, GroupState, Heartbeat, JoinGroup, JoinResult,
    JoinedMember, LeaveResult, MemberDescription, MemberRef, SyncGroup, SyncResult,
};

use super::offsets::{Commit, Committed};
use super::{Refused, Service};

impl Service {
    /// Joins (or rejoins) a group; completes when the generation forms (or
    /// at once with an error).
    pub async fn join_group(self: &Arc<Self>, req: JoinGroup) -> JoinResult {
        JoinResult::error(ErrorCode::UnsupportedApi, req.member_id)
    }

    /// The member's assignment in a generation; completes when the leader
    /// has sent the assignments (or at once with an error).
    pub async fn sync_group(self: &Arc<Self>, req: SyncGroup) -> SyncResult {
        let _ = req;
        SyncResult::error(ErrorCode::UnsupportedApi)
    }

    /// A member's heartbeat: `None`, or why it must rejoin.
    pub async fn heartbeat(self: &Arc<Self>, req: Heartbeat) -> ErrorCode {
        let _ = req;
        ErrorCode::UnsupportedApi
    }

    /// Members leave a group.
    pub async fn leave_group(
        self: &Arc<Self>,
        group: String,
        members: Vec<MemberRef>,
    ) -> LeaveResult {
        let _ = group;
        LeaveResult {
            error: ErrorCode::UnsupportedApi,
            members: members
                .into_iter()
                .map(|m| (m, ErrorCode::UnsupportedApi))
                .collect(),
        }
    }

    /// Describes groups, one answer per name in order.
    pub fn describe_groups(&self, groups: Vec<String>) -> Vec<GroupDescription> {
        let _ = groups;
        Vec::new()
    }

    /// Lists groups in the given states (all if empty), sorted by name.
    pub fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let _ = states;
        Vec::new()
    }

    /// Deletes groups that have no members, with their committed offsets.
    pub async fn delete_groups(self: &Arc<Self>, groups: Vec<String>) -> Vec<(String, ErrorCode)> {
        groups
            .into_iter()
            .map(|g| (g, ErrorCode::UnsupportedApi))
            .collect()
    }

    /// Commits offsets as `member` (fencing as Kafka's coordinator): a
    /// group-level refusal gives every partition the same code.
    pub async fn commit_offsets_as(
        self: &Arc<Self>,
        group: String,
        member: CommitAs,
        commits: Vec<Commit>,
    ) -> Result<Vec<Committed>, Refused> {
        let _ = member;
        self.commit_offsets(group, commits).await
    }
}
