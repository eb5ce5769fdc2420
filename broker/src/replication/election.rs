//! Elections only a majority would hold: the pre-vote (Raft thesis, 9.6).
//!
//! openraft 0.9 has none. A replica that hears from no leader for its
//! election timeout raises its term and asks for votes, and does so again
//! after every timeout while it cannot win. One cut off from the others (a
//! network partition, a paused or CPU-starved process) comes back with a
//! term above its leader's, answers the leader's next call with it, and
//! the leader steps down: the group goes without a leader for an election
//! although the leader and a majority never lost contact, and a node that
//! keeps falling behind (a slow one) keeps deposing leaders.
//!
//! So a group that runs [`campaign`] has openraft's own election timer off
//! (`enable_elect: false`) and this in its place: once the replica has
//! heard no leader for its election timeout (the leader lease more while
//! it knew a leader, as openraft waits), it first asks the other voters
//! whether they would vote for it, without raising its term, and calls an
//! election (`Raft::trigger().elect()`) only when a majority of every
//! voter set of the membership, itself included, would. A voter would
//! ([`answer`]) when it has heard from no leader for the leader lease
//! (openraft's own: the longest election timeout, the time within which
//! its real vote check refuses any candidate) and does not lead with a
//! quorum answering itself, and the asking replica's log is at least as
//! up to date as its own (the real vote's check). What it heard is kept
//! in [`Heard`], noted by whoever hands the group its calls
//! ([`Heard::note_append`], [`Heard::note_vote`]).
//!
//! Calls that need an election now (a preferred replica taking back its
//! leadership) call `trigger().elect()` themselves, without a pre-vote.
//!
//! The pre-vote is advisory: a refusal changes nothing on the callee, so a
//! lost or late answer costs only another timeout, and Raft's own votes
//! still decide who leads.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use openraft::raft::{AppendEntriesResponse, VoteResponse};
use openraft::{BasicNode, LogId, Raft, RaftTypeConfig, ServerState, Vote};
use serde::{Deserialize, Serialize};

/// Would the callee vote for the caller, were it to call an election now?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    /// The term the caller would stand in (its own plus one).
    pub term: u64,
    /// The caller's last log id.
    pub last_log_id: Option<LogId<u64>>,
}

/// The answer to a [`PreVoteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    /// Whether the callee would vote for the caller.
    pub granted: bool,
    /// The callee's current term.
    pub term: u64,
}

/// What a replica heard from others, for its pre-vote decisions: when a
/// leader last called it, and when its own election timer last restarted.
#[derive(Debug)]
pub struct Heard {
    base: Instant,
    /// Milliseconds after `base`, plus one, of the last call this replica
    /// took from a leader (0: none yet).
    leader_at: AtomicU64,
    /// Milliseconds after `base` of the last restart of the election timer:
    /// a leader's call, a vote granted, this replica's own pre-vote.
    restarted_at: AtomicU64,
    /// How many times the election timer has restarted.
    restarts: AtomicU64,
}

impl Default for Heard {
    fn default() -> Self {
        Heard {
            base: Instant::now(),
            leader_at: AtomicU64::new(0),
            restarted_at: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        }
    }
}

impl Heard {
    /// What a replica that has just opened its group has heard, `stored`
    /// the vote its storage held. A committed vote (it followed or led a
    /// leader before it stopped) counts as a leader's call at opening, as
    /// openraft counts it for its own vote check: the replica refuses
    /// pre-votes, and asks for none, for the leader lease, which gives that
    /// leader the time to call it.
    pub fn opened(stored: Option<&Vote<u64>>) -> Heard {
        let heard = Heard::default();
        if stored.is_some_and(|vote| vote.is_committed()) {
            heard.leader_called();
        }
        heard
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// A call from a leader this replica follows (an AppendEntries or
    /// InstallSnapshot it did not refuse for its term).
    pub fn leader_called(&self) {
        let now = self.now_ms();
        self.leader_at.store(now + 1, Ordering::Relaxed);
        self.restarted_at.store(now, Ordering::Relaxed);
        self.restarts.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes `response`, this replica's answer to an AppendEntries call: any
    /// answer but a higher vote is a leader's call taken.
    pub fn note_append(&self, response: &AppendEntriesResponse<u64>) {
        if !matches!(response, AppendEntriesResponse::HigherVote(_)) {
            self.leader_called();
        }
    }

    /// Notes `response`, this replica's answer to a vote request: a vote
    /// granted restarts its own timer (it waits for that candidate).
    pub fn note_vote(&self, response: &VoteResponse<u64>) {
        if response.vote_granted {
            self.restart();
        }
    }

    /// Restarts the election timer; returns the restart's number, for
    /// [`Heard::restarted_since`].
    fn restart(&self) -> u64 {
        self.restarted_at.store(self.now_ms(), Ordering::Relaxed);
        self.restarts.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether the election timer restarted (a leader called, a vote was
    /// granted) after restart number `number`.
    fn restarted_since(&self, number: u64) -> bool {
        self.restarts.load(Ordering::Acquire) != number
    }

    /// How long ago a leader last called; `None` if none has.
    pub fn since_leader(&self) -> Option<Duration> {
        match self.leader_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_millis(self.now_ms().saturating_sub(at - 1))),
        }
    }

    /// How long ago the election timer last restarted.
    fn since_restart(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.restarted_at.load(Ordering::Relaxed)),
        )
    }
}

/// What a pre-vote call returns: the answer, or why there is none.
pub type PreVoteFuture = Pin<Box<dyn Future<Output = Result<PreVoteResponse, String>> + Send>>;

/// Sends one group's pre-vote requests to its peers.
pub trait PreVotePeers: Send + Sync + 'static {
    /// Asks node `target`, giving up after `timeout`.
    fn pre_vote(&self, target: u64, request: PreVoteRequest, timeout: Duration) -> PreVoteFuture;

    /// Whether node `target` is known to run a build without the pre-vote
    /// (its hello said protocol version 0): it is not asked, and counts as
    /// granting, so that the round decides as that node's own elections,
    /// which hold no pre-vote, do.
    fn lacks_pre_vote(&self, target: u64) -> bool {
        let _ = target;
        false
    }

    /// Counts a round of this group's pre-vote that ended with `outcome`.
    fn note_round(&self, outcome: RoundOutcome) {
        let _ = outcome;
    }
}

/// How a pre-vote round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOutcome {
    /// A majority would vote: the replica called an election.
    Won = 0,
    /// No majority would vote (or answered in time): no election.
    Lost = 1,
    /// A majority would vote, but something the replica heard during the
    /// round (a leader's call, a vote it granted, a higher term) made the
    /// round stale: no election.
    Stale = 2,
}

impl RoundOutcome {
    /// Every outcome, in the order of their discriminants.
    pub const ALL: [RoundOutcome; 3] = [RoundOutcome::Won, RoundOutcome::Lost, RoundOutcome::Stale];

    /// Its label in `sluice_raft_pre_votes_total{result}`.
    pub fn name(self) -> &'static str {
        match self {
            RoundOutcome::Won => "won",
            RoundOutcome::Lost => "lost",
            RoundOutcome::Stale => "stale",
        }
    }
}

/// A group's network that can also carry its pre-votes.
pub trait PreVoteNetwork {
    /// The group's pre-vote sender.
    fn pre_vote_peers(&self) -> Arc<dyn PreVotePeers>;
}

/// The leader lease of `raft`'s group: its longest election timeout.
fn lease<C: RaftTypeConfig>(raft: &Raft<C>) -> Duration {
    Duration::from_millis(raft.config().election_timeout_max)
}

/// `raft`'s answer to `request`, with `heard` what its replica heard (see
/// the module doc).
pub fn answer<C>(raft: &Raft<C>, heard: &Heard, request: &PreVoteRequest) -> PreVoteResponse
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let lease = lease(raft);
    let mine = raft.data_metrics().borrow().last_log;
    let follows = heard.since_leader().is_some_and(|d| d < lease);
    let up_to_date = request.last_log_id >= mine;
    // A replica whose Raft core has stopped votes for no one.
    super::with_live_metrics(&raft.metrics(), |m| {
        let leads = m.state == ServerState::Leader
            && m.millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) < lease);
        PreVoteResponse {
            granted: !leads && !follows && up_to_date,
            term: m.current_term,
        }
    })
    .unwrap_or(PreVoteResponse {
        granted: false,
        term: 0,
    })
}

/// Whether `granted` holds a majority of every voter set of `joint`.
fn majority_of_each(joint: &[BTreeSet<u64>], granted: &BTreeSet<u64>) -> bool {
    joint
        .iter()
        .all(|set| set.iter().filter(|v| granted.contains(v)).count() * 2 > set.len())
}

/// Asks every voter of `joint` but `me` whether it would vote for
/// `request`, each for at most `ask_within`, and tells whether a majority
/// of every voter set, `me` included, would. Returns as soon as that is
/// known either way: a peer that does not answer holds up only a round
/// whose outcome turns on its answer. A voter known to lack the pre-vote
/// ([`PreVotePeers::lacks_pre_vote`]) is not asked and counts as granting:
/// during a rolling upgrade, a replica whose log only it can lead from
/// still gets elected, as it was before the pre-vote.
async fn pre_vote_round(
    peers: &dyn PreVotePeers,
    joint: &[BTreeSet<u64>],
    me: u64,
    request: &PreVoteRequest,
    ask_within: Duration,
) -> bool {
    let (older, mut pending): (BTreeSet<u64>, BTreeSet<u64>) = joint
        .iter()
        .flatten()
        .copied()
        .filter(|&v| v != me)
        .partition(|&v| peers.lacks_pre_vote(v));
    let mut asks: FuturesUnordered<_> = pending
        .iter()
        .map(|&target| {
            let call = peers.pre_vote(target, request.clone(), ask_within);
            async move {
                let granted = matches!(
                    tokio::time::timeout(ask_within, call).await,
                    Ok(Ok(PreVoteResponse { granted: true, .. }))
                );
                (target, granted)
            }
        })
        .collect();
    let mut granted = BTreeSet::from([me]);
    granted.extend(older);
    let won = loop {
        if majority_of_each(joint, &granted) {
            break true;
        }
        let could: BTreeSet<u64> = granted.union(&pending).copied().collect();
        if !majority_of_each(joint, &could) {
            tracing::debug!(term = request.term, granted = ?granted, "pre-vote lost");
            break false;
        }
        let Some((target, yes)) = asks.next().await else {
            break false;
        };
        pending.remove(&target);
        if yes {
            granted.insert(target);
        }
    };
    // The calls still out end on their own (answered, or timed out within
    // `ask_within`), so that the transport forgets them as it does any call.
    if !asks.is_empty() {
        tokio::spawn(async move { while asks.next().await.is_some() {} });
    }
    won
}

/// Runs `raft`'s elections for as long as its core runs (see the module
/// doc): `heard` is what its replica heard, `peers` carries the
/// pre-votes. The group's Raft config must have `enable_elect: false`.
pub async fn campaign<C>(raft: Raft<C>, heard: Arc<Heard>, peers: Arc<dyn PreVotePeers>)
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let config = Arc::clone(raft.config());
    let lease = lease(&raft);
    let ask_within = Duration::from_millis(config.election_timeout_min);
    let metrics = raft.metrics();
    loop {
        let timeout =
            Duration::from_millis(config.new_rand_election_timeout::<openraft::TokioRuntime>());
        // Wait out the timer: until nothing restarted it for `timeout`
        // (the lease more while this replica knew a leader).
        let (me, term, joint) = loop {
            let state = super::with_live_metrics(&metrics, |m| {
                let membership = m.membership_config.membership();
                let voter = membership.voter_ids().any(|v| v == m.id);
                let idle = m.state == ServerState::Leader || !voter;
                // The only voter elects itself at once, unless its
                // election is under way (as openraft's own timer does).
                let alone =
                    membership.voter_ids().all(|v| v == m.id) && m.state != ServerState::Candidate;
                let wait = match m.vote.is_committed() {
                    true => lease + timeout,
                    false => timeout,
                };
                (
                    idle,
                    alone,
                    wait,
                    m.id,
                    m.current_term,
                    membership.get_joint_config().clone(),
                )
            });
            let Some((idle, alone, wait, me, term, joint)) = state else {
                return;
            };
            let since = heard.since_restart();
            if idle {
                tokio::time::sleep(wait).await;
            } else if alone || since >= wait {
                break (me, term, joint);
            } else {
                tokio::time::sleep(wait - since).await;
            }
        };
        let attempt = heard.restart();
        let request = PreVoteRequest {
            term: term + 1,
            last_log_id: raft.data_metrics().borrow().last_log,
        };
        if !pre_vote_round(peers.as_ref(), &joint, me, &request, ask_within).await {
            peers.note_round(RoundOutcome::Lost);
            continue;
        }
        // The round took up to `ask_within`: call the election only if
        // nothing this replica heard meanwhile (a leader's call, a vote it
        // granted, a term raised) made it stale.
        let stale = heard.restarted_since(attempt)
            || super::with_live_metrics(&metrics, |m| {
                m.current_term != term || m.state == ServerState::Leader
            })
            .unwrap_or(true);
        if stale {
            tracing::debug!(term, "pre-vote won but overtaken; no election");
            peers.note_round(RoundOutcome::Stale);
            continue;
        }
        peers.note_round(RoundOutcome::Won);
        if let Err(e) = raft.trigger().elect().await {
            tracing::debug!(error = %e, "the Raft core stopped; elections end");
            return;
        }
        // The core takes the election up on its own time: wait until it has
        // (a new term, or leadership) before looking at its state again, so
        // that a lone voter does not call elections in a loop meanwhile.
        let mut changed = metrics.clone();
        let _ = tokio::time::timeout(
            ask_within,
            changed.wait_for(|m| m.current_term != term || m.state == ServerState::Leader),
        )
        .await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_is_needed_in_every_voter_set() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let one = vec![set(&[1, 2, 3])];
        assert!(majority_of_each(&one, &set(&[1, 2])));
        assert!(!majority_of_each(&one, &set(&[1])));
        assert!(!majority_of_each(&one, &set(&[1, 4, 5])));
        let joint = vec![set(&[1, 2, 3]), set(&[3, 4, 5])];
        assert!(!majority_of_each(&joint, &set(&[1, 2, 3])));
        assert!(majority_of_each(&joint, &set(&[1, 3, 4])));
        assert!(majority_of_each(&[set(&[7])], &set(&[7])));
    }

    #[test]
    fn pre_votes_round_trip() {
        let request = PreVoteRequest {
            term: 9,
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(8, 2), 41)),
        };
        let bytes = postcard::to_allocvec(&request).unwrap();
        assert_eq!(
            postcard::from_bytes::<PreVoteRequest>(&bytes).unwrap(),
            request
        );
        let response = PreVoteResponse {
            granted: true,
            term: 8,
        };
        let bytes = postcard::to_allocvec(&response).unwrap();
        assert_eq!(
            postcard::from_bytes::<PreVoteResponse>(&bytes).unwrap(),
            response
        );
    }

    /// The bytes docs/replication.md ("The pre-vote") gives.
    #[test]
    fn the_documented_bytes() {
        let request = PreVoteRequest {
            term: 9,
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(8, 2), 41)),
        };
        assert_eq!(
            postcard::to_allocvec(&request).unwrap(),
            [0x09, 0x01, 0x08, 0x02, 0x29]
        );
        let empty = PreVoteRequest {
            term: 1,
            last_log_id: None,
        };
        assert_eq!(postcard::to_allocvec(&empty).unwrap(), [0x01, 0x00]);
        let response = PreVoteResponse {
            granted: false,
            term: 300,
        };
        assert_eq!(
            postcard::to_allocvec(&response).unwrap(),
            [0x00, 0xac, 0x02]
        );
    }

    #[test]
    fn the_timer_restarts_on_a_leader_call_and_a_granted_vote_only() {
        let heard = Heard::default();
        assert_eq!(heard.since_leader(), None);
        heard.note_append(&AppendEntriesResponse::HigherVote(openraft::Vote::new(
            3, 2,
        )));
        assert_eq!(heard.since_leader(), None, "a refused call is no leader's");
        heard.note_append(&AppendEntriesResponse::Success);
        assert!(heard.since_leader().unwrap() < Duration::from_secs(1));
        heard.restarted_at.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        heard.note_vote(&VoteResponse::new(openraft::Vote::new(3, 2), None, false));
        assert!(heard.since_restart() >= Duration::from_millis(5));
        heard.note_vote(&VoteResponse::new(openraft::Vote::new(3, 2), None, true));
        assert!(heard.since_restart() < Duration::from_millis(5));
    }

    /// Peers that grant, refuse or never answer, by node id; those in
    /// `older` run a build without the pre-vote and fail the test if asked.
    #[derive(Default)]
    struct Scripted {
        grant: BTreeSet<u64>,
        silent: BTreeSet<u64>,
        older: BTreeSet<u64>,
    }

    impl PreVotePeers for Scripted {
        fn lacks_pre_vote(&self, target: u64) -> bool {
            self.older.contains(&target)
        }

        fn pre_vote(&self, target: u64, request: PreVoteRequest, _: Duration) -> PreVoteFuture {
            assert!(!self.older.contains(&target), "node {target} was asked");
            let granted = self.grant.contains(&target);
            if self.silent.contains(&target) {
                return Box::pin(std::future::pending());
            }
            Box::pin(async move {
                Ok(PreVoteResponse {
                    granted,
                    term: request.term - 1,
                })
            })
        }
    }

    fn round_within(peers: Scripted, joint: &[BTreeSet<u64>]) -> Option<bool> {
        let request = PreVoteRequest {
            term: 4,
            last_log_id: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Each peer may take up to a minute; the round must not wait for
        // one whose answer changes nothing.
        runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                pre_vote_round(&peers, joint, 1, &request, Duration::from_secs(60)),
            )
            .await
            .ok()
        })
    }

    #[test]
    fn a_voter_without_the_pre_vote_is_not_asked_and_counts_as_granting() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let three = [set(&[1, 2, 3])];
        // Node 3 is of an earlier build, node 2 refuses: 1 and 3 make a
        // majority, as when node 1 called elections without a pre-vote.
        let mixed = Scripted {
            older: set(&[3]),
            ..Default::default()
        };
        assert_eq!(round_within(mixed, &three), Some(true));
        // One of five older and the others refusing: no majority; two
        // older make one.
        let five = [set(&[1, 2, 3, 4, 5])];
        let short = Scripted {
            older: set(&[5]),
            ..Default::default()
        };
        assert_eq!(round_within(short, &five), Some(false));
        let enough = Scripted {
            older: set(&[4, 5]),
            ..Default::default()
        };
        assert_eq!(round_within(enough, &five), Some(true));
    }

    #[test]
    fn a_round_ends_once_its_outcome_is_known() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let three = [set(&[1, 2, 3])];
        let won = Scripted {
            grant: set(&[2]),
            silent: set(&[3]),
            ..Default::default()
        };
        assert_eq!(round_within(won, &three), Some(true), "2 of 3 would vote");
        let five = [set(&[1, 2, 3, 4, 5])];
        let lost = Scripted {
            grant: set(&[]),
            silent: set(&[5]),
            ..Default::default()
        };
        assert_eq!(round_within(lost, &five), Some(false), "3 of 5 refused");
        let alone = Scripted {
            grant: set(&[]),
            silent: set(&[]),
            ..Default::default()
        };
        assert_eq!(round_within(alone, &[set(&[1])]), Some(true));
        // A joint membership needs both majorities: 4 and 5 refuse.
        let joint = [set(&[1, 2, 3]), set(&[3, 4, 5])];
        let split = Scripted {
            grant: set(&[2, 3]),
            silent: set(&[]),
            ..Default::default()
        };
        assert_eq!(round_within(split, &joint), Some(false));
    }

    /// `sluice_raft_pre_votes_total` indexes its counters by discriminant.
    #[test]
    fn every_outcome_sits_at_its_discriminant() {
        for (i, outcome) in RoundOutcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i, "{outcome:?}");
        }
    }

    #[test]
    fn a_committed_vote_stored_counts_as_a_leader_call_at_opening() {
        assert_eq!(Heard::opened(None).since_leader(), None);
        let mut vote = Vote::new(4, 2);
        assert_eq!(Heard::opened(Some(&vote)).since_leader(), None);
        vote.commit();
        let heard = Heard::opened(Some(&vote));
        assert!(heard.since_leader().unwrap() < Duration::from_secs(1));
        assert!(heard.since_restart() < Duration::from_secs(1));
    }

    #[test]
    fn a_leader_call_or_a_granted_vote_during_a_round_makes_it_stale() {
        let heard = Heard::default();
        let attempt = heard.restart();
        assert!(!heard.restarted_since(attempt));
        heard.note_append(&AppendEntriesResponse::HigherVote(openraft::Vote::new(
            3, 2,
        )));
        assert!(!heard.restarted_since(attempt), "a refused call");
        heard.note_append(&AppendEntriesResponse::Success);
        assert!(heard.restarted_since(attempt));
        let attempt = heard.restart();
        heard.note_vote(&VoteResponse::new(openraft::Vote::new(3, 2), None, true));
        assert!(heard.restarted_since(attempt));
    }
}
