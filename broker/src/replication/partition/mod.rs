//! One Raft group (openraft) per partition whose Raft log is the
//! partition's segment files.
//!
//! - `format`: byte layouts of the Raft index record and the side-file
//!   frame (specified in `docs/storage-format.md`, "Raft index").
//! - `index`: the Raft index (`raft/<first>.ridx`): Raft index → (term,
//!   kind, Kafka offset range), plus the vote, purge point, membership and
//!   snapshot side files.
//! - `payload`: the entry data ([`Records`] inline or as a file range).
//! - `store`: openraft's log storage over the segments and the index.
//! - `state`: the state machine (applying moves the high watermark) and
//!   snapshots (the partition's position, not its data).
//! - `proposer`: group commit: a partition's queued appends merged into
//!   one entry of several parts.
//! - `facade`: [`ReplicatedPartition`], what the service layer calls.
//! - `liveness`: when each peer last answered the group's Raft calls.
//! - [`memnet`]: an in-process network for tests.
//!
//! Raft log index ≠ Kafka offset: a data entry is the batches of one or
//! more produce requests (a contiguous offset range); blank and membership entries take
//! no offsets, so the offsets consumers see stay contiguous. The term is
//! stamped in each batch's `partitionLeaderEpoch`.

mod facade;
#[cfg(test)]
pub(crate) use facade::MAX_PAYLOAD_ENTRIES;
pub mod format;
mod index;
mod liveness;
pub mod memnet;
mod payload;
mod proposer;
mod state;
mod store;

#[cfg(test)]
mod tests;

pub use facade::{
    OpenReport, PURGE_PATIENCE, ReplicatedPartition, ReplicationConfig, ReplicationError,
};
pub use payload::{FileRange, Origin, Part, Records, Request, Response};
pub use proposer::{MERGE_BYTES, QUEUE_BYTES, QUEUE_REQUESTS};
pub use state::SnapshotRecord;
pub use store::LogStore;

/// The directory of a partition's Raft index and side files, inside the
/// partition's directory.
pub const RAFT_DIR: &str = "raft";

/// A partition group's AppendEntries request (what
/// [`transport::raft::decode_request`](crate::replication::transport::raft::decode_request)
/// decodes on a follower).
pub type AppendEntries = openraft::raft::AppendEntriesRequest<PartitionRaft>;

openraft::declare_raft_types!(
    /// The openraft type configuration of a partition group.
    pub PartitionRaft:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<PartitionRaft>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
