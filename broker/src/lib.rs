//! Sluice broker: the storage engine and the network server.
//!
//! # Layout
//!
//! - [`log`]: the partition log — segments, offset and time indexes,
//!   append, zero-copy-ready reads, group-committed flush, crash recovery,
//!   retention, and the file-system trait all disk I/O goes through.
//! - [`config`]: broker settings (defaults, TOML file).
//! - [`topics`]: the topics, their partitions and the topic metadata file.
//! - [`offsets`]: consumer groups' committed offsets, stored in an internal log.
//! - [`group`]: the group coordinator (membership, generations, assignments).
//! - [`producer`]: idempotent producers — the producer id allocator and each
//!   partition's producer state (sequence numbers, snapshots).
//! - [`partition`]: a partition's log plus its ack and visibility policy.
//! - [`service`]: the protocol-independent service layer (produce, fetch,
//!   admin, offsets, stats) that every front-end calls.
//! - [`server`]: the TCP server — listener, the native protocol front-end,
//!   the gather writer (`sendfile` fetch path).
//! - [`metrics`]: the Prometheus exposition and health checks, served over
//!   HTTP.
//! - [`replication`]: brokers in a cluster — the cluster file, the
//!   node-to-node Raft transport, the controller group (cluster metadata),
//!   and one Raft group per partition over its segment files.
//! - [`error`]: [`error::BrokerError`] and wire error codes.

pub mod config;
pub mod error;
pub mod fd_limit;
pub mod group;
pub mod log;
pub mod log_filter;
pub mod metrics;
pub mod offsets;
pub mod partition;
pub mod producer;
pub mod replication;
pub mod server;
pub mod service;
pub mod tcp;
pub mod throttle;
pub mod topics;
