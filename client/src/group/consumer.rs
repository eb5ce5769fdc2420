//! [`GroupConsumer`]: a consumer that is a member of its group and is
//! given its share of the subscribed topics' partitions.
//!
//! Membership follows Kafka's classic group protocol: JoinGroup (retried
//! with the id the coordinator hands out on `MemberIdRequired`), the
//! leader runs the chosen assignor over everyone's ConsumerProtocol
//! subscription, SyncGroup hands out the assignments, and a heartbeat task
//! on its own connection keeps the session alive and reports rebalances.
//! Everything else happens inside [`GroupConsumer::poll`]: rejoining,
//! revoking (with a commit of the revoked positions), taking on new
//! partitions at their committed offsets, and noticing that the member was
//! expired (after which no record of its old partitions is returned).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::leave_group::LeavingMember;

use super::GroupConfig;
use super::assignor::{AssignorKind, TopicPartition};
use super::heartbeat::{self, Event, Heartbeat, Target};
use super::listener::{NoopListener, Positions, RebalanceListener};
use crate::connection::Connection;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord};
use crate::error::ClientError;

/// Runs `$call` on the coordinator connection (bound to `$c`), failing
/// with a timed-out [`ClientError::Io`] after `$limit`; the connection is
/// dropped after any error but a refusal (it broke, timed out or answered
/// bytes that do not decode), so the next call finds the coordinator
/// again.
macro_rules! coord_call {
    ($self:ident, $limit:expr, $what:expr, |$c:ident| $call:expr) => {{
        let limit: std::time::Duration = $limit;
        let r = match $self.coord().await {
            Ok($c) => crate::consumer::within(limit, $what, $call).await,
            Err(e) => Err(e),
        };
        // Anything but a refusal leaves the connection in doubt.
        if let Err(e) = &r
            && !matches!(e, ClientError::Broker { .. })
        {
            $self.coord = None;
        }
        r
    }};
}

/// A member of a consumer group (see the module doc).
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConfig,
    group: String,
    /// For JoinGroup, SyncGroup, LeaveGroup and metadata: a join can wait
    /// for a whole rebalance, so it has a connection of its own.
    coord: Option<Connection>,
    hb: Arc<Heartbeat>,
    listener: Box<dyn RebalanceListener>,
    member_id: String,
    generation_id: i32,
    protocol: Option<AssignorKind>,
    owned: BTreeSet<TopicPartition>,
    needs_join: bool,
    /// Partition counts the leader last assigned with.
    assigned_counts: Option<BTreeMap<String, u32>>,
    last_metadata_check: Instant,
    /// Another instance took this static member's place: every later call
    /// fails.
    fenced: bool,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.group)
            .field("member_id", &self.member_id)
            .field("generation_id", &self.generation_id)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

fn broker_error(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::Broker {
        code,
        message: message.into(),
    }
}

/// The error every call of a fenced static member returns.
pub(super) fn fenced() -> ClientError {
    broker_error(
        ErrorCode::FencedInstanceId,
        "another instance with this group_instance_id joined",
    )
}

fn is_connection_error(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Io(_)
            | ClientError::Closed
            | ClientError::ClosedUnanswered
            | ClientError::Wire(_)
            | ClientError::OutOfOrder { .. }
    )
}

impl GroupConsumer {
    /// Connects; the member joins its group on the first
    /// [`poll`](Self::poll). `consumer.group` names the group (required).
    pub async fn connect(
        consumer: ConsumerConfig,
        config: GroupConfig,
    ) -> Result<Self, ClientError> {
        let Some(group) = consumer.group.clone() else {
            return Err(broker_error(
                ErrorCode::InvalidGroupName,
                "a group consumer needs a group",
            ));
        };
        if config.assignors.is_empty() || config.topics.is_empty() {
            return Err(broker_error(
                ErrorCode::InconsistentGroupProtocol,
                "a group consumer needs at least one assignor and one topic",
            ));
        }
        let consumer = Consumer::connect(consumer).await?;
        let hb = Heartbeat::start(
            consumer.brokers().clone(),
            config.heartbeat_interval,
            consumer.config().request_timeout,
        );
        Ok(GroupConsumer {
            consumer,
            config,
            group,
            coord: None,
            hb,
            listener: Box::new(NoopListener),
            member_id: String::new(),
            generation_id: -1,
            protocol: None,
            owned: BTreeSet::new(),
            needs_join: true,
            assigned_counts: None,
            last_metadata_check: Instant::now(),
            fenced: false,
        })
    }

    /// Sets the rebalance callbacks.
    pub fn set_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = listener;
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        &self.owned
    }

    /// The member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// When a fetch answer last came from any broker (see
    /// [`Consumer::last_fetch_answer`]).
    pub fn last_fetch_answer(&self) -> Instant {
        self.consumer.last_fetch_answer()
    }

    /// The generation the member belongs to (-1 when not a member).
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The assignor the group uses (after a join).
    pub fn protocol(&self) -> Option<AssignorKind> {
        self.protocol
    }

    /// Moves an owned partition's position (records already fetched past
    /// it are dropped); the next commit stores it.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        to: crate::consumer::SeekTo,
    ) -> Result<(), ClientError> {
        self.consumer.seek(topic, partition, to).await
    }

    /// The next offset to be returned for an owned partition.
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.consumer.position(topic, partition)
    }

    /// The owned partitions whose start is still to be looked up (their
    /// leader could not be reached when they were assigned, nor at any
    /// poll since), each with why the last look-up failed; see
    /// [`Consumer::unresolved`](crate::Consumer::unresolved). They are read
    /// once it succeeds, and none of their offsets is committed meanwhile.
    pub fn unresolved(&self) -> impl Iterator<Item = (&str, u32, &str)> {
        self.consumer.unresolved()
    }

    /// Waits up to the fetch `max_wait` for records of owned partitions and
    /// returns them (possibly none), taking part in any rebalance first.
    /// Errors: `FencedInstanceId` (another instance took this static
    /// member's place; fatal), connection errors that outlast a rebalance
    /// timeout, and fetch errors as [`Consumer::poll`] has them.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        loop {
            if self.fenced {
                return Err(fenced());
            }
            self.handle_event()?;
            if self.needs_join {
                self.rebalance().await?;
                continue;
            }
            if self.hb.maybe_expired(self.config.session_timeout) {
                self.verify_session().await?;
                continue;
            }
            if self.consumer.auto_commit_due() {
                // Once: a poll is not held up by a coordinator moving (the
                // next poll commits again).
                let owned = self.owned.clone();
                match self.commit_these(&owned, Duration::ZERO).await {
                    Err(ClientError::Broker { code, .. }) if is_membership_error(code) => continue,
                    Err(ClientError::Broker {
                        code: ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable,
                        ..
                    }) => {}
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => return Err(e),
                    Ok(()) => {}
                }
            }
            self.maybe_check_metadata().await?;
            if self.needs_join {
                continue;
            }
            let records = if self.owned.is_empty() {
                let wait = self.consumer.config().max_wait;
                tokio::select! {
                    _ = self.hb.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                Vec::new()
            } else {
                // A heartbeat event interrupts only the wait for fetch
                // answers: records the fetch took are returned, never
                // dropped with the future.
                let event = self.hb.notify.notified();
                match self.consumer.poll_fetch_until(event).await? {
                    Some(records) => records,
                    None => continue,
                }
            };
            // The fetch may have outlived the membership (a long pause, a
            // stopped process): never hand out records of lost partitions.
            // The records wait in the consumer meanwhile: a poll dropped
            // or failed here returns them next time, unless their
            // partitions were lost (or sought) since.
            self.consumer.put_back(records);
            if self.hb.maybe_expired(self.config.session_timeout) {
                self.verify_session().await?;
            }
            self.handle_event()?;
            if self.generation_id < 0 {
                continue;
            }
            return Ok(self.consumer.take_unreturned());
        }
    }

    /// Commits the positions of all owned partitions with the member's
    /// generation. If the coordinator refuses (the member was expired, its
    /// generation is stale, a rebalance is completing), the error is
    /// returned and the member rejoins on the next poll; lost partitions
    /// are dropped.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let owned = self.owned.clone();
        let patience = self.consumer.config().request_timeout;
        self.commit_these(&owned, patience).await
    }

    /// Commits the positions of `which`; while the coordinator is moving
    /// or loading the group, again until `patience` has passed.
    async fn commit_these(
        &mut self,
        which: &BTreeSet<TopicPartition>,
        patience: Duration,
    ) -> Result<(), ClientError> {
        if self.fenced {
            return Err(fenced());
        }
        if which.is_empty() || self.generation_id < 0 {
            return Ok(());
        }
        let r = self
            .consumer
            .commit_where(
                |t, p| which.contains(&TopicPartition::new(t, p as i32)),
                patience,
            )
            .await;
        if let Err(ClientError::Broker { code, .. }) = &r {
            match *code {
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => self.lose(*code),
                ErrorCode::RebalanceInProgress => self.needs_join = true,
                ErrorCode::FencedInstanceId => self.lose(*code),
                _ => {}
            }
        }
        r
    }

    /// Leaves the group as [`GroupConsumer::close`] does, but commits
    /// nothing: for an application that could not finish with the records
    /// it was given (its output went away), whose positions are past them.
    /// The group keeps its last commit, so the next member starts there.
    pub async fn close_without_commit(mut self) -> Result<(), ClientError> {
        self.config.commit_on_revoke = false;
        self.close().await
    }

    /// Leaves the group: revokes and commits the owned partitions (as
    /// `commit_on_revoke` says), then sends LeaveGroup so the others take
    /// them over at once. A static member does not leave (as in Kafka): its
    /// partitions wait for it until its session times out.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let mut result = Ok(());
        if self.generation_id >= 0 && !self.owned.is_empty() {
            let owned = self.owned.clone();
            self.listener
                .on_partitions_revoked(&self.positions_of(&owned));
            if self.config.commit_on_revoke {
                let patience = self.consumer.config().request_timeout;
                result = self.commit_these(&owned, patience).await;
            }
        }
        self.hb.set_target(None);
        if self.config.group_instance_id.is_none() && !self.member_id.is_empty() {
            let members = vec![LeavingMember {
                member_id: self.member_id.clone(),
                group_instance_id: None,
            }];
            let group = self.group.clone();
            let limit = self.request_timeout();
            let left = coord_call!(self, limit, "LeaveGroup", |c| c
                .leave_group(&group, members))?;
            if left.error_code != ErrorCode::None {
                result = result.and(Err(broker_error(left.error_code, "leave group")));
            }
        }
        result
    }

    fn positions_of(&self, set: &BTreeSet<TopicPartition>) -> Positions {
        self.consumer
            .positions()
            .map(|(t, p, pos)| (TopicPartition::new(t, p as i32), pos))
            .filter(|(tp, _)| set.contains(tp))
            .collect()
    }

    async fn coord(&mut self) -> Result<&mut Connection, ClientError> {
        if self.coord.is_none() {
            let group = self.group.clone();
            let found = self.consumer.brokers().connect_coordinator(&group);
            let limit = self.request_timeout();
            self.coord = Some(crate::consumer::within(limit, "FindCoordinator", found).await?);
        }
        self.coord.as_mut().ok_or(ClientError::Closed)
    }

    /// How long a call to the coordinator may wait for its answer.
    fn request_timeout(&self) -> std::time::Duration {
        self.consumer.config().request_timeout
    }

    fn target(&self) -> Target {
        Target {
            group: self.group.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        }
    }

    /// Acts on what the heartbeat task heard.
    fn handle_event(&mut self) -> Result<(), ClientError> {
        match self.hb.take_event() {
            None => Ok(()),
            Some(Event::Rejoin) => {
                self.needs_join = true;
                Ok(())
            }
            Some(Event::Lost(code)) => {
                self.lose(code);
                Ok(())
            }
            Some(Event::Fenced) => {
                self.lose(ErrorCode::FencedInstanceId);
                Err(fenced())
            }
        }
    }

    /// The member's partitions are gone without a clean revoke.
    fn lose(&mut self, code: ErrorCode) {
        if !self.owned.is_empty() {
            let owned = std::mem::take(&mut self.owned);
            self.listener.on_partitions_lost(&self.positions_of(&owned));
        }
        self.consumer.remove_partitions(|_, _| true);
        self.consumer.set_member(None);
        self.hb.set_target(None);
        self.generation_id = -1;
        if code == ErrorCode::UnknownMemberId {
            self.member_id.clear();
        }
        if code == ErrorCode::FencedInstanceId {
            self.fenced = true;
        }
        self.needs_join = true;
    }

    /// After a pause as long as the session, asks the coordinator (one
    /// heartbeat) whether this member is still one.
    async fn verify_session(&mut self) -> Result<(), ClientError> {
        if self.generation_id < 0 {
            self.hb.set_target(None);
            return Ok(());
        }
        let target = self.target();
        let sent = Instant::now();
        let limit = self.request_timeout();
        let code = coord_call!(self, limit, "Heartbeat", |c| heartbeat::send(c, &target))?;
        self.hb.record(&target, sent, code);
        self.handle_event()?;
        if code != ErrorCode::None && self.generation_id >= 0 {
            // Not confirmed (the coordinator is loading, say): the member
            // cannot know it still owns its partitions, so it treats them
            // as lost and rejoins rather than risk a stale read.
            self.lose(code);
        }
        Ok(())
    }

    /// Leader only: a rebalance when a subscribed topic's partition count
    /// changed since the last assignment.
    async fn maybe_check_metadata(&mut self) -> Result<(), ClientError> {
        if self.assigned_counts.is_none()
            || self.last_metadata_check.elapsed() < self.config.metadata_refresh
        {
            return Ok(());
        }
        self.last_metadata_check = Instant::now();
        let topics: BTreeSet<String> = self.config.topics.iter().cloned().collect();
        let counts = match self.partition_counts(&topics).await {
            Ok(c) => c,
            Err(e) if is_connection_error(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.assigned_counts.as_ref() != Some(&counts) {
            self.needs_join = true;
        }
        Ok(())
    }

    async fn partition_counts(
        &mut self,
        topics: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, u32>, ClientError> {
        let limit = self.request_timeout();
        let meta = coord_call!(self, limit, "Metadata", |c| c
            .metadata(Some(topics.iter().cloned().collect())))?;
        Ok(meta
            .topics
            .into_iter()
            .filter(|t| t.error_code == ErrorCode::None)
            .map(|t| (t.name, t.partitions.len() as u32))
            .collect())
    }
}

/// Codes that say the member's standing changed (handled by rejoining).
fn is_membership_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration | ErrorCode::RebalanceInProgress
    )
}

#[path = "rebalance.rs"]
mod rebalance;
