//! Produce: append each partition's record set, make it durable when the
//! topic or the producer's acks ask for it (group commit on the log flusher
//! thread, all partitions of one request flushed together, no thread held
//! per waiting request), and report each partition's
//! base offset or error.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::batch::compression::{Codec, first_compressed, recompress};
use sluice_protocol::wire::ErrorCode;

use super::stats::Stats;
use super::{Refused, Service, blocking, check_partition_list};
use crate::config::DiskIo;
use crate::error::{client_message_logged, log_error_code};
use crate::log::LogError;
pub use crate::partition::Acks;
use crate::partition::Partition;

/// A produce request: record sets for some partitions.
#[derive(Debug)]
pub struct ProduceRequest {
    /// What the producer waits for.
    pub acks: Acks,
    /// How long a flush may take before the partitions waiting for it are
    /// answered `RequestTimedOut` (their records stay appended).
    pub timeout: Duration,
    /// The partitions, each with its records' range in `records`.
    pub partitions: Vec<ProducePartition>,
    /// The record bytes of every partition (ranges may lie anywhere in it,
    /// so a front-end passes its frame buffer as is). Offsets are written
    /// into it in place.
    pub records: BytesMut,
}

/// One partition of a [`ProduceRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Where its record batches are in [`ProduceRequest::records`].
    pub records: Range<usize>,
}

/// The outcome for one partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// `ErrorCode::None` if the records were appended (and, if required,
    /// flushed).
    pub error_code: ErrorCode,
    /// Offset of the first record appended.
    pub base_offset: u64,
    /// The partition's log start offset after the append (Kafka's produce
    /// answer carries it); 0 when it failed.
    pub log_start_offset: u64,
    /// Why it failed.
    pub message: Option<String>,
}

type Looked = Result<Arc<Partition>, ErrorCode>;
/// Partitions still to flush: (result index, partition, offset).
type ToFlush = Vec<(usize, Arc<Partition>, u64)>;

impl Service {
    /// Appends every partition's records and returns when they are as
    /// durable as `acks` and the topic require. The whole request is refused
    /// (nothing appended) if it lists too many partitions, a partition twice,
    /// or a range outside `records`.
    /// Each partition's failure is counted in
    /// [`Stats::produce_partition_errors`](super::stats::Stats).
    pub async fn produce(self: &Arc<Self>, req: ProduceRequest) -> Result<Vec<Produced>, Refused> {
        let results = self.append_and_wait(req).await?;
        for p in results.iter().filter(|p| p.error_code != ErrorCode::None) {
            self.stats.produce_partition_errors.count(p.error_code);
        }
        Ok(results)
    }

    /// [`Service::produce`] without the counting.
    async fn append_and_wait(
        self: &Arc<Self>,
        req: ProduceRequest,
    ) -> Result<Vec<Produced>, Refused> {
        let entries = req
            .partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition));
        check_partition_list(entries, self.config.max_partitions_per_request)?;
        if let Some(p) = req
            .partitions
            .iter()
            .find(|p| p.records.start > p.records.end || p.records.end > req.records.len())
        {
            return Err(Refused {
                code: ErrorCode::InvalidRequest,
                message: format!(
                    "records of partition {} of topic {:?} lie outside the request",
                    p.partition, p.topic
                ),
            });
        }
        if let Some(manager) = self.replicas.get() {
            let records = req.records;
            return Ok(super::replicated::produce(
                self,
                manager,
                req.partitions,
                &records,
                req.acks,
                req.timeout,
            )
            .await);
        }
        let looked: Vec<Looked> = req
            .partitions
            .iter()
            .map(|p| self.led_partition(&p.topic, p.partition))
            .collect();
        let acks = req.acks;
        let timeout = req.timeout;
        let partitions = req.partitions;
        let mut records = req.records;
        // Whether a batch will be decompressed, to be checked or re-encoded
        // (a topic with a fixed codec): such an append never runs inline,
        // and takes a decompression slot first (see `log::decompression`).
        let decompresses = looked
            .iter()
            .flatten()
            .any(|part| part.log.compression().is_some())
            || partitions.iter().any(|p| {
                let bytes = records.get(p.records.clone()).unwrap_or_default();
                first_compressed(bytes).is_some()
            });
        let inline = match self.config.disk_io {
            DiskIo::Reactor => true,
            // Small, and no earlier append of these partitions still in
            // flight: an append publishes after the earlier ones, so it would
            // wait for their writes on this reactor thread.
            // Compressed batches are decompressed to be checked, which may
            // take far longer than their size suggests: never inline.
            DiskIo::SmallInline => {
                records.len() <= DiskIo::SMALL_APPEND_BYTES
                    && !decompresses
                    && looked
                        .iter()
                        .flatten()
                        .all(|part| !part.log.appends_in_flight())
            }
            DiskIo::BlockingPool => false,
        };
        let (mut results, to_flush) = match inline {
            true => append_all(self, &partitions, &looked, &mut records, acks),
            false => {
                // The slot is waited for here: no blocking thread is held
                // meanwhile.
                let slot = match decompresses {
                    true => Some(crate::log::decompression::acquire().await),
                    false => None,
                };
                let svc = Arc::clone(self);
                let done = blocking(move || {
                    let _slot = slot.map(crate::log::decompression::Slot::adopt);
                    let r = append_all(&svc, &partitions, &looked, &mut records, acks);
                    // The request's bytes are freed here, off the reactor.
                    drop(records);
                    r
                })
                .await;
                done.map_err(|e| Refused {
                    code: ErrorCode::Unknown,
                    message: format!("append task failed: {e}"),
                })?
            }
        };
        if !to_flush.is_empty() {
            flush_all(&mut results, to_flush, timeout).await;
        }
        Ok(results)
    }
}

impl Service {
    /// Lets the fetches that the appends to `appended` (topic, partition)
    /// woke answer before the producer is: a tailing consumer waits for
    /// these records, while the produce answer only frees a producer's slot.
    ///
    /// Each watched partition watched by one fetch (tailing consumers, one
    /// per partition, or one consumer over several partitions): waits for
    /// those fetches to resolve against the new high watermarks
    /// ([`Partition::fetch_turn`]). The append woke the first of them on
    /// this thread, so it runs here next, wakes this task once it has
    /// resolved, and sends its response in the same turn, before this task
    /// resumes; no other runtime thread is woken for the wait. Otherwise (a
    /// partition watched by several fetches, or fetch resolution on the
    /// blocking pool) yields once, which lets fetches woken on this thread
    /// run first but may wake an idle runtime thread for this task. Returns
    /// at once when no fetch watches.
    pub async fn let_woken_fetches_answer<'a>(
        &self,
        appended: impl Iterator<Item = (&'a str, u32)>,
    ) {
        let mut watched = appended
            .filter_map(|(topic, partition)| self.topics.partition(topic, partition).ok())
            .filter(|p| p.has_waiters());
        let Some(first) = watched.next() else {
            return;
        };
        if self.config.disk_io == DiskIo::BlockingPool {
            tokio::task::yield_now().await;
            return;
        }
        match watched.next() {
            None if first.waiters() == 1 => first.fetch_turn().await,
            None => tokio::task::yield_now().await,
            Some(second) => {
                // Several partitions (no allocation for the common single one).
                let all: Vec<Arc<Partition>> = [first, second].into_iter().chain(watched).collect();
                if all.iter().all(|p| p.waiters() == 1) {
                    futures::future::join_all(all.iter().map(|p| p.fetch_turn())).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// Appends each partition's records; returns the results and the partitions
/// still to flush (result index, partition, offset). Blocking.
fn append_all(
    svc: &Service,
    partitions: &[ProducePartition],
    looked: &[Looked],
    records: &mut [u8],
    acks: Acks,
) -> (Vec<Produced>, ToFlush) {
    let mut results = Vec::with_capacity(partitions.len());
    let mut to_flush = Vec::new();
    for (i, (p, part)) in partitions.iter().zip(looked).enumerate() {
        let mut result = Produced {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: ErrorCode::None,
            base_offset: 0,
            log_start_offset: 0,
            message: None,
        };
        let bytes = records.get_mut(p.records.clone()).unwrap_or_default();
        match part {
            Err(code) => {
                result.error_code = *code;
                result.message = Some(svc.refusal_message(*code, &p.topic, p.partition));
            }
            Ok(part) => match recompressed(part, bytes).and_then(|mut new| match &mut new {
                Some(new) => part.append(new, acks),
                None => part.append(bytes, acks),
            }) {
                Ok(appended) => {
                    Stats::add(&svc.stats.produce_bytes, bytes.len() as u64);
                    result.base_offset = appended.info.base_offset;
                    result.log_start_offset = part.log.log_start_offset();
                    if let Some(offset) = appended.flush_to {
                        to_flush.push((i, Arc::clone(part), offset));
                    }
                }
                Err(e) => {
                    result.error_code = log_error_code(&e);
                    result.message = Some(client_message_logged(
                        &e,
                        format_args!("a produce to {}-{}", result.topic, result.partition),
                    ));
                }
            },
        }
        results.push(result);
    }
    (results, to_flush)
}

/// The record set re-encoded in the topic's fixed codec, if it has one and
/// some batch is not in it; `None` to append the bytes as they are.
/// Blocking (decompression and compression).
pub(super) fn recompressed(part: &Partition, bytes: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
    let Some(codec) = part.log.compression() else {
        return Ok(None);
    };
    // Every batch not in the codec is decompressed (see `decompression`).
    let _slot = crate::log::decompression::enter();
    recompress(
        bytes,
        Codec::new(codec),
        part.log.config().max_decompressed_batch_bytes,
    )
    .map_err(|(position, source)| LogError::InvalidBatch { position, source })
}

/// Flushes the partitions of one request together as one group commit on
/// the log flusher thread (no thread waits per request), waiting at most
/// `timeout`. The flush goes on if the wait times out; its records stay
/// appended and become visible when it completes.
async fn flush_all(results: &mut [Produced], to_flush: ToFlush, timeout: Duration) {
    let indexes: Vec<usize> = to_flush.iter().map(|(i, _, _)| *i).collect();
    let items: Vec<(Arc<Partition>, u64)> = to_flush
        .into_iter()
        .map(|(_, part, offset)| (part, offset))
        .collect();
    // Spawned, so that the high watermarks are published when the flush
    // completes even if this request stops waiting for it.
    let flush = tokio::spawn(async move { Partition::flush_all(&items).await });
    let timeout = timeout.max(Duration::from_millis(1));
    let mut fail_all = |code: ErrorCode, msg: String| {
        for i in &indexes {
            if let Some(r) = results.get_mut(*i) {
                r.error_code = code;
                r.message = Some(msg.clone());
            }
        }
    };
    match tokio::time::timeout(timeout, flush).await {
        Ok(Ok(outcomes)) => {
            for (i, outcome) in indexes.iter().zip(outcomes) {
                if let (Err(e), Some(r)) = (outcome, results.get_mut(*i)) {
                    r.error_code = log_error_code(&e);
                    r.message = Some(client_message_logged(
                        &e,
                        format_args!("a flush of {}-{}", r.topic, r.partition),
                    ));
                }
            }
        }
        Ok(Err(join)) => fail_all(ErrorCode::Unknown, format!("flush task failed: {join}")),
        Err(_) => fail_all(
            ErrorCode::RequestTimedOut,
            format!("not durable within {timeout:?}"),
        ),
    }
}
