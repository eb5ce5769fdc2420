//! Properties of the assignors over random groups.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        member_id: id.into(),
        group_instance_id: None,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        owned: BTreeSet::new(),
        generation_id: -1,
    }
}

/// Rebalances after the first until everything is assigned again.
const MAX_COOPERATIVE_ROUNDS: usize = 3;

fn counts(spec: &[u32]) -> BTreeMap<String, u32> {
    spec.iter()
        .enumerate()
        .map(|(i, &n)| (format!("t{i}"), n))
        .collect()
}

fn members_equal(n: usize, topics: &BTreeMap<String, u32>) -> Vec<MemberSubscription> {
    let names: Vec<&str> = topics.keys().map(String::as_str).collect();
    (0..n)
        .map(|i| member(&format!("m{i:02}"), &names))
        .collect()
}

/// Every partition of every topic exactly once.
fn assert_exactly_once(topics: &BTreeMap<String, u32>, a: &GroupAssignment) {
    let mut seen = BTreeSet::new();
    for set in a.values() {
        for tp in set {
            assert!(seen.insert(tp.clone()), "{tp:?} assigned twice: {a:?}");
        }
    }
    let all: BTreeSet<TopicPartition> = topics
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t, p as i32)))
        .collect();
    assert_eq!(seen, all, "not every partition assigned");
}

fn spread(values: impl Iterator<Item = usize>) -> usize {
    let v: Vec<usize> = values.collect();
    v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0)
}

fn sticky(topics: &BTreeMap<String, u32>, members: &[MemberSubscription]) -> GroupAssignment {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    sticky::assign_sticky(topics, &sorted)
}

fn with_owned(
    mut members: Vec<MemberSubscription>,
    a: &GroupAssignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    for m in &mut members {
        m.owned = a.get(&m.member_id).cloned().unwrap_or_default();
        m.generation_id = generation;
    }
    members
}

fn moved(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    after
        .iter()
        .map(|(m, set)| {
            set.iter()
                .filter(|tp| before.iter().any(|(o, s)| o != m && s.contains(*tp)))
                .count()
        })
        .sum()
}

#[test]
fn range_matches_kafka_on_an_example() {
    // Kafka's RangeAssignor javadoc: C0, C1 on t0, t1 with 3 partitions
    // each: C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2].
    let topics = counts(&[3, 3]);
    let a = AssignorKind::Range.assign(&topics, &members_equal(2, &topics));
    let tps = |v: &[(&str, i32)]| -> BTreeSet<TopicPartition> {
        v.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect()
    };
    assert_eq!(a["m00"], tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]));
    assert_eq!(a["m01"], tps(&[("t0", 2), ("t1", 2)]));
}

#[test]
fn roundrobin_matches_kafka_on_an_example() {
    // Kafka's RoundRobinAssignor javadoc: C0 [t0p0, t0p2, t1p1],
    // C1 [t0p1, t1p0, t1p2].
    let topics = counts(&[3, 3]);
    let a = AssignorKind::RoundRobin.assign(&topics, &members_equal(2, &topics));
    let tps = |v: &[(&str, i32)]| -> BTreeSet<TopicPartition> {
        v.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect()
    };
    assert_eq!(a["m00"], tps(&[("t0", 0), ("t0", 2), ("t1", 1)]));
    assert_eq!(a["m01"], tps(&[("t0", 1), ("t1", 0), ("t1", 2)]));
}

#[test]
fn cooperative_moves_a_partition_in_two_rebalances() {
    // Two members own three partitions each; a third joins.
    let topics = counts(&[6]);
    let first = sticky(&topics, &members_equal(2, &topics));
    let members = with_owned(members_equal(3, &topics), &first, 1);
    let round1 = AssignorKind::CooperativeSticky.assign(&topics, &members);
    // The newcomer gets nothing yet; the others each give one up.
    assert!(round1["m02"].is_empty(), "{round1:?}");
    assert_eq!(round1["m00"].len() + round1["m01"].len(), 4);
    // After the owners revoked and rejoined, the freed partitions move.
    let members = with_owned(members, &round1, 2);
    let round2 = AssignorKind::CooperativeSticky.assign(&topics, &members);
    assert_exactly_once(&topics, &round2);
    assert_eq!(round2["m02"].len(), 2);
    assert_eq!(
        moved(&round1, &round2),
        0,
        "only freed partitions are given out"
    );
}

#[test]
fn names_round_trip() {
    for k in [
        AssignorKind::Range,
        AssignorKind::RoundRobin,
        AssignorKind::CooperativeSticky,
    ] {
        assert_eq!(AssignorKind::from_name(k.name()), Some(k));
    }
    assert_eq!(AssignorKind::from_name("sticky"), None);
}

proptest! {
    #[test]
    fn range_and_roundrobin_assign_each_partition_once_balanced_per_topic(
        spec in prop::collection::vec(0u32..20, 1..4),
        n in 1usize..7,
    ) {
        let topics = counts(&spec);
        let members = members_equal(n, &topics);
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
            let a = kind.assign(&topics, &members);
            assert_exactly_once(&topics, &a);
            prop_assert_eq!(a.len(), n);
            for t in topics.keys() {
                let per = a.values().map(|s| s.iter().filter(|tp| &tp.topic == t).count());
                prop_assert!(spread(per) <= 1, "{:?} unbalanced on {}: {:?}", kind, t, a);
            }
        }
    }

    #[test]
    fn sticky_is_balanced_overall_and_keeps_owned_partitions(
        spec in prop::collection::vec(0u32..20, 1..4),
        n in 1usize..7,
        joiners in 1usize..3,
        leavers in 0usize..3,
    ) {
        let topics = counts(&spec);
        let a = sticky(&topics, &members_equal(n, &topics));
        assert_exactly_once(&topics, &a);
        prop_assert!(spread(a.values().map(BTreeSet::len)) <= 1);

        // Members join: they take exactly their share, nothing else moves.
        let members = with_owned(members_equal(n + joiners, &topics), &a, 1);
        let b = sticky(&topics, &members);
        assert_exactly_once(&topics, &b);
        prop_assert!(spread(b.values().map(BTreeSet::len)) <= 1);
        let newcomers: usize = b.iter().filter(|(m, _)| !a.contains_key(*m)).map(|(_, s)| s.len()).sum();
        prop_assert_eq!(moved(&a, &b), newcomers, "{:?} -> {:?}", a, b);

        // Members leave: only their partitions move.
        let leavers = leavers.min(n + joiners - 1);
        let mut members = with_owned(members, &b, 2);
        members.truncate(n + joiners - leavers);
        let c = sticky(&topics, &members);
        assert_exactly_once(&topics, &c);
        prop_assert!(spread(c.values().map(BTreeSet::len)) <= 1);
        for (m, set) in &c {
            prop_assert!(b[m].iter().all(|tp| set.contains(tp)), "{} lost a partition", m);
        }
    }

    #[test]
    fn cooperative_never_assigns_a_partition_another_member_owns(
        spec in prop::collection::vec(0u32..12, 1..3),
        n in 1usize..6,
        claims in prop::collection::vec((0usize..6, 0usize..3, 0i32..12, 0i32..3), 0..30),
        unsubscribed in prop::collection::vec((0usize..6, 0usize..3), 0..3),
    ) {
        let topics = counts(&spec);
        let names: Vec<String> = topics.keys().cloned().collect();
        let mut members = members_equal(n, &topics);
        // Random (possibly conflicting, stale or nonexistent) claims.
        for (m, t, p, generation) in claims {
            if let (Some(member), Some(topic)) = (members.get_mut(m % n), names.get(t % names.len())) {
                member.owned.insert(TopicPartition::new(topic.clone(), p));
                member.generation_id = generation;
            }
        }
        for (m, t) in unsubscribed {
            if let (Some(member), Some(topic)) = (members.get_mut(m % n), names.get(t % names.len())) {
                member.topics.remove(topic);
            }
        }
        let a = AssignorKind::CooperativeSticky.assign(&topics, &members);
        let mut seen = BTreeSet::new();
        for (m, set) in &a {
            for tp in set {
                prop_assert!(seen.insert(tp.clone()), "{:?} twice", tp);
                for other in &members {
                    prop_assert!(
                        other.member_id == *m || !other.owned.contains(tp),
                        "{:?} given to {} while {} owns it", tp, m, other.member_id
                    );
                }
            }
        }
        // Once every owner revoked what it lost, later rebalances assign
        // everything subscribed: in the next one when subscriptions are
        // equal, and within a few when they differ (a balancing move of an
        // owned partition holds it back one more generation).
        let subscribed: BTreeMap<String, u32> = topics
            .iter()
            .filter(|(t, _)| members.iter().any(|m| m.topics.contains(*t)))
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        let total: usize = subscribed.values().map(|&n| n as usize).sum();
        let mut members = with_owned(members, &a, 5);
        let mut rounds = 1;
        loop {
            let b = AssignorKind::CooperativeSticky.assign(&topics, &members);
            for (m, set) in &b {
                for tp in set {
                    for other in &members {
                        prop_assert!(other.member_id == *m || !other.owned.contains(tp));
                    }
                }
            }
            if b.values().map(BTreeSet::len).sum::<usize>() == total {
                assert_exactly_once(&subscribed, &b);
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= MAX_COOPERATIVE_ROUNDS, "no full assignment after {} rounds", rounds);
            members = with_owned(members, &b, 5 + rounds as i32);
        }
    }
}
