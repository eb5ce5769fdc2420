//! The openraft network over [`Transport`]: any type config whose node ids
//! are `u64`, whose nodes are [`BasicNode`] and whose messages are serde
//! types (postcard bodies), for any [`GroupId`].
//!
//! [`RaftHandler`] is the receiving side: it answers a group's
//! AppendEntries, Vote and InstallSnapshot calls from its `Raft`.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, RaftTypeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::budget::{self, Meter};

use super::budget::AppendBudget;
use super::{CallError, GroupHandler, GroupId, HandlerFuture, MALFORMED, Rpc, Transport, raw};
use crate::replication::election::{
    self, Heard, PreVoteFuture, PreVoteNetwork, PreVotePeers, PreVoteRequest, PreVoteResponse,
    RoundOutcome,
};
use crate::replication::free_space::{FreeSpace, LOW_ON_SPACE};

/// Creates the per-peer clients of one group.
pub struct Network<C> {
    transport: Arc<Transport>,
    group: GroupId,
    _config: PhantomData<fn() -> C>,
}

impl<C> Network<C> {
    /// The network of `group` over `transport`.
    pub fn new(transport: Arc<Transport>, group: GroupId) -> Self {
        Network {
            transport,
            group,
            _config: PhantomData,
        }
    }
}

/// One group's client of one peer.
pub struct Peer<C> {
    transport: Arc<Transport>,
    group: GroupId,
    target: u64,
    /// The bytes of this peer's AppendEntries calls of several entries.
    budget: AppendBudget,
    /// Until when this peer is sent no entries: it refused them for want
    /// of disk space ([`LOW_ON_SPACE`]).
    low_on_space_until: Option<std::time::Instant>,
    _config: PhantomData<fn() -> C>,
}

impl<C> RaftNetworkFactory<C> for Network<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    type Network = Peer<C>;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Peer<C> {
        Peer {
            transport: Arc::clone(&self.transport),
            group: self.group,
            target,
            budget: AppendBudget::default(),
            low_on_space_until: None,
            _config: PhantomData,
        }
    }
}

impl<C> PreVoteNetwork for Network<C> {
    fn pre_vote_peers(&self) -> Arc<dyn PreVotePeers> {
        Arc::new(PreVoteCalls {
            transport: Arc::clone(&self.transport),
            group: self.group,
        })
    }
}

/// One group's pre-vote calls ([`Rpc::PreVote`]) over the transport.
struct PreVoteCalls {
    transport: Arc<Transport>,
    group: GroupId,
}

impl PreVotePeers for PreVoteCalls {
    fn pre_vote(
        &self,
        target: u64,
        request: PreVoteRequest,
        timeout: std::time::Duration,
    ) -> PreVoteFuture {
        let (transport, group) = (Arc::clone(&self.transport), self.group);
        Box::pin(async move {
            let body = postcard::to_allocvec(&request).map_err(|e| e.to_string())?;
            let answer = transport
                .call(target, group, Rpc::PreVote, body, timeout)
                .await
                .map_err(|e| e.to_string())?;
            decode_peer::<PreVoteResponse>(&answer)
        })
    }

    fn lacks_pre_vote(&self, target: u64) -> bool {
        self.transport.peer_version(target) == Some(0)
    }

    fn note_round(&self, outcome: RoundOutcome) {
        self.transport.pre_votes.count(self.group, outcome);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

/// The most bytes (body and payload section) one AppendEntries call carries
/// when it has more than one entry. openraft gives an AppendEntries call one
/// heartbeat interval to be answered and batches up to its
/// `max_payload_entries` entries; a follower that fell behind by many large
/// entries would otherwise get calls that time out (or exceed
/// [`super::frame::MAX_FRAME`]) every time and never catch up. Above the
/// budget the call is refused before anything is sent, with a
/// `PayloadTooLarge` hint that makes openraft send fewer entries. Each
/// peer's budget starts here and shrinks while its calls go unanswered
/// ([`AppendBudget`]).
pub const APPEND_BUDGET_BYTES: usize = 4 << 20;

/// How long a call answered with an error waits before it returns it.
/// openraft's replication retries a network error at once, and a follower
/// that has not opened a new partition's group yet answers every call with
/// an error at once: without the pause a leader called it tens of thousands
/// of times a second (and logged each) until the group was open.
pub const REMOTE_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a peer that refused entries for want of disk space is sent
/// none (only their log position, see `Peer::probe_low_on_space`): at most
/// one call's worth of entries a second goes to a node that would refuse
/// it.
const LOW_ON_SPACE_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// The pause after each such position-only call (bounded by the call's
/// soft TTL): about as often as heartbeats.
const LOW_ON_SPACE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// How many of `entries` entries, `bytes` bytes in all, to send instead
/// when that is over `budget`; `None` when the call may go as it is
/// (within the budget, or a single entry).
pub fn entries_hint(entries: usize, bytes: usize, budget: usize) -> Option<u64> {
    if entries <= 1 || bytes <= budget {
        return None;
    }
    let fit = (entries as u128 * budget as u128 / bytes as u128) as u64;
    Some(fit.clamp(1, entries as u64 - 1))
}

impl<C> Peer<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        action: RPCTypes,
        req: &Req,
        entries: usize,
        budget: usize,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        // Segment file ranges go to the payload section, sent with sendfile.
        let (body, files) = raw::collect(|| postcard::to_allocvec(req));
        let body =
            body.map_err(|e| RPCError::Network(NetworkError::new(&Message(e.to_string()))))?;
        let bytes = body.len() + usize::try_from(raw::total_len(&files)).unwrap_or(usize::MAX);
        if let Some(hint) = entries_hint(entries, bytes, budget) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        let timeout = option.hard_ttl();
        let answer = self
            .transport
            .call_with_files(self.target, self.group, rpc, body, files, timeout)
            .await;
        let bytes = match answer {
            Ok(b) => b,
            Err(CallError::Timeout(..)) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.transport.local(),
                    target: self.target,
                    timeout,
                }));
            }
            Err(e @ CallError::Unreachable(..)) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Err(e @ CallError::Remote(..)) => {
                // openraft retries a network error at once: pause first, so a
                // peer that answers with an error (it has not opened the
                // group yet) is not called in a tight loop.
                tokio::time::sleep(REMOTE_ERROR_PAUSE.min(timeout)).await;
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
        };
        let decoded: Result<Resp, RaftError<u64, E>> =
            decode_peer(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&Message(e))))?;
        decoded.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for Peer<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        if !rpc.entries.is_empty()
            && self
                .low_on_space_until
                .is_some_and(|t| std::time::Instant::now() < t)
        {
            return self.probe_low_on_space(rpc, option).await;
        }
        let r = self.send_entries(rpc, &option).await;
        if let Err(RPCError::Network(e)) = &r {
            if e.to_string().contains(LOW_ON_SPACE) {
                self.low_on_space_until = Some(std::time::Instant::now() + LOW_ON_SPACE_HOLD);
            }
        }
        r
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(
            Rpc::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            &rpc,
            0,
            usize::MAX,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(Rpc::Vote, RPCTypes::Vote, &rpc, 0, usize::MAX, &option)
            .await
    }
}

impl<C> Peer<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    /// Sends `rpc` as it is (a call of several entries within this peer's
    /// byte budget).
    async fn send_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: &RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let entries = rpc.entries.len();
        if entries <= 1 {
            return self
                .call(
                    Rpc::AppendEntries,
                    RPCTypes::AppendEntries,
                    &rpc,
                    entries,
                    usize::MAX,
                    option,
                )
                .await;
        }
        // Outcomes are recorded after the call; a call that openraft drops
        // at its own timeout records none, which the next start counts as
        // unanswered.
        let budget = self.budget.start();
        let started = std::time::Instant::now();
        let r = self
            .call(
                Rpc::AppendEntries,
                RPCTypes::AppendEntries,
                &rpc,
                entries,
                budget,
                option,
            )
            .await;
        match &r {
            Err(RPCError::Timeout(_)) => {}
            Err(RPCError::PayloadTooLarge(_)) => self.budget.not_sent(),
            _ => self.budget.answered(started.elapsed(), option.hard_ttl()),
        }
        r
    }

    /// While this peer is low on disk space: sends `rpc` without its
    /// entries, so the follower still hears its leader (no election) and
    /// the leader learns whether its log matches, and answers the match as
    /// a partial success of nothing (openraft sends the entries again
    /// later; with no previous entry, a failed call instead) after a
    /// pause, so the leader does not spin on the peer.
    async fn probe_low_on_space(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let prev = rpc.prev_log_id;
        let probe = AppendEntriesRequest::<C> {
            vote: rpc.vote,
            prev_log_id: prev,
            leader_commit: rpc.leader_commit,
            entries: Vec::new(),
        };
        let r = self
            .call(
                Rpc::AppendEntries,
                RPCTypes::AppendEntries,
                &probe,
                0,
                usize::MAX,
                &option,
            )
            .await;
        match r {
            Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_)) => {
                tokio::time::sleep(LOW_ON_SPACE_PAUSE.min(option.soft_ttl())).await;
                match prev {
                    Some(prev) => Ok(AppendEntriesResponse::PartialSuccess(Some(prev))),
                    // Nothing to match yet (openraft takes no partial
                    // success of nothing): a failed call, retried.
                    None => Err(RPCError::Network(NetworkError::new(&Message(format!(
                        "node {} is {LOW_ON_SPACE}: entries held back",
                        self.target
                    ))))),
                }
            }
            other => other,
        }
    }
}

/// What a follower checks in the application data of each entry it
/// receives, before the entry reaches its log: an AppendEntries call with
/// an entry that fails is answered with an error (the leader retries it,
/// reading its log again) and nothing of it is stored.
pub trait Received {
    /// `Err` with the reason when this data, in an entry of log term
    /// `term`, cannot be what the entry's leader appended.
    fn check_received(&self, term: u64) -> Result<(), String> {
        let _ = term;
        Ok(())
    }
}

impl Received for crate::replication::partition::Request {
    fn check_received(&self, term: u64) -> Result<(), String> {
        crate::replication::partition::Request::check_received(self, term)
    }
}

impl Received for crate::replication::controller::Command {}

/// Answers one group's Raft calls from its `Raft`. Other calls (see
/// [`RaftHandler::with_extra`]) go to an extra handler.
pub struct RaftHandler<C: RaftTypeConfig> {
    raft: Raft<C>,
    extra: Option<Arc<dyn GroupHandler>>,
    space: Option<Arc<FreeSpace>>,
    heard: Option<Arc<Heard>>,
}

impl<C> RaftHandler<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode, SnapshotData = std::io::Cursor<Vec<u8>>>,
{
    /// A handler of `raft`'s calls.
    pub fn new(raft: Raft<C>) -> Self {
        RaftHandler {
            raft,
            extra: None,
            space: None,
            heard: None,
        }
    }

    /// Notes in `heard` the calls of leaders this replica took and the
    /// votes it granted, and answers pre-votes from it
    /// ([`election::answer`]); without it a pre-vote is answered with an
    /// error (the group elects with openraft's own timer).
    pub fn with_pre_vote(mut self, heard: Arc<Heard>) -> Self {
        self.heard = Some(heard);
        self
    }

    /// Refuses AppendEntries calls that carry entries while `space` is
    /// below its followers' floor ([`FreeSpace::entries_refusal`]); calls
    /// without entries (heartbeats) are always answered.
    pub fn with_free_space(mut self, space: Arc<FreeSpace>) -> Self {
        self.space = Some(space);
        self
    }

    /// Sends calls other than the Raft ones (a controller's forwarded admin
    /// commands) to `extra`.
    pub fn with_extra(mut self, extra: Arc<dyn GroupHandler>) -> Self {
        self.extra = Some(extra);
        self
    }
}

/// Decodes a request body whose entries take their records from
/// `payload` (see [`raw`]); every payload byte must be claimed. The error
/// starts with [`MALFORMED`].
pub fn decode_request<T: DeserializeOwned>(body: &[u8], payload: BytesMut) -> Result<T, String> {
    raw::with_payload(payload, || {
        decode_peer(body).map_err(|e| format!("body: {e}"))
    })
    .map_err(|e| format!("{MALFORMED}: {e}"))
}

/// Decodes a postcard body a peer sent (a request, or an answer to one of
/// ours) under the native listener's memory budget: at most
/// [`Meter::memory_for`] its size of decoded values, so a body of millions
/// of minimal list elements is refused before it is built instead of
/// taking gigabytes. Legitimate bodies stay far below it: an
/// AppendEntries call carries at most `MAX_PAYLOAD_ENTRIES` entries, and
/// records travel in the raw payload, not the body.
pub fn decode_peer<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let meter = Meter::new(Meter::memory_for(body.len()), usize::MAX);
    budget::decode_metered(body, &meter).map_err(|e| e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|e| format!("encoding the answer: {e}"))
}

impl<C> GroupHandler for RaftHandler<C>
where
    C: RaftTypeConfig<
            NodeId = u64,
            Node = BasicNode,
            SnapshotData = std::io::Cursor<Vec<u8>>,
            Entry = openraft::Entry<C>,
        >,
    C::D: Received,
{
    fn handle(&self, rpc: Rpc, body: Bytes, payload: BytesMut) -> HandlerFuture {
        let raft = self.raft.clone();
        let heard = self.heard.clone();
        match rpc {
            Rpc::AppendEntries => {
                let space = self.space.clone();
                Box::pin(async move {
                    // What storing the call takes, about: its records.
                    let bytes = (body.len() + payload.len()) as u64;
                    let req: AppendEntriesRequest<C> = decode_request(&body, payload)?;
                    if !req.entries.is_empty() {
                        if let Some(why) = space.as_deref().and_then(|s| s.entries_refusal(bytes)) {
                            static LOGGED: crate::throttle::Throttle =
                                crate::throttle::Throttle::new(std::time::Duration::from_secs(10));
                            if let Some(held_back) = LOGGED.allow() {
                                tracing::warn!(reason = %why, held_back, "refusing partition entries from leaders: disk space low");
                            }
                            return Err(why);
                        }
                    }
                    for e in &req.entries {
                        if let openraft::EntryPayload::Normal(data) = &e.payload {
                            data.check_received(e.log_id.leader_id.term)
                                .map_err(|m| format!("entry {}: {m}", e.log_id.index))?;
                        }
                    }
                    let answer = raft.append_entries(req).await;
                    if let (Some(heard), Ok(a)) = (&heard, &answer) {
                        heard.note_append(a);
                    }
                    encode(&answer)
                })
            }
            Rpc::Vote => Box::pin(async move {
                let req: VoteRequest<u64> = decode_request(&body, payload)?;
                let answer = raft.vote(req).await;
                if let (Some(heard), Ok(a)) = (&heard, &answer) {
                    heard.note_vote(a);
                }
                encode(&answer)
            }),
            Rpc::InstallSnapshot => Box::pin(async move {
                let req: InstallSnapshotRequest<C> = decode_request(&body, payload)?;
                let vote = req.vote;
                let answer = raft.install_snapshot(req).await;
                if let (Some(heard), Ok(a)) = (&heard, &answer) {
                    if a.vote == vote {
                        heard.leader_called();
                    }
                }
                encode(&answer)
            }),
            Rpc::PreVote if heard.is_some() => Box::pin(async move {
                let req: PreVoteRequest = decode_request(&body, payload)?;
                let heard = heard.as_deref().ok_or("no pre-votes here")?;
                encode(&election::answer(&raft, heard, &req))
            }),
            other => match &self.extra {
                Some(h) => h.handle(other, body, payload),
                None => Box::pin(async move { Err(format!("unsupported call {}", other.name())) }),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use openraft::Vote;
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};

    use super::{APPEND_BUDGET_BYTES, Network, REMOTE_ERROR_PAUSE, decode_request, entries_hint};
    use crate::replication::partition::MAX_PAYLOAD_ENTRIES;
    use crate::replication::partition::PartitionRaft;
    use crate::replication::transport::{GroupId, Transport, serve};

    /// Calls to a peer that answers with an error (it holds no such group)
    /// are spaced by the pause: a leader cannot spin on them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_answered_with_an_error_are_spaced_by_a_pause() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Transport::new("test", 2, HashMap::from([(1, ([127, 0, 0, 1], 9).into())]));
        let _task = serve(listener, server);
        let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
        let group = GroupId::Partition {
            topic_id: 3,
            partition: 0,
        };
        let mut peer = Network::<PartitionRaft>::new(client, group)
            .new_client(2, &openraft::BasicNode::default())
            .await;
        let option = RPCOption::new(Duration::from_secs(5));
        let vote = VoteRequest::new(Vote::new(1, 1), None);
        // The first call also connects.
        assert!(peer.vote(vote.clone(), option.clone()).await.is_err());
        let started = Instant::now();
        for _ in 0..5 {
            let e = peer.vote(vote.clone(), option.clone()).await.unwrap_err();
            assert!(e.to_string().contains("holds no"), "{e}");
        }
        assert!(
            started.elapsed() >= REMOTE_ERROR_PAUSE * 5,
            "5 errors in {:?}",
            started.elapsed()
        );
    }

    /// An AppendEntries body of millions of blank entries (4 bytes each on
    /// the wire, many times that decoded) is refused before it is built;
    /// the most entries openraft sends in one call still decode.
    #[test]
    fn a_body_of_millions_of_minimal_entries_is_refused_before_it_is_built() {
        use crate::replication::controller::TypeConfig;
        use openraft::{Entry, EntryPayload, LogId};

        type Request = AppendEntriesRequest<TypeConfig>;
        let blank = Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Blank,
        };
        let request = |entries: Vec<Entry<TypeConfig>>| Request {
            vote: Vote::new(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries,
        };
        let most = request(vec![blank.clone(); MAX_PAYLOAD_ENTRIES as usize]);
        let body = postcard::to_allocvec(&most).unwrap();
        let back: Request = decode_request(&body, bytes::BytesMut::new()).unwrap();
        assert_eq!(back.entries.len(), most.entries.len());

        // The body of `n` blank entries, spliced from the encodings of none
        // and of one (the entry count is the one byte where they differ).
        let none = postcard::to_allocvec(&request(vec![])).unwrap();
        let one_entry = postcard::to_allocvec(&blank).unwrap();
        let at = none
            .iter()
            .zip(&postcard::to_allocvec(&request(vec![blank.clone()])).unwrap())
            .take_while(|(a, b)| a == b)
            .count();
        let n: usize = 8_000_000;
        assert!(
            std::mem::size_of::<Entry<TypeConfig>>() > 16 * one_entry.len(),
            "a blank entry must decode to more than the budget's 16 bytes a byte"
        );
        let mut hostile = none[..at].to_vec();
        hostile.extend_from_slice(&postcard::to_allocvec(&n).unwrap());
        for _ in 0..n {
            hostile.extend_from_slice(&one_entry);
        }
        hostile.extend_from_slice(&none[at + 1..]);
        let e = decode_request::<Request>(&hostile, bytes::BytesMut::new()).unwrap_err();
        assert!(e.contains("bytes of values"), "{e}");
    }

    /// A follower that answers calls over 1 MiB after the timeout (a slow
    /// flush) and smaller ones at once.
    struct SlowOnLargeCalls;

    impl crate::replication::transport::GroupHandler for SlowOnLargeCalls {
        fn handle(
            &self,
            _rpc: crate::replication::transport::Rpc,
            body: bytes::Bytes,
            payload: bytes::BytesMut,
        ) -> crate::replication::transport::HandlerFuture {
            Box::pin(async move {
                if body.len() + payload.len() > 1 << 20 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let answer: Result<AppendEntriesResponse<u64>, openraft::error::RaftError<u64>> =
                    Ok(AppendEntriesResponse::Success);
                Ok(bytes::Bytes::from(postcard::to_allocvec(&answer).unwrap()))
            })
        }
    }

    /// Calls that go unanswered within the timeout make the next ones
    /// smaller until they are answered: a follower whose flush of a full
    /// call outlasts the heartbeat interval still catches up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unanswered_calls_shrink_the_next_until_they_are_answered() {
        use crate::replication::controller::{Command, TypeConfig};
        use openraft::error::RPCError;
        use openraft::{Entry, EntryPayload, LogId};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Transport::new("test", 2, HashMap::from([(1, ([127, 0, 0, 1], 9).into())]));
        server
            .registry
            .register(GroupId::Controller, std::sync::Arc::new(SlowOnLargeCalls));
        let _task = serve(listener, server);
        let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
        let mut peer = Network::<TypeConfig>::new(client, GroupId::Controller)
            .new_client(2, &openraft::BasicNode::default())
            .await;
        // 40 entries of 100 KB: 4 MB, within the starting budget.
        let entry = |i: u64| Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(Command::DeleteTopic {
                name: "x".repeat(100_000),
            }),
        };
        let option = RPCOption::new(Duration::from_millis(100));
        let mut count = 40u64;
        let mut outcomes = Vec::new();
        for _ in 0..12 {
            let req = AppendEntriesRequest {
                vote: Vote::new_committed(1, 1),
                prev_log_id: None,
                entries: (1..=count).map(entry).collect(),
                leader_commit: None,
            };
            match peer.append_entries(req, option.clone()).await {
                Ok(_) => {
                    outcomes.push(format!("{count} answered"));
                    break;
                }
                Err(RPCError::PayloadTooLarge(h)) => {
                    outcomes.push(format!("{count} too large"));
                    count = h.entries_hint();
                }
                Err(e) => outcomes.push(format!("{count}: {e}")),
            }
        }
        assert!(
            outcomes.last().is_some_and(|o| o.ends_with("answered")),
            "{outcomes:#?}"
        );
        assert!(count <= 10, "{outcomes:#?}");
        assert!(outcomes[0].contains("timeout"), "{outcomes:#?}");
    }

    #[test]
    fn calls_within_the_budget_or_of_one_entry_go_as_they_are() {
        assert_eq!(entries_hint(0, 0, APPEND_BUDGET_BYTES), None);
        assert_eq!(
            entries_hint(300, APPEND_BUDGET_BYTES, APPEND_BUDGET_BYTES),
            None
        );
        assert_eq!(
            entries_hint(1, 100 * APPEND_BUDGET_BYTES, APPEND_BUDGET_BYTES),
            None
        );
    }

    #[test]
    fn larger_calls_get_a_hint_that_fits_and_always_shrinks() {
        // 300 entries of 1 MiB: as many as fit in the budget.
        assert_eq!(entries_hint(300, 300 << 20, APPEND_BUDGET_BYTES), Some(4));
        // A smaller budget: fewer.
        assert_eq!(entries_hint(300, 300 << 20, 1 << 20), Some(1));
        assert_eq!(entries_hint(300, 300 << 19, 1 << 20), Some(2));
        // Two entries over the budget: one.
        assert_eq!(
            entries_hint(2, APPEND_BUDGET_BYTES + 1, APPEND_BUDGET_BYTES),
            Some(1)
        );
        // Never zero, never the same count again.
        for n in 2..50usize {
            for bytes in [
                APPEND_BUDGET_BYTES + 1,
                10 * APPEND_BUDGET_BYTES,
                usize::MAX,
            ] {
                let h = entries_hint(n, bytes, APPEND_BUDGET_BYTES).unwrap();
                assert!(h >= 1 && h < n as u64, "{n} entries, {bytes} bytes: {h}");
            }
        }
    }
}
