//! Replication: partitions replicated across brokers with Raft (`openraft`).
//!
//! - [`partition`]: one Raft group per partition whose Raft log is the
//!   partition's segment files, and the [`partition::ReplicatedPartition`]
//!   facade the service layer calls.

pub mod partition;
