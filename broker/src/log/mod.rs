//! The storage engine: the partition log and everything under it.
//!
//! Layering, bottom up (Kafka's vocabulary):
//!
//! - [`io`]: the [`FileSystem`]/[`LogFile`] traits, the only way to the disk;
//!   [`fault`] injects faults behind them in tests.
//! - [`format`]: file names in a partition directory and the checkpoint
//!   layout; [`names`]: topic and partition directory names.
//! - `index_file`, `offset_index`, `time_index`: the memory-mapped sparse
//!   indexes of a segment (derived data).
//! - `segment`: one `.log` file and its two indexes.
//! - [`PartitionLog`] (`partition`, `flush`, `recovery`, `retention`): the
//!   segments of one partition with append, read, group-committed flush,
//!   recovery after a crash and retention.
//!
//! Byte layouts are specified in `docs/storage-format.md`; what each flush
//! policy guarantees, in `docs/durability.md`.

mod append;
mod config;
#[cfg(any(test, feature = "fault-injection"))]
pub mod crash;
pub mod decompression;
mod error;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
mod flush;
pub mod format;
mod index_file;
pub mod io;
pub mod names;
mod offset_index;
pub mod open_sealed;
pub(crate) mod partition;
mod producers;
mod read;
mod recovery;
mod retention;
mod seam;
mod segment;
mod time_index;
mod time_lookup;

pub use append::AppendInfo;
pub use config::{DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES, FlushPolicy, LogConfig};
pub use error::LogError;
pub use flush::{FlushWaiters, MaintainOutcome};
pub use io::{FileSystem, LogFile, OpenMode, StdFs};
pub use names::{CollisionIndex, NameError, TopicPartition, colliding_topic, validate_topic_name};
pub use offset_index::{IndexEntry, OFFSET_ENTRY_LEN};
pub use partition::PartitionLog;
pub use read::LogSlice;
pub use recovery::RecoveryReport;
pub use retention::{RetainOutcome, Retention};
pub use segment::{PREALLOCATE_BYTES, PREALLOCATE_MIN_BYTES};
pub use time_index::{TIME_ENTRY_LEN, TimeEntry};
pub use time_lookup::TimestampMatch;

#[cfg(test)]
mod tests;
