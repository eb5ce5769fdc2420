//! The producer's background tasks. The dispatcher ([`run`]) takes ready
//! batches, groups them by the broker that leads each partition (from the
//! [`MetadataCache`](crate::metadata::MetadataCache)) and hands one Produce
//! request at a time to that broker's link. A link is one connection,
//! opened on first use and kept: it writes requests with up to
//! `max_in_flight` on the wire, settles each record when its response
//! arrives, and retries or fails what a broken connection or a retriable
//! error left unsettled. Several brokers have requests in flight at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_protocol::batch::Compression;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::{
    Acks, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceResponse,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::accumulator::ReadyBatch;
use super::idempotence::OnRefusal;
use super::{RecordMetadata, Shared};
use crate::connection::{Connection, ResponseReader};
use crate::error::ClientError;
use crate::metadata::Route;
use crate::pool::Dest;

/// Largest produce request the sender builds (it always sends at least one
/// batch, whatever its size).
const MAX_REQUEST_BYTES: usize = 8 << 20;

/// Time allowed beyond the request timeout for a produce response.
const RESPONSE_GRACE: Duration = Duration::from_secs(10);

/// Time allowed to connect (and to get a producer id) before retrying.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight per connection with idempotence (the broker
/// remembers the last 5 batches per producer and partition).
const MAX_IDEMPOTENT_IN_FLIGHT: usize = 5;

type InFlight = (Vec<ReadyBatch>, OwnedSemaphorePermit);

/// Whether a partition's error means "ask Metadata who leads it".
fn leader_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable
    )
}

/// Marks `n` records settled, waking `flush` when none is left.
fn settle(shared: &Shared, n: u64) {
    if n > 0 && shared.pending.fetch_sub(n, Ordering::AcqRel) == n {
        shared.drained.notify_waiters();
    }
}

fn backoff(shared: &Shared, attempts: u32) -> Duration {
    let base = shared.config.retry_backoff;
    base.saturating_mul(1 << attempts.min(6))
        .min(Duration::from_secs(5))
}

/// Wait before resending a batch a broker refused because the leader moved
/// (or before reconnecting to a leader that did not answer): the shared
/// quick backoff, never more than the ordinary one.
fn leader_backoff(shared: &Shared, attempts: u32) -> Duration {
    crate::pool::quick_backoff(attempts).min(backoff(shared, attempts))
}

/// Applies the producer's codec to the batches not yet compressed, on the
/// blocking pool; a batch the codec refuses (a bad level) fails its records
/// with `InvalidRequest`. Returns the batches to send.
async fn compress_all(shared: &Arc<Shared>, batches: Vec<ReadyBatch>) -> Vec<ReadyBatch> {
    let codec = Codec {
        compression: shared.config.compression,
        level: shared.config.compression_level,
    };
    if codec.compression == Compression::None || batches.iter().all(|b| b.compressed) {
        return batches;
    }
    let done = tokio::task::spawn_blocking(move || {
        let mut ok = Vec::with_capacity(batches.len());
        let mut failed = Vec::new();
        for mut b in batches {
            if b.compressed {
                ok.push(b);
                continue;
            }
            match compress_batch(&b.bytes, codec) {
                Ok(bytes) => {
                    b.bytes = bytes;
                    b.compressed = true;
                    ok.push(b);
                }
                Err(e) => failed.push((b, e.to_string())),
            }
        }
        (ok, failed)
    })
    .await;
    match done {
        Ok((ok, failed)) => {
            for (b, message) in failed {
                fail(shared, b, Some(ErrorCode::InvalidRequest), &message);
            }
            ok
        }
        // Only if the runtime is shutting down: the waiters are dropped, so
        // the records' futures resolve to `Closed`.
        Err(_) => Vec::new(),
    }
}

/// Fails a batch's records with `error`.
fn fail(shared: &Shared, batch: ReadyBatch, code: Option<ErrorCode>, message: &str) {
    shared
        .idempotence
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failed(&batch);
    let n = batch.waiters.len() as u64;
    for w in batch.waiters {
        let err = match code {
            Some(code) => ClientError::Broker {
                code,
                message: message.to_owned(),
            },
            None => ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                message.to_owned(),
            )),
        };
        let _ = w.send(Err(err));
    }
    settle(shared, n);
}

/// What a failed batch's error says of a lost connection's error `e`: a
/// failure without a broker's code is told as a lost connection already
/// ([`fail`]), so an I/O error's own words, not its "connection to the
/// broker failed" once more.
fn cause(e: &ClientError) -> String {
    match e {
        ClientError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The batches of a request not failed while it was in flight.
fn pending(batches: Vec<Option<ReadyBatch>>) -> Vec<ReadyBatch> {
    batches.into_iter().flatten().collect()
}

/// Puts batches back for another attempt, or fails those out of retries or
/// past their delivery timeout.
fn retry_or_fail(
    shared: &Shared,
    batches: Vec<ReadyBatch>,
    code: Option<ErrorCode>,
    message: &str,
) {
    let now = Instant::now();
    let mut again = Vec::new();
    for mut b in batches {
        b.attempts += 1;
        let expired = now.saturating_duration_since(b.created) >= shared.config.delivery_timeout;
        if b.attempts > shared.config.retries || expired {
            fail(shared, b, code, message);
        } else {
            // A broker error backs off per batch; after a lost connection
            // the batch goes on the next one at once (reconnecting backs
            // off instead), so a connection that lives only briefly is not
            // wasted waiting.
            b.not_before = code.map(|c| {
                now + match leader_moved(c) {
                    true => leader_backoff(shared, b.attempts),
                    false => backoff(shared, b.attempts),
                }
            });
            b.last_failure = Some(match code {
                Some(c) => ClientError::Broker {
                    code: c,
                    message: message.to_owned(),
                }
                .to_string(),
                None => format!("connection to the broker failed: {message}"),
            });
            again.push(b);
        }
    }
    if !again.is_empty() {
        shared
            .accumulator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requeue_front(again);
        shared.wake.notify_one();
    }
}

fn complete(
    shared: &Shared,
    batch: ReadyBatch,
    result: &ProducePartitionResponse,
    broken: &AtomicBool,
) {
    if leader_moved(result.error_code) {
        // The batch keeps its sequence and goes to the leader Metadata
        // names next (retried after a backoff, below).
        shared.metadata.invalidate();
    }
    let (refusal, cause) = {
        let mut idem = shared.idempotence.lock().unwrap_or_else(|e| e.into_inner());
        match result.error_code {
            ErrorCode::None => {
                idem.acked(&batch);
                idem.note_outcome(&batch, None);
            }
            ErrorCode::OutOfOrderSequence => {}
            code => {
                let why = match &result.message {
                    Some(m) => format!("{code}: {m}"),
                    None => code.to_string(),
                };
                idem.note_outcome(&batch, Some(why));
            }
        }
        // Only an out-of-order refusal names the cause it waits behind.
        let cause = (result.error_code == ErrorCode::OutOfOrderSequence)
            .then(|| idem.cause(&batch).map(str::to_owned))
            .flatten();
        (idem.on_refusal(&batch, result.error_code), cause)
    };
    if refusal != OnRefusal::NotMine {
        if refusal == OnRefusal::Reset {
            // Reconnect and take a new producer id before sending more.
            broken.store(true, Ordering::Release);
        }
        let mut msg = result
            .message
            .clone()
            .unwrap_or_else(|| result.error_code.to_string());
        // Refused as out of order while an earlier batch of the partition
        // is refused for a reason of its own (a full disk, say): that
        // reason is what the user needs to see.
        if let (ErrorCode::OutOfOrderSequence, Some(cause)) = (result.error_code, cause) {
            msg = format!(
                "{msg} (waiting behind an earlier batch of this partition, refused with {cause})"
            );
        }
        retry_or_fail(shared, vec![batch], Some(result.error_code), &msg);
    } else if result.error_code == ErrorCode::None {
        let n = batch.waiters.len() as u64;
        for (i, w) in batch.waiters.into_iter().enumerate() {
            let _ = w.send(Ok(RecordMetadata {
                partition: batch.partition,
                offset: Some(result.base_offset + i as u64),
            }));
        }
        settle(shared, n);
    } else if result.error_code.is_retriable() {
        let msg = result.message.clone().unwrap_or_default();
        retry_or_fail(shared, vec![batch], Some(result.error_code), &msg);
    } else {
        let msg = result
            .message
            .clone()
            .unwrap_or_else(|| result.error_code.to_string());
        fail(shared, batch, Some(result.error_code), &msg);
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    mut reader: ResponseReader,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
    broken: Arc<AtomicBool>,
) {
    // A response later than this means the connection is stuck (the broker
    // answers a slow flush with RequestTimedOut well before).
    let patience = shared.config.request_timeout + RESPONSE_GRACE;
    // One timer for every response, moved forward per request: a later
    // deadline only updates the registered timer, so waiting for a response
    // registers no timer (nor wakes the runtime's timer thread) each time.
    let timer = tokio::time::sleep(patience);
    tokio::pin!(timer);
    let delivery = shared.config.delivery_timeout;
    let expired = format!("no produce response within the delivery timeout ({delivery:?})");
    while let Some((batches, permit)) = rx.recv().await {
        // Batches past their delivery timeout fail while their request is
        // in flight, as Kafka's producer expires them: against a broker that
        // stopped answering (paused, a network dropping packets) a record
        // fails then, not a request timeout later. The connection is kept
        // (the others in flight may still be answered); an answer that
        // comes for a batch already failed is passed over.
        let mut batches: Vec<Option<ReadyBatch>> = batches.into_iter().map(Some).collect();
        let waited = tokio::time::Instant::now() + patience;
        let response = reader.recv::<ProduceResponse>();
        tokio::pin!(response);
        let received = loop {
            let expires = batches
                .iter()
                .flatten()
                .map(|b| tokio::time::Instant::from_std(b.created) + delivery)
                .min()
                .filter(|&at| at < waited);
            timer.as_mut().reset(expires.unwrap_or(waited));
            tokio::select! {
                biased;
                r = &mut response => break r,
                () = timer.as_mut() => {
                    if expires.is_none() {
                        break Err(ClientError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no produce response within {patience:?}"),
                        )));
                    }
                    let now = Instant::now();
                    for slot in &mut batches {
                        if let Some(mut b) = slot.take_if(|b| {
                            now.saturating_duration_since(b.created) >= delivery
                        }) {
                            // What held it up before, if it was retried.
                            match b.last_failure.take() {
                                Some(why) => {
                                    let told = format!("{expired}; its attempt before: {why}");
                                    fail(&shared, b, None, &told);
                                }
                                None => fail(&shared, b, None, &expired),
                            }
                        }
                    }
                }
            }
        };
        let answered = batches.len();
        match received {
            Ok((_, resp, _)) if resp.partitions.len() == answered => {
                for (batch, result) in batches.into_iter().zip(&resp.partitions) {
                    if let Some(batch) = batch {
                        complete(&shared, batch, result, &broken);
                    }
                }
            }
            Ok(_) => {
                broken.store(true, Ordering::Release);
                retry_or_fail(
                    &shared,
                    pending(batches),
                    None,
                    "malformed produce response",
                );
            }
            Err(ClientError::Broker { code, message }) => {
                // The whole request was refused (e.g. too large): not retriable
                // unless the code says so.
                if code.is_retriable() {
                    retry_or_fail(&shared, pending(batches), Some(code), &message);
                } else {
                    for b in pending(batches) {
                        fail(&shared, b, Some(code), &message);
                    }
                }
            }
            Err(e) => {
                broken.store(true, Ordering::Release);
                let msg = cause(&e);
                let mut all = pending(batches);
                rx.close();
                while let Ok((more, _)) = rx.try_recv() {
                    all.extend(more);
                }
                retry_or_fail(&shared, all, None, &msg);
                drop(permit);
                shared.wake.notify_one();
                return;
            }
        }
        drop(permit);
        // A request slot is free: the dispatcher may have batches for it.
        shared.wake.notify_one();
    }
}

/// One broker's connection, as the dispatcher sees it.
struct Link {
    tx: mpsc::UnboundedSender<InFlight>,
    slots: Arc<Semaphore>,
    task: tokio::task::JoinHandle<bool>,
}

/// Requests one connection may have on the wire.
fn in_flight_limit(shared: &Shared) -> usize {
    let n = match shared.config.idempotence {
        true => shared.config.max_in_flight.min(MAX_IDEMPOTENT_IN_FLIGHT),
        false => shared.config.max_in_flight,
    };
    n.max(1)
}

fn timed_out(what: &str) -> ClientError {
    ClientError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} took longer than {CONNECT_TIMEOUT:?}"),
    ))
}

/// Connects to `dest` within [`CONNECT_TIMEOUT`].
async fn connect_to(shared: &Shared, dest: &Dest) -> Result<Connection, ClientError> {
    crate::pool::connect(&shared.brokers, dest, CONNECT_TIMEOUT).await
}

/// Takes a producer id for an idempotent producer that has none (or must
/// start over), from any broker: the bootstrap list, then known leaders.
async fn init_id(shared: &Shared) -> Result<(), ClientError> {
    let mut conn = match connect_to(shared, &None).await {
        Ok(c) => c,
        Err(e) => {
            let mut found = Err(e);
            for (_, addr) in shared.metadata.brokers() {
                found = connect_to(shared, &Some(addr)).await;
                if found.is_ok() {
                    break;
                }
            }
            found?
        }
    };
    let id = tokio::time::timeout(CONNECT_TIMEOUT, conn.init_producer_id())
        .await
        .map_err(|_| timed_out("getting a producer id"))??;
    shared
        .idempotence
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_producer(id.producer_id, id.producer_epoch);
    Ok(())
}

/// One broker's connection: connects, then writes each request it is
/// handed while its reader settles the responses. Ends when the
/// dispatcher drops it or the connection breaks; whatever it was handed
/// and did not settle goes back to the accumulator. Returns whether it
/// connected.
async fn link(shared: Arc<Shared>, dest: Dest, mut rx: mpsc::UnboundedReceiver<InFlight>) -> bool {
    let conn = match connect_to(&shared, &dest).await {
        Ok(c) => c,
        Err(e) => {
            rx.close();
            let mut all = Vec::new();
            while let Ok((more, _)) = rx.try_recv() {
                all.extend(more);
            }
            if dest.is_none() {
                shared.brokers.failed();
            }
            shared.metadata.invalidate();
            retry_or_fail(&shared, all, None, &cause(&e));
            return false;
        }
    };
    let (mut writer, reader) = conn.into_split();
    let (to_reader, from_writer) = mpsc::unbounded_channel::<InFlight>();
    let broken = Arc::new(AtomicBool::new(false));
    let reader_task = tokio::spawn(read_loop(
        Arc::clone(&shared),
        reader,
        from_writer,
        Arc::clone(&broken),
    ));
    while let Some((batches, permit)) = rx.recv().await {
        if broken.load(Ordering::Acquire) {
            retry_or_fail(&shared, batches, None, "connection lost");
            break;
        }
        let req = ProduceRequest {
            acks: shared.config.acks,
            timeout_ms: shared
                .config
                .request_timeout
                .as_millis()
                .min(u128::from(u32::MAX)) as u32,
            partitions: batches
                .iter()
                .map(|b| ProducePartition {
                    topic: b.topic.clone(),
                    partition: b.partition,
                    records_len: b.bytes.len() as u32,
                })
                .collect(),
        };
        let sent = if batches.len() == 1 {
            writer.send(ApiKey::Produce, &req, &batches[0].bytes).await
        } else {
            let mut tail = Vec::with_capacity(batches.iter().map(|b| b.bytes.len()).sum());
            for b in &batches {
                tail.extend_from_slice(&b.bytes);
            }
            writer.send(ApiKey::Produce, &req, &tail).await
        };
        if let Err(e) = sent {
            broken.store(true, Ordering::Release);
            retry_or_fail(&shared, batches, None, &cause(&e));
            break;
        }
        if shared.config.acks == Acks::None {
            for b in batches {
                let n = b.waiters.len() as u64;
                for w in b.waiters {
                    let _ = w.send(Ok(RecordMetadata {
                        partition: b.partition,
                        offset: None,
                    }));
                }
                settle(&shared, n);
            }
            drop(permit);
            shared.wake.notify_one();
        } else if let Err(mpsc::error::SendError((batches, _permit))) =
            to_reader.send((batches, permit))
        {
            // The reader already gave up on this connection: these were
            // written but will get no answer here; send them again.
            retry_or_fail(&shared, batches, None, "connection lost");
            break;
        }
    }
    // Handed over but never written: back to the accumulator.
    rx.close();
    let mut left = Vec::new();
    while let Ok((more, _)) = rx.try_recv() {
        left.extend(more);
    }
    if !left.is_empty() {
        retry_or_fail(&shared, left, None, "connection lost");
    }
    drop(writer);
    drop(to_reader);
    let _ = reader_task.await;
    if broken.load(Ordering::Acquire) {
        // Start the next bootstrap connect at the following address, and
        // ask Metadata again: the broker may have lost its partitions.
        if dest.is_none() {
            shared.brokers.failed();
        }
        shared.metadata.invalidate();
    }
    shared.wake.notify_one();
    true
}

/// Failed connects to a destination in a row, and until when it rests.
type Rest = std::collections::HashMap<Dest, (u32, Instant)>;

/// Runs until the producer closes (or is dropped) with nothing pending.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut links: std::collections::HashMap<Dest, Link> = std::collections::HashMap::new();
    let mut resting: Rest = Rest::new();
    let mut refresh: Option<tokio::task::JoinHandle<()>> = None;
    let mut id_failures = 0u32;
    let limit = in_flight_limit(&shared);
    // The idle wait's timer, kept across turns (see `read_loop`).
    let idle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(idle);
    loop {
        // Every turn counts against the task's cooperative budget, so a
        // dispatcher that keeps finding work still yields now and then:
        // otherwise its worker thread would never poll the I/O driver and
        // the timers, and the readers it waits for would never learn their
        // connection broke.
        tokio::task::consume_budget().await;
        if shared.closing.load(Ordering::Acquire) && shared.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let now = Instant::now();
        // Reap ended links; one that never connected rests a backoff.
        let ended: Vec<Dest> = links
            .iter()
            .filter(|(_, l)| l.task.is_finished())
            .map(|(d, _)| d.clone())
            .collect();
        for d in ended {
            if let Some(l) = links.remove(&d) {
                let connected = l.task.await.unwrap_or(false);
                if let Some(addr) = &d {
                    shared.reached(addr, connected);
                }
                if connected {
                    resting.remove(&d);
                } else {
                    let failures = resting.get(&d).map_or(0, |r| r.0) + 1;
                    // A leader that does not answer is looked up again at
                    // once; the rest only stops a connect storm meanwhile.
                    let rest = match d {
                        Some(_) => leader_backoff(&shared, failures),
                        None => backoff(&shared, failures),
                    };
                    resting.insert(d, (failures, now + rest));
                }
            }
        }
        if refresh.as_ref().is_none_or(|t| t.is_finished()) && shared.metadata.refresh_due(now) {
            let s = Arc::clone(&shared);
            refresh = Some(tokio::spawn(async move {
                let _ = s.metadata.refresh().await;
                s.wake.notify_one();
            }));
        }
        let needs_id = shared.config.idempotence
            && shared
                .idempotence
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .needs_id();
        if needs_id {
            if let Err(e) = init_id(&shared).await {
                id_failures += 1;
                // Count the failure against whatever is waiting to be sent.
                let ready = {
                    let mut acc = shared.accumulator.lock().unwrap_or_else(|e| e.into_inner());
                    acc.seal_expired(shared.config.linger, Instant::now());
                    acc.take_ready(usize::MAX, Instant::now() + Duration::from_secs(3600))
                };
                if !ready.is_empty() {
                    retry_or_fail(&shared, ready, None, &cause(&e));
                }
                tokio::time::sleep(backoff(&shared, id_failures)).await;
                continue;
            }
            id_failures = 0;
        }
        let closing = shared.closing.load(Ordering::Acquire);
        let (taken, deadline) = {
            let mut acc = shared.accumulator.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if closing {
                acc.seal_all();
            }
            let deadline = acc.seal_expired(shared.config.linger, now);
            let taken = acc.take_request_by(
                MAX_REQUEST_BYTES,
                shared.config.max_partitions_per_request.max(1),
                now,
                |b| {
                    let dest = match shared.metadata.route(&b.topic, b.partition) {
                        Route::Wait => return None,
                        Route::Bootstrap => None,
                        Route::Leader(l) => Some(l.addr),
                    };
                    if resting.get(&dest).is_some_and(|r| r.1 > now) {
                        return None;
                    }
                    match links.get(&dest) {
                        // A link that stopped taking requests (its
                        // connection broke; it waits for its reader to give
                        // back what is in flight) is as good as ended: the
                        // batch waits for the next connection.
                        Some(l)
                            if l.slots.available_permits() == 0
                                || l.task.is_finished()
                                || l.tx.is_closed() =>
                        {
                            None
                        }
                        _ => Some(dest),
                    }
                },
            );
            (taken, deadline)
        };
        let Some((dest, batches)) = taken else {
            let mut sleep = deadline.map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if shared.metadata.is_stale() {
                // A refresh held back by its spacing: look again soon.
                sleep = sleep.min(crate::metadata::QUICK_REFRESH_MIN);
            }
            // Batches may wait for a resting destination: look again when
            // its rest ends.
            let now = Instant::now();
            if let Some(end) = resting.values().map(|r| r.1).filter(|t| *t > now).min() {
                sleep = sleep.min(end - now);
            }
            idle.as_mut()
                .reset(tokio::time::Instant::now() + sleep.min(Duration::from_millis(100)));
            tokio::select! {
                () = shared.wake.notified() => {}
                () = idle.as_mut() => {}
            }
            continue;
        };
        let mut batches = compress_all(&shared, batches).await;
        if batches.is_empty() {
            continue;
        }
        let link = links.entry(dest.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            Link {
                tx,
                slots: Arc::new(Semaphore::new(limit)),
                task: tokio::spawn(link(Arc::clone(&shared), dest, rx)),
            }
        });
        let Ok(permit) = Arc::clone(&link.slots).try_acquire_owned() else {
            shared
                .accumulator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .requeue_front(batches);
            continue;
        };
        if shared.config.idempotence {
            let mut idem = shared.idempotence.lock().unwrap_or_else(|e| e.into_inner());
            if idem.needs_id() {
                // A refusal asked for a new producer id: take it first.
                drop(idem);
                shared
                    .accumulator
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .requeue_front(batches);
                continue;
            }
            for b in &mut batches {
                idem.stamp(b);
            }
        }
        if let Err(mpsc::error::SendError((batches, _permit))) = link.tx.send((batches, permit)) {
            // The link stopped taking requests since the check above:
            // nothing was sent, so no attempt is counted; the route check
            // keeps the batches here until the link has ended.
            shared
                .accumulator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .requeue_front(batches);
        }
    }
}

#[cfg(test)]
mod cause_tests {
    use super::*;

    /// A batch failed with a lost connection's error says "connection to the
    /// broker failed" once.
    #[test]
    fn a_lost_connection_is_told_once() {
        let e = ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        let told = ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            cause(&e),
        ));
        assert_eq!(
            told.to_string(),
            "connection to the broker failed: Connection refused"
        );
    }
}
