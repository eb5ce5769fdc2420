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

/// What a partition holds for one producer id, as tools are told it
/// (Kafka's DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its newest epoch.
    pub epoch: i16,
    /// Sequence of its last record appended (-1: none kept).
    pub last_sequence: i32,
    /// When it last appended, by the broker's clock (milliseconds since the
    /// Unix epoch; -1: none kept); for a producer whose table was rebuilt
    /// from the log at a start, when the broker recovered it.
    pub last_timestamp: i64,
}
