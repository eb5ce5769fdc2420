//! Fetch: resolve each partition's offset to a segment file range, wait
//! (long poll) until `min_bytes` are available or `max_wait` passes, and
//! return the ranges. The front-end turns them into a [`Chunk`] list — its
//! own encoded headers interleaved with file ranges — for the gather writer.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use tokio::sync::watch;
use tokio::time::Instant;

use super::leadership::check_leader;
use super::{Refused, Service, blocking, check_partition_list};
use crate::config::DiskIo;
use crate::error::log_error_code;
use crate::log::LogFile;
use crate::partition::Partition;

/// A fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Longest wait for `min_bytes` (capped by `max_fetch_wait_ms`).
    pub max_wait: Duration,
    /// Answer as soon as this many record bytes are available.
    pub min_bytes: u64,
    /// Record bytes wanted over all partitions (capped by
    /// `max_fetch_response_bytes`).
    pub max_bytes: u64,
    /// The partitions and where to read them from.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a [`FetchRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// First offset wanted.
    pub offset: u64,
    /// Record bytes wanted from this partition.
    pub max_bytes: u64,
}

/// A byte range of a segment file holding whole record batches. Holding it
/// keeps the file open even if retention deletes the segment.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The segment file.
    pub file: Arc<dyn LogFile>,
    /// First byte.
    pub position: u64,
    /// Length in bytes (never 0 in a fetch result).
    pub len: u64,
    /// Within `hot_tail_bytes` of the partition's end: taken to be in the
    /// page cache without a residency check.
    pub hot: bool,
}

/// One piece of a response, in sending order.
#[derive(Debug, Clone)]
pub enum Chunk<'a> {
    /// Bytes the front-end encoded.
    Bytes(&'a [u8]),
    /// Record bytes straight from a segment file.
    File(FileRange),
}

/// The result for one partition, in request order.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// `ErrorCode::None` or why the partition could not be read.
    pub error_code: ErrorCode,
    /// The partition's high watermark when resolved.
    pub high_watermark: u64,
    /// The partition's log start offset when resolved.
    pub log_start_offset: u64,
    /// The records, if any.
    pub records: Option<FileRange>,
    /// Where the next read of the partition continues: just past the last
    /// batch of `records`, or the offset asked for when there are none.
    pub next_offset: u64,
}

impl Fetched {
    /// Bytes of records.
    pub fn records_len(&self) -> u64 {
        self.records.as_ref().map_or(0, |r| r.len)
    }
}

/// A fetch's result: one entry per requested partition.
#[derive(Debug, Clone)]
pub struct FetchResult {
    /// Per partition, in request order.
    pub partitions: Vec<Fetched>,
    /// Record bytes over all partitions.
    pub total: u64,
    /// Record bytes the partitions have past their fetch offsets, each
    /// counted up to its `max_bytes`, as far as this answer looked: more
    /// than `total` when a partition's next batch did not fit in it. A
    /// long poll ends once this reaches `min_bytes`, as Kafka's does, not
    /// only once the answer itself holds that much.
    pub available: u64,
}

impl FetchResult {
    /// The common plan: `head` followed by every partition's records back
    /// to back (the native protocol's layout).
    pub fn plan_after<'a>(&self, head: &'a [u8]) -> Vec<Chunk<'a>> {
        let mut chunks = Vec::with_capacity(1 + self.partitions.len());
        chunks.push(Chunk::Bytes(head));
        chunks.extend(
            self.partitions
                .iter()
                .filter_map(|p| p.records.clone().map(Chunk::File)),
        );
        chunks
    }
}

type Looked = Result<Arc<Partition>, ErrorCode>;

impl Service {
    /// Serves a fetch. Waits until `min_bytes` of records are available,
    /// `max_wait` passes, a partition fails, or `stop` turns true; woken by
    /// appends (the partition's high-watermark signal), never by polling.
    ///
    /// The ranges total at most `max_fetch_response_bytes`, except that the
    /// first non-empty range holds at least one whole record batch even if
    /// that is larger (so a consumer always progresses); a later range that
    /// would go past it is left for the next fetch. The request's own byte
    /// limits are approximate: each partition read may end with one whole
    /// batch past them.
    pub async fn fetch(
        self: &Arc<Self>,
        req: FetchRequest,
        stop: watch::Receiver<bool>,
    ) -> Result<FetchResult, Refused> {
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        self.fetch_timed(Arc::new(req), stop, timer).await
    }

    /// [`Service::fetch`] waiting on `timer` (reset to the fetch's deadline)
    /// for `max_wait`. A connection that keeps one timer for all its fetches
    /// and passes it here re-arms it without touching the runtime's timer
    /// wheel when the new deadline is later than the one it is registered
    /// at (tokio only moves the expiry forward): a long poll then costs no
    /// timer registration, and no wake-up of the thread parked in the
    /// reactor, per request. The timer may still be registered when this
    /// returns; it wakes the task that last polled it at its deadline at
    /// most once.
    ///
    /// `req` may come shared: a caller that fetches the same partitions
    /// again (a fetch stream) keeps its `Arc` and moves the offsets with
    /// `Arc::make_mut`, which does not copy once this returned.
    pub async fn fetch_timed(
        self: &Arc<Self>,
        req: Arc<FetchRequest>,
        mut stop: watch::Receiver<bool>,
        mut timer: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<FetchResult, Refused> {
        let entries = req
            .partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition));
        check_partition_list(entries, self.config.max_partitions_per_request)?;
        let looked: Vec<Looked> = req
            .partitions
            .iter()
            .map(|p| self.led_partition(&p.topic, p.partition))
            .collect();
        // Subscribe before resolving, so an append in between is not missed.
        let mut watching = Watching::new(looked.iter().flatten());
        let wait = req.max_wait.min(Duration::from_millis(u64::from(
            self.config.max_fetch_wait_ms,
        )));
        let deadline = Instant::now() + wait;
        let mut armed = false;
        let mut shared = (req, looked);
        loop {
            watching.take_seen();
            let r = self.resolve(&shared).await?;
            watching.resolved();
            // An offline partition refuses a read at its end until it is
            // repaired: answered when the wait ends, so that a client that
            // keeps it in every fetch does not spin on answers without a
            // wait.
            let any_error = r
                .partitions
                .iter()
                .any(|p| !p.error_code.is_ok() && p.error_code != ErrorCode::PartitionOffline);
            if r.total.max(r.available) >= shared.0.min_bytes
                || any_error
                || watching.watched.is_empty()
                || Instant::now() >= deadline
                || *stop.borrow()
            {
                return Ok(r);
            }
            // One partition (the tailing consumer): wait on its signal
            // directly, without boxing a future per partition.
            let changed = async {
                match watching.watched.as_mut_slice() {
                    [only] => only.signal.changed().await.is_err(),
                    many => {
                        let all = many.iter_mut().map(|w| Box::pin(w.signal.changed()));
                        futures::future::select_all(all).await.0.is_err()
                    }
                }
            };
            // Armed once, and only when the fetch has to wait.
            if !armed {
                timer.as_mut().reset(deadline);
                armed = true;
            }
            let gone = tokio::select! {
                gone = changed => gone,
                () = timer.as_mut() => false,
                _ = stop.changed() => false,
            };
            if gone {
                // A partition was deleted meanwhile: answer with what there is.
                return self.resolve(&shared).await;
            }
            // Woken: a partition whose leadership moved to another node
            // meanwhile answers with why, not from this replica's log.
            self.recheck_leaders(&shared.0, &mut shared.1);
        }
    }

    /// Marks the partitions of `req` this broker no longer leads with the
    /// refusal a new fetch would get (replicated partitions only; a
    /// partition not replicated is led here for as long as it exists).
    fn recheck_leaders(&self, req: &FetchRequest, looked: &mut [Looked]) {
        for (p, l) in req.partitions.iter().zip(looked.iter_mut()) {
            if l.is_ok() {
                if let Err(n) = check_leader(self.leadership.as_ref(), &p.topic, p.partition) {
                    *l = Err(n.code());
                }
            }
        }
    }

    /// One resolution, on the blocking pool only with `disk_io =
    /// "blocking-pool"`:
    /// it may read batch headers and fault in index pages.
    async fn resolve(
        self: &Arc<Self>,
        shared: &(Arc<FetchRequest>, Vec<Looked>),
    ) -> Result<FetchResult, Refused> {
        let max_response = self.config.max_fetch_response_bytes;
        let hot_tail = self.config.hot_tail_bytes;
        match self.config.disk_io {
            DiskIo::Reactor | DiskIo::SmallInline => {
                Ok(resolve(&shared.0, &shared.1, max_response, hot_tail))
            }
            DiskIo::BlockingPool => {
                // The pool needs its own: the request shared, the
                // partitions' handles copied (a hop to the pool costs more).
                let (req, looked) = (Arc::clone(&shared.0), shared.1.clone());
                blocking(move || resolve(&req, &looked, max_response, hot_tail))
                    .await
                    .map_err(|e| Refused {
                        code: ErrorCode::Unknown,
                        message: format!("fetch task failed: {e}"),
                    })
            }
        }
    }
}

/// A fetch's subscriptions to its partitions' high-watermark signals, and
/// the value of each it last resolved against. Appends that woke the fetch
/// wait for it ([`Partition::fetch_turn`]): it reports every resolution,
/// and when dropped (the fetch answered, failed or was abandoned) it drops
/// each subscription and then signals its partition, so such a wait never
/// outlives the fetch. One allocation per fetch, as the bare receivers took.
struct Watching {
    watched: Vec<Watched>,
}

struct Watched {
    signal: watch::Receiver<u64>,
    partition: Arc<Partition>,
    /// The watermark value taken before the last resolution.
    seen: u64,
}

impl Watching {
    fn new<'a>(partitions: impl Iterator<Item = &'a Arc<Partition>>) -> Watching {
        Watching {
            watched: partitions
                .map(|p| Watched {
                    signal: p.subscribe(),
                    partition: Arc::clone(p),
                    seen: 0,
                })
                .collect(),
        }
    }

    /// Marks every signal seen, keeping the values, before a resolution.
    fn take_seen(&mut self) {
        for w in &mut self.watched {
            w.seen = *w.signal.borrow_and_update();
        }
    }

    /// Reports the resolution that followed [`Watching::take_seen`].
    fn resolved(&self) {
        for w in &self.watched {
            w.partition.fetch_resolved(w.seen);
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        for Watched {
            signal, partition, ..
        } in std::mem::take(&mut self.watched)
        {
            drop(signal);
            partition.fetch_unsubscribed();
        }
    }
}

/// Resolves every partition to a file range (see [`Service::fetch`]).
fn resolve(req: &FetchRequest, parts: &[Looked], max_response: u32, hot_tail: u64) -> FetchResult {
    let mut out = FetchResult {
        partitions: Vec::with_capacity(parts.len()),
        total: 0,
        available: 0,
    };
    let mut budget = req.max_bytes.min(u64::from(max_response));
    let mut clamp_left = u64::from(max_response);
    for (p, part) in req.partitions.iter().zip(parts) {
        let mut f = Fetched {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: ErrorCode::None,
            high_watermark: 0,
            log_start_offset: 0,
            records: None,
            next_offset: p.offset,
        };
        match part {
            Err(code) => f.error_code = *code,
            Ok(part) if part.is_retired() => f.error_code = ErrorCode::UnknownTopicOrPartition,
            Ok(part) => {
                f.high_watermark = part.log.high_watermark();
                f.log_start_offset = part.log.log_start_offset();
                let max = p.max_bytes.min(budget);
                if max > 0 || out.total == 0 {
                    match part.log.read(p.offset, max.max(1)) {
                        Ok(slice)
                            if out.total > 0 && (slice.len > clamp_left || slice.len > max) =>
                        {
                            // Past the broker's response limit, or a first
                            // batch larger than what is left of the budget
                            // (only the first partition with records gets
                            // one whole, KIP-74): the partition's records
                            // come in a later fetch.
                            f.high_watermark = slice.high_watermark;
                            f.log_start_offset = slice.log_start_offset;
                            out.available += slice.len.min(p.max_bytes);
                        }
                        Ok(slice) if u32::try_from(slice.len).is_err() => {
                            // Cannot be described in a response; never
                            // happens with batches under the frame limit.
                            f.error_code = ErrorCode::MessageTooLarge;
                        }
                        Ok(slice) => {
                            f.high_watermark = slice.high_watermark;
                            f.log_start_offset = slice.log_start_offset;
                            out.total += slice.len;
                            out.available += slice.len;
                            budget = budget.saturating_sub(slice.len);
                            clamp_left = clamp_left.saturating_sub(slice.len);
                            part.counters
                                .bytes_fetched
                                .fetch_add(slice.len, std::sync::atomic::Ordering::Relaxed);
                            if let Some(file) = slice.file.filter(|_| slice.len > 0) {
                                f.next_offset = slice.next_offset;
                                f.records = Some(FileRange {
                                    file,
                                    position: slice.position,
                                    len: slice.len,
                                    hot: slice.bytes_after.saturating_add(slice.len) <= hot_tail,
                                });
                            }
                        }
                        Err(e) => f.error_code = log_error_code(&e),
                    }
                }
            }
        }
        out.partitions.push(f);
    }
    out
}
