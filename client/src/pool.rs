//! What the producer and the consumer share about reaching partition
//! leaders: where a partition's requests go ([`Dest`]), connecting there,
//! the short backoff while a leader moves ([`quick_backoff`]), and which
//! destinations rest after a failed connect ([`Rests`]).
//!
//! Each client keeps one connection per destination, opened on first use
//! and kept until it breaks; the producer's links and the consumer's fetch
//! sessions are keyed by [`Dest`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::metadata::{QUICK_REFRESH_MAX, QUICK_REFRESH_MIN, Route};

/// Where a partition's requests go: its leader's native address, or
/// (`None`) the bootstrap list, for partitions without a known leader.
pub(crate) type Dest = Option<Arc<str>>;

/// The destination of a route; `None` while the route waits for the
/// topic's first Metadata lookup.
pub(crate) fn dest_of(route: Route) -> Option<Dest> {
    match route {
        Route::Wait => None,
        Route::Bootstrap => Some(None),
        Route::Leader(l) => Some(Some(l.addr)),
    }
}

/// Connects to `dest` (the bootstrap list: its first address that
/// answers) within `timeout`. A leader's connection error names its
/// address ("cannot connect to 127.0.0.1:9293: Connection refused"), so a
/// record or partition that fails on it says which broker was out of
/// reach; the bootstrap list's errors name their addresses already.
pub(crate) async fn connect(
    brokers: &Bootstrap,
    dest: &Dest,
    timeout: Duration,
) -> Result<Connection, ClientError> {
    let Some(addr) = dest else {
        return tokio::time::timeout(timeout, brokers.connect())
            .await
            .map_err(|_| {
                ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting took longer than {timeout:?}"),
                ))
            })?;
    };
    match tokio::time::timeout(timeout, Connection::connect(&**addr)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(ClientError::Io(e))) => Err(ClientError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot connect to {addr}: {e}"),
        ))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("cannot connect to {addr}: no answer within {timeout:?}"),
        ))),
    }
}

/// Wait before the `attempts`-th retry of a request refused because its
/// partition's leader moved (or before reconnecting to a leader that did
/// not answer): 10 ms, doubling per attempt up to 100 ms. The Metadata
/// refresh asked for at the same time runs at once, so the request goes to
/// the new leader as soon as any broker names it.
pub(crate) fn quick_backoff(attempts: u32) -> Duration {
    QUICK_REFRESH_MIN
        .saturating_mul(1 << attempts.saturating_sub(1).min(10))
        .min(QUICK_REFRESH_MAX)
}

/// Destinations that failed to connect: failures in a row and until when
/// each rests.
#[derive(Debug, Default)]
pub(crate) struct Rests {
    rests: HashMap<Dest, (u32, Instant)>,
}

impl Rests {
    /// Whether `dest` rests at `now`.
    pub(crate) fn resting(&self, dest: &Dest, now: Instant) -> bool {
        self.rests.get(dest).is_some_and(|r| r.1 > now)
    }

    /// Records a failed connect to `dest` at `now`; it rests
    /// `rest(failures in a row)`.
    pub(crate) fn failed(&mut self, dest: Dest, now: Instant, rest: impl Fn(u32) -> Duration) {
        let failures = self.rests.get(&dest).map_or(0, |r| r.0) + 1;
        self.rests.insert(dest, (failures, now + rest(failures)));
    }

    /// Records that `dest` answered.
    pub(crate) fn connected(&mut self, dest: &Dest) {
        self.rests.remove(dest);
    }

    /// The earliest end of a rest after `now`.
    pub(crate) fn next_end(&self, now: Instant) -> Option<Instant> {
        self.rests.values().map(|r| r.1).filter(|t| *t > now).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_backoff_doubles_from_10_ms_up_to_100_ms() {
        let ms: Vec<u128> = (1..=7).map(|a| quick_backoff(a).as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(quick_backoff(0), QUICK_REFRESH_MIN);
        assert_eq!(quick_backoff(u32::MAX), QUICK_REFRESH_MAX);
    }

    #[test]
    fn a_destination_rests_longer_per_failure_until_it_connects() {
        let mut r = Rests::default();
        let d: Dest = Some(Arc::from("a:1"));
        let now = Instant::now();
        assert!(!r.resting(&d, now));
        r.failed(d.clone(), now, quick_backoff);
        assert!(r.resting(&d, now));
        assert!(!r.resting(&None, now));
        assert_eq!(r.next_end(now), Some(now + Duration::from_millis(10)));
        r.failed(d.clone(), now, quick_backoff);
        assert_eq!(r.next_end(now), Some(now + Duration::from_millis(20)));
        r.connected(&d);
        assert!(!r.resting(&d, now));
        assert_eq!(r.next_end(now), None);
    }
}
