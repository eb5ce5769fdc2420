//! The coordinator: every group's state behind one lock (never held across
//! an await or I/O), operations that answer at once or hand back a future
//! completed by a later event, and tokio timers for session expiry,
//! rebalance timeouts and the initial rebalance delay.
//!
//! Writes to the offsets log run on the blocking pool, one group at a time
//! (each group's `persist` lock), and always store the group's latest state.
//!
//! Here: opening, JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the
//! rebalance itself; `sync`: SyncGroup and storing a generation; `admin`:
//! commit fencing, describe, list, delete;
//! `timers`: session expiry, rebalance timeouts, stores of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use sluice_protocol::wire::ErrorCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

mod admin;
mod consumer;
mod expiry;
mod load;
mod sync;
mod timers;

use super::consumer::ConsumerGroup;
use super::record::StoredGroup;
use super::state::{Group, InitialDelay, Member, protocols_bytes};
use super::types::*;
use crate::offsets::OffsetStore;

/// The coordinator's settings (from the broker settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// Shortest session timeout accepted.
    pub min_session_timeout: Duration,
    /// Longest session timeout accepted.
    pub max_session_timeout: Duration,
    /// Most members (and handed-out member ids) of a group.
    pub max_size: usize,
    /// The first rebalance of an Empty group waits this long for more members.
    pub initial_rebalance_delay: Duration,
    /// Most groups held in memory; a join that would create another is
    /// refused with `TooManyCommittedOffsets` (groups count against
    /// `max_committed_offsets`, as their stored records do).
    pub max_groups: usize,
    /// Most bytes of protocol names, metadata and assignments held for one
    /// group's members: a join or a leader's assignments past it are
    /// refused with `GroupMaxSizeReached` (it bounds the group's stored
    /// record and every answer that carries its members).
    pub max_bytes: usize,
    /// The same over all groups.
    pub max_total_bytes: usize,
    /// Session timeout of consumer-protocol (KIP-848) members.
    pub consumer_session_timeout: Duration,
    /// Heartbeat interval of consumer-protocol members.
    pub consumer_heartbeat_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(1800),
            max_size: 1000,
            initial_rebalance_delay: Duration::from_millis(500),
            max_groups: 100_000,
            max_bytes: 16 << 20,
            max_total_bytes: 512 << 20,
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval: Duration::from_secs(5),
        }
    }
}

/// Counts over all groups, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups in each state, in [`GroupState::ALL`] order.
    pub by_state: [u64; 5],
    /// Members over all groups.
    pub members: u64,
    /// Rebalances started since the broker started.
    pub rebalances: u64,
}

/// The group coordinator. Thread-safe; its futures never block a thread.
#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    store: Arc<OffsetStore>,
    groups: Mutex<HashMap<String, Group>>,
    me: Weak<Coordinator>,
    /// Member ids are `<client id>-<boot>-<n>`: unique across restarts.
    boot: u64,
    next_id: AtomicU64,
    next_incarnation: AtomicU64,
    rebalances: AtomicU64,
    /// Bytes all groups hold from clients ([`Group::held_bytes`] as each
    /// last counted them).
    held: Arc<AtomicUsize>,
    /// Expiry timers of restored members, when opened outside a runtime.
    deferred: Mutex<Vec<(String, String)>>,
    /// Groups of Kafka's consumer group protocol (KIP-848), Empty ones
    /// included until deleted or taken over by a classic member. Locked
    /// after `groups` when both are held.
    consumer: Mutex<HashMap<String, ConsumerGroup>>,
    /// Whether the consumer groups' expiry sweep runs.
    sweeping: std::sync::atomic::AtomicBool,
    /// Groups created by a join, oldest first (some since removed or past
    /// their first member; at most twice the groups held, or 2048): when
    /// `max_groups` are held, the oldest that
    /// still holds only handed-out member ids makes room for a new one
    /// (see [`Coordinator::make_room`]). Locked after `groups`.
    created: Mutex<std::collections::VecDeque<String>>,
}

/// What a locked step of an operation decided.
enum Step<T> {
    Done(T),
    Wait(oneshot::Receiver<T>),
}

impl Coordinator {
    /// A coordinator over `store`, with every stored group restored: a
    /// stored generation is Stable again with its members, whose sessions
    /// start now. Blocking (reads the store's memory only).
    pub fn open(config: GroupConfig, store: Arc<OffsetStore>) -> Arc<Coordinator> {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let now = Instant::now();
        let mut incarnation = 0u64;
        let mut groups = HashMap::new();
        let mut consumer_groups = Vec::new();
        let held = Arc::new(AtomicUsize::new(0));
        for (name, bytes) in store.group_records() {
            match StoredGroup::decode(&bytes) {
                Ok(StoredGroup::Classic(r)) => {
                    groups.insert(name, Group::from_record(r, now, &mut incarnation, &held));
                }
                Ok(StoredGroup::Consumer(r)) => consumer_groups.push((name, r)),
                Err(reason) => {
                    tracing::warn!(group = %name, reason, "skipping undecodable group metadata")
                }
            }
        }
        let deferred: Vec<(String, String)> = groups
            .iter()
            .flat_map(|(g, group)| group.members.keys().map(move |m| (g.clone(), m.clone())))
            .collect();
        let c = Arc::new_cyclic(|me| Coordinator {
            config,
            store,
            groups: Mutex::new(groups),
            me: me.clone(),
            boot,
            next_id: AtomicU64::new(0),
            next_incarnation: AtomicU64::new(incarnation),
            rebalances: AtomicU64::new(0),
            held,
            deferred: Mutex::new(deferred),
            consumer: Mutex::new(HashMap::new()),
            sweeping: std::sync::atomic::AtomicBool::new(false),
            created: Mutex::new(std::collections::VecDeque::new()),
        });
        c.restore_consumer_groups(consumer_groups);
        c.start_deferred();
        c
    }

    /// Starts the expiry timers of restored members (deferred while there
    /// is no tokio runtime: a coordinator opened outside one starts them at
    /// its first request).
    pub(super) fn start_deferred(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if !self.consumer.lock().is_empty() {
            self.start_sweep();
        }
        let deferred = std::mem::take(&mut *self.deferred.lock());
        if deferred.is_empty() {
            return;
        }
        let mut groups = self.groups.lock();
        for (g, m) in deferred {
            if let Some(group) = groups.get_mut(&g) {
                self.arm_expiry(&g, group, &m);
            }
        }
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let prefix: String = client_id.chars().take(64).collect();
        let prefix = if prefix.is_empty() { "member" } else { &prefix };
        format!("{prefix}-{:x}-{n}", self.boot)
    }

    /// Counts for metrics: the groups [`Coordinator::list`] lists (a group
    /// of the consumer protocol in place of a classic one of its name, a
    /// group with only committed offsets as `Empty`) and the dead ones.
    pub fn stats(&self) -> GroupStats {
        let groups = self.groups.lock();
        let mut s = GroupStats {
            rebalances: self.rebalances.load(Ordering::Relaxed),
            ..GroupStats::default()
        };
        let mut count = |state: GroupState, n: u64| {
            if let Some(i) = GroupState::ALL.iter().position(|x| *x == state) {
                s.by_state[i] += n;
            }
        };
        let consumer = self.consumer_stats();
        let consumer_names: std::collections::HashSet<&str> =
            consumer.iter().map(|(name, _, _)| name.as_str()).collect();
        let mut members = 0;
        for (name, g) in groups.iter() {
            if !consumer_names.contains(name.as_str()) {
                count(g.state, 1);
                members += g.members.len() as u64;
            }
        }
        for (_, state, n) in &consumer {
            count(*state, 1);
            members += *n as u64;
        }
        let offsets_only = self.store.count_groups_with_offsets(|name| {
            groups.contains_key(name) || consumer_names.contains(name)
        });
        drop(groups);
        count(GroupState::Empty, offsets_only as u64);
        s.members = members;
        s
    }

    /// JoinGroup: completes when the generation forms, or at once with an
    /// error (see the module docs of [`crate::group`]).
    pub async fn join(&self, req: JoinGroup) -> JoinResult {
        self.start_deferred();
        let member_id = req.member_id.clone();
        match self.join_locked(req) {
            Step::Done(r) => r,
            Step::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(ErrorCode::UnknownMemberId, member_id)),
        }
    }

    /// A join's locked step; the group's bytes are counted again after it.
    fn join_locked(&self, req: JoinGroup) -> Step<JoinResult> {
        let name = req.group.clone();
        let mut groups = self.groups.lock();
        let step = self.join_step(&mut groups, req);
        if let Some(g) = groups.get_mut(&name) {
            g.recharge();
        }
        step
    }

    /// Removes the oldest group that holds nothing but member ids handed
    /// out with `MemberIdRequired` (no member, no generation, nothing
    /// stored), so that clients which ask for member ids and never join —
    /// by mistake or to fill the table — cannot keep new groups out for
    /// their session timeout. A client whose id goes with it rejoins
    /// without one (`UnknownMemberId`). Whether room was made.
    pub(super) fn make_room(&self, groups: &mut HashMap<String, Group>) -> bool {
        let mut created = self.created.lock();
        let only_handed_out = |g: &Group| {
            g.state == GroupState::Empty
                && g.generation == 0
                && g.members.is_empty()
                && !g.pending.is_empty()
        };
        // Names of groups gone or grown up are dropped on the way (the
        // list is kept in proportion to the groups as groups are created).
        while let Some(name) = created.pop_front() {
            if groups.get(&name).is_some_and(only_handed_out) {
                if let Some(mut g) = groups.remove(&name) {
                    for (_, timer) in g.pending.drain() {
                        if let Some(t) = timer {
                            t.abort();
                        }
                    }
                }
                tracing::debug!(group = %name, "group table full: forgot a group that only handed out member ids");
                return true;
            }
        }
        false
    }

    fn join_step(&self, groups: &mut HashMap<String, Group>, req: JoinGroup) -> Step<JoinResult> {
        let fail = |code, id: &str| Step::Done(JoinResult::error(code, id));
        if !crate::group::valid_group_name(&req.group) {
            return fail(ErrorCode::InvalidGroupName, &req.member_id);
        }
        if req.session_timeout < self.config.min_session_timeout
            || req.session_timeout > self.config.max_session_timeout
        {
            return fail(ErrorCode::InvalidSessionTimeout, &req.member_id);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return fail(ErrorCode::InconsistentGroupProtocol, &req.member_id);
        }
        // What the group keeps and lists must fit a Kafka string (the
        // native protocol could carry longer ones): otherwise every Kafka
        // client's listing or description of the group would fail.
        let too_long = |s: &str| s.len() > MAX_KEPT_STRING;
        if too_long(&req.protocol_type)
            || req.group_instance_id.as_deref().is_some_and(too_long)
            || req.protocols.iter().any(|(p, _)| too_long(p))
        {
            return fail(ErrorCode::InvalidRequest, &req.member_id);
        }
        if self.has_consumer_members(&req.group) {
            // Members of Kafka's consumer group protocol hold it.
            return fail(ErrorCode::InconsistentGroupProtocol, &req.member_id);
        }
        // An empty consumer-protocol group becomes a classic one.
        self.forget_empty_consumer_group(&req.group);
        let name = req.group.clone();
        let created_now = !groups.contains_key(&req.group);
        if created_now {
            if !req.member_id.is_empty() {
                return fail(ErrorCode::UnknownMemberId, &req.member_id);
            }
            if (groups.len() >= self.config.max_groups && !self.make_room(groups))
                || !self.store.has_room_for_group(&req.group)
            {
                return fail(ErrorCode::TooManyCommittedOffsets, "");
            }
            groups.insert(req.group.clone(), Group::new(&self.held));
            let mut created = self.created.lock();
            created.push_back(req.group.clone());
            // Names of groups since removed are dropped now and then, so
            // the list stays in proportion to the groups held.
            if created.len() > 2 * groups.len().max(1024) {
                created.retain(|n| groups.contains_key(n));
            }
        }
        // The member's protocols replace those it joined with before.
        let before = groups
            .get(&req.group)
            .and_then(|g| g.members.get(&req.member_id))
            .map_or(0, |m| protocols_bytes(&m.protocols));
        if let Err(code) =
            self.check_bytes(groups, &req.group, before, protocols_bytes(&req.protocols))
        {
            if created_now {
                // Nothing holds the group made for this join: it goes
                // again rather than stay listed (and counted) forever.
                groups.remove(&req.group);
            }
            return fail(code, &req.member_id);
        }
        let Some(g) = groups.get_mut(&req.group) else {
            return fail(ErrorCode::UnknownMemberId, &req.member_id);
        };
        if g.state == GroupState::Dead {
            return fail(ErrorCode::UnknownMemberId, &req.member_id);
        }
        if !g.accepts(&req.protocol_type, &req.protocols) {
            return fail(ErrorCode::InconsistentGroupProtocol, &req.member_id);
        }
        if req.member_id.is_empty() {
            let new_id = self.new_member_id(&req.client_id);
            if let Some(instance) = &req.group_instance_id {
                if let Some(old) = g.static_members.get(instance).cloned() {
                    return self.replace_static_member(&name, g, &old, new_id, req);
                }
                return self.add_member(&name, g, new_id, req);
            }
            if req.require_known_member_id {
                if g.members.len() + g.pending.len() >= self.config.max_size {
                    return fail(ErrorCode::GroupMaxSizeReached, "");
                }
                let timer = self.spawn_pending_expiry(
                    req.group.clone(),
                    new_id.clone(),
                    req.session_timeout,
                );
                g.pending.insert(new_id.clone(), timer);
                return fail(ErrorCode::MemberIdRequired, &new_id);
            }
            return self.add_member(&name, g, new_id, req);
        }
        if g.take_pending(&req.member_id) {
            let id = req.member_id.clone();
            return self.add_member(&name, g, id, req);
        }
        if let Some(code) = fenced(g, &req.member_id, req.group_instance_id.as_deref()) {
            return fail(code, &req.member_id);
        }
        let group = req.group.clone();
        let id = req.member_id.clone();
        let Some(m) = g.members.get_mut(&id) else {
            return fail(ErrorCode::UnknownMemberId, &id);
        };
        let same = m.protocols == req.protocols;
        let is_leader = g.leader.as_deref() == Some(id.as_str());
        match g.state {
            GroupState::CompletingRebalance if same => {
                m.deadline = Instant::now() + m.session_timeout;
                Step::Done(g.join_result(&id))
            }
            GroupState::Stable if same && !is_leader => {
                m.deadline = Instant::now() + m.session_timeout;
                Step::Done(g.join_result(&id))
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => {
                let (tx, rx) = oneshot::channel();
                update_member(m, &req, Some(tx));
                if g.state == GroupState::PreparingRebalance {
                    self.maybe_complete_join(&group, g);
                } else {
                    self.prepare_rebalance(&group, g);
                }
                Step::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => fail(ErrorCode::UnknownMemberId, &id),
        }
    }

    /// Whether group `name` may hold `add` bytes in place of `release`
    /// ([`GroupConfig::max_bytes`], [`GroupConfig::max_total_bytes`]): the
    /// group's own are counted afresh, the others' as last counted.
    pub(super) fn check_bytes(
        &self,
        groups: &HashMap<String, Group>,
        name: &str,
        release: usize,
        add: usize,
    ) -> Result<(), ErrorCode> {
        if add <= release {
            return Ok(());
        }
        let grow = add - release;
        let (group, charged) = groups
            .get(name)
            .map_or((0, 0), |g| (g.held_bytes(), g.charge.bytes()));
        let limit = if group + grow > self.config.max_bytes {
            Some(("group_max_bytes", group, self.config.max_bytes))
        } else {
            let total = self.held.load(Ordering::Relaxed).saturating_sub(charged) + group;
            (total + grow > self.config.max_total_bytes).then_some((
                "groups_max_bytes",
                total,
                self.config.max_total_bytes,
            ))
        };
        match limit {
            None => Ok(()),
            Some((setting, held, limit)) => {
                tracing::warn!(
                    group = name,
                    held,
                    more = grow,
                    limit,
                    "group refused: members' metadata and assignments would pass {setting}"
                );
                Err(ErrorCode::GroupMaxSizeReached)
            }
        }
    }

    fn add_member(
        &self,
        name: &str,
        g: &mut Group,
        id: String,
        req: JoinGroup,
    ) -> Step<JoinResult> {
        if g.members.len() >= self.config.max_size {
            return Step::Done(JoinResult::error(ErrorCode::GroupMaxSizeReached, id));
        }
        if g.members.is_empty() {
            g.protocol_type = Some(req.protocol_type.clone());
        }
        let (tx, rx) = oneshot::channel();
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed) + 1;
        let member = Member {
            id: id.clone(),
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocols: req.protocols,
            assignment: Vec::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            deadline: Instant::now() + req.session_timeout,
            seq: g.next_seq,
            incarnation,
            expiry: None,
        };
        g.next_seq += 1;
        if let Some(i) = &member.instance_id {
            g.static_members.insert(i.clone(), id.clone());
        }
        if g.leader.is_none() {
            g.leader = Some(id.clone());
        }
        g.members.insert(id.clone(), member);
        self.arm_expiry(name, g, &id);
        if g.state == GroupState::PreparingRebalance {
            if let Some(d) = g.initial_delay.as_mut() {
                d.joined = true;
            } else {
                self.maybe_complete_join(name, g);
            }
        } else {
            self.prepare_rebalance(name, g);
        }
        Step::Wait(rx)
    }

    /// A static member rejoins without its member id (it restarted): it
    /// takes a new id and the old one is fenced. In a Stable group whose
    /// protocol the rejoined member's protocols would not change, it keeps
    /// its assignment and no rebalance starts, as in Kafka: the metadata
    /// bytes themselves may differ (a restarted client no longer names its
    /// generation or owned partitions in them). The answer names the
    /// leader as it was before the member's id changed, so a restarted
    /// leader acts as a follower and reads its kept assignment.
    fn replace_static_member(
        &self,
        name: &str,
        g: &mut Group,
        old_id: &str,
        new_id: String,
        req: JoinGroup,
    ) -> Step<JoinResult> {
        let Some(mut m) = g.members.remove(old_id) else {
            return self.add_member(name, g, new_id, req);
        };
        m.fail_waiters(ErrorCode::FencedInstanceId);
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed) + 1;
        m.id = new_id.clone();
        m.incarnation = incarnation;
        if let Some(i) = &req.group_instance_id {
            g.static_members.insert(i.clone(), new_id.clone());
        }
        let leader_before = g.leader.clone();
        if g.leader.as_deref() == Some(old_id) {
            g.leader = Some(new_id.clone());
        }
        tracing::info!(group = name, old = old_id, new = %new_id, "static member rejoined");
        update_member(&mut m, &req, None);
        g.members.insert(new_id.clone(), m);
        g.recharge();
        self.arm_expiry(name, g, &new_id);
        if g.state == GroupState::Stable
            && g.protocol.is_some()
            && g.select_protocol() == g.protocol
        {
            let mut r = g.join_result(&new_id);
            r.members.clear();
            r.leader = leader_before.unwrap_or_default();
            self.spawn_persist(name.to_owned());
            return Step::Done(r);
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = g.members.get_mut(&new_id) {
            m.join_waiter = Some(tx);
        }
        if g.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(name, g);
        } else {
            // Stable with a protocol change, or CompletingRebalance: the
            // leader may be assigning to the old id, so assign again.
            self.prepare_rebalance(name, g);
        }
        Step::Wait(rx)
    }

    /// Starts a rebalance: members must rejoin within the rebalance timeout
    /// (an Empty group first waits the initial delay for more members).
    pub(super) fn prepare_rebalance(&self, name: &str, g: &mut Group) {
        if g.state == GroupState::CompletingRebalance {
            g.pending_assignments = None;
            for m in g.members.values_mut() {
                m.assignment.clear();
            }
            g.recharge();
            for m in g.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    // Answered: its session starts again.
                    m.deadline = Instant::now() + m.session_timeout;
                    let _ = w.send(SyncResult::error(ErrorCode::RebalanceInProgress));
                }
            }
        }
        let delay = self.config.initial_rebalance_delay;
        let from_empty = g.state == GroupState::Empty;
        g.state = GroupState::PreparingRebalance;
        g.epoch += 1;
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        tracing::info!(group = name, generation = g.generation, "rebalance started");
        if from_empty && !delay.is_zero() {
            g.initial_delay = Some(InitialDelay {
                remaining: g.rebalance_timeout().saturating_sub(delay),
                joined: false,
            });
            self.arm_rebalance_timer(name, g, delay);
        } else {
            g.initial_delay = None;
            let timeout = g.rebalance_timeout();
            self.arm_rebalance_timer(name, g, timeout);
            self.maybe_complete_join(name, g);
        }
    }

    pub(super) fn maybe_complete_join(&self, name: &str, g: &mut Group) {
        if g.state == GroupState::PreparingRebalance && g.initial_delay.is_none() && g.all_joined()
        {
            self.complete_join(name, g);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are
    /// removed, the generation advances, and every waiting join is
    /// answered (the leader with everyone's metadata).
    pub(super) fn complete_join(&self, name: &str, g: &mut Group) {
        if let Some(t) = g.rebalance_timer.take() {
            t.abort();
        }
        g.rebalance_arm += 1;
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = name, member = %id, "member did not rejoin in time; removed");
            remove_member(g, &id, ErrorCode::UnknownMemberId);
        }
        // The leader must be a member that rejoined: only it gets the
        // members' metadata to assign. A static leader that has not
        // rejoined (it is restarting) hands over to one that has; when no
        // member rejoined, there is no one to assign, so the join phase
        // waits another rebalance timeout (their sessions run meanwhile)
        // instead of forming a generation no one can complete, as Kafka's
        // coordinator does.
        if !g.members.is_empty() {
            let joined =
                |g: &Group, id: &str| g.members.get(id).is_some_and(|m| m.join_waiter.is_some());
            if !g.leader.as_deref().is_some_and(|l| joined(g, l)) {
                let first_joined = g
                    .members_in_order()
                    .into_iter()
                    .find(|m| m.join_waiter.is_some())
                    .map(|m| m.id.clone());
                match first_joined {
                    Some(id) => g.leader = Some(id),
                    None => {
                        tracing::warn!(
                            group = name,
                            members = g.members.len(),
                            "no member rejoined in time; the join phase goes on"
                        );
                        g.initial_delay = None;
                        let timeout = g.rebalance_timeout();
                        self.arm_rebalance_timer(name, g, timeout);
                        return;
                    }
                }
            }
        }
        g.generation = g.generation.wrapping_add(1).max(1);
        g.initial_delay = None;
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.protocol = None;
            g.leader = None;
            tracing::info!(group = name, generation = g.generation, "group is empty");
            self.spawn_persist(name.to_owned());
            return;
        }
        if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
            g.leader = g.members_in_order().first().map(|m| m.id.clone());
        }
        g.protocol = g.select_protocol();
        g.state = GroupState::CompletingRebalance;
        let now = Instant::now();
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let result = g.join_result(&id);
            if let Some(m) = g.members.get_mut(&id) {
                m.deadline = now + m.session_timeout;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(result);
                }
            }
        }
        let timeout = g.rebalance_timeout();
        self.arm_rebalance_timer(name, g, timeout);
        tracing::info!(
            group = name,
            generation = g.generation,
            members = g.members.len(),
            "generation formed; awaiting the leader's assignment"
        );
    }

    /// A member left or expired: the others rebalance.
    pub(super) fn member_gone(&self, name: &str, g: &mut Group, id: &str, code: ErrorCode) {
        remove_member(g, id, code);
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(name, g),
            GroupState::PreparingRebalance => self.maybe_complete_join(name, g),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Heartbeat: `None`, or why the member must rejoin.
    pub fn heartbeat(&self, req: &Heartbeat) -> ErrorCode {
        self.start_deferred();
        if !crate::group::valid_group_name(&req.group) {
            return ErrorCode::InvalidGroupName;
        }
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(&req.group) else {
            return ErrorCode::UnknownMemberId;
        };
        if let Some(code) = fenced(g, &req.member_id, req.group_instance_id.as_deref()) {
            return code;
        }
        let state = g.state;
        let generation = g.generation;
        let Some(m) = g.members.get_mut(&req.member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if req.generation_id != generation {
            return ErrorCode::IllegalGeneration;
        }
        match state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::PreparingRebalance => {
                m.deadline = Instant::now() + m.session_timeout;
                ErrorCode::RebalanceInProgress
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.deadline = Instant::now() + m.session_timeout;
                ErrorCode::None
            }
        }
    }

    /// LeaveGroup.
    pub fn leave(&self, group: &str, members: Vec<MemberRef>) -> LeaveResult {
        self.start_deferred();
        if !crate::group::valid_group_name(group) {
            return LeaveResult {
                error: ErrorCode::InvalidGroupName,
                members: members
                    .into_iter()
                    .map(|m| (m, ErrorCode::InvalidGroupName))
                    .collect(),
            };
        }
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            // As Kafka: each member is unknown, the request itself is
            // fine (an admin removing members learns it per member).
            return LeaveResult {
                error: ErrorCode::None,
                members: members
                    .into_iter()
                    .map(|m| (m, ErrorCode::UnknownMemberId))
                    .collect(),
            };
        };
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let code = if let Some(instance) = &m.group_instance_id {
                match g.static_members.get(instance).cloned() {
                    None => ErrorCode::UnknownMemberId,
                    Some(id) if !m.member_id.is_empty() && id != m.member_id => {
                        ErrorCode::FencedInstanceId
                    }
                    Some(id) => {
                        tracing::info!(group, member = %id, "static member left");
                        self.member_gone(group, g, &id, ErrorCode::UnknownMemberId);
                        ErrorCode::None
                    }
                }
            } else if g.take_pending(&m.member_id) {
                self.maybe_complete_join(group, g);
                ErrorCode::None
            } else if g.members.contains_key(&m.member_id) {
                tracing::info!(group, member = %m.member_id, "member left");
                self.member_gone(group, g, &m.member_id, ErrorCode::UnknownMemberId);
                ErrorCode::None
            } else {
                ErrorCode::UnknownMemberId
            };
            out.push((m, code));
        }
        LeaveResult {
            error: ErrorCode::None,
            members: out,
        }
    }
}

/// The longest protocol type, protocol name or static member id a group
/// keeps: Kafka's longest string.
const MAX_KEPT_STRING: usize = i16::MAX as usize;

/// The code a request of `member_id` with `instance` gets if the static id
/// is held by another member id, or by no member (as Kafka's
/// `validateMember`: a static id the group does not have is
/// `UNKNOWN_MEMBER_ID`, also for a member known by its member id, so that
/// the client rejoins; it was taken from a dynamic member as if it had none).
fn fenced(g: &Group, member_id: &str, instance: Option<&str>) -> Option<ErrorCode> {
    let instance = instance?;
    match g.static_members.get(instance) {
        Some(id) if id != member_id => Some(ErrorCode::FencedInstanceId),
        Some(_) => None,
        None => Some(ErrorCode::UnknownMemberId),
    }
}

fn update_member(m: &mut Member, req: &JoinGroup, waiter: Option<oneshot::Sender<JoinResult>>) {
    m.protocols = req.protocols.clone();
    m.session_timeout = req.session_timeout;
    m.rebalance_timeout = req.rebalance_timeout;
    m.client_id = req.client_id.clone();
    m.client_host = req.client_host.clone();
    m.deadline = Instant::now() + req.session_timeout;
    if waiter.is_some() {
        m.join_waiter = waiter;
    }
}

/// Removes a member, answering its waiting join or sync with `code`.
fn remove_member(g: &mut Group, id: &str, code: ErrorCode) {
    let Some(mut m) = g.members.remove(id) else {
        return;
    };
    g.recharge();
    m.fail_waiters(code);
    if let Some(i) = &m.instance_id {
        if g.static_members.get(i).map(String::as_str) == Some(id) {
            g.static_members.remove(i);
        }
    }
    if g.leader.as_deref() == Some(id) {
        g.leader = g.members_in_order().first().map(|m| m.id.clone());
    }
}

trait WithMessage {
    fn with(self, message: String) -> (ErrorCode, String);
}

impl WithMessage for ErrorCode {
    fn with(self, message: String) -> (ErrorCode, String) {
        (self, message)
    }
}
