//! A consumer-protocol group to and from its stored form
//! ([`ConsumerGroupRecord`], layout in `docs/storage-format.md`).
//!
//! What is stored is what a member's next heartbeat is checked against:
//! the group epoch and target, and each member's epoch, holdings and
//! subscription. What is not: session and revocation deadlines (they start
//! again when the group is restored, as a classic group's sessions do),
//! the assignment last sent to each member (a restored member is sent its
//! whole assignment at its next heartbeat), and what is derived (owners,
//! compiled patterns, resolved subscriptions, byte counts).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{Assignment, ConsumerGroup, Member, MemberState, compile, contains, member_bytes};
use crate::group::record::{ConsumerGroupRecord, ConsumerMemberRecord, PartitionsRecord};
use crate::topics::TopicId;

/// What a heartbeat may change of the stored group, seen from one member:
/// group epoch, assignment epoch, member count, the member's record.
pub(super) type Fingerprint = (i32, i32, usize, Option<ConsumerMemberRecord>);

fn to_partitions(a: &Assignment) -> PartitionsRecord {
    a.iter()
        .map(|(t, ps)| (t.0, ps.iter().copied().collect()))
        .collect()
}

fn from_partitions(p: PartitionsRecord) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in p {
        if !ps.is_empty() {
            a.entry(TopicId(t)).or_default().extend(ps);
        }
    }
    a
}

fn state_code(s: MemberState) -> u8 {
    match s {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn state_of(code: u8) -> MemberState {
    match code {
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => MemberState::Stable,
    }
}

fn member_record(id: &str, m: &Member) -> ConsumerMemberRecord {
    let mut held_since: Vec<([u8; 16], u32, i32)> = m
        .held_since
        .iter()
        .map(|((t, p), e)| (t.0, *p, *e))
        .collect();
    held_since.sort_unstable();
    ConsumerMemberRecord {
        member_id: id.to_owned(),
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        epoch: m.epoch,
        previous_epoch: m.previous_epoch,
        state: state_code(m.state),
        assigned: to_partitions(&m.assigned),
        revoking: to_partitions(&m.revoking),
        held_since,
        topic_names: m.topic_names.clone(),
        topic_regex: m.topic_regex.clone(),
        assignor: m.assignor.clone(),
        rebalance_timeout_ms: u32::try_from(m.rebalance_timeout.as_millis()).unwrap_or(u32::MAX),
        parked: m.parked,
    }
}

impl ConsumerGroup {
    /// The group as it is stored, written now.
    pub fn to_record(&self) -> ConsumerGroupRecord {
        let mut targets: Vec<(String, PartitionsRecord)> = self
            .target
            .iter()
            .map(|(id, a)| (id.clone(), to_partitions(a)))
            .collect();
        targets.sort_unstable();
        ConsumerGroupRecord {
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            topics: self
                .topics
                .iter()
                .map(|(name, (id, n))| (name.clone(), id.0, *n))
                .collect(),
            targets,
            members: self
                .members
                .iter()
                .map(|(id, m)| member_record(id, m))
                .collect(),
            written_ms: crate::offsets::now_ms(),
        }
    }

    /// See [`Fingerprint`].
    pub(super) fn fingerprint(&self, id: &str) -> Fingerprint {
        (
            self.epoch,
            self.assignment_epoch,
            self.members.len(),
            self.members.get(id).map(|m| member_record(id, m)),
        )
    }

    /// Whether a change since the last durable store is not stored yet.
    pub fn unstored(&self) -> bool {
        self.revision > self.stored_revision
    }

    /// Forgets what each member was last sent: the answers that would
    /// have carried the last change were not given (its store failed), so
    /// each member's next heartbeat is answered with its whole assignment.
    pub fn forget_sent(&mut self) {
        for m in self.members.values_mut() {
            m.sent = None;
        }
    }

    /// The current revision (see [`ConsumerGroup::stored_revision`]).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// A group restored from its record: every member's session starts
    /// `now` (and a member giving up partitions has its rebalance timeout
    /// from `now`); the subscribed topics are looked at again at the first
    /// heartbeat. A partition two stored members claim (a record no
    /// broker writes) stays with the first.
    pub fn from_record(r: ConsumerGroupRecord, now: Instant, session: Duration) -> ConsumerGroup {
        let topics: BTreeMap<String, (TopicId, u32)> = r
            .topics
            .into_iter()
            .map(|(name, id, n)| (name, (TopicId(id), n)))
            .collect();
        let mut g = ConsumerGroup {
            epoch: r.epoch,
            assignment_epoch: r.assignment_epoch,
            target: r
                .targets
                .into_iter()
                .map(|(id, p)| (id, from_partitions(p)))
                .collect(),
            partitions_held: super::partition_bytes(&topics),
            ..ConsumerGroup::default()
        };
        for mr in r.members {
            if g.members.contains_key(&mr.member_id) {
                // A member stored twice (no broker writes that): the first
                // stays.
                continue;
            }
            let compiled = mr.topic_regex.as_deref().and_then(|re| compile(re).ok());
            let subscribed: BTreeSet<String> = topics
                .keys()
                .filter(|name| {
                    mr.topic_names.contains(name)
                        || compiled.as_ref().is_some_and(|re| re.is_match(name))
                })
                .cloned()
                .collect();
            let mut assigned = from_partitions(mr.assigned);
            // A partition is held or being given up, not both.
            let mut revoking = super::minus(&from_partitions(mr.revoking), &assigned);
            for a in [&mut assigned, &mut revoking] {
                for (t, ps) in a.iter_mut() {
                    ps.retain(|p| match g.owners.get(&(*t, *p)) {
                        Some(o) => *o == mr.member_id,
                        None => {
                            g.owners.insert((*t, *p), mr.member_id.clone());
                            true
                        }
                    });
                }
                a.retain(|_, ps| !ps.is_empty());
            }
            let held_since: HashMap<(TopicId, u32), i32> = mr
                .held_since
                .into_iter()
                .map(|(t, p, e)| ((TopicId(t), p), e))
                .filter(|((t, p), _)| contains(&assigned, t, *p) || contains(&revoking, t, *p))
                .collect();
            let rebalance_timeout = Duration::from_millis(mr.rebalance_timeout_ms.into());
            // Giving partitions up exactly while it has some to give up.
            let state = match state_of(mr.state) {
                _ if !revoking.is_empty() => MemberState::UnrevokedPartitions,
                MemberState::UnrevokedPartitions => MemberState::Stable,
                s => s,
            };
            let counted = member_bytes(
                &mr.topic_names,
                mr.topic_regex.as_ref(),
                &mr.client_id,
                &mr.client_host,
                mr.instance_id.as_ref(),
                mr.rack_id.as_ref(),
            );
            g.members_held = g.members_held.saturating_add(counted);
            let m = Member {
                instance_id: mr.instance_id,
                rack_id: mr.rack_id,
                client_id: mr.client_id,
                client_host: mr.client_host,
                epoch: mr.epoch,
                previous_epoch: mr.previous_epoch,
                state,
                assigned,
                revoking,
                held_since,
                topic_names: mr.topic_names,
                topic_regex: mr.topic_regex,
                compiled,
                subscribed,
                assignor: mr.assignor,
                rebalance_timeout,
                session_deadline: now + session,
                revoke_deadline: (state == MemberState::UnrevokedPartitions)
                    .then(|| now + rebalance_timeout),
                sent: None,
                parked: mr.parked,
                counted,
            };
            g.members.insert(mr.member_id, m);
        }
        g.target.retain(|id, _| g.members.contains_key(id));
        g.topics = topics;
        g
    }
}
