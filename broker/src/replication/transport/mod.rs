//! Node-to-node Raft RPC.
//!
//! One TCP listener on this node's `raft` address serves every group; one
//! outbound connection per peer carries this node's calls, pipelined and
//! matched to their answers by request id. Each frame names its
//! [`GroupId`]; a [`Registry`] maps groups to their [`GroupHandler`], so
//! partition groups register as they start. A call for a group this node
//! does not hold is answered with an error frame, at once.
//!
//! - [`frame`]: the byte layout.
//! - [`hello`]: the first frame of every connection, which names the
//!   caller's cluster and node; the listener refuses strangers.
//! - [`raft`]: the generic openraft network adapter over [`Transport::call`].
//! - [`budget`]: the bytes of a peer's AppendEntries calls, adapted to how
//!   fast it answers.
//! - `faults` (feature `raft-faults`): per-peer drop, delay and partition
//!   rules read from the file named by `SLUICE_RAFT_FAULTS`.

pub mod budget;
mod coalesce;
#[cfg(feature = "raft-faults")]
pub mod faults;
pub mod frame;
pub mod hello;
pub mod raft;
pub mod raw;
mod server;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub use frame::{Frame, GroupId, Kind, Rpc};

use crate::config::{FetchPath, TcpCongestion};
use crate::replication::election::RoundOutcome;
use crate::server::gather;
use crate::service::fetch::{Chunk, FileRange as FetchRange};
use crate::service::stats::Stats;
pub use server::serve;

/// What a handler's future yields: the response body, or an error message
/// sent back as an error frame.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// Serves the calls of one group on this node.
pub trait GroupHandler: Send + Sync + 'static {
    /// Answers one request (`body` postcard, `payload` raw bytes). An
    /// error starting with [`MALFORMED`] says the request broke the
    /// layout: it is answered, then the connection it came on is closed.
    fn handle(&self, rpc: Rpc, body: Bytes, payload: BytesMut) -> HandlerFuture;
}

/// How a handler's error begins when the request itself was malformed
/// (its body does not decode, or its entries do not match its payload).
pub const MALFORMED: &str = "malformed request";

/// The groups this node serves.
#[derive(Default)]
pub struct Registry {
    handlers: RwLock<HashMap<GroupId, Arc<dyn GroupHandler>>>,
    /// Woken at every registration.
    registered: tokio::sync::Notify,
}

/// How long a vote or pre-vote request for a group this node does not serve waits for
/// it to be registered before it is answered with an error. Every node
/// forms a new topic's groups when it applies the creation, a few
/// milliseconds apart (more for a topic of many partitions); a peer that
/// formed them first may already call for a vote, and openraft logs the
/// refusal at ERROR. A third of the default vote timeout
/// (`election_timeout_min_ms`, 150), so the caller gets the answer, not a
/// timeout (which it would log and count as a failed call). Other calls are
/// answered at once: an AppendEntries times out after one heartbeat
/// interval (50 ms by default), and its refusal is retried quietly.
pub const GROUP_FORMING_WAIT: Duration = Duration::from_millis(50);

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.read().keys()).finish()
    }
}

impl Registry {
    /// Serves `group` with `handler` (replacing any earlier one).
    pub fn register(&self, group: GroupId, handler: Arc<dyn GroupHandler>) {
        self.handlers.write().insert(group, handler);
        self.registered.notify_waiters();
    }

    /// Stops serving `group`: its calls get error frames.
    pub fn unregister(&self, group: GroupId) {
        self.handlers.write().remove(&group);
    }

    /// The handler of `group`.
    pub fn get(&self, group: GroupId) -> Option<Arc<dyn GroupHandler>> {
        self.handlers.read().get(&group).cloned()
    }

    /// The handler of `group`, waiting up to `wait` for it to be
    /// registered (see [`GROUP_FORMING_WAIT`]).
    pub async fn get_or_wait(
        &self,
        group: GroupId,
        wait: Duration,
    ) -> Option<Arc<dyn GroupHandler>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Listening before looking, so a registration in between is
            // not missed.
            let registered = self.registered.notified();
            tokio::pin!(registered);
            registered.as_mut().enable();
            if let Some(h) = self.get(group) {
                return Some(h);
            }
            if tokio::time::timeout_at(deadline, registered).await.is_err() {
                return self.get(group);
            }
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No connection to the peer (refused, reset, in backoff, unknown id,
    /// or cut by a fault rule).
    #[error("node {0} unreachable: {1}")]
    Unreachable(u64, String),
    /// No answer within the call's timeout.
    #[error("no answer from node {0} within {1:?}")]
    Timeout(u64, Duration),
    /// The peer answered with an error frame.
    #[error("node {0} answered: {1}")]
    Remote(u64, String),
}

/// The outcome label of `sluice_raft_rpc_total`.
pub const RESULTS: [&str; 4] = ["ok", "remote_error", "timeout", "unreachable"];

/// Calls per (rpc, result), for `sluice_raft_rpc_total{kind,result}`.
#[derive(Debug, Default)]
pub struct RpcCounters {
    /// Indexed by the rpc's number less one (hellos stay zero).
    counts: [[AtomicU64; 4]; 7],
}

impl RpcCounters {
    fn count(&self, rpc: Rpc, r: &Result<Bytes, CallError>) {
        let result = match r {
            Ok(_) => 0,
            Err(CallError::Remote(..)) => 1,
            Err(CallError::Timeout(..)) => 2,
            Err(CallError::Unreachable(..)) => 3,
        };
        // Hellos are not calls.
        if rpc == Rpc::Hello {
            return;
        }
        if let Some(row) = self.counts.get(rpc as usize - 1) {
            row[result].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every (rpc name, result, count), zero counts included.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let rpcs = [
            Rpc::AppendEntries,
            Rpc::Vote,
            Rpc::InstallSnapshot,
            Rpc::Forward,
            Rpc::PreVote,
            Rpc::Ping,
        ];
        let mut out = Vec::new();
        for rpc in rpcs {
            for (i, result) in RESULTS.iter().enumerate() {
                let n = self.counts[rpc as usize - 1][i].load(Ordering::Relaxed);
                out.push((rpc.name(), *result, n));
            }
        }
        out
    }
}

/// Pre-vote rounds per (group kind, outcome), for
/// `sluice_raft_pre_votes_total{group,result}`.
#[derive(Debug, Default)]
pub struct PreVoteCounters {
    /// Indexed by group kind (controller, partition), then by outcome
    /// (its discriminant, its place in [`RoundOutcome::ALL`]).
    counts: [[AtomicU64; 3]; 2],
}

impl PreVoteCounters {
    fn count(&self, group: GroupId, outcome: RoundOutcome) {
        let kind = match group {
            GroupId::Controller => 0,
            GroupId::Partition { .. } => 1,
        };
        self.counts[kind][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (group kind, outcome, count), zero counts included.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (kind, row) in ["controller", "partition"].into_iter().zip(&self.counts) {
            for (outcome, n) in RoundOutcome::ALL.iter().zip(row) {
                out.push((kind, outcome.name(), n.load(Ordering::Relaxed)));
            }
        }
        out
    }
}

/// The first wait before reconnecting to a peer; it doubles up to
/// [`MAX_BACKOFF`] while connecting fails.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A peer's version before its hello or answer said one.
const UNKNOWN_VERSION: u32 = u32::MAX;

/// One frame to write: its header and body, then its payload's file
/// ranges (sent with `sendfile`).
struct Outgoing {
    head: Bytes,
    files: Vec<raw::RawRange>,
    /// The call it asks (`None`: the hello): a call whose caller stopped
    /// waiting (timed out) before the frame was written is not written.
    request_id: Option<u64>,
}

/// One open connection to a peer.
struct Conn {
    tx: mpsc::UnboundedSender<Outgoing>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Frame>>>,
    closed: AtomicBool,
    /// The peer answered this node's [`hello`] with a response. Calls go
    /// out right behind the hello, without waiting for it; the peer reads
    /// none of them if it refuses.
    accepted: AtomicBool,
    /// The reason of the peer's error answer to the hello.
    refused: Mutex<Option<String>>,
    /// When a call on it first went unanswered since its last answer, in
    /// nanoseconds since [`clock_base`] (0: every call answered). A
    /// stopped process keeps its connections open, and its kernel even
    /// accepts new ones: only this tells it is not there.
    unanswered_since: AtomicU64,
}

/// A call waiting for its answer on `conn`. Dropped before the answer came
/// (its caller gave up: openraft's own timeout, a replication stream that
/// ended), it takes its waiter out of the connection's pending map, so that
/// its frame is not sent if still queued and the map does not keep it until
/// the peer answers or the connection closes.
struct Waiting<'a> {
    conn: &'a Conn,
    request_id: u64,
    done: bool,
}

impl Waiting<'_> {
    /// The answer came (or the connection closed): the reader has taken
    /// the waiter out already.
    fn answered(mut self) {
        self.done = true;
    }

    /// No answer in time: takes the waiter out and marks the peer as not
    /// answering since now. (A call dropped by its caller does not mark
    /// it: the caller may have given up for reasons of its own.)
    fn unanswered(self) {
        let _ = self.conn.unanswered_since.compare_exchange(
            0,
            clock_now(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.pending.lock().remove(&self.request_id);
        }
    }
}

/// The instant [`Conn::unanswered_since`] counts from.
fn clock_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since [`clock_base`], at least 1.
fn clock_now() -> u64 {
    u64::try_from(clock_base().elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Waiting callers see their sender dropped.
        self.pending.lock().clear();
    }
}

#[derive(Default)]
struct PeerState {
    conn: Option<Arc<Conn>>,
    /// Whether `conn`'s acceptance has been taken into account (the end
    /// of an outage logged, the backoff reset).
    settled: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Since when connecting to the peer has failed, and when that was
    /// last logged with how many failures since.
    down_since: Option<Instant>,
    warned_at: Option<Instant>,
    /// The error of the last failed connect logged.
    warned_error: String,
    failures: u64,
    /// Calls on an open connection that got no answer in time, since the
    /// last connect.
    failed_calls: u64,
}

/// How often a peer that stays unreachable is logged again.
const UNREACHABLE_LOG_EVERY: Duration = Duration::from_secs(30);
/// How often, at most, a peer that stays unreachable for a new reason (it
/// was down, now it refuses this node) is logged again.
const NEW_REASON_LOG_EVERY: Duration = Duration::from_secs(1);

impl PeerState {
    /// Counts a failed connect; logs the first one, then at most one per
    /// [`UNREACHABLE_LOG_EVERY`] (every partition's Raft group calls the
    /// peer, so failures come many times a second while it is down), or
    /// per [`NEW_REASON_LOG_EVERY`] when the reason changed.
    fn failed(&mut self, target: u64, addr: SocketAddr, error: &str) {
        let now = Instant::now();
        self.backoff = (self.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        self.retry_at = Some(now + self.backoff);
        // The first failed connect of an outage is always said (a call that
        // failed on an open connection just before may have used up the
        // allowance), then at most once per UNREACHABLE_LOG_EVERY.
        let first = self.down_since.is_none();
        let since = *self.down_since.get_or_insert(now);
        self.failures += 1;
        let since_warned = self.warned_at.map(|t| now.duration_since(t));
        if first
            || since_warned.is_none_or(|d| d >= UNREACHABLE_LOG_EVERY)
            || (self.warned_error != error
                && since_warned.is_none_or(|d| d >= NEW_REASON_LOG_EVERY))
        {
            tracing::warn!(
                node = target,
                %addr,
                error,
                failed_connects = self.failures,
                down_for_ms = now.duration_since(since).as_millis() as u64,
                "cannot reach a peer node; retrying"
            );
            self.warned_at = Some(now);
            error.clone_into(&mut self.warned_error);
        }
    }

    /// Takes the current connection's hello answer into account: once
    /// accepted, the outage (if any) ends and is logged; a connection that
    /// closed before it was accepted (refused, or not a Sluice node) counts
    /// as a failed connect, and its reason is returned. A connection is
    /// only taken as the peer's when it has been accepted, so a peer that
    /// refuses this node stays down and is retried with the backoff.
    fn settle(&mut self, target: u64, addr: SocketAddr) -> Option<String> {
        let conn = self.conn.as_ref()?;
        if conn.accepted.load(Ordering::Acquire) {
            if !self.settled {
                self.settled = true;
                if let Some(since) = self.down_since.take() {
                    tracing::info!(
                        node = target,
                        failed_connects = self.failures,
                        down_for_ms = since.elapsed().as_millis() as u64,
                        "peer node reachable again"
                    );
                }
                self.backoff = Duration::ZERO;
                self.retry_at = None;
                self.warned_at = None;
                self.failures = 0;
                self.failed_calls = 0;
            }
            return None;
        }
        if !conn.closed.load(Ordering::Acquire) {
            return None;
        }
        let why = match conn.refused.lock().take() {
            Some(reason) => format!("it refused this node: {reason}"),
            None => "the connection closed before the peer answered this node's hello".to_owned(),
        };
        self.conn = None;
        self.failed(target, addr, &why);
        Some(why)
    }
}

/// This node's end of the node-to-node RPC: outbound calls and the group
/// registry its listener serves.
pub struct Transport {
    /// The cluster this node belongs to, said in every [`hello`].
    cluster_id: String,
    local: u64,
    peers: HashMap<u64, SocketAddr>,
    state: Mutex<HashMap<u64, PeerState>>,
    /// One connect at a time per peer: callers that find no connection
    /// while another connects wait for it and share what it opened.
    dialing: HashMap<u64, tokio::sync::Mutex<()>>,
    next_id: AtomicU64,
    /// The groups this node serves.
    pub registry: Registry,
    /// When each peer last called this node ([`clock_now`]), by peer id.
    called_us: Mutex<HashMap<u64, Arc<AtomicU64>>>,
    /// Each peer's protocol version ([`hello::PROTOCOL_VERSION`]) as its
    /// last hello, or its last answer to this node's, said it
    /// ([`UNKNOWN_VERSION`] until one did).
    versions: HashMap<u64, Arc<AtomicU32>>,
    /// Outbound calls by kind and result.
    pub counters: RpcCounters,
    /// Pre-vote rounds by group kind and outcome.
    pub pre_votes: PreVoteCounters,
    /// Payload bytes sent with `sendfile` count into its
    /// `fetch_bytes_sendfile` (cold reads into `cold_reads`).
    pub sendfile_stats: Arc<Stats>,
    /// Congestion control of node-to-node connections, both ways.
    tcp_congestion: TcpCongestion,
    #[cfg(feature = "raft-faults")]
    faults: faults::Faults,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("cluster_id", &self.cluster_id)
            .field("local", &self.local)
            .field("peers", &self.peers)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for node `local` of cluster `cluster_id` whose peers
    /// listen at `peers` (node id → raft address; the local entry is
    /// ignored). Its listener serves only connections whose hello names
    /// `cluster_id`, this node and one of `peers`.
    pub fn new(cluster_id: &str, local: u64, peers: HashMap<u64, SocketAddr>) -> Arc<Self> {
        Self::with_tcp_congestion(cluster_id, local, peers, TcpCongestion::default())
    }

    /// [`Transport::new`] whose connections, outbound and accepted, get
    /// the congestion control `tcp` asks for (`auto`: loopback peers use
    /// [`crate::tcp::LOOPBACK_ALGORITHM`]).
    pub fn with_tcp_congestion(
        cluster_id: &str,
        local: u64,
        peers: HashMap<u64, SocketAddr>,
        tcp: TcpCongestion,
    ) -> Arc<Self> {
        let dialing = peers
            .keys()
            .map(|&id| (id, tokio::sync::Mutex::new(())))
            .collect();
        let versions = peers
            .keys()
            .map(|&id| (id, Arc::new(AtomicU32::new(UNKNOWN_VERSION))))
            .collect();
        Arc::new(Transport {
            tcp_congestion: tcp,
            cluster_id: cluster_id.to_owned(),
            local,
            peers,
            dialing,
            state: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            registry: Registry::default(),
            called_us: Mutex::default(),
            versions,
            counters: RpcCounters::default(),
            pre_votes: PreVoteCounters::default(),
            sendfile_stats: Arc::new(Stats::default()),
            #[cfg(feature = "raft-faults")]
            faults: faults::Faults::from_env(),
        })
    }

    /// This node's id.
    pub fn local(&self) -> u64 {
        self.local
    }

    /// The cluster this node belongs to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Where the server notes the calls of peer `from` (see
    /// [`Transport::unreachable`]).
    pub(crate) fn calls_of(&self, from: u64) -> Arc<AtomicU64> {
        Arc::clone(self.called_us.lock().entry(from).or_default())
    }

    /// Notes a call from a peer in its slot ([`Transport::calls_of`]).
    pub(crate) fn note_call(slot: &AtomicU64) {
        slot.store(clock_now(), Ordering::Relaxed);
    }

    /// The peer that calls and its protocol version, when this node
    /// serves the connection whose first frame is `first` (see
    /// [`hello`]); else why it does not. The version is noted
    /// ([`Transport::peer_version`]).
    pub(crate) fn hello_check(&self, first: &Frame) -> Result<u64, String> {
        let (hello, version) = hello::Hello::check(first, &self.cluster_id, self.local, |id| {
            self.peers.contains_key(&id)
        })?;
        if let Some(v) = self.versions.get(&hello.from) {
            v.store(version, Ordering::Relaxed);
        }
        Ok(hello.from)
    }

    /// The protocol version this node speaks: [`hello::PROTOCOL_VERSION`],
    /// unless a fault rule has it speak as an earlier build.
    pub(crate) fn spoken_version(&self) -> u32 {
        #[cfg(feature = "raft-faults")]
        if let Some(v) = self.faults.version() {
            return v;
        }
        hello::PROTOCOL_VERSION
    }

    /// Peer `peer`'s protocol version, as its last hello or answer to one
    /// said it; `None` until one did (or for a node that is not a peer).
    pub fn peer_version(&self, peer: u64) -> Option<u32> {
        let v = self.versions.get(&peer)?.load(Ordering::Relaxed);
        (v != UNKNOWN_VERSION).then_some(v)
    }

    /// Congestion control of this node's node-to-node connections.
    pub fn tcp_congestion(&self) -> &TcpCongestion {
        &self.tcp_congestion
    }

    /// The peers every connect to which has failed for at least
    /// `for_at_least` (since the last successful one), or whose open
    /// connection has answered no call for that long (a stopped or hung
    /// process) and that has not called this node within that time either,
    /// sorted: a follower whose every group follows leaders on the peer
    /// calls it for nothing after a timed-out call, and the peer's calls
    /// show it is back. A peer is only tried when something calls it (or,
    /// for connects, [`Transport::watch_peers`] does).
    pub fn unreachable(&self, for_at_least: Duration) -> Vec<u64> {
        let now = Instant::now();
        let limit = u64::try_from(for_at_least.as_nanos()).unwrap_or(u64::MAX);
        let silent = |c: &Conn| {
            let since = c.unanswered_since.load(Ordering::Relaxed);
            since != 0 && clock_now().saturating_sub(since) >= limit
        };
        let called_us = self.called_us.lock();
        let calls = |peer: &u64| {
            called_us.get(peer).is_some_and(|at| {
                let at = at.load(Ordering::Relaxed);
                at != 0 && clock_now().saturating_sub(at) < limit
            })
        };
        let mut out: Vec<u64> = self
            .state
            .lock()
            .iter()
            .filter(|(id, s)| {
                s.down_since
                    .is_some_and(|since| now.duration_since(since) >= for_at_least)
                    || s.conn.as_ref().is_some_and(|c| {
                        !c.closed.load(Ordering::Acquire) && silent(c) && !calls(id)
                    })
            })
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether this node's open connection to `peer` has had its hello
    /// answered (accepted), whether or not its calls are answered now.
    fn hello_answered(&self, peer: u64) -> bool {
        self.state.lock().get(&peer).is_some_and(|s| {
            s.conn.as_ref().is_some_and(|c| {
                c.accepted.load(Ordering::Acquire) && !c.closed.load(Ordering::Acquire)
            })
        })
    }

    /// Whether this node holds an open connection to `peer` that accepted
    /// its hello and whose calls are answered (every call so far, or it
    /// was answered since the last one that was not).
    pub fn connected(&self, peer: u64) -> bool {
        self.state.lock().get(&peer).is_some_and(|s| {
            s.conn.as_ref().is_some_and(|c| {
                c.accepted.load(Ordering::Acquire)
                    && !c.closed.load(Ordering::Acquire)
                    && c.unanswered_since.load(Ordering::Relaxed) == 0
            })
        })
    }

    /// Spawns a task that makes sure of a connection to every peer every
    /// `every` (connecting where there is none, within the reconnect
    /// backoff) and pings it ([`Rpc::Ping`], answered within `every` or
    /// counted unanswered), so that [`Transport::unreachable`] also knows
    /// about peers no Raft group of this node calls: a stopped process
    /// keeps its connections open, and only an unanswered call tells. A
    /// peer whose build knows no ping (protocol version before
    /// [`hello::PING_FROM`]) is not pinged. It ends with the transport.
    pub fn watch_peers(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        let peers: Vec<u64> = self.peers.keys().copied().collect();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(t) = me.upgrade() else { return };
                // A node speaking as a build before the ping pings nobody.
                let pings = t.spoken_version() >= hello::PING_FROM;
                for &peer in &peers {
                    // The version is the one the peer's answer to the hello
                    // on this connection said (a peer restarted as an
                    // older build says so again before it is pinged).
                    if t.connection(peer).await.is_err()
                        || !pings
                        || !t.hello_answered(peer)
                        || t.peer_version(peer).is_none_or(|v| v < hello::PING_FROM)
                    {
                        continue;
                    }
                    let t = Arc::clone(&t);
                    tokio::spawn(async move {
                        let _ = t
                            .call(peer, GroupId::Controller, Rpc::Ping, Vec::new(), every)
                            .await;
                    });
                }
            }
        });
    }

    /// Calls `rpc` of `group` on node `target` and waits up to `timeout`
    /// for the answer body. A call that times out leaves the connection
    /// open (its late answer is discarded).
    pub async fn call(
        &self,
        target: u64,
        group: GroupId,
        rpc: Rpc,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        self.call_with_files(target, group, rpc, body, Vec::new(), timeout)
            .await
    }

    /// [`Transport::call`] with a payload section: the bytes of `files`, in
    /// order, sent from their files with `sendfile(2)`. A frame that would
    /// exceed [`frame::MAX_FRAME`] is not sent (`Unreachable`).
    pub async fn call_with_files(
        &self,
        target: u64,
        group: GroupId,
        rpc: Rpc,
        body: Vec<u8>,
        files: Vec<raw::RawRange>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let r = self
            .call_inner(target, group, rpc, body, files, timeout)
            .await;
        self.counters.count(rpc, &r);
        r
    }

    async fn call_inner(
        &self,
        target: u64,
        group: GroupId,
        rpc: Rpc,
        body: Vec<u8>,
        files: Vec<raw::RawRange>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let started = Instant::now();
        #[cfg(feature = "raft-faults")]
        self.faults.before_call(target, timeout).await?;
        let files = raw::merge(files);
        let payload_len = usize::try_from(raw::total_len(&files)).unwrap_or(usize::MAX);
        let conn = self.connection(target).await?;
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut out = BytesMut::new();
        Frame {
            kind: Kind::Request,
            rpc,
            group,
            request_id,
            body: body.into(),
            payload: BytesMut::new(),
        }
        .encode_head(payload_len, &mut out)
        .map_err(|e| CallError::Unreachable(target, e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(request_id, tx);
        // openraft wraps each call in a timeout of its own, as long as
        // ours but started earlier, and drops the call when it fires: the
        // waiter goes with it (see `Waiting`).
        let waiting = Waiting {
            conn: &conn,
            request_id,
            done: false,
        };
        // A connection that closed (a refused hello, say) before this call
        // was registered has already failed its waiters: this one would
        // wait out its whole timeout. (`close` marks the connection closed
        // before it clears the waiters, under the same lock.)
        if conn.closed.load(Ordering::Acquire) {
            drop(waiting);
            let why = match conn.refused.lock().clone() {
                Some(reason) => format!("it refused this node: {reason}"),
                None => "connection closed".to_owned(),
            };
            return Err(CallError::Unreachable(target, why));
        }
        let frame = Outgoing {
            head: out.freeze(),
            files,
            request_id: Some(request_id),
        };
        if conn.tx.send(frame).is_err() {
            drop(waiting);
            conn.close();
            return Err(CallError::Unreachable(target, "connection closed".into()));
        }
        let left = timeout.saturating_sub(started.elapsed());
        let answer = tokio::time::timeout(left, rx).await;
        match answer {
            Err(_) => {
                waiting.unanswered();
                self.call_failed(target, "no answer in time");
                Err(CallError::Timeout(target, timeout))
            }
            Ok(Err(_)) => {
                waiting.answered();
                Err(CallError::Unreachable(target, "connection closed".into()))
            }
            Ok(Ok(frame)) => {
                waiting.answered();
                if conn.unanswered_since.load(Ordering::Relaxed) != 0 {
                    // Answered (again): the peer is there.
                    conn.unanswered_since.store(0, Ordering::Relaxed);
                }
                match frame.kind {
                    Kind::Response => Ok(frame.body),
                    _ => Err(CallError::Remote(
                        target,
                        postcard::from_bytes::<String>(&frame.body)
                            .unwrap_or_else(|_| "malformed error frame".into()),
                    )),
                }
            }
        }
    }

    /// The open connection to `target` (at `addr`), or why none may be
    /// opened now; `None` to open one.
    fn open_connection(
        &self,
        target: u64,
        addr: SocketAddr,
    ) -> Option<Result<Arc<Conn>, CallError>> {
        let mut state = self.state.lock();
        let s = state.get_mut(&target)?;
        if let Some(why) = s.settle(target, addr) {
            return Some(Err(CallError::Unreachable(target, why)));
        }
        if let Some(c) = &s.conn
            && !c.closed.load(Ordering::Acquire)
        {
            return Some(Ok(Arc::clone(c)));
        }
        if s.retry_at.is_some_and(|t| Instant::now() < t) {
            return Some(Err(CallError::Unreachable(
                target,
                "reconnect backoff".into(),
            )));
        }
        None
    }

    /// Logs a call to `target` that failed on an open connection (the
    /// peer hung, or its process stalls), at most once per
    /// [`UNREACHABLE_LOG_EVERY`] per peer, as failed connects are.
    fn call_failed(&self, target: u64, what: &str) {
        let now = Instant::now();
        let mut state = self.state.lock();
        let s = state.entry(target).or_default();
        s.failed_calls += 1;
        if s.warned_at
            .is_none_or(|t| now.duration_since(t) >= UNREACHABLE_LOG_EVERY)
        {
            tracing::warn!(
                node = target,
                error = what,
                failed_calls = s.failed_calls,
                "a call to a peer node failed; retrying"
            );
            s.warned_at = Some(now);
        }
    }

    /// The open connection to `target`, or a new one (unless a recent
    /// attempt failed and its backoff has not passed).
    async fn connection(&self, target: u64) -> Result<Arc<Conn>, CallError> {
        let addr = *self
            .peers
            .get(&target)
            .ok_or_else(|| CallError::Unreachable(target, "not in the cluster file".into()))?;
        if let Some(ready) = self.open_connection(target, addr) {
            return ready;
        }
        // Every Raft group calls the peer: at a reconnect, many callers
        // find no connection at once. One connects; the others wait for it
        // and take its connection (or its failure's backoff).
        let _dialing = match self.dialing.get(&target) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if let Some(ready) = self.open_connection(target, addr) {
            return ready;
        }
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map(|r| r.and_then(refuse_self_connection));
        let mut state = self.state.lock();
        let s = state.entry(target).or_default();
        match connected {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                crate::tcp::apply(&stream, addr.ip(), &self.tcp_congestion);
                let hello = hello::Hello {
                    cluster_id: self.cluster_id.clone(),
                    from: self.local,
                    to: target,
                };
                let conn = spawn_client(
                    stream,
                    hello.encode(self.spoken_version()),
                    self.versions.get(&target).cloned(),
                    Arc::clone(&self.sendfile_stats),
                );
                s.conn = Some(Arc::clone(&conn));
                s.settled = false;
                Ok(conn)
            }
            Ok(Err(e)) => {
                let e = e.to_string();
                s.failed(target, addr, &e);
                Err(CallError::Unreachable(target, e))
            }
            Err(_) => {
                s.failed(target, addr, "connect timed out");
                Err(CallError::Unreachable(target, "connect timed out".into()))
            }
        }
    }
}

/// A connection to a peer whose port is in the local ephemeral range, made
/// while nothing listens there, can be given that same port as its source
/// and connect to itself (a TCP simultaneous open): it would then hold the
/// peer's port, and the peer could not bind it when it starts. Such a
/// connection is dropped and counts as a failed connect.
fn refuse_self_connection(stream: TcpStream) -> std::io::Result<TcpStream> {
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connected to itself: nothing listens at the peer's address",
        ));
    }
    Ok(stream)
}

/// Starts the writer and reader tasks of an outbound connection, whose
/// first frame is `hello` (encoded); the version the peer's answer says is
/// stored in `version`.
fn spawn_client(
    stream: TcpStream,
    hello: Bytes,
    version: Option<Arc<AtomicU32>>,
    stats: Arc<Stats>,
) -> Arc<Conn> {
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let _ = tx.send(Outgoing {
        head: hello,
        files: Vec::new(),
        request_id: None,
    });
    let conn = Arc::new(Conn {
        tx,
        pending: Mutex::new(HashMap::new()),
        closed: AtomicBool::new(false),
        accepted: AtomicBool::new(false),
        refused: Mutex::new(None),
        unanswered_since: AtomicU64::new(0),
    });
    // Weak: the writer ends when the connection is dropped (its sender
    // goes), and must not keep it alive itself.
    let writer = Arc::downgrade(&conn);
    tokio::spawn(async move {
        'write: while let Some(first) = rx.recv().await {
            // Every frame already queued goes out together, the small ones
            // in one send ([`coalesce`]); file ranges keep their place.
            let mut plain = Vec::new();
            let frames = coalesce::drain(first, &mut rx);
            // Calls whose callers gave up while their frames waited (behind
            // a peer that reads slowly, a full socket) are not sent: a
            // stalled follower would spend itself on requests nobody waits
            // for, and their retries would pile up here meanwhile.
            let frames: Vec<Outgoing> = match writer.upgrade() {
                Some(c) => {
                    let pending = c.pending.lock();
                    frames
                        .into_iter()
                        .filter(|f| f.request_id.is_none_or(|id| pending.contains_key(&id)))
                        .collect()
                }
                None => frames,
            };
            for frame in frames {
                if frame.files.is_empty() && frame.head.len() <= coalesce::COPY_AT_MOST {
                    plain.push(frame.head);
                    continue;
                }
                // A large frame goes after the small ones before it, which
                // may wait for the socket: its caller may give up meanwhile,
                // so it is looked up again just before it is written.
                if coalesce::write_all(&mut write, std::mem::take(&mut plain))
                    .await
                    .is_err()
                {
                    break 'write;
                }
                if let (Some(id), Some(c)) = (frame.request_id, writer.upgrade())
                    && !c.pending.lock().contains_key(&id)
                {
                    continue;
                }
                let sent = match frame.files.is_empty() {
                    true => coalesce::write_all(&mut write, vec![frame.head]).await,
                    false => send_with_files(&write, frame, &stats).await,
                };
                if sent.is_err() {
                    break 'write;
                }
            }
            if coalesce::write_all(&mut write, plain).await.is_err() {
                break;
            }
        }
        if let Some(c) = writer.upgrade() {
            c.close();
        }
    });
    let reader = Arc::clone(&conn);
    tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(64 << 10);
        'read: loop {
            loop {
                match Frame::decode(&mut buf) {
                    Ok(Some(frame)) if frame.request_id == hello::HELLO_REQUEST_ID => {
                        if frame.kind == Kind::Response {
                            if let Some(v) = &version {
                                v.store(hello::answered_version(&frame.body), Ordering::Relaxed);
                            }
                            reader.accepted.store(true, Ordering::Release);
                        } else {
                            let reason = postcard::from_bytes::<String>(&frame.body)
                                .unwrap_or_else(|_| "malformed error frame".into());
                            *reader.refused.lock() = Some(reason);
                            break 'read;
                        }
                    }
                    Ok(Some(frame)) => {
                        let waiter = reader.pending.lock().remove(&frame.request_id);
                        if let Some(w) = waiter {
                            let _ = w.send(frame);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed frame from a peer; closing");
                        break 'read;
                    }
                }
            }
            buf.reserve(64 << 10);
            match read.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        reader.close();
    });
    conn
}

/// Writes a frame's header and body, then its payload ranges with
/// `sendfile(2)` (through the gather writer of the fetch path).
async fn send_with_files(
    write: &tokio::net::tcp::OwnedWriteHalf,
    frame: Outgoing,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut chunks = Vec::with_capacity(frame.files.len() + 1);
    chunks.push(Chunk::Bytes(&frame.head));
    chunks.extend(frame.files.into_iter().map(|r| {
        Chunk::File(FetchRange {
            file: r.file,
            position: r.position,
            len: r.len,
            hot: false,
        })
    }));
    gather::send(write.as_ref(), &chunks, FetchPath::Sendfile, stats).await
}
