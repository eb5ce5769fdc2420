//! Consumer groups: members share the partitions of the topics they
//! subscribe to.
//!
//! - [`assignor`] — the leader's pure partition assignors (`range`,
//!   `roundrobin`, `cooperative-sticky`).
//! - [`GroupConsumer`] (`consumer.rs`, `rebalance.rs`) — a member: join,
//!   sync, rebalance, fencing, commits with the member's generation.
//! - `heartbeat.rs` — the heartbeat task, on its own connection.
//! - [`GroupConfig`] (`config.rs`) and [`RebalanceListener`]
//!   (`listener.rs`) — settings and callbacks.

pub mod assignor;
mod config;
mod consumer;
mod heartbeat;
mod listener;

pub use assignor::{AssignorKind, TopicPartition};
pub use config::GroupConfig;
pub use consumer::GroupConsumer;
pub use listener::{NoopListener, Positions, RebalanceListener};
