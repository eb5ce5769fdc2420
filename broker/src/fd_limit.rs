//! The broker's open-file limit. Each partition holds about three file
//! descriptors (its active segment's log, offset index and time index; a
//! sealed segment's files only while it is read), and each connection one,
//! so the soft limit many systems start processes with (1024) would cap a
//! broker at a few hundred partitions. At start the broker raises its soft
//! `RLIMIT_NOFILE` to the hard limit, as Go's runtime does for every
//! program; the hard limit is the operator's to set.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (_, after) = raise_open_file_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((after, soft), (hard, hard));
    }
}
