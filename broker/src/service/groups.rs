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

use crate::group::consumer::TopicView;
pub use crate::group::consumer::{Assignment, Beat, BeatAnswer, BeatError, GroupView};
use crate::topics::TopicId;

use super::offsets::{Commit, Committed};
use super::{Refused, Service};

impl Service {
    /// Joins (or rejoins) a group; completes when the generation forms (or
    /// at once with an error). Dropping the future abandons the wait (the
    /// member stays until its session expires).
    ///
    /// Protocols heavier than [`crate::group::MAX_MEMBER_METADATA_BYTES`]
    /// are refused with `MessageTooLarge`, before the coordinator keeps them.
    pub async fn join_group(self: &Arc<Self>, req: JoinGroup) -> JoinResult {
        let bytes: usize = req.protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
        if bytes > crate::group::MAX_MEMBER_METADATA_BYTES {
            return JoinResult::error(ErrorCode::MessageTooLarge, req.member_id);
        }
        self.groups.join(req).await
    }

    /// The member's assignment in a generation; completes when the leader's
    /// assignments are durable (or at once with an error).
    ///
    /// An assignment heavier than [`crate::group::MAX_MEMBER_METADATA_BYTES`]
    /// is refused with `MessageTooLarge`, before the coordinator keeps it.
    pub async fn sync_group(self: &Arc<Self>, req: SyncGroup) -> SyncResult {
        if req
            .assignments
            .iter()
            .any(|(_, a)| a.len() > crate::group::MAX_MEMBER_METADATA_BYTES)
        {
            return SyncResult::error(ErrorCode::MessageTooLarge);
        }
        self.groups.sync(req).await
    }

    /// A member's heartbeat: `None`, or why it must rejoin. In memory only.
    pub async fn heartbeat(self: &Arc<Self>, req: Heartbeat) -> ErrorCode {
        self.groups.heartbeat(&req)
    }

    /// Members leave a group; the others rebalance at once.
    pub async fn leave_group(
        self: &Arc<Self>,
        group: String,
        members: Vec<MemberRef>,
    ) -> LeaveResult {
        self.groups.leave(&group, members)
    }

    /// Describes groups, one answer per name in order; a name asked for
    /// twice is answered once, so the answer stays in proportion to the
    /// groups, not to the request (a group's description may be as large
    /// as `group_max_bytes`).
    pub fn describe_groups(&self, groups: Vec<String>) -> Vec<GroupDescription> {
        let once = super::first_of_each(&groups)
            .into_iter()
            .map(str::to_owned)
            .collect();
        self.groups.describe(once)
    }

    /// Lists groups in the given states (all if empty), sorted by name:
    /// in a cluster, only the groups this node coordinates.
    pub fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let mut groups = self.groups.list(states);
        if self.cluster.get().is_some() {
            groups.retain(|g| self.check_coordinator_now(&g.group).is_ok());
        }
        groups
    }

    /// Deletes groups that have no members, with their committed offsets.
    pub async fn delete_groups(self: &Arc<Self>, groups: Vec<String>) -> Vec<(String, ErrorCode)> {
        self.groups.delete(groups).await
    }

    /// Deletes `group`'s committed offsets of `partitions`, but those of
    /// topics its members read (see
    /// [`crate::group::Coordinator::delete_offsets`]): per partition,
    /// whether it was kept for that reason. Refused whole when this broker
    /// does not coordinate the group, or for more partitions than
    /// `max_partitions_per_request`.
    pub async fn delete_offsets(
        self: &Arc<Self>,
        group: String,
        partitions: Vec<(String, u32)>,
    ) -> Result<Vec<bool>, Refused> {
        super::check_partition_count(partitions.len(), self.config.max_partitions_per_request)?;
        self.check_coordinator(&group).await?;
        self.groups
            .delete_offsets(&group, partitions)
            .await
            .map_err(|code| Refused {
                code,
                message: format!("group {group:?}: {code}"),
            })
    }

    /// Commits offsets as `member` (fencing as Kafka's coordinator): a
    /// commit the group refuses gives every partition the same code and
    /// stores nothing. A commit with generation -1 and no member is allowed
    /// only while the group has no members (offset reset by a tool).
    pub async fn commit_offsets_as(
        self: &Arc<Self>,
        group: String,
        member: CommitAs,
        commits: Vec<Commit>,
    ) -> Result<Vec<Committed>, Refused> {
        super::check_partition_count(commits.len(), self.config.max_partitions_per_request)?;
        if crate::group::valid_group_name(&group) {
            let partitions: Vec<(&str, u32)> = commits
                .iter()
                .map(|c| (c.topic.as_str(), c.partition))
                .collect();
            if let Err(code) = self.groups.check_commit(&group, &member, &partitions) {
                return Ok(commits
                    .into_iter()
                    .map(|c| Committed {
                        topic: c.topic,
                        partition: c.partition,
                        error_code: code,
                    })
                    .collect());
            }
        }
        self.commit_offsets_checked(group, commits, Some(member))
            .await
    }
}

/// The topics as a consumer-protocol group sees them: in a cluster the
/// controller's (read once per heartbeat, when first needed), else this
/// broker's.
struct Topics<'a> {
    svc: &'a Service,
    cluster: std::sync::OnceLock<Option<std::collections::HashMap<String, (TopicId, u32)>>>,
}

impl Topics<'_> {
    fn cluster(&self) -> Option<&std::collections::HashMap<String, (TopicId, u32)>> {
        self.cluster
            .get_or_init(|| {
                self.svc.leadership.topics().map(|all| {
                    all.into_iter()
                        .map(|t| (t.name, (t.id, t.partitions)))
                        .collect()
                })
            })
            .as_ref()
    }
}

impl TopicView for Topics<'_> {
    fn topic(&self, name: &str) -> Option<(TopicId, u32)> {
        match self.cluster() {
            Some(all) => all.get(name).copied(),
            None => self
                .svc
                .topics
                .topic(name)
                .map(|t| (t.id, u32::try_from(t.partitions.len()).unwrap_or(u32::MAX))),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.cluster() {
            Some(all) => all.keys().cloned().collect(),
            None => self
                .svc
                .topics
                .list()
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        };
        names.retain(|n| !crate::topics::is_internal(n));
        names
    }
}

impl Service {
    /// A heartbeat of Kafka's consumer group protocol (KIP-848) to `group`
    /// (see [`crate::group::consumer`]), answered once the group's state it
    /// reflects is durable in the offsets log ([`BeatError::NotStored`] if
    /// that write failed).
    pub async fn consumer_group_heartbeat(
        &self,
        group: &str,
        beat: Beat,
    ) -> Result<BeatAnswer, BeatError> {
        let (answer, unstored) = {
            let topics = Topics {
                svc: self,
                cluster: std::sync::OnceLock::new(),
            };
            self.groups.consumer_heartbeat(group, beat, &topics)
        };
        if let Some(u) = unstored {
            if let Err((code, message)) = self.groups.store_consumer_group(group, u).await {
                // The answer's news is not durable: not given. Whatever
                // the member did stays done; it asks again.
                return Err(BeatError::NotStored(code, message));
            }
        }
        answer
    }

    /// Checks an OffsetFetch that names a consumer-protocol member (see
    /// [`crate::group::Coordinator::check_offset_fetch`]).
    pub fn check_offset_fetch(
        &self,
        group: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ErrorCode> {
        self.groups.check_offset_fetch(group, member_id, epoch)
    }

    /// Whether `member_id` is a member of consumer-protocol group `group`
    /// (whose commits must come as OffsetCommit v9 or later, as Kafka
    /// requires).
    pub fn is_consumer_member(&self, group: &str, member_id: &str) -> bool {
        self.groups.is_consumer_member(group, member_id)
    }

    /// Consumer-protocol group `group` described, if it is one.
    pub fn describe_consumer_group(&self, group: &str) -> Option<GroupView> {
        self.groups.view_consumer(group)
    }

    /// How often consumer-protocol members are told to heartbeat.
    pub fn consumer_heartbeat_interval(&self) -> std::time::Duration {
        self.groups.consumer_heartbeat_interval()
    }
}
