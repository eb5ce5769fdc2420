//! The service layer: what the broker does, independent of any wire
//! protocol.
//!
//! Front-ends (the native protocol in `server::native`, later a Kafka
//! listener) decode requests into the typed requests of this module, call a
//! [`Service`] function and encode what it returns. Nothing here knows about
//! frames, sockets or postcard. Dependencies point one way:
//! front-end → service → [`crate::partition`] → [`crate::log`].
//!
//! - [`produce`]: append record sets, acknowledged by the partition's policy.
//! - [`fetch`]: long-poll fetch returning a [`fetch::Plan`] of byte chunks
//!   and file ranges.
//! - [`admin`]: create, delete, list and describe topics; list offsets.
//! - [`offsets`]: commit and fetch consumer-group offsets.
//! - [`stats`](mod@stats): counters.
//!
//! Every function that may touch the disk runs that part on the blocking
//! pool (`tokio::task::spawn_blocking`), never on a reactor thread.

pub mod admin;
pub mod fetch;
pub mod offsets;
pub mod produce;
pub mod stats;

use crate::config::BrokerConfig;
use crate::offsets::OffsetStore;
use crate::topics::TopicStore;
use sluice_protocol::wire::ErrorCode;
use stats::Stats;

/// The broker's state shared by every front-end: settings, topics,
/// committed offsets, counters.
#[derive(Debug)]
pub struct Service {
    /// Settings.
    pub config: BrokerConfig,
    /// Topics and their partitions.
    pub topics: TopicStore,
    /// Committed offsets of consumer groups.
    pub offsets: OffsetStore,
    /// Counters.
    pub stats: Stats,
}

/// A whole request refused: the error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refused {
    /// Stable error code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
}

impl Service {
    /// Flushes and closes every log, writing clean-shutdown markers. Blocking.
    pub fn shutdown(&self) {
        self.topics.shutdown();
        self.offsets.shutdown();
    }
}

/// Checks the partition list of a produce or fetch request: at most `max`
/// entries, no (topic, partition) twice.
pub fn check_partition_list<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, u32)> + Clone,
    max: u32,
) -> Result<(), Refused> {
    let n = entries.len();
    if n > max as usize {
        return Err(Refused {
            code: ErrorCode::TooManyPartitions,
            message: format!("{n} partitions in one request; at most {max} are accepted"),
        });
    }
    let duplicate = |(topic, partition): (&str, u32)| Refused {
        code: ErrorCode::DuplicatePartition,
        message: format!("partition {partition} of topic {topic:?} is listed more than once"),
    };
    if n <= 16 {
        // Short lists (the usual case): compare pairs, no allocation.
        for (i, a) in entries.clone().enumerate() {
            if entries.clone().skip(i + 1).any(|b| a == b) {
                return Err(duplicate(a));
            }
        }
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        for e in entries {
            if !seen.insert(e) {
                return Err(duplicate(e));
            }
        }
    }
    Ok(())
}

/// Runs blocking work (file I/O, fsync) on the blocking pool. A panic in it
/// becomes an error, never a panic of the caller.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists_are_capped_and_free_of_duplicates() {
        let check = |list: &[(&str, u32)], max: u32| {
            check_partition_list(list.iter().copied(), max).map_err(|r| r.code)
        };
        assert_eq!(check(&[("a", 0), ("a", 1), ("b", 0)], 3), Ok(()));
        assert_eq!(
            check(&[("a", 0), ("a", 1)], 1),
            Err(ErrorCode::TooManyPartitions)
        );
        assert_eq!(
            check(&[("a", 0), ("b", 0), ("a", 0)], 3),
            Err(ErrorCode::DuplicatePartition)
        );
        // Long lists take the hash-set path.
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let mut long: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 7)).collect();
        assert_eq!(check(&long, 40), Ok(()));
        long.push(("t39", 7));
        assert_eq!(check(&long, 41), Err(ErrorCode::DuplicatePartition));
    }
}
