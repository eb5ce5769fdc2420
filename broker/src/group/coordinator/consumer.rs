//! Groups of Kafka's consumer group protocol (KIP-848) in the coordinator:
//! heartbeats, the expiry sweep, and what commits, DescribeGroups,
//! ListGroups, DeleteGroups and OffsetDelete see of them. The state
//! machine itself is [`crate::group::consumer`].
//!
//! A group name is either a classic group with members or a consumer group
//! with members, never both: a classic join of a consumer group with
//! members is `InconsistentGroupProtocol`, a heartbeat to a classic group
//! with members [`BeatError::NotConsumerGroup`]. Either kind shares the
//! committed offsets of its name. A consumer group whose members all left
//! stays, Empty, listed with protocol type `consumer`, until it is deleted,
//! a classic member joins under its name, or offset expiry removes it.
//!
//! Every change of a group is stored (its record in the offsets log)
//! before a heartbeat that reflects it is answered; the sweep stores what
//! it changes, and stores again what a failed write left unstored.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;

use super::Coordinator;
use crate::group::consumer::{
    Assignment, Beat, BeatAnswer, BeatError, CommitRefusal, ConsumerGroup, GroupView, Limits,
    TopicView,
};
use crate::group::types::*;

/// How often the sweep looks for members past their session or rebalance
/// timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How long after a failed store of a group the sweep tries again.
const STORE_RETRY: Duration = Duration::from_secs(1);

impl Coordinator {
    /// Stores consumer-protocol group `group` if the change `unstored`
    /// names is not stored yet (one write at a time per group, each of the
    /// group's latest state). A group no longer held here (its coordinator
    /// moved, or it was deleted) is `NotCoordinator`; a failed write is its
    /// error, and the change stays unstored (the next heartbeat, or the
    /// sweep a second later, tries again).
    pub async fn store_consumer_group(
        &self,
        group: &str,
        unstored: Unstored,
    ) -> Result<(), (ErrorCode, String)> {
        let _persist = unstored.persist.lock().await;
        let (value, revision) = {
            let consumer = self.consumer.lock();
            match consumer.get(group) {
                Some(g) if Arc::ptr_eq(&g.persist, &unstored.persist) => {
                    if g.stored_revision >= unstored.revision {
                        return Ok(());
                    }
                    (g.to_record().encode(), g.revision())
                }
                _ => {
                    return Err((
                        ErrorCode::NotCoordinator,
                        format!("group {group:?} is no longer coordinated here"),
                    ));
                }
            }
        };
        let store = Arc::clone(&self.store);
        let key = group.to_owned();
        let written = crate::service::blocking(move || store.store_group(&key, Some(value)))
            .await
            .map_err(|e| (ErrorCode::StorageError, e.to_string()))
            .and_then(|r| r.map_err(|e| (e.code(), e.to_string())));
        if let Some(g) = self
            .consumer
            .lock()
            .get_mut(group)
            .filter(|g| Arc::ptr_eq(&g.persist, &unstored.persist))
        {
            if written.is_ok() {
                g.stored_revision = g.stored_revision.max(revision);
                g.store_failed_at = None;
            } else {
                // The answers that carried the change are not given: each
                // member is sent its whole assignment at its next heartbeat.
                g.forget_sent();
                g.store_failed_at = Some(Instant::now());
            }
        }
        if let Err((code, message)) = &written {
            tracing::warn!(group, ?code, %message, "could not store the consumer group");
        }
        written
    }

    /// Stores `group` on a task of its own (for the sweep; a failure is
    /// logged, and tried again as [`Coordinator::store_consumer_group`]
    /// says).
    fn spawn_store_consumer(&self, group: String, unstored: Unstored) {
        let me = self.me.clone();
        self.spawn(async move {
            if let Some(c) = me.upgrade() {
                let _ = c.store_consumer_group(&group, unstored).await;
            }
        });
    }

    /// A consumer-protocol heartbeat to group `group` (see
    /// [`ConsumerGroup::heartbeat`]), without its store: the answer, and
    /// what [`Coordinator::store_consumer_group`] must store before the
    /// answer is given if the group has a change not stored yet, read under
    /// the same lock as the heartbeat (so no answer escapes a group dropped
    /// or replaced meanwhile). A group is created by its first member's join
    /// (not if that join is refused) and stays, Empty, when its members go,
    /// until it is deleted, expires, or a classic member joins.
    pub fn consumer_heartbeat(
        &self,
        group: &str,
        beat: Beat,
        topics: &dyn TopicView,
    ) -> (Result<BeatAnswer, BeatError>, Option<Unstored>) {
        if !crate::group::valid_group_name(group) {
            return (Err(BeatError::InvalidGroupId), None);
        }
        self.start_sweep();
        let mut classic = self.groups.lock();
        if classic.get(group).is_some_and(|g| {
            g.state != GroupState::Empty || !g.members.is_empty() || !g.pending.is_empty()
        }) {
            return (Err(BeatError::NotConsumerGroup), None);
        }
        let mut consumer = self.consumer.lock();
        let created = !consumer.contains_key(group);
        if created {
            if beat.member_epoch != 0 {
                return (Err(BeatError::UnknownMember), None);
            }
            if (classic.len() + consumer.len() >= self.config.max_groups
                && !self.make_room(&mut classic))
                || !self.store.has_room_for_group(group)
            {
                return (Err(BeatError::GroupMaxSize), None);
            }
            consumer.insert(group.to_owned(), ConsumerGroup::default());
        }
        drop(classic);
        let Some(g) = consumer.get_mut(group) else {
            return (Err(BeatError::UnknownMember), None);
        };
        if g.deleting {
            // DeleteGroups is writing its tombstone: a member joining now
            // asks again once the group is gone.
            return (
                Err(BeatError::NotStored(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("group {group:?} is being deleted"),
                )),
                None,
            );
        }
        let before = g.held();
        let total = self.held.load(Ordering::Relaxed);
        let limits = Limits {
            session_timeout: self.config.consumer_session_timeout,
            max_size: self.config.max_size,
            max_bytes: self.config.max_bytes.min(
                self.config
                    .max_total_bytes
                    .saturating_sub(total.saturating_sub(before)),
            ),
        };
        let epoch = g.epoch;
        let r = g.heartbeat(beat, Instant::now(), limits, topics);
        if g.epoch != epoch {
            self.rebalances.fetch_add(1, Ordering::Relaxed);
        }
        self.recount(before, g.held());
        if created && r.is_err() && g.is_empty() {
            // A refused first join leaves no group behind.
            let held = g.held();
            consumer.remove(group);
            self.recount(held, 0);
            return (r, None);
        }
        let unstored = unstored_of(g);
        (r, unstored)
    }

    fn recount(&self, before: usize, after: usize) {
        if after >= before {
            self.held.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Starts the sweep that removes consumer-protocol members past their
    /// session or rebalance timeout (once, on the current runtime).
    pub(super) fn start_sweep(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let started = self.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(c) = me.upgrade() else {
                    break;
                };
                c.sweep(Instant::now());
            }
        });
        if started.is_none() {
            self.sweeping.store(false, Ordering::Release);
        }
    }

    /// Removes expired consumer-protocol members (a group left without
    /// members stays, Empty, until it is deleted, a classic member joins
    /// it, or it expires), and starts a store of every group with an
    /// unstored change that no write is storing already.
    pub(super) fn sweep(&self, now: Instant) {
        let mut to_store = Vec::new();
        let mut consumer = self.consumer.lock();
        for (name, g) in consumer.iter_mut() {
            if g.next_deadline().is_some_and(|d| d <= now) {
                let before = g.held();
                for member in g.expire(now) {
                    tracing::info!(group = %name, member, "consumer group member removed: session or rebalance timeout passed");
                    self.rebalances.fetch_add(1, Ordering::Relaxed);
                }
                self.recount(before, g.held());
            }
            // Stored now, or again a second after a failed write (no member
            // may be left to heartbeat), unless a write of it is under way.
            let retry = g
                .store_failed_at
                .is_none_or(|t| now.saturating_duration_since(t) >= STORE_RETRY);
            if let Some(u) = unstored_of(g).filter(|u| retry && u.persist.try_lock().is_ok()) {
                to_store.push((name.clone(), u));
            }
        }
        drop(consumer);
        for (name, u) in to_store {
            self.spawn_store_consumer(name, u);
        }
    }

    /// A commit's check against a consumer-protocol group with members
    /// (of `partitions`; `None` for a fetch of committed offsets, which
    /// must name the member's current epoch): `None` if there is no such
    /// group (the classic rules apply).
    pub(super) fn check_consumer_commit(
        &self,
        group: &str,
        who: &CommitAs,
        partitions: Option<&[(&str, u32)]>,
    ) -> Option<Result<(), ErrorCode>> {
        let consumer = self.consumer.lock();
        let g = consumer.get(group)?;
        if g.is_empty() && who.generation_id < 0 && who.member_id.is_empty() {
            // A commit from outside the group (a tool) while it is empty.
            return Some(Ok(()));
        }
        let checked = match partitions {
            Some(partitions) => g.check_commit(&who.member_id, who.generation_id, partitions),
            None => g.check_fetch(&who.member_id, who.generation_id),
        };
        Some(match checked {
            Ok(()) => Ok(()),
            Err(CommitRefusal::UnknownMember) => Err(ErrorCode::UnknownMemberId),
            Err(CommitRefusal::StaleEpoch) => Err(ErrorCode::StaleMemberEpoch),
        })
    }

    /// An OffsetFetch (v9+) naming `member_id` at `epoch`: for a
    /// consumer-protocol group the member must exist at that epoch
    /// (`UnknownMemberId`, `StaleMemberEpoch`); other groups are not
    /// checked.
    pub fn check_offset_fetch(
        &self,
        group: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ErrorCode> {
        let who = CommitAs {
            generation_id: epoch,
            member_id: member_id.to_owned(),
            group_instance_id: None,
        };
        self.check_consumer_commit(group, &who, None)
            .unwrap_or(Ok(()))
    }

    /// Whether `member_id` is a member of consumer-protocol group `group`
    /// (a static member parked after a temporary leave is not).
    pub fn is_consumer_member(&self, group: &str, member_id: &str) -> bool {
        self.consumer
            .lock()
            .get(group)
            .is_some_and(|g| g.has_member(member_id))
    }

    /// Whether `group` is a consumer-protocol group with members.
    pub(super) fn has_consumer_members(&self, group: &str) -> bool {
        self.consumer
            .lock()
            .get(group)
            .is_some_and(|g| !g.is_empty())
    }

    /// Forgets consumer-protocol group `group` if it has no members (a
    /// classic member takes the name over, or it expired); whether there
    /// was one.
    pub(super) fn forget_empty_consumer_group(&self, group: &str) -> bool {
        let mut consumer = self.consumer.lock();
        match consumer.get(group) {
            Some(g) if g.is_empty() => {
                let held = g.held();
                consumer.remove(group);
                self.recount(held, 0);
                true
            }
            _ => false,
        }
    }

    /// DeleteGroups of consumer-protocol group `group`: `None` if there is
    /// no such group, `Some(Err(NonEmptyGroup))` if it has members, else
    /// the group's write lock, the group marked as being deleted (its
    /// heartbeats are refused, retriably, until
    /// [`Coordinator::end_consumer_delete`]) so that nothing of it is
    /// stored after the tombstone.
    pub(super) fn start_consumer_delete(
        &self,
        group: &str,
    ) -> Option<Result<Arc<tokio::sync::Mutex<()>>, ErrorCode>> {
        let mut consumer = self.consumer.lock();
        let g = consumer.get_mut(group)?;
        if !g.is_empty() {
            return Some(Err(ErrorCode::NonEmptyGroup));
        }
        g.deleting = true;
        Some(Ok(Arc::clone(&g.persist)))
    }

    /// Ends what [`Coordinator::start_consumer_delete`] began: the group
    /// is forgotten if the tombstone was written, else kept as it was.
    pub(super) fn end_consumer_delete(&self, group: &str, deleted: bool) {
        let mut consumer = self.consumer.lock();
        let Some(g) = consumer.get_mut(group) else {
            return;
        };
        g.deleting = false;
        if deleted {
            let held = g.held();
            consumer.remove(group);
            self.recount(held, 0);
        }
    }

    /// Puts consumer-protocol groups restored from their records (name,
    /// record) in place; each member's session starts now.
    pub(super) fn restore_consumer_groups(
        &self,
        records: Vec<(String, crate::group::record::ConsumerGroupRecord)>,
    ) {
        let now = Instant::now();
        let mut consumer = self.consumer.lock();
        for (name, r) in records {
            let g = ConsumerGroup::from_record(r, now, self.config.consumer_session_timeout);
            self.recount(0, g.held());
            if let Some(old) = consumer.insert(name, g) {
                self.recount(old.held(), 0);
            }
        }
        let any = !consumer.is_empty();
        drop(consumer);
        if any {
            self.start_sweep();
        }
    }

    /// The topics the members of consumer-protocol group `group` read, if
    /// it is one.
    pub(super) fn consumer_topics(&self, group: &str) -> Option<Vec<String>> {
        let consumer = self.consumer.lock();
        consumer
            .get(group)
            .map(|g| g.subscribed_topics().into_iter().collect())
    }

    /// Consumer-protocol group `group` described in the classic shape, if
    /// it is one: protocol type `consumer`, its assignor as the protocol,
    /// its epoch as the generation, each member's subscription and
    /// assignment in Kafka's `ConsumerProtocolSubscription` and
    /// `ConsumerProtocolAssignment` (version 0) layouts.
    pub(super) fn describe_consumer(&self, group: &str) -> Option<GroupDescription> {
        let consumer = self.consumer.lock();
        let g = consumer.get(group)?;
        let assignor = g.assignor();
        Some(GroupDescription {
            error: ErrorCode::None,
            group: group.to_owned(),
            state: consumer_state(g),
            consumer_protocol: true,
            generation_id: g.epoch,
            protocol_type: "consumer".into(),
            protocol: assignor.into(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: subscription_bytes(&m.topic_names),
                    assignment: assignment_bytes(g, &m.assigned),
                })
                .collect(),
        })
    }

    /// Consumer-protocol group `group` described as ConsumerGroupDescribe
    /// tells it, if it is one (Empty when its members left).
    pub fn view_consumer(&self, group: &str) -> Option<GroupView> {
        self.consumer.lock().get(group).map(ConsumerGroup::view)
    }

    /// Every consumer-protocol group, listed.
    pub(super) fn list_consumer(&self) -> Vec<GroupListing> {
        let consumer = self.consumer.lock();
        consumer
            .iter()
            .map(|(name, g)| GroupListing {
                group: name.clone(),
                protocol_type: "consumer".into(),
                state: consumer_state(g),
                consumer_protocol: true,
            })
            .collect()
    }

    /// Forgets the consumer-protocol groups `owned` selects (this node no
    /// longer coordinates them): their members' next heartbeats here are
    /// `NOT_COORDINATOR`, and they join again at the new coordinator.
    pub(super) fn drop_consumer_groups(&self, owned: &dyn Fn(&str) -> bool) {
        let mut consumer = self.consumer.lock();
        let mut freed = 0;
        consumer.retain(|name, g| {
            let keep = !owned(name);
            if !keep {
                freed += g.held();
            }
            keep
        });
        self.recount(freed, 0);
    }

    /// Counts of consumer-protocol groups for metrics: (state, members).
    pub(super) fn consumer_stats(&self) -> Vec<(String, GroupState, usize)> {
        let consumer = self.consumer.lock();
        consumer
            .iter()
            .map(|(name, g)| (name.clone(), consumer_state(g), g.members.len()))
            .collect()
    }

    /// The heartbeat interval consumer-protocol members are told.
    pub fn consumer_heartbeat_interval(&self) -> Duration {
        self.config.consumer_heartbeat_interval
    }
}

/// A change of a consumer-protocol group not stored yet: the group's
/// write lock (which also tells whether the group held now is the same
/// one) and the revision to store.
#[derive(Debug, Clone)]
pub struct Unstored {
    persist: Arc<tokio::sync::Mutex<()>>,
    revision: u64,
}

fn unstored_of(g: &ConsumerGroup) -> Option<Unstored> {
    g.unstored().then(|| Unstored {
        persist: Arc::clone(&g.persist),
        revision: g.revision(),
    })
}

/// A consumer group's state under the classic names: `Stable` when every
/// member holds its target, else `CompletingRebalance` (assignments being
/// handed over; Kafka's `Reconciling`, the name it is shown with:
/// [`GroupState::kafka_name`]).
fn consumer_state(g: &ConsumerGroup) -> GroupState {
    if g.is_empty() {
        GroupState::Empty
    } else if g.is_stable() {
        GroupState::Stable
    } else {
        GroupState::CompletingRebalance
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
}

/// Kafka's `ConsumerProtocolSubscription` v0: the topics, no user data.
fn subscription_bytes(topics: &[String]) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        put_str(&mut out, t);
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}

/// Kafka's `ConsumerProtocolAssignment` v0: partitions by topic name, no
/// user data.
fn assignment_bytes(g: &ConsumerGroup, a: &Assignment) -> Vec<u8> {
    let named = g.named(a);
    let mut out = 0i16.to_be_bytes().to_vec();
    out.extend_from_slice(&(named.len() as i32).to_be_bytes());
    for (topic, partitions) in named {
        put_str(&mut out, &topic);
        out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in partitions {
            out.extend_from_slice(&(p as i32).to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}
