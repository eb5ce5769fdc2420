//! An in-process network between partition group replicas, for tests: RPCs
//! are direct calls on the target's [`Raft`], with links that can be cut
//! (a network partition, a stopped node). Data entries read as file ranges
//! are turned into inline bytes on the way, as a transport would send them.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload, Raft, RaftNetwork, RaftNetworkFactory};
use parking_lot::Mutex;

use super::PartitionRaft;
use crate::replication::election::{
    self, Heard, PreVoteFuture, PreVoteNetwork, PreVotePeers, PreVoteRequest,
};

#[derive(Default)]
struct NetState {
    nodes: HashMap<u64, (Raft<PartitionRaft>, Arc<Heard>)>,
    /// Directed links that drop every message.
    cut: BTreeSet<(u64, u64)>,
}

/// The in-process network (cheap to clone; clones share it).
#[derive(Clone, Default)]
pub struct MemNetwork {
    state: Arc<Mutex<NetState>>,
}

impl std::fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("MemNetwork")
            .field("nodes", &s.nodes.keys().collect::<Vec<_>>())
            .field("cut", &s.cut)
            .finish()
    }
}

impl MemNetwork {
    /// An empty network.
    pub fn new() -> MemNetwork {
        MemNetwork::default()
    }

    /// Makes `raft` reachable as node `id` (replacing a stopped one), with
    /// `heard` noting its calls and answering its pre-votes.
    pub fn register(&self, id: u64, raft: Raft<PartitionRaft>, heard: Arc<Heard>) {
        self.state.lock().nodes.insert(id, (raft, heard));
    }

    /// Makes node `id` unreachable (stopped).
    pub fn unregister(&self, id: u64) {
        self.state.lock().nodes.remove(&id);
    }

    /// Cuts every link between `group` and the other nodes of `all`, both
    /// ways (a network partition).
    pub fn isolate(&self, group: &[u64], all: &[u64]) {
        let mut s = self.state.lock();
        for &a in group {
            for &b in all.iter().filter(|b| !group.contains(b)) {
                s.cut.insert((a, b));
                s.cut.insert((b, a));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.state.lock().cut.clear();
    }

    /// The connection factory of node `from`.
    pub fn factory(&self, from: u64) -> MemFactory {
        MemFactory {
            net: self.clone(),
            from,
        }
    }

    fn target(&self, from: u64, to: u64) -> Result<(Raft<PartitionRaft>, Arc<Heard>), Unreachable> {
        let s = self.state.lock();
        let unreachable = || Unreachable::new(&io::Error::other(format!("{from} -> {to} cut")));
        if s.cut.contains(&(from, to)) || !s.nodes.contains_key(&from) {
            return Err(unreachable());
        }
        s.nodes.get(&to).cloned().ok_or_else(unreachable)
    }
}

/// Connections from one node.
#[derive(Debug, Clone)]
pub struct MemFactory {
    net: MemNetwork,
    from: u64,
}

impl PreVoteNetwork for MemFactory {
    fn pre_vote_peers(&self) -> Arc<dyn PreVotePeers> {
        Arc::new(self.clone())
    }
}

impl PreVotePeers for MemFactory {
    fn pre_vote(&self, target: u64, request: PreVoteRequest, _timeout: Duration) -> PreVoteFuture {
        let to = self.net.target(self.from, target);
        Box::pin(async move {
            let (raft, heard) = to.map_err(|e| e.to_string())?;
            Ok(election::answer(&raft, &heard, &request))
        })
    }
}

impl RaftNetworkFactory<PartitionRaft> for MemFactory {
    type Network = MemConnection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> MemConnection {
        MemConnection {
            net: self.net.clone(),
            from: self.from,
            to: target,
        }
    }
}

/// A connection from one node to another.
#[derive(Debug)]
pub struct MemConnection {
    net: MemNetwork,
    from: u64,
    to: u64,
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl RaftNetwork<PartitionRaft> for MemConnection {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<PartitionRaft>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<u64>> {
        let (raft, heard) = self
            .net
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        for entry in &mut rpc.entries {
            if let EntryPayload::Normal(req) = &mut entry.payload {
                // What a transport does: send the bytes of the file range.
                let inline = req
                    .records
                    .clone()
                    .into_inline()
                    .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
                req.records = inline;
            }
        }
        let answer = raft
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        heard.note_append(&answer);
        Ok(answer)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<PartitionRaft>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let (raft, heard) = self
            .net
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        let vote = rpc.vote;
        let answer = raft
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        if answer.vote == vote {
            heard.leader_called();
        }
        Ok(answer)
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, _option: RPCOption) -> Rpc<VoteResponse<u64>> {
        let (raft, heard) = self
            .net
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        let answer = raft
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        heard.note_vote(&answer);
        Ok(answer)
    }
}
