//! Replication: brokers forming a cluster, partitions replicated across them
//! with Raft (`openraft`).
//!
//! - [`config`]: the cluster file (`--cluster FILE`) and this node's entry.
//! - [`transport`]: node-to-node Raft RPC over each node's `raft` address:
//!   frames, the per-group handler registry, the generic openraft network
//!   adapter, and (feature `raft-faults`) fault injection.
//! - [`controller`]: the controller Raft group holding cluster metadata
//!   (topics, replica assignment), its durable storage under
//!   `<data_dir>/cluster/`, and the admin forwarding to its leader.
//! - [`partition`]: one Raft group per partition whose Raft log is the
//!   partition's segment files, and the [`partition::ReplicatedPartition`]
//!   facade the service layer calls.
//! - [`election`]: the pre-vote before each partition group's election.
//! - [`group_state`]: consumer group state in the replicated topic
//!   `__sluice_group_state`; [`group_checkpoint`]: its compaction by
//!   checkpoint, with Raft snapshots capped at the checkpoint.
//! - [`manager`]: opens this node's partition groups as the controller's
//!   metadata says, and is the cluster's [`crate::service::leadership::Leadership`].

pub mod config;
pub mod controller;
pub mod election;
pub mod free_space;
pub mod group_checkpoint;
pub mod group_state;
pub mod manager;
pub mod partition;
pub mod transport;

/// `f` of the metrics behind `metrics` under one borrow, or `None` when
/// their Raft core has ended without a shutdown being asked for: a fatal
/// error it reported (`running_state`), or its metrics' sender gone (its
/// task ended, e.g. on a panic). Its last metrics then keep naming the
/// leader of that moment, itself included, so leadership must not be read
/// from them.
pub(crate) fn with_live_metrics<NID: openraft::NodeId, N: openraft::Node, R>(
    metrics: &tokio::sync::watch::Receiver<openraft::RaftMetrics<NID, N>>,
    f: impl FnOnce(&openraft::RaftMetrics<NID, N>) -> R,
) -> Option<R> {
    let closed = metrics.has_changed().is_err();
    let m = metrics.borrow();
    (!closed && m.running_state.is_ok()).then(|| f(&m))
}

/// Whether the Raft core behind `metrics` has ended on its own (see
/// [`with_live_metrics`]).
pub(crate) fn raft_core_ended<NID: openraft::NodeId, N: openraft::Node>(
    metrics: &tokio::sync::watch::Receiver<openraft::RaftMetrics<NID, N>>,
) -> bool {
    with_live_metrics(metrics, |_| ()).is_none()
}
