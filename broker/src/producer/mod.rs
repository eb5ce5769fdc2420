//! Idempotent producers: what makes a retried produce store its records once.
//!
//! - [`ids`]: the broker's producer id allocator (durable, never reuses an id).
//! - [`state`]: a partition's table of producers and their last batches'
//!   sequence numbers and offsets, checked and updated by the partition log
//!   under the lock that assigns offsets.
//! - [`snapshot`]: the `.snapshot` file that saves a partition's table, so
//!   recovery rebuilds only from the batches after it.
//!
//! What is promised and where it ends: `docs/durability.md`.

pub mod ids;
pub mod snapshot;
pub mod state;
