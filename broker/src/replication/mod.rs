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
//! - [`group_state`]: consumer group state in the replicated topic
//!   `__sluice_group_state`; [`group_checkpoint`]: its compaction by
//!   checkpoint, with Raft snapshots capped at the checkpoint.
//! - [`manager`]: opens this node's partition groups as the controller's
//!   metadata says, and is the cluster's [`crate::service::leadership::Leadership`].

pub mod config;
pub mod controller;
pub mod group_checkpoint;
pub mod group_state;
pub mod manager;
pub mod partition;
pub mod transport;
