//! The consumer's fetch path: one session per partition leader.
//!
//! Each assigned partition is routed through the
//! [`MetadataCache`](crate::metadata::MetadataCache) to its leader's
//! address (or the bootstrap list, without a known leader). A session is one connection to
//! one destination with at most one Fetch on the wire, listing the
//! partitions that destination leads; sessions to different leaders long
//! poll at the same time, and [`Consumer::poll_fetch`] takes whichever
//! answers first. A partition is on the wire in one session at most, and
//! its position moves only forward with the records returned, so records
//! come back in offset order per partition, once.
//!
//! A partition refused because its leader moved (`NotLeaderForPartition`,
//! `LeaderNotAvailable`, or `UnknownTopicOrPartition` from a broker
//! Metadata named as its leader, which may not have opened it yet) asks
//! for a Metadata refresh and is fetched again after the quick backoff
//! (10 ms doubling up to 100 ms), at its position, from the leader the
//! refreshed cache names. A broken session does the same for all its
//! partitions; a leader that does not accept a connection rests the quick
//! backoff while Metadata is asked again. A partition refused with another
//! retriable error (`StorageError` for a damaged segment, say) is fetched
//! again after 100 ms, doubling up to 1 s, while the other partitions go
//! on; the error is returned by a poll that got no records (while others
//! return records, it waits silently, as in Kafka's consumer).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest, FetchResponse};
use sluice_protocol::wire::{ApiKey, ErrorCode, WireError};

use super::{CONNECT_TIMEOUT, Consumer, ConsumerRecord, OffsetReset, is_connection_error};
use crate::connection::Connection;
use crate::error::ClientError;
use crate::pool::{self, Dest, Rests};

/// Time allowed beyond `max_wait` for a fetch response before its
/// connection counts as lost.
const RESPONSE_GRACE: Duration = Duration::from_secs(10);

/// Whether a partition's refusal by `dest` means "ask Metadata who leads
/// it": the leader moved, or a broker named as the leader does not know
/// the partition (yet).
pub(super) fn leader_moved(code: ErrorCode, dest: &Dest) -> bool {
    match code {
        ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable => true,
        ErrorCode::UnknownTopicOrPartition => dest.is_some(),
        _ => false,
    }
}

/// How long a partition refused for now (`StorageError`, say) waits before
/// it is fetched again after its `attempts`-th refusal in a row: 100 ms,
/// doubling up to 1 s (Kafka's `retry.backoff.ms` and
/// `retry.backoff.max.ms`).
pub(super) fn refused_backoff(attempts: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempts.saturating_sub(1).min(4))
        .min(Duration::from_secs(1))
}

/// The consumer's fetch sessions, by destination.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    by_dest: HashMap<Dest, Session>,
    /// Destinations that did not accept a connection.
    pub(super) rests: Rests,
    /// Per destination, where its next turn of partitions starts (when it
    /// leads more than `max_partitions_per_fetch`).
    turns: HashMap<Dest, usize>,
    /// The timer of [`wait_any`], kept from one wait to the next: moved to a
    /// later deadline it only updates the registered timer, so a poll
    /// registers no timer (nor wakes the runtime's timer thread) each time.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the answers taken last left some partition behind its high
    /// watermark (more records are there to fetch at once).
    behind: bool,
    /// When a fetch answer last came from any broker (`None`: none yet).
    last_answer: Option<Instant>,
    /// A partition's retriable refusal (a damaged segment's
    /// `StorageError`, say) taken from the answers of this receive: the
    /// partition backs off while the others go on, and the error is
    /// returned only when no records came.
    refused: Option<(ErrorCode, String)>,
}

impl Sessions {
    /// When a fetch answer last came from any broker, if one has.
    pub(super) fn last_answer(&self) -> Option<Instant> {
        self.last_answer
    }
}

#[derive(Debug)]
struct Session {
    conn: Connection,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Nothing on the wire.
    Idle,
    /// A request is being written: a poll dropped here left a partial
    /// frame, so the session is not used again.
    Writing,
    /// A fetch is on the wire for these partitions; `stale` if a seek or
    /// an assignment change made its answer useless. `stream`: a
    /// FetchStream, which stays on the wire after each frame but its last
    /// (`sent` is then when the last frame came).
    InFlight {
        parts: Vec<(Arc<str>, u32)>,
        sent: Instant,
        stale: bool,
        stream: bool,
    },
}

impl Sessions {
    /// Marks every fetch on the wire stale: its answer will be dropped. A
    /// stream's connection is closed instead (the broker would go on
    /// sending from the old positions), and the next poll opens another.
    pub(super) fn invalidate(&mut self) {
        self.by_dest
            .retain(|_, s| !matches!(s.state, State::InFlight { stream: true, .. }));
        for s in self.by_dest.values_mut() {
            if let State::InFlight { stale, .. } = &mut s.state {
                *stale = true;
            }
        }
    }

    /// Partitions on the wire in a fetch whose answer will be used.
    fn busy(&self) -> HashSet<(&str, u32)> {
        let mut busy = HashSet::new();
        for s in self.by_dest.values() {
            if let State::InFlight {
                parts,
                stale: false,
                ..
            } = &s.state
            {
                busy.extend(parts.iter().map(|(t, p)| (&**t, *p)));
            }
        }
        busy
    }

    fn any_in_flight(&self) -> bool {
        self.by_dest
            .values()
            .any(|s| matches!(s.state, State::InFlight { .. }))
    }

    /// Sessions on the wire since before `patience` ago.
    fn overdue(&self, now: Instant, patience: Duration) -> Vec<Dest> {
        self.by_dest
            .iter()
            .filter(|(_, s)| {
                matches!(s.state, State::InFlight { sent, .. } if now.saturating_duration_since(sent) >= patience)
            })
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// The number of sessions (connections) open.
    pub(super) fn len(&self) -> usize {
        self.by_dest.len()
    }
}

/// A fetch's answer, or a stream's frame, with whether it was the last.
type Received = Result<(FetchResponse, bool, Bytes), ClientError>;
type Receiving<'a> = Pin<Box<dyn Future<Output = Received> + Send + 'a>>;

/// What [`wait_any`] took from one session (now idle).
struct Answered {
    parts: Vec<(Arc<str>, u32)>,
    stale: bool,
    stream: bool,
    received: Received,
}

/// The next answer on a session: a Fetch response, or a stream's frame
/// (read as the Fetch response it is laid out like).
async fn recv_answer(conn: &mut Connection, stream: bool) -> Received {
    if !stream {
        let (resp, tail) = conn.recv::<FetchResponse>().await?;
        return Ok((resp, true, tail));
    }
    let (frame, tail) = conn.recv_stream_frame().await?;
    let resp = FetchResponse {
        partitions: frame.partitions,
    };
    Ok((resp, frame.last, tail))
}

/// Waits until at least one session's fetch is answered, or `until`;
/// returns every answer ready then, each session set idle.
async fn wait_any(
    sessions: &mut HashMap<Dest, Session>,
    timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    until: Instant,
) -> Vec<(Dest, Answered)> {
    let ready = {
        let mut waiting: Vec<(Dest, Receiving<'_>)> = sessions
            .iter_mut()
            .filter(|(_, s)| matches!(s.state, State::InFlight { .. }))
            .map(|(d, s)| {
                let stream = matches!(s.state, State::InFlight { stream: true, .. });
                let recv: Receiving<'_> = Box::pin(recv_answer(&mut s.conn, stream));
                (d.clone(), recv)
            })
            .collect();
        let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until.into())));
        sleep.as_mut().reset(until.into());
        // Each receive is cancel-safe: dropping the ones not ready keeps
        // their bytes read so far in the connection's buffer.
        std::future::poll_fn(|cx| {
            let mut ready = Vec::new();
            for (d, f) in &mut waiting {
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    ready.push((d.clone(), r));
                }
            }
            if !ready.is_empty() || sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(ready);
            }
            Poll::Pending
        })
        .await
    };
    let mut out = Vec::with_capacity(ready.len());
    for (dest, received) in ready {
        if let Some(s) = sessions.get_mut(&dest)
            && let State::InFlight {
                parts,
                stale,
                stream,
                ..
            } = std::mem::replace(&mut s.state, State::Idle)
        {
            let answered = Answered {
                parts,
                stale,
                stream,
                received,
            };
            out.push((dest, answered));
        }
    }
    out
}

impl Consumer {
    /// [`poll`](Self::poll) without the auto-commit. Cancel-safe: dropping
    /// the future leaves the fetches in flight and the next call takes
    /// their answers, and records it took (it may send the next fetches
    /// before returning them) are returned by the next call.
    pub(crate) async fn poll_fetch(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        let never = std::future::pending::<()>();
        Ok(self.poll_fetch_until(never).await?.unwrap_or_default())
    }

    /// [`Consumer::poll_fetch`] that gives up when `interrupt` completes
    /// first (`None`) while it refreshes metadata, sends fetches or waits
    /// for their answers, fetches left in flight for the next call; never
    /// once it took records, which are returned (by the next call if this
    /// one is dropped).
    pub(crate) async fn poll_fetch_until(
        &mut self,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Result<Option<Vec<ConsumerRecord>>, ClientError> {
        let mut interrupt = std::pin::pin!(interrupt);
        // Records a dropped call took go first.
        if !self.unreturned.is_empty() {
            return Ok(Some(std::mem::take(&mut self.unreturned)));
        }
        if self.assigned.is_empty() {
            // Nothing to wait for: no broker is silent.
            self.fetch.last_answer = Some(Instant::now());
            return Ok(Some(Vec::new()));
        }
        // A call dropped while writing a request left a partial frame.
        self.fetch
            .by_dest
            .retain(|_, s| !matches!(s.state, State::Writing));
        let deadline = Instant::now() + self.config.max_wait;
        // Broken connections through the bootstrap list (and responses
        // that do not decode) taken in this call before one is returned.
        let mut second_chances = 1u32;
        loop {
            // Nothing is taken before the answers come: a refresh or a send
            // (a connect to a new leader may take seconds) is interrupted
            // too. A send cut short leaves its session `Writing`, dropped
            // at the next call.
            if self.metadata.refresh_due(Instant::now()) {
                let refreshed = tokio::select! {
                    biased;
                    r = self.metadata.refresh() => r,
                    () = interrupt.as_mut() => return Ok(None),
                };
                if let Err(e) = refreshed
                    && !self.fetch.any_in_flight()
                {
                    return Err(e);
                }
            }
            // Partitions whose start is still to be looked up: one try
            // each (bounded), then the fetches of the others.
            tokio::select! {
                biased;
                r = self.resolve_pending() => r?,
                () = interrupt.as_mut() => return Ok(None),
            }
            tokio::select! {
                biased;
                r = self.send_fetches() => r?,
                () = interrupt.as_mut() => return Ok(None),
            }
            let Some(records) = self
                .receive(deadline, &mut second_chances, interrupt.as_mut())
                .await?
            else {
                return Ok(None);
            };
            if !records.is_empty() {
                // Behind the log end: keep the pipe full while the
                // application works (a failure shows on the next call). At
                // the end, the next fetch would only wait at the broker:
                // the records go back first and the next call sends it.
                // Kept aside meanwhile: a call dropped in the send leaves
                // them for the next one.
                if self.fetch.behind {
                    self.unreturned = records;
                    let _ = self.send_fetches().await;
                    return Ok(Some(std::mem::take(&mut self.unreturned)));
                }
                return Ok(Some(records));
            }
            if Instant::now() >= deadline {
                return Ok(Some(Vec::new()));
            }
        }
    }

    /// The partitions to fetch now, by destination: those not on the wire,
    /// not backing off, whose destination has a route, does not rest and
    /// has nothing on the wire.
    fn plan(&mut self, now: Instant) -> Vec<(Dest, Vec<usize>, bool)> {
        let mut by_dest: HashMap<Dest, Vec<usize>> = HashMap::new();
        // Streams that leave out a partition now wanting their leader.
        let mut restart: HashSet<Dest> = HashSet::new();
        {
            let busy = self.fetch.busy();
            for (i, a) in self.assigned.iter().enumerate() {
                if busy.contains(&(&*a.topic, a.partition))
                    || a.pending.is_some()
                    || a.retry.is_some_and(|(_, until)| until > now)
                {
                    continue;
                }
                let Some(dest) = pool::dest_of(self.metadata.route(&a.topic, a.partition)) else {
                    continue;
                };
                let session = self.fetch.by_dest.get(&dest).map(|s| &s.state);
                if matches!(session, Some(State::InFlight { stream: true, .. })) {
                    restart.insert(dest);
                    continue;
                }
                if self.fetch.rests.resting(&dest, now)
                    || session.is_some_and(|s| !matches!(s, State::Idle))
                {
                    continue;
                }
                by_dest.entry(dest).or_default().push(i);
            }
        }
        if !restart.is_empty() {
            // Closed: the next plan lists every partition of that leader.
            self.fetch.by_dest.retain(|d, _| !restart.contains(d));
            return self.plan(now);
        }
        let max = self.config.max_partitions_per_fetch.max(1);
        by_dest
            .into_iter()
            .map(|(dest, all)| {
                let n = all.len();
                let take = n.min(max);
                let turn = self.fetch.turns.entry(dest.clone()).or_default();
                let start = *turn % n;
                *turn = (start + take) % n;
                let idxs = (0..take).filter_map(|k| all.get((start + k) % n).copied());
                (dest, idxs.collect(), take == n)
            })
            .collect()
    }

    /// Sends a fetch to every destination [`plan`](Self::plan) names,
    /// connecting first where needed. A leader that does not accept the
    /// connection rests; the bootstrap list not answering is an error.
    async fn send_fetches(&mut self) -> Result<(), ClientError> {
        let plan = self.plan(Instant::now());
        for (dest, idxs, whole) in plan {
            if !self.fetch.by_dest.contains_key(&dest) {
                match pool::connect(&self.brokers, &dest, CONNECT_TIMEOUT).await {
                    Ok(conn) => {
                        self.fetch.rests.connected(&dest);
                        self.fetch.by_dest.insert(
                            dest.clone(),
                            Session {
                                conn,
                                state: State::Idle,
                            },
                        );
                    }
                    Err(e) => {
                        self.metadata.invalidate();
                        let leader = dest.is_some();
                        self.fetch
                            .rests
                            .failed(dest, Instant::now(), pool::quick_backoff);
                        if leader {
                            continue;
                        }
                        return Err(e);
                    }
                }
            }
            let req = FetchRequest {
                max_wait_ms: self.config.max_wait.as_millis().min(u128::from(u32::MAX)) as u32,
                min_bytes: 1,
                max_bytes: self.config.fetch_max_bytes,
                partitions: idxs
                    .iter()
                    .filter_map(|&i| self.assigned.get(i))
                    .map(|a| FetchPartition {
                        topic: a.topic.to_string(),
                        partition: a.partition,
                        offset: a.position,
                        max_bytes: self.config.partition_max_bytes,
                    })
                    .collect(),
            };
            let parts: Vec<(Arc<str>, u32)> = idxs
                .iter()
                .filter_map(|&i| self.assigned.get(i))
                .map(|a| (Arc::clone(&a.topic), a.partition))
                .collect();
            let Some(session) = self.fetch.by_dest.get_mut(&dest) else {
                continue;
            };
            // A stream only where it covers every partition of the leader
            // (no turns) and the broker speaks it (asked once per
            // connection; a failed ask shows again on the send).
            let stream = self.config.fetch_stream
                && whole
                && session
                    .conn
                    .negotiated_version(ApiKey::FetchStream)
                    .await
                    .is_ok();
            let api = match stream {
                true => ApiKey::FetchStream,
                false => ApiKey::Fetch,
            };
            session.state = State::Writing;
            match session.conn.send(api, &req, &[]).await {
                Ok(_) => {
                    session.state = State::InFlight {
                        parts,
                        sent: Instant::now(),
                        stale: false,
                        stream,
                    };
                }
                Err(_) => self.lost(&dest),
            }
        }
        Ok(())
    }

    /// A session's connection broke: it is dropped and its partitions go
    /// to whichever leader the next Metadata refresh names.
    fn lost(&mut self, dest: &Dest) {
        self.fetch.by_dest.remove(dest);
        if dest.is_none() {
            self.brokers.failed();
        }
        self.metadata.invalidate();
    }

    /// When something waits to be sent: a partition's backoff ends, a
    /// resting destination may be tried again, a Metadata refresh held
    /// back by its spacing is due.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake = self.fetch.rests.next_end(now);
        for a in &self.assigned {
            if let Some((_, until)) = a.retry
                && until > now
            {
                wake = Some(wake.map_or(until, |w| w.min(until)));
            }
        }
        if self.metadata.is_stale() {
            let soon = now + crate::metadata::QUICK_REFRESH_MIN;
            wake = Some(wake.map_or(soon, |w| w.min(soon)));
        }
        wake
    }

    /// Waits for fetch answers until `deadline` (or earlier, when
    /// something waits to be sent) and takes their records; `None` when
    /// `interrupt` completed first (nothing taken).
    async fn receive(
        &mut self,
        deadline: Instant,
        second_chances: &mut u32,
        interrupt: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<Option<Vec<ConsumerRecord>>, ClientError> {
        let now = Instant::now();
        let patience = self.config.max_wait + RESPONSE_GRACE;
        let until = self
            .next_wake(now)
            .map_or(deadline, |w| w.min(deadline))
            .min(now + patience);
        let ready = tokio::select! {
            biased;
            ready = wait_any(&mut self.fetch.by_dest, &mut self.fetch.timer, until) => ready,
            () = interrupt => return Ok(None),
        };
        self.fetch.behind = false;
        self.fetch.refused = None;
        for dest in self.fetch.overdue(Instant::now(), patience) {
            self.lost(&dest);
        }
        // What this call takes is given back whole or not at all: an error
        // from one leader's answer after another's records were taken puts
        // every position back, so those records are fetched again rather
        // than skipped with the answer that is not returned.
        let before: Vec<u64> = self.assigned.iter().map(|a| a.position).collect();
        // Streams whose frames were taken: given back, they would go on
        // past the positions put back, so they are dropped and fetched
        // again from those.
        let mut streams_taken = Vec::new();
        let mut out = Vec::new();
        for (dest, answered) in ready {
            let Answered {
                parts,
                stale,
                stream,
                received,
            } = answered;
            if !matches!(received, Err(ref e) if is_connection_error(e)) {
                self.fetch.last_answer = Some(Instant::now());
            }
            let (resp, last, tail) = match received {
                Ok(r) => r,
                Err(ClientError::Broker { code, message }) => {
                    // The whole request was refused.
                    if leader_moved(code, &dest) {
                        self.back_off(&parts);
                        continue;
                    }
                    self.untake(&before, &streams_taken);
                    return Err(ClientError::Broker { code, message });
                }
                Err(e) => {
                    self.lost(&dest);
                    if dest.is_none() || !is_connection_error(&e) {
                        if *second_chances == 0 {
                            self.untake(&before, &streams_taken);
                            return Err(e);
                        }
                        *second_chances -= 1;
                    }
                    continue;
                }
            };
            if stale {
                continue;
            }
            if stream && !last {
                // The stream goes on: its next frame is awaited as before.
                if let Some(s) = self.fetch.by_dest.get_mut(&dest) {
                    s.state = State::InFlight {
                        parts: parts.clone(),
                        sent: Instant::now(),
                        stale: false,
                        stream: true,
                    };
                }
            }
            let taken = resp
                .check_tail(tail.len())
                .map_err(ClientError::from)
                .and_then(|()| self.take_records(&resp, &tail, &dest, &mut out));
            if stream && taken.is_ok() {
                streams_taken.push(dest.clone());
            }
            if let Err(e) = taken {
                if !matches!(e, ClientError::Wire(_)) {
                    self.untake(&before, &streams_taken);
                    return Err(e);
                }
                self.lost(&dest);
                if *second_chances == 0 {
                    self.untake(&before, &streams_taken);
                    return Err(e);
                }
                *second_chances -= 1;
            }
        }
        let refused = self.fetch.refused.take();
        if let Some((code, message)) = refused
            && out.is_empty()
        {
            return Err(ClientError::Broker { code, message });
        }
        Ok(Some(out))
    }

    /// Puts every position back to `before` (taken at the start of
    /// [`Consumer::receive`], with the same assignment), and drops the
    /// streams whose frames were taken since.
    fn untake(&mut self, before: &[u64], streams: &[Dest]) {
        for (a, position) in self.assigned.iter_mut().zip(before) {
            a.position = *position;
        }
        for d in streams {
            self.fetch.by_dest.remove(d);
        }
    }

    /// These partitions' leader moved: ask Metadata, and fetch them again
    /// after the quick backoff.
    fn back_off(&mut self, parts: &[(Arc<str>, u32)]) {
        let now = Instant::now();
        for a in &mut self.assigned {
            if parts
                .iter()
                .any(|(t, p)| *t == a.topic && *p == a.partition)
            {
                let n = a.retry.map_or(0, |r| r.0) + 1;
                a.retry = Some((n, now + pool::quick_backoff(n)));
            }
        }
        self.metadata.invalidate();
    }

    /// Decodes a fetch response from `dest` into `out`. Positions move
    /// (and `out` grows) only if every partition decoded: on an error
    /// nothing is returned and nothing is skipped.
    fn take_records(
        &mut self,
        resp: &FetchResponse,
        tail: &Bytes,
        dest: &Dest,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), ClientError> {
        let before: Vec<(u64, Option<(u32, Instant)>)> = self
            .assigned
            .iter()
            .map(|a| (a.position, a.retry))
            .collect();
        let len = out.len();
        let refused = self.fetch.refused.clone();
        let result = self.take_records_inner(resp, tail, dest, out);
        if result.is_err() {
            out.truncate(len);
            self.fetch.refused = refused;
            for (a, (position, retry)) in self.assigned.iter_mut().zip(before) {
                a.position = position;
                a.retry = retry;
            }
        }
        result
    }

    fn take_records_inner(
        &mut self,
        resp: &FetchResponse,
        tail: &Bytes,
        dest: &Dest,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), ClientError> {
        let mut at = 0usize;
        let mut moved = Vec::new();
        for p in &resp.partitions {
            let len = p.records_len as usize;
            let mut bytes = tail.slice(at..at + len);
            at += len;
            let Some(a) = self
                .assigned
                .iter_mut()
                .find(|a| *a.topic == *p.topic && a.partition == p.partition)
            else {
                continue;
            };
            match p.error_code {
                ErrorCode::None => a.retry = None,
                ErrorCode::OffsetOutOfRange => {
                    // Retention moved past us, or we are ahead: reset.
                    a.position = match self.config.offset_reset {
                        OffsetReset::Earliest => p.log_start_offset,
                        OffsetReset::Latest => p.high_watermark,
                    }
                    .max(p.log_start_offset.min(a.position));
                    if a.position < p.log_start_offset || a.position > p.high_watermark {
                        a.position = p.log_start_offset;
                    }
                    continue;
                }
                code if leader_moved(code, dest) => {
                    moved.push((Arc::clone(&a.topic), a.partition));
                    continue;
                }
                // One partition the broker cannot serve now holds up no
                // other: it backs off, and the error is told if nothing
                // else came.
                code if code.is_retriable() => {
                    // Its leader is where it was: no Metadata refresh, and
                    // a slower backoff than a moved leader's.
                    let n = a.retry.map_or(0, |r| r.0) + 1;
                    a.retry = Some((n, Instant::now() + refused_backoff(n)));
                    self.fetch.refused = Some((code, format!("fetch {}-{}", p.topic, p.partition)));
                    continue;
                }
                code => {
                    return Err(ClientError::Broker {
                        code,
                        message: format!("fetch {}-{}", p.topic, p.partition),
                    });
                }
            }
            while !bytes.is_empty() {
                let batch = if self.config.verify_crc {
                    RecordBatch::split_first(&mut bytes)
                } else {
                    RecordBatch::split_first_unverified(&mut bytes)
                }
                .map_err(|e| {
                    ClientError::Wire(WireError::Body(format!(
                        "record batch from {}-{}: {e}",
                        p.topic, p.partition
                    )))
                })?;
                // A broker serves only records below the high watermark it
                // answers with. A batch past it has a damaged offset (the
                // base offset lies outside the batch's CRC): taking it
                // would move the position past the log's end, and the
                // reset that follows would read the partition again.
                let end = batch.header().next_offset();
                if end < 0 || end as u64 > p.high_watermark {
                    return Err(ClientError::Wire(WireError::Body(format!(
                        "record batch from {}-{} holds offsets {}..{end}, past the partition's high watermark {}: the broker's copy is damaged",
                        p.topic,
                        p.partition,
                        batch.header().base_offset,
                        p.high_watermark
                    ))));
                }
                for r in batch.records() {
                    let record =
                        r.map_err(|e| ClientError::Wire(WireError::Body(e.to_string())))?;
                    if (record.offset as u64) < a.position {
                        continue;
                    }
                    out.push(ConsumerRecord {
                        topic: Arc::clone(&a.topic),
                        partition: a.partition,
                        record,
                    });
                }
                a.position = a.position.max(batch.header().next_offset() as u64);
            }
            if a.position < p.high_watermark {
                self.fetch.behind = true;
            }
        }
        if !moved.is_empty() {
            self.back_off(&moved);
        }
        Ok(())
    }

    /// Fetch connections open now (one per leader fetched from).
    pub fn fetch_connections(&self) -> usize {
        self.fetch.len()
    }

    /// Fetch requests on the wire now (at most one per fetch connection).
    pub fn fetches_in_flight(&self) -> usize {
        self.fetch
            .by_dest
            .values()
            .filter(|s| matches!(s.state, State::InFlight { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{Assigned, ConsumerConfig};
    use sluice_protocol::batch::{BatchBuilder, NewRecord};

    /// Records `from..from + n` of `topic`-0, as a fetch would take them.
    fn records(topic: &str, from: i64, n: usize) -> Vec<ConsumerRecord> {
        let mut b = BatchBuilder::new().base_offset(from);
        for i in 0..n {
            let v = format!("v{i}");
            b.push(&NewRecord {
                timestamp: 0,
                key: None,
                value: Some(v.as_bytes()),
                headers: &[],
            });
        }
        let mut bytes = b.finish().freeze();
        let batch = RecordBatch::split_first(&mut bytes).unwrap();
        batch
            .records()
            .map(|r| ConsumerRecord {
                topic: Arc::from(topic),
                partition: 0,
                record: r.unwrap(),
            })
            .collect()
    }

    /// What a poll dropped after taking records leaves (they wait in the
    /// consumer, the fetch position past them) is returned by the next
    /// poll, before any fetch, and until then positions and commits count
    /// only records returned; a rebalance that keeps their partition keeps
    /// them, and a partition given up drops its records.
    #[tokio::test]
    async fn records_a_dropped_poll_took_are_returned_by_the_next() {
        // A broker that never answers: nothing here may need one.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let mut c = Consumer::connect(ConsumerConfig::new(addr)).await.unwrap();
        for topic in ["a", "b"] {
            c.assigned.push(Assigned {
                topic: Arc::from(topic),
                partition: 0,
                position: 8,
                pending: None,
                retry: None,
            });
        }
        c.put_back(records("a", 5, 3));
        assert_eq!(c.position("a", 0), Some(5));
        assert_eq!(c.position("b", 0), Some(8));
        let at: Vec<_> = c.positions().map(|(t, _, o)| (t.to_owned(), o)).collect();
        assert_eq!(at, [("a".to_owned(), 5), ("b".to_owned(), 8)]);

        // A rebalance that keeps the partition keeps its records.
        c.add_partitions(vec![("a".to_owned(), 0)]).await.unwrap();
        assert_eq!(c.position("a", 0), Some(5));

        let got = tokio::time::timeout(Duration::from_secs(5), c.poll_fetch())
            .await
            .expect("returned without a fetch")
            .unwrap();
        let offsets: Vec<_> = got.iter().map(|r| (&*r.topic, r.offset())).collect();
        assert_eq!(offsets, [("a", 5), ("a", 6), ("a", 7)]);
        assert_eq!(c.position("a", 0), Some(8));

        // Put back in order, and dropped with their partition.
        c.put_back(records("b", 8, 2));
        c.put_back(records("a", 8, 1));
        let order: Vec<_> = c
            .unreturned
            .iter()
            .map(|r| (&*r.topic, r.offset()))
            .collect();
        assert_eq!(order, [("a", 8), ("b", 8), ("b", 9)]);
        c.remove_partitions(|t, _| t == "b");
        assert_eq!(c.take_unreturned().len(), 1);
        assert!(c.unreturned.is_empty());
    }

    /// A batch past the high watermark its response gives (an offset
    /// damaged on the broker's disk, outside the batch's CRC) is an error:
    /// nothing is taken and the position stays, instead of jumping past
    /// the log's end; the same batch at its right offsets is taken.
    #[tokio::test]
    async fn a_batch_past_the_high_watermark_is_refused() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let mut c = Consumer::connect(ConsumerConfig::new(addr)).await.unwrap();
        c.assigned.push(Assigned {
            topic: Arc::from("a"),
            partition: 0,
            position: 3000,
            pending: None,
            retry: None,
        });
        let fetched = |base: i64| {
            let mut b = BatchBuilder::new().base_offset(base);
            for v in [b"x", b"y"] {
                b.push(&NewRecord {
                    timestamp: 0,
                    key: None,
                    value: Some(v),
                    headers: &[],
                });
            }
            let tail = b.finish().freeze();
            let resp = FetchResponse {
                partitions: vec![sluice_protocol::wire::fetch::FetchPartitionResponse {
                    topic: "a".into(),
                    partition: 0,
                    error_code: ErrorCode::None,
                    high_watermark: 3002,
                    log_start_offset: 0,
                    records_len: tail.len() as u32,
                }],
            };
            (resp, tail)
        };
        let mut out = Vec::new();
        let (resp, tail) = fetched(999_999);
        let e = c.take_records(&resp, &tail, &None, &mut out).unwrap_err();
        assert!(
            e.to_string()
                .contains("offsets 999999..1000001, past the partition's high watermark 3002"),
            "{e}"
        );
        assert!(out.is_empty());
        assert_eq!(c.position("a", 0), Some(3000));
        let (resp, tail) = fetched(3000);
        c.take_records(&resp, &tail, &None, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(c.position("a", 0), Some(3002));
    }

    /// A partition the broker cannot serve now (a damaged segment's
    /// `StorageError`) backs off and holds up no other partition of the
    /// answer: their records are taken, and the error kept for a poll that
    /// gets none.
    #[tokio::test]
    async fn a_partition_refused_for_now_holds_up_no_other() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let mut c = Consumer::connect(ConsumerConfig::new(addr)).await.unwrap();
        for partition in [0, 1] {
            c.assigned.push(Assigned {
                topic: Arc::from("a"),
                partition,
                position: 0,
                pending: None,
                retry: None,
            });
        }
        let mut b = BatchBuilder::new().base_offset(0);
        b.push(&NewRecord {
            timestamp: 0,
            key: None,
            value: Some(b"v"),
            headers: &[],
        });
        let tail = b.finish().freeze();
        let part = |partition, error_code, records_len| {
            sluice_protocol::wire::fetch::FetchPartitionResponse {
                topic: "a".into(),
                partition,
                error_code,
                high_watermark: 1,
                log_start_offset: 0,
                records_len,
            }
        };
        let resp = FetchResponse {
            partitions: vec![
                part(0, ErrorCode::StorageError, 0),
                part(1, ErrorCode::None, tail.len() as u32),
            ],
        };
        let mut out = Vec::new();
        c.take_records(&resp, &tail, &None, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((c.position("a", 0), c.position("a", 1)), (Some(0), Some(1)));
        assert!(
            c.assigned[0]
                .retry
                .is_some_and(|(n, until)| n == 1 && until > Instant::now()),
            "backing off"
        );
        assert!(c.assigned[1].retry.is_none());
        assert!(matches!(
            c.fetch.refused,
            Some((ErrorCode::StorageError, _))
        ));
        // A refusal that is not for now is the poll's error, as before,
        // and takes back what its answer did, the refusal it held too.
        c.fetch.refused = None;
        let resp = FetchResponse {
            partitions: vec![
                part(0, ErrorCode::StorageError, 0),
                part(1, ErrorCode::CorruptRecord, 0),
            ],
        };
        assert!(
            c.take_records(&resp, &Bytes::new(), &None, &mut out)
                .is_err()
        );
        assert!(c.fetch.refused.is_none());
        let backoffs: Vec<u128> = (1..=6).map(|n| refused_backoff(n).as_millis()).collect();
        assert_eq!(backoffs, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn unknown_partitions_are_retried_only_at_a_leader_metadata_named() {
        let leader: Dest = Some(Arc::from("127.0.0.1:1"));
        for code in [
            ErrorCode::NotLeaderForPartition,
            ErrorCode::LeaderNotAvailable,
        ] {
            assert!(leader_moved(code, &leader));
            assert!(leader_moved(code, &None));
        }
        assert!(leader_moved(ErrorCode::UnknownTopicOrPartition, &leader));
        // Through the bootstrap list: the topic is unknown to the cluster.
        assert!(!leader_moved(ErrorCode::UnknownTopicOrPartition, &None));
        assert!(!leader_moved(ErrorCode::OffsetOutOfRange, &leader));
        assert!(!leader_moved(ErrorCode::CorruptRecord, &leader));
    }
}
