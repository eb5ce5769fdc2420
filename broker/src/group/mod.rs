//! The group coordinator: consumer groups' membership, generations and
//! assignments, following Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup). Front-ends call it through
//! [`crate::service::groups`].
//!
//! - [`types`]: the typed requests and answers.

pub mod types;

pub use types::*;
