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
//! - [`server`]: the TCP server — listener, connections, request handlers,
//!   the `sendfile` fetch path.
//! - [`error`]: [`error::BrokerError`] and wire error codes.

pub mod config;
pub mod error;
pub mod log;
pub mod offsets;
pub mod server;
pub mod topics;
