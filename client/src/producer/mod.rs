//! [`Producer`]: sends records to topics, batching them per partition.
//!
//! `send` returns once the record is buffered (waiting while the buffer is
//! full: backpressure) and gives a [`DeliveryFuture`] that resolves when the
//! broker acknowledged the record, with its partition and offset, or failed.
//! Records are grouped per partition into RecordBatch v2 batches, sent when
//! a batch reaches `batch_bytes` or has waited `linger`. Background tasks
//! send each partition's batches to its leader (from a metadata cache, see
//! [`MetadataCache`](crate::MetadataCache)) over one connection per broker,
//! each with up to `max_in_flight` produce requests on the wire, retry
//! retriable failures with backoff, and reconnect after a broker restart.
//!
//! **Idempotence (the default).** The producer gets a producer id from the
//! broker and numbers its batches per partition; a retry keeps its numbers,
//! so when an acknowledgement was lost (dropped connection, broker restart)
//! the broker answers the retry with the original offsets and stores the
//! records once, and retried batches keep their order in each partition.
//! Records are retried until [`ProducerConfig::delivery_timeout`] after they
//! were sent to the producer, and fail only then. Where the promise ends is
//! in `docs/client.md`: a new `Producer` gets a new id, so a record sent
//! again by the application is a new record; if the producer has to take a
//! new id (its id expired on the broker, or a batch failed for good), batches
//! whose answer was lost at that moment can be stored twice.
//!
//! With [`ProducerConfig::idempotence`] off, delivery is at least once: a
//! retry after a lost acknowledgement appends the batch again, and with
//! `max_in_flight > 1` a retried batch can land after a later one.

mod accumulator;
mod idempotence;
mod sender;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use sluice_protocol::batch::Compression;
use sluice_protocol::wire::ErrorCode;
pub use sluice_protocol::wire::produce::Acks;
use tokio::sync::{Notify, Semaphore, oneshot};

use crate::connection::Connection;
use crate::error::ClientError;
use accumulator::Accumulator;

/// How long a metadata request (with its connect) may take before it is
/// retried.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`ProducerConfig::max_record_bytes`]: the broker's default
/// request limit (64 MiB) less room for the request's and the batch's own
/// fields.
pub const DEFAULT_MAX_RECORD_BYTES: usize = (64 << 20) - (64 << 10);

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Bootstrap list: one `host:port` or several, comma-separated
    /// (`host1:port,host2:port`); the producer asks the first that answers
    /// for Metadata (see [`Bootstrap`](crate::Bootstrap)), then connects to
    /// each partition's leader.
    pub broker: String,
    /// When the broker acknowledges.
    pub acks: Acks,
    /// A batch is sent once it holds this many bytes.
    pub batch_bytes: usize,
    /// A batch is sent at the latest this long after its first record.
    /// While an earlier batch of the same partition still waits to be sent
    /// (no free request slot, or a retry's backoff), the next one keeps
    /// taking records, up to `batch_bytes`, until that one has left: a
    /// producer that fell behind sends what queued meanwhile in one batch,
    /// with linger 0 too.
    pub linger: Duration,
    /// Produce requests on the wire at once.
    pub max_in_flight: usize,
    /// Bytes of records buffered before `send` waits.
    pub buffer_bytes: usize,
    /// The largest record `send` takes (key, value and headers); a larger
    /// one fails at once with `MessageTooLarge`, as no request could carry
    /// it: by default a little under 64 MiB, the broker's default
    /// `max_frame_bytes`. Kafka's `max.request.size`.
    pub max_record_bytes: usize,
    /// Attempts after the first for a retriable failure.
    pub retries: u32,
    /// First wait before a retry; doubles per attempt up to 5 s.
    pub retry_backoff: Duration,
    /// How long the broker may take to make an `acks=all` write durable.
    pub request_timeout: Duration,
    /// Most partitions (record sets) one Produce request lists; keep it at
    /// or below the broker's `max_partitions_per_request` (10,000 by default).
    pub max_partitions_per_request: usize,
    /// Codec each batch's records are compressed with before it is sent
    /// (Kafka's formats: gzip stream, xerial-framed snappy, LZ4 frame, zstd
    /// frame). Compression runs on tokio's blocking pool, never on the task
    /// that calls `send` or on a reactor thread. Default: none.
    pub compression: Compression,
    /// Level for gzip (0-9, default 6) and zstd (1-22 or negative, default
    /// 3); `None` is the codec's default; ignored by the other codecs. A
    /// level the codec refuses fails each batch with `InvalidRequest`.
    pub compression_level: Option<i32>,
    /// Store each record once even when a send is retried (Kafka's
    /// `enable.idempotence`, on by default). Caps `max_in_flight` at 5.
    pub idempotence: bool,
    /// How long a record may take from [`Producer::send`] to its
    /// acknowledgement, retries and reconnections included (Kafka's
    /// `delivery.timeout.ms`); only then does it fail.
    pub delivery_timeout: Duration,
    /// Longest time the producer keeps partition leaders from Metadata
    /// before asking again (Kafka's `metadata.max.age.ms`, default 5
    /// minutes); an error that says a leader moved, or a lost connection,
    /// asks at once.
    pub metadata_max_age: Duration,
    /// Ask the broker to create a topic sent to that does not exist, with
    /// its defaults, if the broker creates topics on first use (its
    /// `auto_create_topics`, off by default; Kafka's producer setting
    /// `allow.auto.create.topics`). On by default, as in Kafka's producers;
    /// a broker that does not create topics answers an unknown topic either
    /// way.
    pub allow_auto_create_topics: bool,
}

impl ProducerConfig {
    /// Defaults for the bootstrap list `broker`: acks=leader, 256 KiB batches,
    /// 5 ms linger, 4 requests in flight, 64 MiB buffer, retries from 100 ms
    /// without a count limit until a 120 s delivery timeout, idempotence on,
    /// no compression.
    pub fn new(broker: impl Into<String>) -> Self {
        ProducerConfig {
            broker: broker.into(),
            acks: Acks::Leader,
            batch_bytes: 256 * 1024,
            linger: Duration::from_millis(5),
            max_in_flight: 4,
            buffer_bytes: 64 << 20,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(30),
            max_partitions_per_request: 1000,
            compression: Compression::None,
            compression_level: None,
            idempotence: true,
            delivery_timeout: Duration::from_secs(120),
            metadata_max_age: crate::metadata::DEFAULT_METADATA_MAX_AGE,
            allow_auto_create_topics: true,
        }
    }

    /// [`new`](Self::new) for several broker addresses, tried in order.
    pub fn with_brokers<I, S>(brokers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(crate::bootstrap::join(brokers))
    }
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition; `None` chooses by key hash, or sticky without a key.
    pub partition: Option<u32>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Timestamp in milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

/// Where an acknowledged record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition.
    pub partition: u32,
    /// Offset; `None` with `acks=none`, which gets no answer.
    pub offset: Option<u64>,
}

/// Resolves when the record's fate is known.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

pub(crate) struct Shared {
    pub(crate) config: ProducerConfig,
    pub(crate) accumulator: std::sync::Mutex<Accumulator>,
    /// Wakes the sender: a batch is ready, or the producer closes.
    pub(crate) wake: Notify,
    pub(crate) memory: Arc<Semaphore>,
    /// Records buffered or in flight.
    pub(crate) pending: AtomicU64,
    /// Signalled when `pending` drops to zero.
    pub(crate) drained: Notify,
    pub(crate) closing: AtomicBool,
    /// Producer id and sequence numbers (idempotence).
    pub(crate) idempotence: std::sync::Mutex<idempotence::Idempotence>,
    partitions: tokio::sync::Mutex<(Option<Connection>, std::collections::HashMap<String, u32>)>,
    /// The config's bootstrap list and the address that answered last.
    pub(crate) brokers: crate::bootstrap::Bootstrap,
    /// Partition leaders, refreshed by the sender.
    pub(crate) metadata: crate::metadata::MetadataCache,
    /// Leaders whose last connect failed (the sender keeps it), and
    /// whether there are any: keyless records move off their partitions.
    pub(crate) unreachable: std::sync::Mutex<std::collections::HashMap<Arc<str>, Instant>>,
    pub(crate) any_unreachable: AtomicBool,
}

/// How long keyless records keep off a leader whose connect failed, after
/// which its partitions are chosen again (and its connect retried).
const UNREACHABLE_FOR: Duration = Duration::from_secs(10);

impl Shared {
    /// Whether keyless records may go to `partition` of `topic`: it has a
    /// leader, and the last connect to it did not fail (or its leader is
    /// not known yet: the topic's first Metadata answer decides).
    fn takes_keyless(&self, topic: &str, partition: u32) -> bool {
        match self.metadata.route(topic, partition) {
            crate::metadata::Route::Wait => true,
            crate::metadata::Route::Bootstrap => false,
            // A failure older than UNREACHABLE_FOR is forgotten, so that
            // a leader back (and no longer connected to, as keyless
            // records kept off it) is tried again.
            crate::metadata::Route::Leader(l) => self
                .unreachable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&l.addr)
                .is_none_or(|since| since.elapsed() >= UNREACHABLE_FOR),
        }
    }

    /// Notes whether the last connect to the leader at `addr` worked.
    pub(crate) fn reached(&self, addr: &Arc<str>, ok: bool) {
        let mut set = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        match ok {
            true => {
                set.remove(addr);
            }
            false => {
                set.insert(Arc::clone(addr), Instant::now());
            }
        }
        set.retain(|_, since| since.elapsed() < UNREACHABLE_FOR);
        self.any_unreachable
            .store(!set.is_empty(), Ordering::Release);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A producer; cheap to share (`&self` everywhere), safe to use from many
/// tasks.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    sender: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Producer {
    /// Creates a producer and its background sender task (call inside a
    /// tokio runtime). Connects lazily.
    pub fn new(config: ProducerConfig) -> Self {
        let memory = Arc::new(Semaphore::new(config.buffer_bytes.max(1)));
        let brokers = crate::bootstrap::Bootstrap::parse(&config.broker);
        let metadata = crate::metadata::MetadataCache::new(
            brokers.clone(),
            config.metadata_max_age,
            config.retry_backoff,
        );
        let shared = Arc::new(Shared {
            accumulator: std::sync::Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            memory,
            pending: AtomicU64::new(0),
            drained: Notify::new(),
            closing: AtomicBool::new(false),
            idempotence: Default::default(),
            partitions: tokio::sync::Mutex::new((None, Default::default())),
            brokers,
            metadata,
            config,
            unreachable: Default::default(),
            any_unreachable: AtomicBool::new(false),
        });
        let sender = tokio::spawn(sender::run(Arc::clone(&shared)));
        Producer {
            shared,
            sender: std::sync::Mutex::new(Some(sender)),
        }
    }

    /// Buffers `value` with `key` for `topic` and returns a future of its
    /// partition and offset. See [`Producer::send_record`].
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<DeliveryFuture, ClientError> {
        self.send_record(ProducerRecord {
            topic,
            key,
            value: Some(value),
            ..Default::default()
        })
        .await
    }

    /// Buffers a record (waiting while the buffer is full) and returns a
    /// future of its delivery. Fails at once for a record larger than
    /// [`ProducerConfig::max_record_bytes`], an unknown topic or
    /// partition, or after [`Producer::close`].
    pub async fn send_record(
        &self,
        record: ProducerRecord<'_>,
    ) -> Result<DeliveryFuture, ClientError> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        let size = record.key.map_or(0, <[u8]>::len)
            + record.value.map_or(0, <[u8]>::len)
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len) + 4)
                .sum::<usize>()
            + 24;
        let most = self.shared.config.max_record_bytes;
        if size > most {
            return Err(ClientError::Broker {
                code: ErrorCode::MessageTooLarge,
                message: format!(
                    "a record of {size} bytes is larger than the producer's max_record_bytes \
                     ({most}); no request to the broker could carry it"
                ),
            });
        }
        let size = size.min(self.shared.config.buffer_bytes.max(1));
        let permit = Arc::clone(&self.shared.memory)
            .acquire_many_owned(size as u32)
            .await
            .map_err(|_| ClientError::Closed)?;
        let partition = match record.partition {
            Some(p) => {
                let count = self.partition_count(record.topic).await?;
                if p >= count {
                    return Err(ClientError::Broker {
                        code: ErrorCode::UnknownTopicOrPartition,
                        message: format!(
                            "topic {:?} has {count} partitions, not {}",
                            record.topic,
                            p + 1
                        ),
                    });
                }
                p
            }
            None => {
                let count = self.partition_count(record.topic).await?;
                match record.key {
                    Some(k) => crate::partitioner::partition_for_key(k, count),
                    None => {
                        // Off the partitions without a reachable leader,
                        // as Kafka's producer keeps keyless records on
                        // partitions with a leader: checked when a
                        // partition is chosen, and for the current one
                        // only while some leader is out of reach.
                        let recheck = self.shared.any_unreachable.load(Ordering::Acquire);
                        let current = match recheck {
                            true => None,
                            false => self
                                .shared
                                .accumulator
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .current_sticky(record.topic, count),
                        };
                        match current {
                            Some(p) => p,
                            None => {
                                // A topic's first keyless record waits for
                                // the topic's leaders.
                                if matches!(
                                    self.shared.metadata.route(record.topic, 0),
                                    crate::metadata::Route::Wait
                                ) {
                                    let _ = self.shared.metadata.refresh().await;
                                }
                                let mut acc = self
                                    .shared
                                    .accumulator
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner());
                                acc.sticky_partition(record.topic, count, recheck, |p| {
                                    self.shared.takes_keyless(record.topic, p)
                                })
                            }
                        }
                    }
                }
            }
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        let ready = {
            let mut acc = self
                .shared
                .accumulator
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // Checked again under the lock: `close` may have drained
            // everything since the check above.
            if self.shared.closing.load(Ordering::Acquire) {
                drop(acc);
                if self.shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.shared.drained.notify_waiters();
                }
                return Err(ClientError::Closed);
            }
            acc.append(
                &self.shared.config,
                record.topic,
                partition,
                &record,
                timestamp,
                tx,
                permit,
            )
        };
        if ready {
            self.shared.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// Partitions of `topic`, from the broker on first use. A lost or
    /// refused connection is retried with backoff for up to the delivery
    /// timeout; a broker error (unknown topic) fails at once.
    pub async fn partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        let start = std::time::Instant::now();
        let mut backoff = self
            .shared
            .config
            .retry_backoff
            .max(Duration::from_millis(1));
        loop {
            match self.try_partition_count(topic).await {
                Err(ClientError::Io(_))
                    if start.elapsed() + backoff < self.shared.config.delivery_timeout
                        && !self.shared.closing.load(Ordering::Acquire) =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    async fn try_partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        let mut guard = self.shared.partitions.lock().await;
        if let Some(&n) = guard.1.get(topic) {
            return Ok(n);
        }
        let timed_out = || {
            ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "metadata request timed out",
            ))
        };
        if guard.0.is_none() {
            let conn = tokio::time::timeout(METADATA_TIMEOUT, self.shared.brokers.connect())
                .await
                .map_err(|_| timed_out())??;
            guard.0 = Some(conn);
        }
        let conn = guard.0.as_mut().ok_or(ClientError::Closed)?;
        let ask = conn.metadata_asking(
            Some(vec![topic.to_owned()]),
            self.shared.config.allow_auto_create_topics,
        );
        let asked = tokio::time::timeout(METADATA_TIMEOUT, ask)
            .await
            .map_err(|_| timed_out())
            .and_then(|r| r);
        let meta = match asked {
            Ok(m) => m,
            Err(e) => {
                guard.0 = None;
                self.shared.brokers.failed();
                return Err(e);
            }
        };
        let t = meta.topics.into_iter().next().ok_or(ClientError::Closed)?;
        if t.error_code != ErrorCode::None {
            return Err(ClientError::Broker {
                code: t.error_code,
                message: format!("topic {topic:?}"),
            });
        }
        let n = t.partitions.len() as u32;
        guard.1.insert(topic.to_owned(), n);
        Ok(n)
    }

    /// Sends every buffered record now and waits until each has been
    /// acknowledged or has failed.
    pub async fn flush(&self) {
        self.shared
            .accumulator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seal_all();
        self.shared.wake.notify_one();
        loop {
            let drained = self.shared.drained.notified();
            if self.shared.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }

    /// Flushes, then stops the background task. Later sends fail.
    pub async fn close(&self) {
        {
            let _acc = self
                .shared
                .accumulator
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.closing.store(true, Ordering::Release);
        }
        self.flush().await;
        self.shared.wake.notify_one();
        let handle = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
