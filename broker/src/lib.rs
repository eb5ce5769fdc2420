//! Sluice broker: the storage engine and, later, the network server.
//!
//! # Layout
//!
//! - [`log`]: the partition log — segments, offset and time indexes,
//!   append, zero-copy-ready reads, group-committed flush, crash recovery,
//!   retention, and the file-system trait all disk I/O goes through.

pub mod log;
