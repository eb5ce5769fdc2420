//! Kafka's `range` assignor: for each topic, its members (in order) take
//! contiguous ranges; the first `partitions % members` take one more.

use std::collections::BTreeMap;

use super::{GroupAssignment, MemberSubscription, TopicPartition, empty_assignment};

/// Assigns `members` (sorted) their ranges of every subscribed topic.
pub(super) fn assign(
    partition_counts: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> GroupAssignment {
    let mut out = empty_assignment(members);
    for (topic, &count) in partition_counts {
        let subscribed: Vec<&&MemberSubscription> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let n = subscribed.len() as u32;
        let (each, extra) = (count / n, count % n);
        for (i, m) in (0u32..).zip(subscribed) {
            let start = each * i + i.min(extra);
            let len = each + u32::from(i < extra);
            if let Some(set) = out.get_mut(&m.member_id) {
                set.extend((start..start + len).map(|p| TopicPartition::new(topic, p as i32)));
            }
        }
    }
    out
}
