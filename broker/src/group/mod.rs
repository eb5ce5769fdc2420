//! The group coordinator: consumer groups' membership, generations and
//! assignments, following Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup). Front-ends call it through
//! [`crate::service::groups`]; `docs/protocol.md` ("Consumer groups")
//! describes the state machine.
//!
//! - [`types`]: the typed requests and answers.
//! - [`record`]: the durable form of a group (offsets-log key type 2).
//! - `state`: one group's members and the pure rules over them.
//! - [`consumer`]: groups of Kafka's consumer group protocol (KIP-848),
//!   whose assignments the broker computes.
//! - [`coordinator`]: the [`Coordinator`] — one lock over all groups,
//!   futures for joins and syncs that wait, tokio timers for sessions and
//!   rebalances.
//!
//! Guarantees: a generation's assignments are acknowledged to its members
//! only after the generation is durable in the offsets log; after a
//! restart, the last Stable generation is restored with its members, whose
//! sessions start at load (they continue without a rebalance if they
//! heartbeat in time).

pub mod consumer;
pub mod coordinator;
pub mod record;
mod state;
pub mod types;

#[cfg(test)]
mod tests;

pub use coordinator::{Coordinator, GroupConfig, GroupStats};

/// Most bytes of protocol names and metadata one member may join with, and
/// of one member's assignment: the coordinator keeps both for as long as
/// the member stays (and writes them into the group's record), so a request
/// must not make it hold a frame's worth per member. 1 MiB, Kafka's default
/// largest message, holds subscriptions to tens of thousands of topics.
pub const MAX_MEMBER_METADATA_BYTES: usize = 1 << 20;

/// The longest group name accepted, in bytes.
pub const MAX_GROUP_NAME_LEN: usize = 1024;

/// Whether `name` can name a consumer group: 1 to [`MAX_GROUP_NAME_LEN`]
/// bytes without control characters. Kafka takes any string (clients name
/// groups `service:orders`, `team/app`, `my group`); a group name never
/// reaches a file name (it is a key in the offsets log and hashed to pick
/// a group-state partition), so only what would garble logs and listings,
/// and unbounded length, is refused.
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_GROUP_NAME_LEN && !name.chars().any(char::is_control)
}
pub use types::*;
