//! Client errors.

use sluice_protocol::wire::{ErrorCode, WireError};

/// What went wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed (refused, reset, closed). The I/O error is
    /// part of the message, not a separate cause, so error chains print it
    /// once.
    #[error("connection to the broker failed: {0}")]
    Io(std::io::Error),
    /// The broker sent bytes that do not decode.
    #[error("malformed response from the broker: {0}")]
    Wire(#[from] WireError),
    /// The broker refused the whole request.
    #[error("broker refused the request: {code}: {message}")]
    Broker {
        /// The broker's error code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
    /// The broker answered a different request than expected.
    #[error("response for correlation id {got}, expected {expected}")]
    OutOfOrder {
        /// The id expected.
        expected: u32,
        /// The id received.
        got: u32,
    },
    /// The broker closed the connection.
    #[error("the broker closed the connection")]
    Closed,
    /// The server closed a new connection without answering its first
    /// request: a broker shutting down or serving as many connections as it
    /// takes (`max_connections`, `max_connections_per_ip`), or an address
    /// that is not a Sluice native listener (a broker's Kafka or Raft port,
    /// which close on bytes of another protocol). Retriable, as
    /// [`Closed`](Self::Closed) is.
    #[error(
        "the server closed the connection without answering: a broker shutting down, or \
         serving as many connections as it takes (max_connections, max_connections_per_ip); \
         or, if this address is a broker's Kafka or Raft port, give its native listener \
         (`listen`, 127.0.0.1:9292 by default)"
    )]
    ClosedUnanswered,
    /// The server does not speak Sluice's native protocol (it answered in
    /// HTTP: a broker's metrics port, say); the message says which.
    #[error("{0}")]
    NotNative(&'static str),
    /// The request needs an API version the broker does not speak (an
    /// older broker, for example a topic setting it does not know).
    #[error("the broker does not support {0}")]
    Unsupported(String),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl ClientError {
    /// Whether retrying (after reconnecting for connection errors) may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Io(_) | ClientError::Closed | ClientError::ClosedUnanswered => true,
            ClientError::Broker { code, .. } => code.is_retriable(),
            ClientError::Wire(_)
            | ClientError::OutOfOrder { .. }
            | ClientError::Unsupported(_)
            | ClientError::NotNative(_) => false,
        }
    }
}
