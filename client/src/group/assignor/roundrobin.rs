//! Kafka's `roundrobin` assignor: every partition of every subscribed
//! topic, in (topic, partition) order, goes to the next member in turn that
//! subscribes to its topic.

use std::collections::BTreeMap;

use super::{GroupAssignment, MemberSubscription, TopicPartition, empty_assignment};

/// Deals the partitions out to `members` (sorted).
pub(super) fn assign(
    partition_counts: &BTreeMap<String, u32>,
    members: &[&MemberSubscription],
) -> GroupAssignment {
    let mut out = empty_assignment(members);
    if members.is_empty() {
        return out;
    }
    let mut next = 0usize;
    for (topic, &count) in partition_counts {
        if !members.iter().any(|m| m.topics.contains(topic)) {
            continue;
        }
        for p in 0..count {
            // Some member subscribes, so this finds one within a full turn.
            for _ in 0..members.len() {
                let m = members[next % members.len()];
                next = (next + 1) % members.len();
                if m.topics.contains(topic) {
                    if let Some(set) = out.get_mut(&m.member_id) {
                        set.insert(TopicPartition::new(topic, p as i32));
                    }
                    break;
                }
            }
        }
    }
    out
}
