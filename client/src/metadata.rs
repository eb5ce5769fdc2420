//! The client's metadata cache: which broker leads each partition, learnt
//! from native Metadata.
//!
//! A [`MetadataCache`] holds, per topic it was asked about, each
//! partition's leader as a native address with its leader epoch, and the
//! cluster's brokers (node id → address). A broker that speaks Metadata
//! older than version 2 runs alone: it is taken as the leader of every
//! partition it serves (see [`Connection::metadata`]).
//!
//! The cache is refreshed from the bootstrap list first, then from any
//! broker it knows, by [`MetadataCache::refresh`]. It says when a refresh
//! is due ([`MetadataCache::refresh_due`]): after [`MetadataCache::invalidate`]
//! (a `NotLeaderForPartition` or `LeaderNotAvailable` answer, a lost
//! connection), when a topic it was asked about is unknown to it, or when
//! the last refresh is older than the max age. After a failed refresh the
//! next is due only after a backoff that doubles up to 5 s.
//!
//! A refresh asked for is run at once, from whichever broker answers, so a
//! client finds a new leader as soon as any surviving broker knows it. While
//! the answers keep naming a leader that does not work (an election is
//! still under way), refreshes asked for in a row are spaced by a short
//! backoff: 10 ms, doubling up to 100 ms ([`QUICK_REFRESH_MIN`],
//! [`QUICK_REFRESH_MAX`]); a refresh more than a second after the previous
//! one starts again at 10 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;
use crate::error::ClientError;

/// Kafka's `metadata.max.age.ms` default: 5 minutes.
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(300);

/// How long one refresh (connect and Metadata) may take on one broker.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait between failed refreshes.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Shortest spacing of refreshes asked for in a row.
pub const QUICK_REFRESH_MIN: Duration = Duration::from_millis(10);

/// Longest spacing of refreshes asked for in a row.
pub const QUICK_REFRESH_MAX: Duration = Duration::from_millis(100);

/// A refresh this long after the previous one starts the spacing over.
const QUICK_RESET: Duration = Duration::from_secs(1);

/// Where a partition's requests go, by the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The topic was never looked up: wait for the first refresh.
    Wait,
    /// No leader known (the topic or partition is unknown to the cluster,
    /// it has no leader now, or no broker answered Metadata): ask the
    /// bootstrap list, whose answer says what is wrong.
    Bootstrap,
    /// The partition's leader.
    Leader(Leader),
}

/// A partition's leader as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's native address.
    pub addr: Arc<str>,
    /// The leader epoch Metadata gave.
    pub epoch: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Node id → native address, from the last Metadata answer.
    brokers: HashMap<u64, Arc<str>>,
    /// Topic → leader per partition number (`None`: no leader now).
    topics: HashMap<String, Vec<Option<Leader>>>,
    /// Topics asked about and not looked up yet.
    wanted: Vec<String>,
    /// Topics looked up that the last answer did not list (or looked up
    /// while no broker answered).
    missing: Vec<String>,
    /// When the last refresh succeeded.
    refreshed: Option<Instant>,
    /// Successful refreshes in a row, each within [`QUICK_RESET`] of the
    /// one before: the spacing of the next asked-for one doubles per step.
    quick: u32,
    /// A refresh was asked for (error answer, lost connection).
    stale: bool,
    /// Failed refreshes in a row, and when the last one ended.
    failures: u32,
    last_failure: Option<Instant>,
}

/// Partition leaders and broker addresses; clones share one cache.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    bootstrap: Bootstrap,
    max_age: Duration,
    backoff: Duration,
    state: Arc<Mutex<State>>,
    /// Held by the one refresh running.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl MetadataCache {
    /// An empty cache that refreshes from `bootstrap`, at the latest every
    /// `max_age`, backing off from `backoff` after failures.
    pub fn new(bootstrap: Bootstrap, max_age: Duration, backoff: Duration) -> Self {
        MetadataCache {
            bootstrap,
            max_age,
            backoff: backoff.max(Duration::from_millis(1)),
            state: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where requests for a partition go. A topic the cache has no entry
    /// for is remembered ([`Route::Wait`]), so the next refresh asks for it
    /// and [`refresh_due`](Self::refresh_due) says so.
    pub fn route(&self, topic: &str, partition: u32) -> Route {
        let mut st = self.state();
        if let Some(parts) = st.topics.get(topic) {
            return match parts.get(partition as usize) {
                Some(Some(leader)) => Route::Leader(leader.clone()),
                _ => Route::Bootstrap,
            };
        }
        if st.missing.iter().any(|t| t == topic) {
            return Route::Bootstrap;
        }
        if !st.wanted.iter().any(|t| t == topic) {
            st.wanted.push(topic.to_owned());
            st.stale = true;
        }
        Route::Wait
    }

    /// Every broker's address the cache knows, by node id.
    pub fn brokers(&self) -> Vec<(u64, Arc<str>)> {
        let mut v: Vec<_> = self
            .state()
            .brokers
            .iter()
            .map(|(id, a)| (*id, Arc::clone(a)))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Asks for a refresh: a broker answered `NotLeaderForPartition` or
    /// `LeaderNotAvailable`, or a connection was lost.
    pub fn invalidate(&self) {
        self.state().stale = true;
    }

    /// Whether a refresh should run now: asked for, or older than the max
    /// age, and not within the backoff after a failed one.
    pub fn refresh_due(&self, now: Instant) -> bool {
        let st = self.state();
        if st.stale
            && let Some(t) = st.refreshed
            && now.saturating_duration_since(t) < quick_spacing(st.quick)
        {
            return false;
        }
        if let Some(t) = st.last_failure
            && st.failures > 0
        {
            let wait = self
                .backoff
                .saturating_mul(1 << st.failures.min(6))
                .min(MAX_BACKOFF);
            if now.saturating_duration_since(t) < wait {
                return false;
            }
        }
        st.stale
            || st
                .refreshed
                .is_none_or(|t| now.saturating_duration_since(t) >= self.max_age)
    }

    /// Fetches Metadata for every topic the cache holds or was asked about,
    /// from the first broker that answers: the bootstrap list, then the
    /// known brokers. Concurrent calls run one refresh.
    pub async fn refresh(&self) -> Result<(), ClientError> {
        let _running = self.refreshing.lock().await;
        let (topics, known, looked_up) = {
            let st = self.state();
            // Topics asked about from here on, while this refresh is in
            // flight, are not in its question: they stay wanted (and the
            // cache stale) for the next one, not taken for missing.
            let looked_up = st.wanted.clone();
            let mut topics: Vec<String> = st.topics.keys().cloned().collect();
            topics.extend(looked_up.iter().cloned());
            topics.extend(st.missing.iter().cloned());
            topics.sort();
            topics.dedup();
            let known: Vec<Arc<str>> = st.brokers.values().cloned().collect();
            (topics, known, looked_up)
        };
        let asked = Some(topics.clone());
        let mut result = self.ask(self.bootstrap.connect_list(), asked.clone()).await;
        for addr in &known {
            if result.is_ok() {
                break;
            }
            result = self.ask(Connection::connect(&**addr), asked.clone()).await;
        }
        let mut st = self.state();
        match result {
            Ok(meta) => {
                let brokers: HashMap<u64, Arc<str>> = meta
                    .brokers
                    .iter()
                    .map(|b| (b.id, Arc::from(b.listen.as_str())))
                    .collect();
                let mut fresh = HashMap::new();
                for t in &meta.topics {
                    if t.error_code != sluice_protocol::wire::ErrorCode::None {
                        continue;
                    }
                    let n = t
                        .partitions
                        .iter()
                        .map(|p| p.partition + 1)
                        .max()
                        .unwrap_or(0);
                    let mut parts = vec![None; n as usize];
                    for p in &t.partitions {
                        let leader = p.leader.and_then(|id| brokers.get(&id)).map(|a| Leader {
                            addr: Arc::clone(a),
                            epoch: p.leader_epoch,
                        });
                        if let Some(slot) = parts.get_mut(p.partition as usize) {
                            *slot = leader;
                        }
                    }
                    fresh.insert(t.name.clone(), parts);
                }
                let mut missing = settle_wanted(&mut st.wanted, &looked_up);
                missing.append(&mut st.missing);
                missing.retain(|t| !fresh.contains_key(t));
                missing.sort();
                missing.dedup();
                st.missing = missing;
                st.topics = fresh;
                st.brokers = brokers;
                let now = Instant::now();
                st.quick = match st.refreshed {
                    Some(t) if now.saturating_duration_since(t) < QUICK_RESET => {
                        st.quick.saturating_add(1)
                    }
                    _ => 0,
                };
                st.refreshed = Some(now);
                st.stale = !st.wanted.is_empty();
                st.failures = 0;
                st.last_failure = None;
                Ok(())
            }
            Err(e) => {
                let mut looked = settle_wanted(&mut st.wanted, &looked_up);
                st.missing.append(&mut looked);
                st.failures = st.failures.saturating_add(1);
                st.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Whether a refresh was asked for and has not run yet.
    pub fn is_stale(&self) -> bool {
        self.state().stale
    }

    async fn ask(
        &self,
        connect: impl std::future::Future<Output = Result<Connection, ClientError>>,
        topics: Option<Vec<String>>,
    ) -> Result<sluice_protocol::wire::metadata::MetadataResponse, ClientError> {
        let attempt = async {
            let mut conn = connect.await?;
            conn.metadata(topics).await
        };
        crate::consumer::within(REFRESH_TIMEOUT, "Metadata", attempt).await
    }
}

/// Takes out of `wanted` the topics a refresh looked up (`looked_up`, the
/// wanted list when it started) and returns them; topics wanted since stay.
fn settle_wanted(wanted: &mut Vec<String>, looked_up: &[String]) -> Vec<String> {
    let (settled, later): (Vec<String>, Vec<String>) = std::mem::take(wanted)
        .into_iter()
        .partition(|t| looked_up.contains(t));
    *wanted = later;
    settled
}

/// How long after a refresh the next asked-for one waits, `quick` refreshes
/// into a run: 0 at first, then [`QUICK_REFRESH_MIN`] doubling up to
/// [`QUICK_REFRESH_MAX`].
fn quick_spacing(quick: u32) -> Duration {
    match quick {
        0 => Duration::ZERO,
        n => QUICK_REFRESH_MIN
            .saturating_mul(1 << (n - 1).min(10))
            .min(QUICK_REFRESH_MAX),
    }
}

/// A broker bound to an unspecified address (`0.0.0.0:9292`, `[::]:9292`)
/// advertises that address, which names no host a client can dial: the
/// host of the connection that got the answer (`peer`, `ip:port`) with the
/// advertised port stands for it. `None` keeps `listen` as it is.
pub(crate) fn reachable(listen: &str, peer: &str) -> Option<String> {
    let advertised: std::net::SocketAddr = listen.parse().ok()?;
    if !advertised.ip().is_unspecified() {
        return None;
    }
    let peer: std::net::SocketAddr = peer.parse().ok()?;
    Some(std::net::SocketAddr::new(peer.ip(), advertised.port()).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_advertised_host_becomes_the_answering_host() {
        assert_eq!(
            reachable("0.0.0.0:9292", "10.1.2.3:9000").as_deref(),
            Some("10.1.2.3:9292")
        );
        assert_eq!(
            reachable("[::]:9292", "[fe80::1]:9000").as_deref(),
            Some("[fe80::1]:9292")
        );
        assert_eq!(reachable("10.0.0.9:9292", "10.1.2.3:9000"), None);
        assert_eq!(reachable("broker-1:9292", "10.1.2.3:9000"), None);
    }

    /// A port nothing listens on.
    fn dead_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap().to_string();
        drop(l);
        a
    }

    #[tokio::test]
    async fn unknown_topics_wait_for_one_lookup_then_go_to_the_bootstrap_list() {
        let cache = MetadataCache::new(
            Bootstrap::new([dead_addr()]),
            Duration::from_secs(300),
            Duration::from_millis(200),
        );
        assert!(cache.refresh_due(Instant::now()), "never refreshed");
        assert_eq!(cache.route("t", 0), Route::Wait);
        assert!(cache.refresh().await.is_err());
        // Looked up (no broker answered): the bootstrap list's answer will
        // say what is wrong.
        assert_eq!(cache.route("t", 0), Route::Bootstrap);
        let failed = Instant::now();
        assert!(!cache.refresh_due(failed), "within the backoff");
        assert!(cache.refresh_due(failed + Duration::from_secs(5)));
    }

    /// A topic first asked about while a refresh is in flight was not in
    /// that refresh's question: it stays wanted, and the cache stale, for
    /// the next one, instead of being taken for missing (which would send
    /// its records to the bootstrap list until the max age).
    #[tokio::test]
    async fn a_topic_asked_about_during_a_refresh_waits_for_the_next() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cache = MetadataCache::new(
            Bootstrap::new([addr]),
            Duration::from_secs(300),
            Duration::from_millis(200),
        );
        assert_eq!(cache.route("early", 0), Route::Wait);
        let refreshing = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.refresh().await })
        };
        // The refresh has connected: it is in flight.
        let (held, _) = listener.accept().await.unwrap();
        assert_eq!(cache.route("late", 0), Route::Wait);
        drop(held);
        assert!(refreshing.await.unwrap().is_err(), "no answer");
        assert_eq!(cache.route("early", 0), Route::Bootstrap, "looked up");
        assert_eq!(cache.route("late", 0), Route::Wait, "still wanted");
        assert!(cache.is_stale(), "the next refresh asks for it");
    }

    #[test]
    fn a_refresh_is_due_when_asked_for_or_past_the_max_age() {
        let cache = MetadataCache::new(
            Bootstrap::new(["a:1"]),
            Duration::from_secs(60),
            Duration::from_millis(100),
        );
        let now = Instant::now();
        {
            let mut st = cache.state();
            st.refreshed = Some(now);
        }
        assert!(!cache.refresh_due(now));
        assert!(cache.refresh_due(now + Duration::from_secs(60)), "max age");
        cache.invalidate();
        assert!(cache.refresh_due(now), "asked for");
    }

    #[test]
    fn refreshes_asked_for_in_a_row_are_spaced_by_a_short_doubling_backoff() {
        let cache = MetadataCache::new(
            Bootstrap::new(["a:1"]),
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        let now = Instant::now();
        cache.state().refreshed = Some(now);
        cache.invalidate();
        assert!(cache.refresh_due(now), "the first one runs at once");
        for (quick, spacing) in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (30, 100)] {
            cache.state().quick = quick;
            let gap = Duration::from_millis(spacing);
            assert!(!cache.refresh_due(now + gap - Duration::from_millis(1)));
            assert!(cache.refresh_due(now + gap), "{quick} in a row: {gap:?}");
        }
    }
}
