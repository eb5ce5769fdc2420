//! One group's state as the coordinator holds it in memory: its members,
//! generation, protocol and leader, and the pure rules over them (protocol
//! choice, what is stored, what is described). No locks, no timers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::record::{GroupRecord, MemberRecord};
use super::types::{
    GroupDescription, GroupState, JoinResult, JoinedMember, MemberDescription, SyncResult,
};
use sluice_protocol::wire::ErrorCode;

/// A member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    /// `(name, metadata)`, preferred first.
    pub(crate) protocols: Vec<(String, Vec<u8>)>,
    /// Assignment in the current generation (empty until Stable).
    pub(crate) assignment: Vec<u8>,
    /// Set while a JoinGroup of this member waits for the generation.
    pub(crate) join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// Set while a SyncGroup of this member waits for the assignment.
    pub(crate) sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// The member is expired if not heard from by then (unless it waits in
    /// a join or sync).
    pub(crate) deadline: Instant,
    /// Join order within the group (the leader is the earliest left).
    pub(crate) seq: u64,
    /// Identifies this member object for its expiry timer.
    pub(crate) incarnation: u64,
    /// Its expiry timer, stopped when the member goes.
    pub(crate) expiry: Option<tokio::task::AbortHandle>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(t) = self.expiry.take() {
            t.abort();
        }
    }
}

/// Bytes of protocol names and metadata, as the member budget counts them.
pub(crate) fn protocols_bytes(protocols: &[(String, Vec<u8>)]) -> usize {
    protocols.iter().map(|(n, m)| n.len() + m.len()).sum()
}

impl Member {
    /// Bytes it holds from clients: protocol names and metadata, and its
    /// assignment.
    pub(crate) fn held_bytes(&self) -> usize {
        protocols_bytes(&self.protocols) + self.assignment.len()
    }

    /// Its metadata for `protocol` (empty if it has none).
    pub(crate) fn metadata(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Whether a join or sync of it is waiting, with its caller still
    /// there (then it is not expired).
    pub(crate) fn waits(&self) -> bool {
        self.join_waiter.as_ref().is_some_and(|w| !w.is_closed())
            || self.sync_waiter.as_ref().is_some_and(|w| !w.is_closed())
    }

    /// Answers a waiting join and sync with `code`.
    pub(crate) fn fail_waiters(&mut self, code: ErrorCode) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinResult::error(code, self.id.clone()));
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncResult::error(code));
        }
    }
}

/// How an Empty group's first rebalance waits for more members.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitialDelay {
    /// Rebalance-timeout budget left after the current delay.
    pub(crate) remaining: Duration,
    /// Whether a member joined during the current delay.
    pub(crate) joined: bool,
}

/// Bytes a group holds from clients, counted in the coordinator's total
/// while the group exists: released when it is dropped, so the total never
/// keeps a group that is gone.
#[derive(Debug)]
pub(crate) struct Charge {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl Charge {
    fn new(total: &Arc<AtomicUsize>) -> Charge {
        Charge {
            total: Arc::clone(total),
            bytes: 0,
        }
    }

    /// Bytes counted for the group now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn set(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            self.total.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            self.total.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: HashMap<String, Member>,
    /// Static id → member id.
    pub(crate) static_members: HashMap<String, String>,
    /// Member ids handed out with `MemberIdRequired`, not yet joined,
    /// with the timer that forgets each.
    pub(crate) pending: HashMap<String, Option<tokio::task::AbortHandle>>,
    /// Counts rebalances; a rebalance timer acts only on its own.
    pub(crate) epoch: u64,
    pub(crate) initial_delay: Option<InitialDelay>,
    /// The leader's assignments while they are being stored.
    pub(crate) pending_assignments: Option<HashMap<String, Vec<u8>>>,
    /// Serialises the group's writes to the offsets log.
    pub(crate) persist: Arc<tokio::sync::Mutex<()>>,
    /// The running rebalance's timer, stopped when another starts.
    pub(crate) rebalance_timer: Option<tokio::task::AbortHandle>,
    /// Counts the rebalance timers armed (and disarmed): a timer acts only
    /// while it is the latest. Aborting one does not stop it once it has
    /// woken and waits for the groups' lock.
    pub(crate) rebalance_arm: u64,
    pub(crate) next_seq: u64,
    /// Its [`Group::held_bytes`] as last counted ([`Group::recharge`]).
    pub(crate) charge: Charge,
}

impl Group {
    /// Bytes it holds from clients: its members' protocols and assignments,
    /// and assignments waiting to be stored.
    pub(crate) fn held_bytes(&self) -> usize {
        let members: usize = self.members.values().map(Member::held_bytes).sum();
        let pending: usize = self
            .pending_assignments
            .iter()
            .flat_map(|p| p.values())
            .map(Vec::len)
            .sum();
        members + pending
    }

    /// Counts [`Group::held_bytes`] in the coordinator's total again:
    /// after every change of its members' protocols or assignments.
    pub(crate) fn recharge(&mut self) {
        let bytes = self.held_bytes();
        self.charge.set(bytes);
    }

    /// A new group: Empty, generation 0, its bytes counted in `total`.
    pub(crate) fn new(total: &Arc<AtomicUsize>) -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            epoch: 0,
            initial_delay: None,
            pending_assignments: None,
            persist: Arc::new(tokio::sync::Mutex::new(())),
            rebalance_timer: None,
            rebalance_arm: 0,
            next_seq: 0,
            charge: Charge::new(total),
        }
    }

    /// Protocol names every member supports.
    fn candidates(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut names: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            names.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        names
    }

    /// Whether a member of `protocol_type` offering `protocols` can join:
    /// always for a group without members, else the type must match and
    /// one protocol must be supported by everyone.
    pub(crate) fn accepts(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidates()
                .iter()
                .any(|c| protocols.iter().any(|(p, _)| p == c))
    }

    /// The protocol of the next generation: among those all members
    /// support, the one most members prefer (ties: the leader's order).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let order: Vec<&str> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .map(|m| m.protocols.iter().map(|(p, _)| p.as_str()).collect())
            .unwrap_or_default();
        let rank = |p: &str| order.iter().position(|o| *o == p).unwrap_or(usize::MAX);
        candidates
            .iter()
            .map(String::as_str)
            .max_by(|a, b| {
                let va = votes.get(a).copied().unwrap_or(0);
                let vb = votes.get(b).copied().unwrap_or(0);
                va.cmp(&vb).then(rank(b).cmp(&rank(a)))
            })
            .map(str::to_owned)
    }

    /// Forgets a handed-out member id (stopping its timer); whether it was
    /// outstanding.
    pub(crate) fn take_pending(&mut self, id: &str) -> bool {
        match self.pending.remove(id) {
            Some(timer) => {
                if let Some(t) = timer {
                    t.abort();
                }
                true
            }
            None => false,
        }
    }

    /// Every member waits in a join and no handed-out id is outstanding.
    pub(crate) fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// The longest rebalance timeout of the members.
    pub(crate) fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Members in join order.
    pub(crate) fn members_in_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// The join answer of `member` in the current generation: the leader
    /// gets every member's metadata.
    pub(crate) fn join_result(&self, member: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member);
        JoinResult {
            error: ErrorCode::None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member.to_owned(),
            members: if is_leader {
                self.members_in_order()
                    .into_iter()
                    .map(|m| JoinedMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The durable form of the group, with `assignments` (or each member's
    /// own) as the members' assignments.
    pub(crate) fn to_record(&self, assignments: Option<&HashMap<String, Vec<u8>>>) -> GroupRecord {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members_in_order()
                .into_iter()
                .map(|m| MemberRecord {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: duration_ms(m.session_timeout),
                    rebalance_timeout_ms: duration_ms(m.rebalance_timeout),
                    metadata: m.metadata(&protocol),
                    assignment: match assignments {
                        Some(a) => a.get(&m.id).cloned().unwrap_or_default(),
                        None => m.assignment.clone(),
                    },
                })
                .collect(),
            written_ms: crate::offsets::now_ms(),
        }
    }

    /// A group restored from its record: Stable with the stored members
    /// (their sessions start `now`), or Empty; its bytes counted in `total`.
    pub(crate) fn from_record(
        r: GroupRecord,
        now: Instant,
        next_incarnation: &mut u64,
        total: &Arc<AtomicUsize>,
    ) -> Group {
        let mut g = Group::new(total);
        g.generation = r.generation_id;
        g.protocol_type = Some(r.protocol_type).filter(|t| !t.is_empty());
        if r.members.is_empty() {
            return g;
        }
        g.state = GroupState::Stable;
        g.protocol = r.protocol.clone();
        let protocol = r.protocol.unwrap_or_default();
        for m in r.members {
            let session_timeout = Duration::from_millis(m.session_timeout_ms.into());
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            *next_incarnation += 1;
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout,
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.into()),
                protocols: vec![(protocol.clone(), m.metadata)],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                deadline: now + session_timeout,
                seq: g.next_seq,
                incarnation: *next_incarnation,
                expiry: None,
            };
            g.next_seq += 1;
            g.members.insert(m.member_id, member);
        }
        g.leader = r
            .leader
            .filter(|l| g.members.contains_key(l))
            .or_else(|| g.members_in_order().first().map(|m| m.id.clone()));
        g.recharge();
        g
    }

    /// The group as DescribeGroups shows it.
    pub(crate) fn describe(&self, name: &str) -> GroupDescription {
        let settled = matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            error: ErrorCode::None,
            group: name.to_owned(),
            state: self.state,
            consumer_protocol: false,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if settled {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members_in_order()
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if settled {
                        m.metadata(&protocol)
                    } else {
                        Vec::new()
                    },
                    assignment: if self.state == GroupState::Stable {
                        m.assignment.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }
}

fn duration_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
