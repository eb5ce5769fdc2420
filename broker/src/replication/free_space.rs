//! The free space a cluster node keeps on its data directory's file system
//! (`min_free_bytes`).
//!
//! A single broker that finds its disk full refuses the append and cuts the
//! segment back: nothing else depends on that write. A replica of a
//! partition group cannot refuse an entry the group has ordered: a write
//! that fails stops its Raft core (the replica is reopened later, with no
//! leader meanwhile if it led). So a node refuses *before* the disk is
//! full:
//!
//! - as a partition leader, it refuses a client's produce with `DiskFull`
//!   when its records would leave less than `min_free_bytes` free (the
//!   group's own entries, consumer group state and checkpoints, still go
//!   in: they are small, and refusing them would stop offset commits and
//!   leadership changes that do not fill a disk);
//! - as a follower, it refuses AppendEntries calls that carry entries when
//!   they would leave less than half of it ([`LOW_ON_SPACE`]); the leader
//!   then sends it only its log position for a while
//!   ([`crate::replication::transport::raft`]), so it stays a quiet,
//!   lagging follower instead of a stopped one, and catches up once space
//!   is freed.
//!
//! The two floors differ so that a follower about as full as its leader
//! still takes what the leader took. Both count what they let in since the
//! last measurement, so calls that arrive together cannot each take the
//! last room.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How an AppendEntries refusal for want of space begins (the leader's side
/// of the transport recognises it).
pub const LOW_ON_SPACE: &str = "low on disk space";

/// How long a measurement of the free space is used before `statvfs(2)` is
/// called again: cheap enough for every produce request, fresh enough for
/// a disk that fills at a gigabyte a second to overshoot the floor by
/// about a hundred megabytes at most.
const FRESH_FOR: Duration = Duration::from_millis(100);

/// The free space of one data directory's file system, measured at most
/// every [`FRESH_FOR`].
#[derive(Debug)]
pub struct FreeSpace {
    dir: PathBuf,
    min_free: u64,
    since: Instant,
    /// Nanoseconds after `since` of the last measurement; `u64::MAX`: none.
    measured_at: AtomicU64,
    /// Free bytes (for an unprivileged user) at the last measurement;
    /// `u64::MAX` when `statvfs(2)` failed (nothing is refused then).
    free: AtomicU64,
    /// Bytes let in since the last measurement: counted against it until
    /// the next one sees them written. Without them, a follower that
    /// caught up on many partitions at once (a call of up to 4 MiB each)
    /// went from above its floor to a full disk between two measurements.
    claimed: AtomicU64,
}

impl FreeSpace {
    /// The free space of `dir`'s file system, kept at `min_free` bytes
    /// (0: nothing is ever refused).
    pub fn new(dir: impl Into<PathBuf>, min_free: u64) -> Self {
        FreeSpace {
            dir: dir.into(),
            min_free,
            since: Instant::now(),
            measured_at: AtomicU64::new(u64::MAX),
            free: AtomicU64::new(u64::MAX),
            claimed: AtomicU64::new(0),
        }
    }

    /// Free bytes now (a measurement at most [`FRESH_FOR`] old);
    /// `u64::MAX` when the file system cannot say.
    pub fn free(&self) -> u64 {
        let now = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        let at = self.measured_at.load(Ordering::Acquire);
        if at != u64::MAX && now.saturating_sub(at) < FRESH_FOR.as_nanos() as u64 {
            return self.free.load(Ordering::Acquire);
        }
        let free = crate::log::io::disk_space(&self.dir).map_or(u64::MAX, |(_, free)| free);
        self.free.store(free, Ordering::Release);
        self.claimed.store(0, Ordering::Release);
        self.measured_at.store(now, Ordering::Release);
        free
    }

    /// Lets `bytes` in if at least `floor` bytes stay free after them (and
    /// after what was let in since the last measurement), counting them;
    /// else the free bytes left.
    fn claim(&self, bytes: u64, floor: u64) -> Result<(), u64> {
        let free = self.free();
        let left = free.saturating_sub(self.claimed.load(Ordering::Acquire));
        if left.saturating_sub(bytes) < floor {
            return Err(left);
        }
        self.claimed.fetch_add(bytes, Ordering::AcqRel);
        Ok(())
    }

    /// Why a client's produce of `bytes` is refused now, if it is: the
    /// free space would fall below `min_free_bytes`. Else the bytes are
    /// counted as taken until the next measurement.
    pub fn produce_refusal(&self, bytes: u64) -> Option<String> {
        if self.min_free == 0 {
            return None;
        }
        self.claim(bytes, self.min_free).err().map(|free| {
            format!(
                "the broker's data directory has {free} bytes free; {bytes} more would leave less than its floor of {} \
                 (min_free_bytes); delete records or topics, or add space",
                self.min_free
            )
        })
    }

    /// Why this node refuses a call of `bytes` bytes carrying entries of a
    /// partition leader now, if it does: the free space would fall below
    /// half of `min_free_bytes`. Begins with [`LOW_ON_SPACE`]. Else the
    /// bytes are counted as taken until the next measurement.
    pub fn entries_refusal(&self, bytes: u64) -> Option<String> {
        let floor = self.min_free / 2;
        if floor == 0 {
            return None;
        }
        self.claim(bytes, floor).err().map(|free| {
            format!(
                "{LOW_ON_SPACE}: {free} bytes free; {bytes} more would leave less than half of min_free_bytes ({floor})"
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_compared_with_the_file_systems_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let free = FreeSpace::new(dir.path(), 0).free();
        assert!(free > 0 && free < u64::MAX, "{free}");
        // No floor: nothing refused.
        let none = FreeSpace::new(dir.path(), 0);
        assert!(none.produce_refusal(1 << 20).is_none() && none.entries_refusal(1 << 20).is_none());
        // A floor far above what any disk has: both refuse.
        let high = FreeSpace::new(dir.path(), u64::MAX / 2);
        assert!(high.produce_refusal(0).unwrap().contains("min_free_bytes"));
        assert!(high.entries_refusal(0).unwrap().starts_with(LOW_ON_SPACE));
        // A floor between the free space and twice it: produce refused,
        // entries taken.
        let between = FreeSpace::new(dir.path(), free + free / 2);
        assert!(between.produce_refusal(0).is_some());
        assert!(between.entries_refusal(0).is_none());
        // A directory that does not exist: nothing known, nothing refused.
        let gone = FreeSpace::new(dir.path().join("missing"), u64::MAX / 2);
        assert_eq!(gone.free(), u64::MAX);
        assert!(gone.produce_refusal(0).is_none());
    }

    /// What was let in counts against the free space until the next
    /// measurement: many calls at once cannot each take the last room.
    #[test]
    fn bytes_let_in_count_until_the_next_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let free = FreeSpace::new(dir.path(), 0).free();
        // Followers' floor: half of the free space. A call of three
        // tenths of it fits; a second one would go below the floor.
        let space = FreeSpace::new(dir.path(), free);
        let call = free / 10 * 3;
        assert!(space.entries_refusal(call).is_none());
        assert!(space.entries_refusal(call).is_some());
        // A measurement forgets them (they were never written).
        std::thread::sleep(FRESH_FOR + Duration::from_millis(20));
        assert!(space.entries_refusal(call).is_none());
    }
}
