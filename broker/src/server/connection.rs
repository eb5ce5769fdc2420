//! One connection: reads request frames, serves them one at a time, writes
//! responses in request order.
//!
//! A request frame is read whole before it is served. Its declared length is
//! checked against `max_frame_bytes` before anything is allocated, and its
//! bytes are taken from the broker-wide request budget while it is held, so
//! many large requests wait instead of exhausting memory. A connection that
//! is idle too long, sends a malformed frame, or does not read its responses
//! within the write timeout is closed; the others are unaffected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::wire::frame::{LEN_PREFIX, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};
use sluice_protocol::wire::{
    ErrorBody, ErrorCode, ResponseHeader, WireError, check_frame, encode_body,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::Broker;
use super::stats::Stats;

/// What the connection task carries between requests.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) broker: Arc<Broker>,
    pub(super) stop: watch::Receiver<bool>,
    read_buf: BytesMut,
    /// Scratch for encoding response headers and bodies.
    pub(super) out: Vec<u8>,
}

/// Serves one connection until the client closes it, it misbehaves, or
/// the broker shuts down.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    Stats::add(&broker.stats.connections_open, 1);
    let mut conn = Conn {
        stream,
        broker: Arc::clone(&broker),
        stop,
        read_buf: BytesMut::with_capacity(64 * 1024),
        out: Vec::with_capacity(4096),
    };
    match conn.run().await {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(e) => tracing::info!(%peer, error = %e, "connection closed"),
    }
    broker
        .stats
        .connections_open
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Wire(#[from] WireError),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("frame not received whole within {0:?}")]
    SlowFrame(Duration),
    #[error("response not read within {0:?}")]
    WriteTimeout(Duration),
    #[error("closed in the middle of a frame")]
    TruncatedFrame,
}

impl Conn {
    async fn run(&mut self) -> Result<(), ConnError> {
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            let mut stop = self.stop.clone();
            let frame = tokio::select! {
                f = self.read_frame() => f,
                _ = stop.changed() => return Ok(()),
            };
            let (frame, permit) = match frame {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(ConnError::Wire(e)) => {
                    // Answer once so the client learns why, then close: the
                    // rest of the stream cannot be framed any more.
                    Stats::add(&self.broker.stats.bad_requests, 1);
                    let code = match e {
                        WireError::FrameTooLarge { .. } => ErrorCode::MessageTooLarge,
                        _ => ErrorCode::InvalidRequest,
                    };
                    let correlation_id = peek_correlation_id(&self.read_buf);
                    let _ = self.write_error(correlation_id, code, &e.to_string()).await;
                    return Err(ConnError::Wire(e));
                }
                Err(e) => return Err(e),
            };
            Stats::add(&self.broker.stats.requests, 1);
            let mut frame = frame;
            super::handlers::dispatch(self, &mut frame).await?;
            drop(permit);
        }
    }

    /// Reads one whole frame. `Ok(None)` on a clean close between frames.
    async fn read_frame(
        &mut self,
    ) -> Result<Option<(BytesMut, Option<OwnedSemaphorePermit>)>, ConnError> {
        let config = &self.broker.config;
        let idle = Duration::from_millis(config.idle_timeout_ms);
        let frame_time = Duration::from_millis(config.frame_timeout_ms);
        let mut permit = None;
        // Once a frame has started, all of it must arrive within
        // `frame_timeout_ms`: a slow sender cannot hold its share of the
        // request budget indefinitely.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            match check_frame(&self.read_buf, config.max_frame_bytes, REQUEST_HEADER_LEN)? {
                Some(total) => {
                    let frame = self.read_buf.split_to(total);
                    return Ok(Some((frame, permit)));
                }
                None => {
                    if self.read_buf.len() >= LEN_PREFIX && permit.is_none() {
                        let total = LEN_PREFIX
                            + u32::from_be_bytes([
                                self.read_buf[0],
                                self.read_buf[1],
                                self.read_buf[2],
                                self.read_buf[3],
                            ]) as usize;
                        // Hold the frame's bytes in the budget while buffering it.
                        let budget = &self.broker.request_budget;
                        let want = (total as u64).min(self.broker.request_budget_total) as u32;
                        permit = Arc::clone(budget).acquire_many_owned(want).await.ok();
                        deadline = Some(tokio::time::Instant::now() + frame_time);
                        self.read_buf
                            .reserve(total.saturating_sub(self.read_buf.len()));
                    }
                }
            }
            if self.read_buf.capacity() == self.read_buf.len() {
                self.read_buf.reserve(64 * 1024);
            }
            let wait = match deadline {
                Some(d) => idle.min(d.saturating_duration_since(tokio::time::Instant::now())),
                None => idle,
            };
            let n = match tokio::time::timeout(wait, self.stream.read_buf(&mut self.read_buf)).await
            {
                Ok(r) => r?,
                Err(_) if deadline.is_some() && wait < idle => {
                    return Err(ConnError::SlowFrame(frame_time));
                }
                Err(_) => return Err(ConnError::Idle(idle)),
            };
            if n == 0 {
                return if self.read_buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::TruncatedFrame)
                };
            }
        }
    }

    /// Writes `self.out` (a whole encoded response) with the write timeout.
    pub(super) async fn write_out(&mut self) -> Result<(), ConnError> {
        let timeout = Duration::from_millis(self.broker.config.write_timeout_ms);
        match tokio::time::timeout(timeout, self.stream.write_all(&self.out)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ConnError::WriteTimeout(timeout)),
        }
    }

    /// Encodes a response with `body` into `self.out`, leaving room for a
    /// tail of `tail_len` bytes that the caller sends after it.
    pub(super) fn encode_response<T: serde::Serialize>(
        &mut self,
        correlation_id: u32,
        code: ErrorCode,
        body: &T,
        tail_len: usize,
    ) {
        self.out.clear();
        self.out.resize(LEN_PREFIX + RESPONSE_HEADER_LEN, 0);
        let body_len = encode_body(body, &mut self.out);
        let header = ResponseHeader {
            correlation_id,
            error_code: code,
            body_len: body_len as u32,
        }
        .encode(tail_len);
        self.out[..header.len()].copy_from_slice(&header);
    }

    /// Writes a frame-level error response.
    pub(super) async fn write_error(
        &mut self,
        correlation_id: u32,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), ConnError> {
        self.encode_response(
            correlation_id,
            code,
            &ErrorBody {
                message: message.to_owned(),
            },
            0,
        );
        self.write_out().await
    }
}

/// The correlation id of a partly read request, or 0.
fn peek_correlation_id(buf: &[u8]) -> u32 {
    buf.get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}
