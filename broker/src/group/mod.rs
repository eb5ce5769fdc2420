//! The group coordinator: consumer groups' membership, generations and
//! assignments, following Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup). Front-ends call it through
//! [`crate::service::groups`].
//!
//! - [`types`]: the typed requests and answers.
//! - [`record`]: the durable form of a group (offsets-log key type 2).

pub mod record;
pub mod types;

pub use types::*;
