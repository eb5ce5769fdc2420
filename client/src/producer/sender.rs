//! The producer's background task: connects, sends ready batches with up to
//! `max_in_flight` requests on the wire, settles each record when its
//! response arrives, and retries or fails what a broken connection or a
//! retriable error left unsettled.

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

/// A partition the connected broker said it does not lead: after the
/// connection ends, its leader is looked up and followed.
type Moved = Arc<std::sync::Mutex<Option<(String, u32)>>>;

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
            b.not_before = code.map(|_| now + backoff(shared, b.attempts));
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
    moved: &Moved,
) {
    if leader_moved(result.error_code) {
        // Send nothing more here; the batch keeps its sequence and goes
        // to the leader once found.
        moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| (batch.topic.clone(), batch.partition));
        broken.store(true, Ordering::Release);
    }
    let refusal = {
        let mut idem = shared.idempotence.lock().unwrap_or_else(|e| e.into_inner());
        if result.error_code == ErrorCode::None {
            idem.acked(&batch);
        }
        idem.on_refusal(&batch, result.error_code)
    };
    if refusal != OnRefusal::NotMine {
        if refusal == OnRefusal::Reset {
            // Reconnect and take a new producer id before sending more.
            broken.store(true, Ordering::Release);
        }
        let msg = result
            .message
            .clone()
            .unwrap_or_else(|| result.error_code.to_string());
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
    moved: Moved,
) {
    // A response later than this means the connection is stuck (the broker
    // answers a slow flush with RequestTimedOut well before).
    let patience = shared.config.request_timeout + RESPONSE_GRACE;
    while let Some((batches, permit)) = rx.recv().await {
        let received = match tokio::time::timeout(patience, reader.recv::<ProduceResponse>()).await
        {
            Ok(r) => r,
            Err(_) => Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no produce response within {patience:?}"),
            ))),
        };
        match received {
            Ok((_, resp, _)) if resp.partitions.len() == batches.len() => {
                for (batch, result) in batches.into_iter().zip(&resp.partitions) {
                    complete(&shared, batch, result, &broken, &moved);
                }
            }
            Ok(_) => {
                broken.store(true, Ordering::Release);
                retry_or_fail(&shared, batches, None, "malformed produce response");
            }
            Err(ClientError::Broker { code, message }) => {
                // The whole request was refused (e.g. too large): not retriable
                // unless the code says so.
                if code.is_retriable() {
                    retry_or_fail(&shared, batches, Some(code), &message);
                } else {
                    for b in batches {
                        fail(&shared, b, Some(code), &message);
                    }
                }
            }
            Err(e) => {
                broken.store(true, Ordering::Release);
                let msg = e.to_string();
                let mut all = batches;
                rx.close();
                while let Ok((more, _)) = rx.try_recv() {
                    all.extend(more);
                }
                retry_or_fail(&shared, all, None, &msg);
                drop(permit);
                return;
            }
        }
        drop(permit);
    }
}

/// Connects (within [`CONNECT_TIMEOUT`]) and, for an idempotent producer
/// that has none (or must start over), takes a new producer id.
async fn connect(shared: &Shared) -> Result<Connection, ClientError> {
    let timed_out = |what: &str| {
        ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what} took longer than {CONNECT_TIMEOUT:?}"),
        ))
    };
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, shared.brokers.connect())
        .await
        .map_err(|_| timed_out("connecting"))??;
    let needs_id = shared.config.idempotence
        && shared
            .idempotence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .needs_id();
    if needs_id {
        let id = tokio::time::timeout(CONNECT_TIMEOUT, conn.init_producer_id())
            .await
            .map_err(|_| timed_out("getting a producer id"))??;
        shared
            .idempotence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_producer(id.producer_id, id.producer_epoch);
    }
    Ok(conn)
}

/// Looks up the leader of a partition on any broker of the bootstrap list
/// and makes the next connect go to it; without an answer (no leader yet,
/// no broker reachable), waits one backoff and leaves the list as it is.
async fn follow_leader(shared: &Shared, topic: &str, partition: u32) {
    let found = tokio::time::timeout(
        CONNECT_TIMEOUT,
        shared.brokers.find_leader(topic, partition),
    )
    .await;
    match found {
        Ok(Ok(Some(addr))) => shared.brokers.follow(addr),
        _ => tokio::time::sleep(backoff(shared, 1)).await,
    }
}

/// Runs until the producer closes (or is dropped) with nothing pending.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut connect_failures = 0u32;
    loop {
        if shared.closing.load(Ordering::Acquire) && shared.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let conn = match connect(&shared).await {
            Ok(c) => {
                connect_failures = 0;
                c
            }
            Err(e) => {
                connect_failures += 1;
                // Count the failure against whatever is waiting to be sent.
                let ready = {
                    let mut acc = shared.accumulator.lock().unwrap_or_else(|e| e.into_inner());
                    acc.seal_expired(shared.config.linger, Instant::now());
                    acc.take_ready(usize::MAX, Instant::now() + Duration::from_secs(3600))
                };
                if !ready.is_empty() {
                    retry_or_fail(&shared, ready, None, &e.to_string());
                }
                tokio::time::sleep(backoff(&shared, connect_failures)).await;
                continue;
            }
        };
        let (mut writer, reader) = conn.into_split();
        let (tx, rx) = mpsc::unbounded_channel::<InFlight>();
        let broken = Arc::new(AtomicBool::new(false));
        let moved: Moved = Arc::default();
        let in_flight = match shared.config.idempotence {
            true => shared.config.max_in_flight.min(MAX_IDEMPOTENT_IN_FLIGHT),
            false => shared.config.max_in_flight,
        };
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let reader_task = tokio::spawn(read_loop(
            Arc::clone(&shared),
            reader,
            rx,
            Arc::clone(&broken),
            Arc::clone(&moved),
        ));
        loop {
            if broken.load(Ordering::Acquire) {
                break;
            }
            let closing = shared.closing.load(Ordering::Acquire);
            let (batches, deadline) = {
                let mut acc = shared.accumulator.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if closing {
                    acc.seal_all();
                }
                let deadline = acc.seal_expired(shared.config.linger, now);
                (
                    acc.take_request(
                        MAX_REQUEST_BYTES,
                        shared.config.max_partitions_per_request.max(1),
                        now,
                    ),
                    deadline,
                )
            };
            if batches.is_empty() {
                if closing && shared.pending.load(Ordering::Acquire) == 0 {
                    break;
                }
                let sleep = deadline.map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep(sleep.min(Duration::from_millis(100))) => {}
                }
                continue;
            }
            let mut batches = compress_all(&shared, batches).await;
            if batches.is_empty() {
                continue;
            }
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            if shared.config.idempotence {
                let mut idem = shared.idempotence.lock().unwrap_or_else(|e| e.into_inner());
                if idem.needs_id() || broken.load(Ordering::Acquire) {
                    // A refusal asked for a new producer id: send nothing
                    // more on this connection.
                    drop(idem);
                    shared
                        .accumulator
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .requeue_front(batches);
                    break;
                }
                for b in &mut batches {
                    idem.stamp(b);
                }
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
                retry_or_fail(&shared, batches, None, &e.to_string());
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
            } else if let Err(mpsc::error::SendError((batches, _permit))) =
                tx.send((batches, permit))
            {
                // The reader already gave up on this connection: these were
                // written but will get no answer here; send them again.
                retry_or_fail(&shared, batches, None, "connection lost");
                break;
            }
        }
        drop(writer);
        drop(tx);
        let _ = reader_task.await;
        let moved = moved.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((topic, partition)) = moved {
            follow_leader(&shared, &topic, partition).await;
        } else if broken.load(Ordering::Acquire) {
            // Start the next connect at the following bootstrap address.
            shared.brokers.failed();
        }
        if shared.closing.load(Ordering::Acquire) && shared.pending.load(Ordering::Acquire) == 0 {
            return;
        }
    }
}
