//! Typed calls of the group APIs on a [`Connection`]: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups,
//! DeleteGroups, and OffsetCommit as a member of a generation.
//!
//! In a cluster each group has one coordinator node; the others refuse the
//! group's calls with `NotCoordinator`.
//! [`Bootstrap::connect_coordinator`](crate::Bootstrap::connect_coordinator)
//! finds and connects to it.
//!
//! Each returns the broker's response, whose `error_code` fields carry the
//! group-level outcome (`RebalanceInProgress`, `UnknownMemberId`, ...): an
//! `Err` means the request itself failed (connection, frame-level error).
//!
//! The broker serves one request of a connection at a time: a JoinGroup or
//! SyncGroup that waits for the other members holds its connection until
//! the generation forms (at most the rebalance timeout), so heartbeats that
//! must go on meanwhile need a connection of their own.

use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::delete_groups::{DeleteGroupsRequest, DeleteGroupsResponse};
use sluice_protocol::wire::describe_groups::{DescribeGroupsRequest, DescribeGroupsResponse};
use sluice_protocol::wire::find_coordinator::{FindCoordinatorRequest, FindCoordinatorResponse};
use sluice_protocol::wire::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use sluice_protocol::wire::join_group::{JoinGroupRequest, JoinGroupResponse};
use sluice_protocol::wire::leave_group::{LeaveGroupRequest, LeaveGroupResponse, LeavingMember};
use sluice_protocol::wire::list_groups::{ListGroupsRequest, ListGroupsResponse};
use sluice_protocol::wire::offset_commit::{
    CommitPartition, OffsetCommitRequestV1, OffsetCommitResponse,
};
use sluice_protocol::wire::sync_group::{SyncGroupRequest, SyncGroupResponse};

use crate::connection::Connection;
use crate::error::ClientError;

impl Connection {
    /// FindCoordinator: the node that coordinates `group` and its native
    /// address. Fails with [`ClientError::Unsupported`] against a broker
    /// without the API (an older broker, which serves every group it is
    /// asked about).
    pub async fn find_coordinator(
        &mut self,
        group: &str,
    ) -> Result<FindCoordinatorResponse, ClientError> {
        self.negotiated_version(ApiKey::FindCoordinator).await?;
        let req = FindCoordinatorRequest {
            group: group.to_owned(),
        };
        Ok(self.call(ApiKey::FindCoordinator, &req, &[]).await?.0)
    }

    /// JoinGroup: completes when the generation forms (up to the rebalance
    /// timeout) or at once with an error. A first join with an empty member
    /// id gets `MemberIdRequired` and the id to join again with.
    pub async fn join_group(
        &mut self,
        req: &JoinGroupRequest,
    ) -> Result<JoinGroupResponse, ClientError> {
        Ok(self.call(ApiKey::JoinGroup, req, &[]).await?.0)
    }

    /// SyncGroup: the member's assignment; the leader sends everyone's.
    pub async fn sync_group(
        &mut self,
        req: &SyncGroupRequest,
    ) -> Result<SyncGroupResponse, ClientError> {
        Ok(self.call(ApiKey::SyncGroup, req, &[]).await?.0)
    }

    /// Heartbeat in a generation.
    pub async fn heartbeat(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<HeartbeatResponse, ClientError> {
        let req = HeartbeatRequest {
            group: group.to_owned(),
            generation_id,
            member_id: member_id.to_owned(),
            group_instance_id: group_instance_id.map(str::to_owned),
        };
        Ok(self.call(ApiKey::Heartbeat, &req, &[]).await?.0)
    }

    /// LeaveGroup for one or more members.
    pub async fn leave_group(
        &mut self,
        group: &str,
        members: Vec<LeavingMember>,
    ) -> Result<LeaveGroupResponse, ClientError> {
        let req = LeaveGroupRequest {
            group: group.to_owned(),
            members,
        };
        Ok(self.call(ApiKey::LeaveGroup, &req, &[]).await?.0)
    }

    /// DescribeGroups.
    pub async fn describe_groups(
        &mut self,
        groups: Vec<String>,
    ) -> Result<DescribeGroupsResponse, ClientError> {
        let req = DescribeGroupsRequest { groups };
        Ok(self.call(ApiKey::DescribeGroups, &req, &[]).await?.0)
    }

    /// ListGroups, optionally only in some states ("Stable", "Empty", ...).
    pub async fn list_groups(
        &mut self,
        states: Vec<String>,
    ) -> Result<ListGroupsResponse, ClientError> {
        let req = ListGroupsRequest { states };
        Ok(self.call(ApiKey::ListGroups, &req, &[]).await?.0)
    }

    /// DeleteGroups: only groups without members; their committed offsets
    /// go with them.
    pub async fn delete_groups(
        &mut self,
        groups: Vec<String>,
    ) -> Result<DeleteGroupsResponse, ClientError> {
        let req = DeleteGroupsRequest { groups };
        Ok(self.call(ApiKey::DeleteGroups, &req, &[]).await?.0)
    }

    /// OffsetCommit version 1: commits as a member of a generation (the
    /// broker fences stale generations and unknown members), or with
    /// generation -1 and an empty member id as a tool acting on a group with
    /// no members (offset reset). Fails with [`ClientError::Unsupported`]
    /// against a broker without version 1.
    pub async fn offset_commit_as(
        &mut self,
        req: &OffsetCommitRequestV1,
    ) -> Result<OffsetCommitResponse, ClientError> {
        let version = self.negotiated_version(ApiKey::OffsetCommit).await?;
        if version < 1 {
            return Err(ClientError::Unsupported(
                "a commit with a generation (OffsetCommit version 1)".into(),
            ));
        }
        self.send_version(ApiKey::OffsetCommit, 1, req, &[]).await?;
        Ok(self.recv().await?.0)
    }

    /// [`offset_commit_as`](Self::offset_commit_as) built from its parts.
    pub async fn offset_commit_in_generation(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        partitions: Vec<CommitPartition>,
    ) -> Result<OffsetCommitResponse, ClientError> {
        let req = OffsetCommitRequestV1 {
            group: group.to_owned(),
            generation_id,
            member_id: member_id.to_owned(),
            group_instance_id: group_instance_id.map(str::to_owned),
            partitions,
        };
        self.offset_commit_as(&req).await
    }
}
