//! When each peer last answered this replica's Raft calls: a wrapper of
//! the group's network that notes every answered call, so the leader can
//! tell a follower that went silent (down, cut off, its group stopped) from
//! one that is merely caught up on an idle partition. openraft's metrics
//! give each follower's matched log position only, which a dead follower
//! of an idle partition keeps forever.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;

use super::PartitionRaft;

/// The last time each peer answered a call of this replica successfully
/// (any reply its Raft sent: accepted, a conflict, a higher vote; not a
/// transport error nor an error the remote Raft returned).
#[derive(Debug, Default)]
pub(crate) struct Answered(Mutex<HashMap<u64, Instant>>);

impl Answered {
    fn note(&self, peer: u64) {
        self.0.lock().insert(peer, Instant::now());
    }

    /// Whether `peer` answered a call within the last `within`.
    pub(crate) fn recently(&self, peer: u64, within: Duration) -> bool {
        self.0
            .lock()
            .get(&peer)
            .is_some_and(|at| at.elapsed() <= within)
    }
}

/// A group's network whose clients note answered calls in [`Answered`].
pub(crate) struct Noting<N> {
    inner: N,
    answered: Arc<Answered>,
}

impl<N> Noting<N> {
    /// `inner`, noting answers in `answered`.
    pub(crate) fn new(inner: N, answered: Arc<Answered>) -> Self {
        Noting { inner, answered }
    }
}

/// One client of [`Noting`].
pub(crate) struct NotingPeer<P> {
    inner: P,
    target: u64,
    answered: Arc<Answered>,
}

impl<P> NotingPeer<P> {
    fn noted<T, E>(&self, r: Result<T, E>) -> Result<T, E> {
        if r.is_ok() {
            self.answered.note(self.target);
        }
        r
    }
}

impl<N: RaftNetworkFactory<PartitionRaft>> RaftNetworkFactory<PartitionRaft> for Noting<N> {
    type Network = NotingPeer<N::Network>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        NotingPeer {
            inner: self.inner.new_client(target, node).await,
            target,
            answered: Arc::clone(&self.answered),
        }
    }
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl<P: RaftNetwork<PartitionRaft>> RaftNetwork<PartitionRaft> for NotingPeer<P> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<PartitionRaft>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<u64>> {
        let r = self.inner.append_entries(rpc, option).await;
        self.noted(r)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<PartitionRaft>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let r = self.inner.install_snapshot(rpc, option).await;
        self.noted(r)
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> Rpc<VoteResponse<u64>> {
        let r = self.inner.vote(rpc, option).await;
        self.noted(r)
    }

    fn backoff(&self) -> Backoff {
        self.inner.backoff()
    }
}
