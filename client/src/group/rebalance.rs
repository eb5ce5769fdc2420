//! The rebalance itself: join, (lead and) sync, then apply the assignment.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sluice_protocol::group::consumer_protocol::{self, Assignment, Subscription};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::join_group::{JoinGroupRequest, JoinGroupResponse, JoinProtocol};
use sluice_protocol::wire::sync_group::{SyncGroupAssignment, SyncGroupRequest};

use super::super::assignor::{
    AssignorKind, MemberSubscription, RebalanceProtocol, TopicPartition, from_topic_partitions,
    to_topic_partitions,
};
use super::{GroupConsumer, broker_error, fenced, is_connection_error};
use crate::consumer::MemberIdentity;
use crate::error::ClientError;

/// How long a JoinGroup may be held by the coordinator at least, whatever
/// this member's rebalance timeout: the coordinator waits for the longest
/// rebalance timeout of the group's members, and Kafka's consumers
/// default to 5 minutes (`max.poll.interval.ms`).
const JOIN_HOLD: Duration = Duration::from_secs(300);

/// What one join-and-sync round ended with.
enum Round {
    /// The member's assignment in this generation.
    Assigned(BTreeSet<TopicPartition>),
    /// Join again (at once, or after a pause for a retriable error).
    Retry { pause: bool },
}

impl GroupConsumer {
    /// Joins (or rejoins) the group and takes on the new assignment.
    pub(super) async fn rebalance(&mut self) -> Result<(), ClientError> {
        self.hb.set_target(None);
        if self.generation_id >= 0 && !self.owned.is_empty() {
            let eager = self.protocol.map(AssignorKind::protocol) == Some(RebalanceProtocol::Eager);
            if eager {
                let owned = self.owned.clone();
                self.revoke(&owned).await;
            } else if self.config.commit_on_revoke {
                // Cooperative: keep the partitions, but commit where they
                // are, in case some of them move.
                let _ = self.commit().await;
            }
        }
        let deadline = Instant::now() + self.config.rebalance_timeout + self.config.session_timeout;
        let mut backoff = Duration::from_millis(50);
        let assigned = loop {
            let round = match self.round().await {
                Ok(r) => r,
                Err(e) if is_connection_error(&e) || e.is_retriable() => {
                    self.coord = None;
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    Round::Retry { pause: true }
                }
                Err(e) => return Err(e),
            };
            match round {
                Round::Assigned(set) => break set,
                Round::Retry { pause: false } => {}
                Round::Retry { pause: true } => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        };
        self.apply(assigned).await
    }

    /// One JoinGroup and SyncGroup exchange.
    async fn round(&mut self) -> Result<Round, ClientError> {
        let join = self.join_request();
        // The coordinator answers a JoinGroup when the generation forms:
        // up to the longest rebalance timeout among the group's members,
        // which may be another client's (Kafka's consumers default to
        // 5 minutes).
        let limit = self.request_timeout() + self.config.rebalance_timeout.max(JOIN_HOLD);
        let resp = coord_call!(self, limit, "JoinGroup", |c| c.join_group(&join))?;
        match resp.error_code {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => {
                self.member_id = resp.member_id;
                return Ok(Round::Retry { pause: false });
            }
            code @ (ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) => {
                self.lose(code);
                return Ok(Round::Retry { pause: false });
            }
            ErrorCode::FencedInstanceId => {
                self.lose(ErrorCode::FencedInstanceId);
                return Err(fenced());
            }
            ErrorCode::RebalanceInProgress => return Ok(Round::Retry { pause: true }),
            code => return Err(broker_error(code, format!("join group {:?}", self.group))),
        }
        let protocol = resp
            .protocol_name
            .as_deref()
            .and_then(AssignorKind::from_name)
            .ok_or_else(|| {
                broker_error(
                    ErrorCode::InconsistentGroupProtocol,
                    format!("the group chose protocol {:?}", resp.protocol_name),
                )
            })?;
        self.member_id = resp.member_id.clone();
        self.generation_id = resp.generation_id;
        self.protocol = Some(protocol);
        let assignments = if resp.leader == self.member_id && !resp.members.is_empty() {
            self.lead(protocol, &resp).await?
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest {
            group: self.group.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: Some(consumer_protocol::PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol.name().into()),
            assignments,
        };
        let limit = self.request_timeout();
        let resp = coord_call!(self, limit, "SyncGroup", |c| c.sync_group(&sync))?;
        match resp.error_code {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => return Ok(Round::Retry { pause: false }),
            code @ (ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) => {
                self.lose(code);
                return Ok(Round::Retry { pause: false });
            }
            ErrorCode::FencedInstanceId => {
                self.lose(ErrorCode::FencedInstanceId);
                return Err(fenced());
            }
            code => return Err(broker_error(code, format!("sync group {:?}", self.group))),
        }
        let assignment = if resp.assignment.is_empty() {
            Assignment::default()
        } else {
            Assignment::decode(&resp.assignment).map_err(|e| {
                broker_error(
                    ErrorCode::InconsistentGroupProtocol,
                    format!("undecodable assignment from the leader: {e}"),
                )
            })?
        };
        Ok(Round::Assigned(from_topic_partitions(
            &assignment.partitions,
        )))
    }

    fn join_request(&self) -> JoinGroupRequest {
        let subscription = Subscription {
            version: consumer_protocol::MAX_VERSION,
            topics: self.config.topics.clone(),
            user_data: None,
            owned_partitions: to_topic_partitions(&self.owned),
            generation_id: self.generation_id,
            rack_id: None,
        }
        .encode();
        JoinGroupRequest {
            group: self.group.clone(),
            session_timeout_ms: millis(self.config.session_timeout),
            rebalance_timeout_ms: millis(self.config.rebalance_timeout),
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            client_id: self.config.client_id.clone(),
            protocol_type: consumer_protocol::PROTOCOL_TYPE.into(),
            protocols: self
                .config
                .assignors
                .iter()
                .map(|a| JoinProtocol {
                    name: a.name().into(),
                    metadata: subscription.clone(),
                })
                .collect(),
        }
    }

    /// The leader's part: assign every member its partitions.
    async fn lead(
        &mut self,
        protocol: AssignorKind,
        resp: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupAssignment>, ClientError> {
        let members: Vec<MemberSubscription> = resp
            .members
            .iter()
            .map(|m| {
                // A member whose metadata does not decode subscribes to
                // nothing (and so is given nothing).
                let s = Subscription::decode(&m.metadata).unwrap_or_default();
                MemberSubscription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    topics: s.topics.into_iter().collect(),
                    owned: from_topic_partitions(&s.owned_partitions),
                    generation_id: s.generation_id,
                }
            })
            .collect();
        let topics: BTreeSet<String> = members.iter().flat_map(|m| m.topics.clone()).collect();
        let counts = self.partition_counts(&topics).await?;
        let assignment = protocol.assign(&counts, &members);
        let mine: BTreeSet<String> = self.config.topics.iter().cloned().collect();
        self.assigned_counts = Some(
            counts
                .into_iter()
                .filter(|(t, _)| mine.contains(t))
                .collect(),
        );
        self.last_metadata_check = Instant::now();
        Ok(assignment
            .into_iter()
            .map(|(member_id, set)| SyncGroupAssignment {
                member_id,
                assignment: Assignment {
                    version: consumer_protocol::MAX_VERSION,
                    partitions: to_topic_partitions(&set),
                    user_data: None,
                }
                .encode(),
            })
            .collect())
    }

    /// Takes on this generation's assignment: revokes what is no longer
    /// ours (and, cooperatively, rejoins so it can move), then adds what is
    /// new at its committed offsets.
    async fn apply(&mut self, assigned: BTreeSet<TopicPartition>) -> Result<(), ClientError> {
        // Until the assignment is taken on, a poll dropped (or failed) on
        // the way joins again, so nothing assigned is left unread.
        self.needs_join = true;
        let mut rejoin = false;
        self.consumer.set_member(Some(MemberIdentity {
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        }));
        self.hb.set_target(Some(self.target()));
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        if !revoked.is_empty() {
            self.revoke(&revoked).await;
            // Someone else waits for these: rejoin so they can be assigned.
            rejoin = true;
            if self.generation_id < 0 {
                return Ok(());
            }
        }
        let added: BTreeSet<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        if !added.is_empty() {
            let parts = added
                .iter()
                .map(|tp| (tp.topic.clone(), tp.partition.max(0) as u32))
                .collect();
            // Not taken on (their offsets could not be read): the member
            // rejoins, so they are assigned again rather than left unread.
            self.consumer.add_partitions(parts).await?;
            self.owned.extend(added.iter().cloned());
            let positions = self.positions_of(&added);
            self.listener.on_partitions_assigned(&positions);
        }
        self.needs_join = rejoin;
        Ok(())
    }

    /// Gives partitions up cleanly: callback, commit, stop fetching them.
    async fn revoke(&mut self, set: &BTreeSet<TopicPartition>) {
        self.listener.on_partitions_revoked(&self.positions_of(set));
        if self.config.commit_on_revoke {
            // A refused commit changes the member's standing; that is
            // handled by rejoining, and the partitions go either way.
            let patience = self.consumer.config().request_timeout;
            let _ = self.commit_these(set, patience).await;
        }
        self.consumer
            .remove_partitions(|t, p| set.contains(&TopicPartition::new(t, p as i32)));
        self.owned.retain(|tp| !set.contains(tp));
    }
}

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}
