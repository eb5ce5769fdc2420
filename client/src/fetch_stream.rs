//! A fetch that keeps answering (the FetchStream API): one request, then a
//! frame from the broker each time records arrive, with no request per
//! read. See `sluice_protocol::wire::fetch_stream` for what the broker
//! promises.
//!
//! ```no_run
//! # async fn run() -> Result<(), sluice_client::ClientError> {
//! use sluice_client::Connection;
//! use sluice_protocol::wire::fetch::FetchPartition;
//!
//! let mut conn = Connection::connect("127.0.0.1:9292").await?;
//! let part = FetchPartition { topic: "orders".into(), partition: 0, offset: 0, max_bytes: 1 << 20 };
//! let mut stream = conn.fetch_stream(500, 1, 1 << 20, vec![part]).await?;
//! let frame = stream.next().await?; // the records from offset 0 on
//! stream.end().await?; // the connection serves other requests again
//! # Ok(()) }
//! ```

use bytes::Bytes;
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest};

use crate::connection::{Connection, FetchedPartition, split_records};
use crate::error::ClientError;

/// One frame of a stream.
#[derive(Debug, Clone)]
pub struct StreamFrame {
    /// Whether the stream ended with this frame (a partition's error is in
    /// its `partitions`; a stream the client ended lists none).
    pub last: bool,
    /// Every partition of the request, in request order, with the records
    /// that arrived (the first batch may start before the position asked
    /// for); none in a heartbeat.
    pub partitions: Vec<FetchedPartition>,
}

/// A FetchStream in progress; it holds its connection until it ends. A
/// stream dropped before its last frame leaves frames on the way: close
/// that connection, or call [`FetchStream::end`] to use it again.
#[derive(Debug)]
pub struct FetchStream<'a> {
    conn: &'a mut Connection,
    ended: bool,
}

impl Connection {
    /// Starts a stream of `partitions` from their offsets. The broker
    /// sends a frame as soon as `min_bytes` (at least 1) of records are
    /// there, with at most about `max_bytes` in all, and a frame without
    /// records after `max_wait_ms` (at least 100) of silence. Responses
    /// to requests sent earlier must have been read. A broker that does
    /// not know the API gives [`ClientError::Unsupported`].
    pub async fn fetch_stream(
        &mut self,
        max_wait_ms: u32,
        min_bytes: u32,
        max_bytes: u32,
        partitions: Vec<FetchPartition>,
    ) -> Result<FetchStream<'_>, ClientError> {
        if !self.in_flight.is_empty() {
            return Err(ClientError::Unsupported(
                "a stream on a connection with responses still to read".into(),
            ));
        }
        self.negotiated_version(ApiKey::FetchStream).await?;
        let req = FetchRequest {
            max_wait_ms,
            min_bytes,
            max_bytes,
            partitions,
        };
        self.send(ApiKey::FetchStream, &req, &[]).await?;
        Ok(FetchStream {
            conn: self,
            ended: false,
        })
    }
}

impl FetchStream<'_> {
    /// The next frame. After the last one, [`ClientError::Closed`]. A
    /// request the broker refused as a whole (too many partitions, for
    /// example) is [`ClientError::Broker`], and ends the stream.
    pub async fn next(&mut self) -> Result<StreamFrame, ClientError> {
        if self.ended {
            return Err(ClientError::Closed);
        }
        let (resp, tail) = match self.conn.recv_stream_frame().await {
            Ok(frame) => frame,
            Err(e) => {
                // A refusal ends the stream; so does a broken connection.
                self.ended = true;
                return Err(e);
            }
        };
        resp.check_tail(tail.len())?;
        self.ended = resp.last;
        Ok(StreamFrame {
            last: resp.last,
            partitions: split_records(resp.partitions, &tail),
        })
    }

    /// Whether the last frame has been read.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Ends the stream and gives the connection back to other requests:
    /// asks the broker to stop (its next request, ApiVersions, does that)
    /// and skips the frames it sent before it stopped.
    pub async fn end(mut self) -> Result<(), ClientError> {
        if self.ended {
            return Ok(());
        }
        self.conn
            .send(ApiKey::ApiVersions, &ApiVersionsRequest {}, &[])
            .await?;
        while !self.next().await?.last {}
        let (versions, _): (ApiVersionsResponse, Bytes) = self.conn.recv().await?;
        self.conn.broker_versions = Some(versions);
        Ok(())
    }
}
