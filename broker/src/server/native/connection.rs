//! One connection: reads request frames, serves them one at a time, writes
//! responses in request order. Every whole frame already in the read buffer
//! is served before anything is sent, and the responses held back meanwhile
//! (at most [`OUT_BASELINE`] bytes of them before a send) leave together in
//! one send; a request that may wait sends them first (see
//! [`Conn::write_out`] and `dispatch`).
//!
//! Both front-ends use it: the connection's [`Front`] says whether its
//! frames go to the native `dispatch` or to the Kafka listener's (both
//! protocols frame requests as a big-endian u32 length and the bytes).
//!
//! A request frame is read whole before it is served. Its declared length is
//! checked against `max_frame_bytes` before anything is allocated.
//!
//! Memory a connection holds:
//! - a read buffer of [`READ_BASELINE`] bytes, outside the request budget:
//!   requests that fit in it never wait for the budget;
//! - a larger frame gets a buffer of its own, grown in steps as its bytes
//!   arrive, each step taken from the broker-wide request budget first
//!   (`max_request_bytes_in_flight`). That buffer and its share of the
//!   budget are released as soon as the request has been served; the
//!   connection goes back to its baseline buffer;
//! - a response buffer, cut back to [`OUT_BASELINE`] bytes after every
//!   response that needed more.
//!
//! The budget has two parts. Steps come from the shared part. When it is
//! exhausted, a growing frame waits either for its next step there or for
//! the whole rest of its frame from the reserve (one maximum frame), whichever
//! comes first. A frame that holds reserve permits needs no more, so it
//! completes (or hits the frame timeout) and frees them: frames that grow
//! while others hold budget cannot deadlock. A client that announces a large
//! frame and trickles its bytes holds budget only for the bytes it sent (at
//! most twice those plus 1 MiB), not for the whole declared frame — unless
//! the shared part is exhausted and it takes the rest of its frame from the
//! reserve.
//!
//! A connection that is idle too long, sends a malformed frame, takes longer
//! than the frame timeout to send (or to get budget for) a frame it started,
//! or does not read its responses within the write timeout is closed; the
//! others are unaffected.

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
use tokio::time::Instant;

use crate::server::Broker;
use crate::server::seats::Held;
use crate::service::Refused;
use crate::service::fetch::{FetchRequest, FetchResult};
use crate::service::stats::{API_SLOTS, ApiStats, Stats};

/// Read-buffer bytes every connection keeps outside the request budget.
/// Request frames up to this size (length prefix included) never wait for
/// the budget.
pub(super) const READ_BASELINE: usize = 64 * 1024;
/// How far a frame's own buffer grows past the baseline at first, before
/// it grows by doubling.
const FIRST_GROW: usize = 1 << 20;
/// Response-buffer capacity a connection keeps between requests.
pub(super) const OUT_BASELINE: usize = 64 * 1024;

/// Request-budget permits a frame holds: steps from the shared part, and at
/// most one grant from the reserve. Released when dropped.
#[derive(Debug, Default)]
pub(super) struct FramePermits {
    shared: Option<OwnedSemaphorePermit>,
    reserve: Option<OwnedSemaphorePermit>,
}

impl FramePermits {
    /// Bytes of budget held.
    fn held(&self) -> usize {
        self.shared
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
            + self
                .reserve
                .as_ref()
                .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    fn add_shared(&mut self, p: OwnedSemaphorePermit) {
        match &mut self.shared {
            Some(held) => held.merge(p),
            None => self.shared = Some(p),
        }
    }

    fn add_reserve(&mut self, p: OwnedSemaphorePermit) {
        match &mut self.reserve {
            Some(held) => held.merge(p),
            None => self.reserve = Some(p),
        }
    }
}

/// Which protocol a connection speaks. Both share this module's framing
/// (a big-endian u32 length, then the frame), limits and response order.
#[derive(Debug, Clone)]
pub(crate) enum Front {
    /// Sluice's native protocol.
    Native,
    /// The Kafka protocol, with the address clients are told to connect to.
    Kafka(Arc<crate::server::kafka::Advertised>),
}

impl Front {
    /// The listener's name in log lines.
    fn listener(&self) -> &'static str {
        match self {
            Front::Native => "native",
            Front::Kafka(_) => "kafka",
        }
    }

    /// The shortest request frame (without its length prefix).
    fn min_frame(&self) -> usize {
        match self {
            Front::Native => REQUEST_HEADER_LEN,
            Front::Kafka(_) => sluice_protocol::kafka::header::REQUEST_HEADER_MIN,
        }
    }
}

/// What the connection task carries between requests.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) broker: Arc<Broker>,
    pub(crate) stop: watch::Receiver<bool>,
    /// The protocol spoken.
    pub(crate) front: Front,
    /// Bytes read and not yet taken as a frame. Its allocation is either the
    /// baseline (`READ_BASELINE` bytes) or, while a larger frame arrives, a
    /// buffer of that frame's own covered by `read_permits`.
    read_buf: BytesMut,
    /// Size of `read_buf`'s whole allocation (frames split off included).
    read_alloc: usize,
    /// Budget held for `read_buf` while it is larger than the baseline.
    read_permits: FramePermits,
    /// Scratch for encoding response headers and bodies.
    pub(crate) out: Vec<u8>,
    /// The client's address (for logs, and the host of group members).
    pub(crate) peer: SocketAddr,
    /// The whole-request error the request being served was answered with.
    last_error: Option<ErrorCode>,
    /// Time the request being served may wait on purpose (a fetch's long
    /// poll), not counted against the slow-request threshold.
    pub(crate) wait_allowance: Duration,
    /// The long-poll timer of this connection's fetches, kept from one fetch
    /// to the next so that re-arming it for a later deadline does not
    /// register a new timer (see [`Service::fetch_timed`]).
    ///
    /// [`Service::fetch_timed`]: crate::service::Service::fetch_timed
    pub(crate) fetch_timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// The idle (or frame) timeout of reads, kept and re-armed the same way:
    /// waiting for the next request registers no timer per request.
    read_timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// This connection's seat among the `max_connections` served.
    seat: Held,
}

/// Serves one connection until the client closes it, it misbehaves, or
/// the broker shuts down.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
    front: Front,
    seat: Held,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    crate::tcp::apply(&stream, peer.ip(), &broker.config.tcp_congestion);
    Stats::add(&broker.stats.connections_open, 1);
    let mut conn = Conn {
        stream,
        broker: Arc::clone(&broker),
        stop,
        front,
        read_buf: BytesMut::with_capacity(READ_BASELINE),
        read_alloc: READ_BASELINE,
        read_permits: FramePermits::default(),
        out: Vec::with_capacity(4096),
        peer,
        last_error: None,
        wait_allowance: Duration::ZERO,
        fetch_timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        read_timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        seat,
    };
    let ran = conn.run().await;
    // Responses still pending (the connection stopped with more requests
    // buffered) are sent before it closes.
    let ran = match conn.flush().await {
        Err(e) if ran.is_ok() => Err(e),
        _ => ran,
    };
    let listener = conn.front.listener();
    match ran {
        Ok(()) => tracing::debug!(%peer, listener, "connection closed"),
        Err(e @ ConnError::Displaced) => {
            tracing::debug!(%peer, listener, error = %e, "connection closed")
        }
        Err(e) => {
            // One line a second at most for the whole broker: clients
            // resetting thousands of connections a second must not fill the
            // log's disk.
            static CLOSED: crate::throttle::Throttle =
                crate::throttle::Throttle::new(Duration::from_secs(1));
            match CLOSED.allow() {
                Some(held_back) => {
                    tracing::info!(%peer, listener, error = %e, held_back, "connection closed")
                }
                None => tracing::debug!(%peer, listener, error = %e, "connection closed"),
            }
        }
    }
    broker
        .stats
        .connections_open
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
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
    #[error("request budget closed")]
    BudgetClosed,
    #[error("request refused ({0}): {1}")]
    Refused(ErrorCode, String),
    #[error("silent while every connection seat was taken; seat given to a new connection")]
    Displaced,
}

impl Conn {
    /// The service's fetch of `req` for this connection, cut short when the
    /// client closes its end while the fetch waits: it is then answered at
    /// once with what there is, as at the end of its wait. Without this a
    /// long poll of a client that went away held its waiter, and its
    /// connection's seat (a serving seat never gives way), for all of
    /// `max_wait`. A client that only shut down its writing side gets that
    /// early answer; one that sent more bytes behind the fetch is not
    /// watched (the bytes are left for the next frame).
    pub(crate) async fn fetch_until_closed(
        &mut self,
        req: FetchRequest,
    ) -> Result<FetchResult, Refused> {
        let service = Arc::clone(&self.broker.service);
        let req = Arc::new(req);
        if req.max_wait.is_zero() {
            return service
                .fetch_timed(req, self.stop.clone(), self.fetch_timer.as_mut())
                .await;
        }
        let answered = {
            let fetch = service.fetch_timed(
                Arc::clone(&req),
                self.stop.clone(),
                self.fetch_timer.as_mut(),
            );
            tokio::select! {
                r = fetch => Some(r),
                () = peer_closed(&self.stream) => None,
            }
        };
        match answered {
            Some(r) => r,
            None => {
                tracing::debug!(peer = %self.peer, "client closed its end during a long poll; answered now");
                let now = FetchRequest {
                    max_wait: Duration::ZERO,
                    ..(*req).clone()
                };
                service
                    .fetch_timed(Arc::new(now), self.stop.clone(), self.fetch_timer.as_mut())
                    .await
            }
        }
    }

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
                Err(ConnError::Wire(e)) if matches!(self.front, Front::Kafka(_)) => {
                    // Kafka has no frame-level error answer: close.
                    Stats::add(&self.broker.stats.bad_requests, 1);
                    return Err(ConnError::Wire(e));
                }
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
                    self.account(API_SLOTS - 1, Duration::ZERO);
                    return Err(ConnError::Wire(e));
                }
                Err(e) => return Err(e),
            };
            Stats::add(&self.broker.stats.requests, 1);
            let api_key = frame
                .get(LEN_PREFIX..LEN_PREFIX + 2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_be_bytes);
            let kafka_version = frame
                .get(LEN_PREFIX + 2..LEN_PREFIX + 4)
                .and_then(|b| b.try_into().ok())
                .map(i16::from_be_bytes);
            let started = Instant::now();
            self.last_error = None;
            self.wait_allowance = Duration::ZERO;
            // The frame's own buffer (if it had one) is freed when the
            // request has been served, and its budget goes back right after.
            let served = match self.front {
                Front::Native => super::dispatch(self, frame).await,
                Front::Kafka(_) => crate::server::kafka::dispatch(self, frame).await,
            };
            drop(permit);
            self.seat.served();
            if self.out.is_empty() {
                release_out(&mut self.out);
            }
            match self.front {
                Front::Native => self.account(ApiStats::slot(api_key), started.elapsed()),
                Front::Kafka(_) => {
                    let elapsed = started.elapsed();
                    crate::server::kafka::account(
                        &self.broker.stats,
                        api_key,
                        kafka_version,
                        elapsed,
                        // Refused by the broker; not the client leaving
                        // before its answer (a broken pipe, a timeout).
                        matches!(served, Err(ConnError::Refused(..) | ConnError::Wire(_))),
                    );
                    self.log_if_slow(elapsed, || {
                        let key = api_key.map_or(-1, |k| k as i16);
                        match sluice_protocol::kafka::ApiKey::from_i16(key) {
                            Some(a) => format!("Kafka {a:?}"),
                            None => format!("Kafka API {key}"),
                        }
                    });
                }
            }
            served?;
        }
    }

    /// Reads one whole frame. `Ok(None)` on a clean close between frames.
    /// The frame comes with the budget that covers its buffer, if it needed
    /// more than the baseline.
    async fn read_frame(&mut self) -> Result<Option<(BytesMut, FramePermits)>, ConnError> {
        let broker = Arc::clone(&self.broker);
        let config = &broker.config;
        let idle = Duration::from_millis(config.idle_timeout_ms);
        let frame_time = Duration::from_millis(config.frame_timeout_ms);
        // Once a frame has started, all of it must arrive within
        // `frame_timeout_ms`: a slow sender cannot hold its share of the
        // request budget indefinitely.
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(total) = check_frame(
                &self.read_buf,
                config.max_frame_bytes,
                self.front.min_frame(),
            )? {
                if !self.seat.serving() {
                    return Err(ConnError::Displaced);
                }
                let frame = self.read_buf.split_to(total);
                let permits = std::mem::take(&mut self.read_permits);
                if self.read_alloc > READ_BASELINE {
                    // The frame had a buffer of its own: it leaves with the
                    // frame (freed once served) and the connection goes back
                    // to a baseline buffer.
                    let mut fresh = BytesMut::with_capacity(READ_BASELINE.max(self.read_buf.len()));
                    fresh.extend_from_slice(&self.read_buf);
                    self.read_alloc = fresh.capacity();
                    self.read_buf = fresh;
                }
                return Ok(Some((frame, permits)));
            }
            if deadline.is_none() && !self.read_buf.is_empty() {
                deadline = Some(Instant::now() + frame_time);
            }
            if self.read_buf.len() == self.read_buf.capacity() {
                self.make_room(deadline, frame_time).await?;
            }
            let wait = match deadline {
                Some(d) => idle.min(d.saturating_duration_since(Instant::now())),
                None => idle,
            };
            let now = Instant::now();
            if !self.seat.waiting(now) {
                return Err(ConnError::Displaced);
            }
            self.read_timer.as_mut().reset(now + wait);
            let n = tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.read_buf) => r?,
                () = self.read_timer.as_mut() => {
                    return Err(match deadline.is_some() && wait < idle {
                        true => ConnError::SlowFrame(frame_time),
                        false => ConnError::Idle(idle),
                    });
                }
                () = self.seat.given_up() => return Err(ConnError::Displaced),
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

    /// Makes room in a full `read_buf` for more of the frame being read:
    /// within the baseline if the frame fits there, otherwise by moving it
    /// to a larger buffer of its own, covered by budget taken first.
    async fn make_room(
        &mut self,
        deadline: Option<Instant>,
        frame_time: Duration,
    ) -> Result<(), ConnError> {
        let len = self.read_buf.len();
        // `check_frame` has refused declared lengths over the maximum.
        let want = match self.read_buf.get(..LEN_PREFIX) {
            Some(p) => LEN_PREFIX + u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
            None => LEN_PREFIX,
        };
        if want <= READ_BASELINE {
            // Frames split off earlier are gone: reuse the allocation if the
            // bytes can move to its front, else start a new baseline buffer.
            if !self.read_buf.try_reclaim(READ_BASELINE - len) {
                let mut fresh = BytesMut::with_capacity(READ_BASELINE);
                fresh.extend_from_slice(&self.read_buf);
                self.read_buf = fresh;
                self.read_alloc = READ_BASELINE;
            }
            return Ok(());
        }
        let deadline = deadline.unwrap_or_else(|| Instant::now() + frame_time);
        let held = self.read_permits.held();
        // Grow to the whole frame if it is at most `FIRST_GROW` past the
        // baseline (one allocation, one copy of the baseline's bytes: the
        // common produce request), else double: a connection holds budget for
        // at most twice the bytes it sent plus `FIRST_GROW`, and a larger
        // frame is copied about once in all while it grows.
        let step = (want - len).min(len.max(FIRST_GROW));
        let shared = &self.broker.request_budget;
        let reserve = &self.broker.request_reserve;
        // Permits needed for a buffer of `cap` bytes, beyond those held.
        let need = |cap: usize| cap.saturating_sub(held).min(u32::MAX as usize) as u32;
        let new_cap = match Arc::clone(shared).try_acquire_many_owned(need(len + step)) {
            Ok(p) => {
                self.read_permits.add_shared(p);
                len + step
            }
            Err(_) => {
                tokio::select! {
                    p = Arc::clone(shared).acquire_many_owned(need(len + step)) => {
                        let Ok(p) = p else { return Err(ConnError::BudgetClosed) };
                        self.read_permits.add_shared(p);
                        len + step
                    }
                    p = Arc::clone(reserve).acquire_many_owned(need(want)) => {
                        let Ok(p) = p else { return Err(ConnError::BudgetClosed) };
                        self.read_permits.add_reserve(p);
                        want
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(ConnError::SlowFrame(frame_time));
                    }
                    // Its seat was given to a newcomer meanwhile: waiting
                    // on, it would stay open past the connection limit.
                    () = self.seat.given_up() => return Err(ConnError::Displaced),
                }
            }
        };
        let mut grown = BytesMut::with_capacity(new_cap);
        grown.extend_from_slice(&self.read_buf);
        self.read_buf = grown;
        self.read_alloc = new_cap;
        Ok(())
    }

    /// Ends a response encoded into `self.out`. Responses are sent in
    /// request order; while another whole request frame is already in the
    /// read buffer (and less than [`OUT_BASELINE`] bytes are pending) the
    /// response waits in `self.out` and leaves with the next ones in one
    /// send. Otherwise everything pending is sent now.
    pub(crate) async fn write_out(&mut self) -> Result<(), ConnError> {
        if self.out.len() < OUT_BASELINE && self.frame_buffered() {
            return Ok(());
        }
        self.flush().await
    }

    /// Sends every pending response now, with the write timeout.
    pub(crate) async fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            return Ok(());
        }
        Stats::add(&self.broker.stats.response_sends, 1);
        let timeout = Duration::from_millis(self.broker.config.write_timeout_ms);
        let r = match tokio::time::timeout(timeout, self.stream.write_all(&self.out)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ConnError::WriteTimeout(timeout)),
        };
        self.out.clear();
        r
    }

    /// Whether any byte of a next request is already in the read buffer.
    pub(crate) fn request_started(&self) -> bool {
        !self.read_buf.is_empty()
    }

    /// Whether a whole request frame is already in the read buffer.
    fn frame_buffered(&self) -> bool {
        matches!(
            check_frame(
                &self.read_buf,
                self.broker.config.max_frame_bytes,
                self.front.min_frame()
            ),
            Ok(Some(_))
        )
    }

    /// Appends a response with `body` to `self.out` (after any responses
    /// still pending), leaving room for a tail of `tail_len` bytes that the
    /// caller sends after it. [`WireError::FrameLengthOverflow`] if the
    /// frame would not fit its u32 length prefix; `self.out` is then left
    /// as it was.
    pub(super) fn encode_response<T: serde::Serialize>(
        &mut self,
        correlation_id: u32,
        code: ErrorCode,
        body: &T,
        tail_len: usize,
    ) -> Result<(), WireError> {
        let start = self.out.len();
        self.out.resize(start + LEN_PREFIX + RESPONSE_HEADER_LEN, 0);
        let body_len = encode_body(body, &mut self.out);
        let header = u32::try_from(body_len)
            .map_err(|_| WireError::FrameLengthOverflow {
                len: body_len as u64,
            })
            .and_then(|body_len| {
                ResponseHeader {
                    correlation_id,
                    error_code: code,
                    body_len,
                }
                .encode(tail_len)
            });
        match header {
            Ok(header) => {
                self.out[start..start + header.len()].copy_from_slice(&header);
                Ok(())
            }
            Err(e) => {
                self.out.truncate(start);
                Err(e)
            }
        }
    }

    /// Counts a served request of API slot `slot` (requests, latency, the
    /// error it was answered with) and logs it if it was slow. No lock, no
    /// allocation unless it logs.
    fn account(&mut self, slot: usize, elapsed: Duration) {
        let Some(api) = self.broker.stats.apis.get(slot) else {
            return;
        };
        Stats::add(&api.requests, 1);
        api.latency.observe(elapsed);
        if let Some(code) = self.last_error.take() {
            api.error(code);
        }
        self.log_if_slow(elapsed, || {
            sluice_protocol::wire::ApiKey::ALL
                .get(slot)
                .map_or_else(|| "unknown".to_owned(), |k| format!("{k:?}"))
        });
    }

    /// Logs a request that took longer than `slow_request_ms` beyond the
    /// wait it was allowed (a long poll's, a join's), on either listener.
    /// `api` names it (called only when it logs).
    fn log_if_slow(&self, elapsed: Duration, api: impl FnOnce() -> String) {
        let slow = self.broker.config.slow_request_ms;
        if slow > 0 && elapsed > Duration::from_millis(slow) + self.wait_allowance {
            tracing::warn!(
                peer = %self.peer,
                api = api(),
                elapsed_ms = elapsed.as_millis() as u64,
                allowed_wait_ms = self.wait_allowance.as_millis() as u64,
                "slow request"
            );
        }
    }

    /// Writes a frame-level error response.
    pub(super) async fn write_error(
        &mut self,
        correlation_id: u32,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), ConnError> {
        self.last_error = Some(code);
        self.encode_response(
            correlation_id,
            code,
            &ErrorBody {
                message: message.to_owned(),
            },
            0,
        )?;
        self.write_out().await
    }
}

/// Cuts a response buffer that grew past [`OUT_BASELINE`] back to it, so a
/// connection does not keep the capacity of its largest response.
fn release_out(out: &mut Vec<u8>) {
    if out.capacity() > OUT_BASELINE {
        out.clear();
        out.shrink_to(OUT_BASELINE);
    }
}

/// The correlation id of a partly read request, or 0.
fn peek_correlation_id(buf: &[u8]) -> u32 {
    buf.get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// Resolves when the client has closed its end of `stream` (a read would
/// see its end) or the socket failed; never while nothing arrived, nor once
/// bytes arrived (they are the client's next request, left unread).
pub(crate) async fn peer_closed(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_buffer_is_cut_back_after_a_large_response() {
        let mut out = Vec::with_capacity(4096);
        out.resize(3000, 1);
        release_out(&mut out);
        assert_eq!(out.len(), 3000, "a small buffer is left alone");
        out.resize(10 << 20, 1);
        release_out(&mut out);
        assert!(out.is_empty());
        assert!(out.capacity() <= OUT_BASELINE, "{}", out.capacity());
    }

    #[test]
    fn correlation_id_of_a_partial_frame() {
        assert_eq!(
            peek_correlation_id(&[0, 0, 0, 20, 0, 1, 0, 0, 0, 0, 0, 9]),
            9
        );
        assert_eq!(peek_correlation_id(&[0, 0, 0, 20]), 0);
    }
}
