//! [`RebalanceListener`]: what the application hears when its partitions
//! change.

use std::collections::BTreeMap;

use super::assignor::TopicPartition;

/// Partitions with a position each: the next offset the consumer would
/// return (for assigned partitions: where consumption starts).
pub type Positions = BTreeMap<TopicPartition, u64>;

/// Callbacks of a [`GroupConsumer`](super::GroupConsumer), called from
/// inside `poll` (and `close`), never concurrently with it. All default to
/// doing nothing.
pub trait RebalanceListener: Send {
    /// The member gives these partitions up, cleanly: called before their
    /// positions are committed (when `commit_on_revoke` is set) and before
    /// another member can be assigned them. Under the eager assignors every
    /// partition is revoked before each rebalance; under
    /// `cooperative-sticky` only those moving to another member.
    fn on_partitions_revoked(&mut self, _partitions: &Positions) {}

    /// The member now owns these partitions, starting at these positions
    /// (the committed offsets, or `offset_reset`).
    fn on_partitions_assigned(&mut self, _partitions: &Positions) {}

    /// The member lost these partitions without giving them up: its
    /// session expired or its generation is stale, so another member may
    /// already own them. Nothing is committed; no record of them is
    /// returned after this call.
    fn on_partitions_lost(&mut self, _partitions: &Positions) {}
}

/// A listener that does nothing.
#[derive(Debug, Default)]
pub struct NoopListener;

impl RebalanceListener for NoopListener {}
