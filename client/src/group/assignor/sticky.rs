//! Kafka's `cooperative-sticky` assignor.
//!
//! Sticky: each member keeps the partitions it owns (still existing, still
//! subscribed, not claimed by a member of a newer generation); partitions
//! without an owner go to the least-loaded subscribed member; then single
//! partitions move from the most- to the least-loaded members while their
//! counts differ by more than one. Over equal subscriptions the result is
//! balanced overall (counts differ by at most one) and moves no more
//! partitions than balance needs.
//!
//! Cooperative: a partition whose target member is not its current owner is
//! left out of this generation's assignment altogether. Its owner, seeing it
//! gone from its assignment, revokes it and rejoins; the next rebalance
//! assigns it, now ownerless (over unequal subscriptions that rebalance may
//! have to move another owned partition, which then waits one more). So no partition is ever assigned to one
//! member while another still holds it.

use std::collections::{BTreeMap, BTreeSet};

use super::{GroupAssignment, MemberSubscription, TopicPartition, empty_assignment};

/// The sticky target assignment, without the cooperative step.
pub(super) fn assign_sticky(
    partition_counts: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> GroupAssignment {
    let mut out = empty_assignment(members);
    let subscribed = |m: &MemberSubscription, tp: &TopicPartition| {
        m.topics.contains(&tp.topic)
            && partition_counts
                .get(&tp.topic)
                .is_some_and(|&n| tp.partition >= 0 && (tp.partition as u32) < n)
    };

    // 1. Keep valid claims; a partition claimed twice stays with the claim
    //    of the newest generation (the first member on a tie).
    let mut owner: BTreeMap<&TopicPartition, (i32, &str)> = BTreeMap::new();
    for m in members {
        for tp in &m.owned {
            if !subscribed(m, tp) {
                continue;
            }
            match owner.get(tp) {
                Some(&(generation, _)) if generation >= m.generation_id => {}
                _ => {
                    owner.insert(tp, (m.generation_id, &m.member_id));
                }
            }
        }
    }
    for (tp, (_, member)) in owner {
        if let Some(set) = out.get_mut(member) {
            set.insert(tp.clone());
        }
    }

    // 2. Ownerless partitions to the least-loaded subscribed member.
    let assigned: BTreeSet<TopicPartition> = out.values().flatten().cloned().collect();
    for (topic, &count) in partition_counts {
        for p in 0..count {
            let tp = TopicPartition::new(topic, p as i32);
            if assigned.contains(&tp) {
                continue;
            }
            let target = members
                .iter()
                .filter(|m| m.topics.contains(topic))
                .min_by_key(|m| out.get(&m.member_id).map_or(0, BTreeSet::len));
            if let Some(m) = target {
                if let Some(set) = out.get_mut(&m.member_id) {
                    set.insert(tp);
                }
            }
        }
    }

    // 3. Balance: move one partition at a time from a member to a member
    //    with at least two fewer that subscribes to its topic. Each move
    //    lowers the sum of squared counts, so this ends.
    loop {
        let mut by_load: Vec<&MemberSubscription> = members.to_vec();
        by_load.sort_by_key(|m| std::cmp::Reverse(out.get(&m.member_id).map_or(0, BTreeSet::len)));
        let mut moved = None;
        'search: for from in &by_load {
            let from_len = out.get(&from.member_id).map_or(0, BTreeSet::len);
            let Some(parts) = out.get(&from.member_id) else {
                continue;
            };
            // Prefer giving up partitions the member does not own yet (a
            // move of those costs no revocation), then the highest ones, a
            // stable choice.
            let (fresh, kept): (Vec<&TopicPartition>, Vec<&TopicPartition>) =
                parts.iter().rev().partition(|tp| !from.owned.contains(*tp));
            for tp in fresh.into_iter().chain(kept) {
                let to = members
                    .iter()
                    .filter(|m| m.member_id != from.member_id && m.topics.contains(&tp.topic))
                    .map(|m| (out.get(&m.member_id).map_or(0, BTreeSet::len), m))
                    .filter(|(len, _)| len + 1 < from_len)
                    .min_by_key(|(len, _)| *len);
                if let Some((_, to)) = to {
                    moved = Some((from.member_id.clone(), to.member_id.clone(), tp.clone()));
                    break 'search;
                }
            }
        }
        let Some((from, to, tp)) = moved else { break };
        if let Some(set) = out.get_mut(&from) {
            set.remove(&tp);
        }
        if let Some(set) = out.get_mut(&to) {
            set.insert(tp);
        }
    }
    out
}

/// The sticky assignment with every partition that changes owner held
/// back for one generation (see the module doc).
pub(super) fn assign_cooperative(
    partition_counts: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> GroupAssignment {
    let mut out = assign_sticky(partition_counts, members);
    let mut owned_by: BTreeMap<&TopicPartition, Vec<&str>> = BTreeMap::new();
    for m in members {
        for tp in &m.owned {
            owned_by.entry(tp).or_default().push(&m.member_id);
        }
    }
    for (member, set) in out.iter_mut() {
        set.retain(|tp| {
            owned_by
                .get(tp)
                .is_none_or(|owners| owners.iter().all(|o| *o == member.as_str()))
        });
    }
    out
}
