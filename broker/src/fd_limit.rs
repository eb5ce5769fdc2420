//! The broker's open-file limit. Each partition holds about three file
//! descriptors (its active segment's log, offset index and time index; a
//! sealed segment's files only while it is read), four in a cluster (the
//! index of its Raft log too), and each connection one, so the soft limit
//! many systems start processes with (1024) would cap a broker at a few
//! hundred partitions. At start the broker raises its soft `RLIMIT_NOFILE`
//! to the hard limit, as Go's runtime does for every program; the hard
//! limit is the operator's to set.
//!
//! What the limit cannot hold, the broker does not promise: [`fit`] lowers
//! `max_partitions` and `max_connections` until both fit under it, with
//! [`RESERVED_FDS`] to spare. Without that a client could take the broker
//! past the limit with partitions it is allowed to create or connections it
//! is allowed to open, and from then on the broker could neither accept a
//! connection (they wait in the listen queue, unanswered) nor start a
//! segment or open one to serve a read.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard one; returns the soft limit
/// before and after (equal when it already was at the hard limit).
pub fn raise_open_file_limit() -> nix::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok((soft, soft));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok((soft, getrlimit(Resource::RLIMIT_NOFILE)?.0))
}

/// The soft open-file limit now.
pub fn open_file_limit() -> nix::Result<u64> {
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// Descriptors kept out of the partitions', connections' and sealed
/// segments' shares: the standard streams and log, the listeners, the
/// runtime's event descriptors, the metrics endpoint's connections (at most
/// 64), and files open for a moment (metadata, checkpoints, snapshots,
/// directories to sync).
pub const RESERVED_FDS: u64 = 256;

/// Descriptors a cluster node keeps beyond [`RESERVED_FDS`]: the Raft
/// listener's connections (at most 256) and its own to the other nodes.
pub const RESERVED_CLUSTER_FDS: u64 = 256 + 64;

/// Descriptors one partition holds open: its active segment's log, offset
/// index and time index, and in a cluster the index of its Raft log.
pub fn fds_per_partition(clustered: bool) -> u64 {
    if clustered { 4 } else { 3 }
}

/// Descriptors kept out of the partitions' and connections' shares.
pub fn reserved_fds(clustered: bool) -> u64 {
    if clustered {
        RESERVED_FDS + RESERVED_CLUSTER_FDS
    } else {
        RESERVED_FDS
    }
}

/// Descriptors a sealed segment holds while open: its `.log` file and both
/// index files (mapped).
pub const FDS_PER_SEALED_SEGMENT: u64 = 3;

/// Partitions, client connections and open sealed segments that fit under
/// an open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Most partitions (replicas, in a cluster) the broker holds.
    pub partitions: u32,
    /// Most client connections served at once.
    pub connections: usize,
    /// Most sealed segments of all partitions held open together
    /// ([`crate::log::open_sealed`]).
    pub sealed_segments: usize,
}

/// The most of `max_partitions` partitions ([`fds_per_partition`]
/// descriptors each) and `max_connections` connections (one each) that
/// `limit` descriptors hold beside [`reserved_fds`] and the share of sealed
/// segments in use (an eighth of what is left after the reserve,
/// [`FDS_PER_SEALED_SEGMENT`] each). Both as asked when they fit.
/// Otherwise connections keep at most a quarter of what is left, partitions
/// take what they can of the rest, and connections then what the
/// partitions leave; never below 1 each.
pub fn fit(limit: u64, clustered: bool, max_partitions: u32, max_connections: usize) -> Fit {
    let avail = limit.saturating_sub(reserved_fds(clustered));
    let sealed = avail / 8;
    let sealed_segments =
        usize::try_from((sealed / FDS_PER_SEALED_SEGMENT).max(1)).unwrap_or(usize::MAX);
    let avail = avail - sealed;
    let want_partitions = u64::from(max_partitions);
    let want_connections = max_connections as u64;
    let per_partition = fds_per_partition(clustered);
    if want_partitions
        .saturating_mul(per_partition)
        .saturating_add(want_connections)
        <= avail
    {
        return Fit {
            partitions: max_partitions,
            connections: max_connections,
            sealed_segments,
        };
    }
    let connections = want_connections.min(avail / 4);
    let partitions = want_partitions.min((avail - connections) / per_partition);
    let connections = want_connections.min(avail - partitions * per_partition);
    Fit {
        partitions: u32::try_from(partitions.max(1)).unwrap_or(u32::MAX),
        connections: usize::try_from(connections.max(1)).unwrap_or(usize::MAX),
        sealed_segments,
    }
}

/// The open-file limit that holds `max_partitions` partitions and
/// `max_connections` connections as [`fit`] shares it out.
pub fn needed(clustered: bool, max_partitions: u32, max_connections: usize) -> u64 {
    let connections = max_connections as u64;
    let both = u64::from(max_partitions)
        .saturating_mul(fds_per_partition(clustered))
        .saturating_add(connections);
    // Seven eighths of what is left after the reserve must hold both.
    reserved_fds(clustered).saturating_add(both.saturating_mul(8).div_ceil(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_fits_is_kept() {
        let f = fit(1 << 20, false, 10_000, 1024);
        assert_eq!((f.partitions, f.connections), (10_000, 1024));
        assert_eq!(needed(false, 10_000, 1024), 35_712);
        assert_eq!(needed(true, 10_000, 1024), 47_461);
        for clustered in [false, true] {
            let n = needed(clustered, 10_000, 1024);
            let f = fit(n, clustered, 10_000, 1024);
            assert_eq!((f.partitions, f.connections), (10_000, 1024));
            assert!(fit(n - 8, clustered, 10_000, 1024).partitions < 10_000);
        }
    }

    #[test]
    fn partitions_give_way_to_connections_up_to_a_quarter() {
        let f = |limit, clustered, p, c| {
            let f = fit(limit, clustered, p, c);
            (f.partitions, f.connections, f.sealed_segments)
        };
        // This machine's hard limit: connections as configured, partitions
        // what is left beside an eighth for sealed segments.
        assert_eq!(f(20_000, false, 10_000, 1024), (5_417, 1024, 822));
        assert_eq!(f(20_000, true, 10_000, 1024), (3_993, 1024, 809));
        // A common hard limit of 1024: a quarter each way.
        assert_eq!(f(1024, false, 10_000, 1024), (168, 168, 32));
        // Few partitions asked for: connections take the rest.
        assert_eq!(f(1024, false, 10, 1024), (10, 642, 32));
        // Nothing left beyond the reserve: one of each, no panic.
        assert_eq!(f(10, true, 10_000, 1024), (1, 1, 1));
        assert_eq!(f(u64::MAX, true, u32::MAX, usize::MAX).0, u32::MAX);
    }

    #[test]
    fn a_fit_fits() {
        for limit in [0, 1, 255, 256, 300, 600, 1024, 4096, 20_000, 65_536] {
            for clustered in [false, true] {
                let (per, reserved) = (fds_per_partition(clustered), reserved_fds(clustered));
                for (p, c) in [(10_000, 1024), (1, 1), (5, 100_000), (100_000, 5)] {
                    let f = fit(limit, clustered, p, c);
                    assert!(f.partitions <= p.max(1) && f.connections <= c.max(1));
                    if limit > reserved + 8 * (per + 1) {
                        let used = u64::from(f.partitions) * per
                            + f.connections as u64
                            + f.sealed_segments as u64 * FDS_PER_SEALED_SEGMENT;
                        assert!(
                            used <= limit - reserved,
                            "{limit} {clustered} {p} {c}: {f:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (_, after) = raise_open_file_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((after, soft), (hard, hard));
    }
}
