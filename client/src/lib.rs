//! Sluice client library.
//!
//! # Layout
//!
//! - [`connection`]: one TCP connection to a broker — framed requests and
//!   responses, pipelined, matched by correlation id — and typed calls for
//!   every API.
//! - [`error`]: [`ClientError`], which says what failed and whether a retry
//!   can help.

pub mod connection;
pub mod error;

pub use connection::{Connection, FetchedPartition};
pub use error::ClientError;
