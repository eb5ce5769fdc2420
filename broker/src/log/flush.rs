//! Durability: group-committed `fdatasync`, the recovery-point checkpoint,
//! periodic maintenance and clean shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::LogError;
use super::config::FlushPolicy;
use super::format::{CHECKPOINT_FILE, CLEAN_SHUTDOWN_FILE, Checkpoint};
use super::io::{LogFile, OpenMode, write_file_atomically};
use super::partition::{LogPoint, PartitionLog};
use super::retention::RetainOutcome;

/// What one call of [`PartitionLog::maintain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintainOutcome {
    /// Whether data was flushed.
    pub flushed: bool,
    /// What retention deleted.
    pub retained: RetainOutcome,
}

impl PartitionLog {
    /// Makes every record below `offset` durable (`fdatasync` of the segment
    /// files, and of the directory when segments were created), then
    /// advances the recovery point and, with [`FlushPolicy::BeforeAck`], the
    /// high watermark.
    ///
    /// Group commit: callers arriving while a flush runs wait for it, and
    /// most find their data covered by the next one, so many concurrent
    /// appends share one `fdatasync`. Blocking: call it from a thread that may
    /// block.
    ///
    /// A failed `fdatasync` takes the log offline (the kernel may have dropped
    /// the dirty pages, so retrying could report success for lost data): it
    /// refuses further appends and flushes until reopened, and returns the
    /// error. Reads keep working.
    pub fn flush_to(&self, offset: u64) -> Result<(), LogError> {
        let target = offset.min(self.next_offset());
        if self.recovery_point() >= target {
            return Ok(());
        }
        let _guard = self.flush_lock.lock();
        if self.recovery_point() >= target {
            return Ok(());
        }
        let (files, point, dir_changes) = {
            let state = self.state.lock();
            if let Some(refused) = self.refusal(&state) {
                return Err(refused);
            }
            let from = state.segment_index(state.durable.offset);
            let to = state.segment_index(target.saturating_sub(1));
            let files: Vec<Arc<dyn LogFile>> = state
                .segments
                .range(from..=to.max(from))
                .map(|s| s.file())
                .collect::<Result<_, _>>()?;
            let last = state.segments.get(to.max(from));
            let point = match last {
                Some(s) if s.is_sealed() => LogPoint {
                    offset: s.next_offset(),
                    segment_base: s.base_offset(),
                    position: s.size(),
                },
                _ => state.end,
            };
            (files, point, state.dir_changes)
        };
        for file in &files {
            let started = std::time::Instant::now();
            let synced = file.sync_data();
            crate::metrics::FSYNC_LATENCY.observe(started.elapsed());
            if let Err(e) = synced {
                return Err(self.fail_flush("fdatasync", e));
            }
        }
        let dir_synced = self.state.lock().dir_synced;
        if dir_changes != dir_synced {
            match self.fs.sync_dir(&self.dir) {
                Ok(()) => {}
                // The directory could not be opened for its sync: nothing
                // was written back, so nothing may have been dropped. The
                // flush fails and is tried again (the next one syncs the
                // directory); taking the partition offline for it took 45
                // of 50 partitions offline at one moment of descriptor
                // shortage, for good.
                Err(e) if not_opened(&e) => {
                    return Err(LogError::io("open for fsync", &self.dir, e));
                }
                Err(e) => return Err(self.fail_flush("fsync of the directory", e)),
            }
        }
        let checkpoint = {
            let mut state = self.state.lock();
            state.dir_synced = dir_changes;
            state.last_flush = SystemTime::now();
            if point.offset > state.durable.offset {
                state.durable = point;
                state.trim_open_sealed();
            }
            self.recovery_point
                .store(state.durable.offset, Ordering::Release);
            if self.config.flush == FlushPolicy::BeforeAck && state.external_hw.is_none() {
                self.high_watermark
                    .store(state.durable.offset, Ordering::Release);
            }
            // Keep recovery bounded: checkpoint whenever the durable point
            // left the segment of the last checkpoint.
            let moved = state.segment_index(state.durable.offset)
                != state.segment_index(state.checkpointed);
            let rp = self.checkpointable(state.durable.offset);
            (moved && rp > state.checkpointed).then_some(rp)
        };
        if let Some(rp) = checkpoint {
            self.checkpoint_or_report(rp);
        }
        Ok(())
    }

    /// Writes a checkpoint that only keeps recovery short: the data it
    /// vouches for is durable already, so a failure (a full disk) fails
    /// neither the flush nor the upkeep after it (retention above all,
    /// which frees the space). It is reported once, and tried again at
    /// the next flush or upkeep; recovery meanwhile rescans from the last
    /// checkpoint written.
    fn checkpoint_or_report(&self, recovery_point: u64) {
        match self.write_checkpoint(recovery_point) {
            Ok(()) => {
                let mut state = self.state.lock();
                if std::mem::take(&mut state.checkpoint_failing) {
                    tracing::info!(dir = %self.dir.display(), "recovery-point checkpoint written again");
                }
            }
            Err(e) => {
                let mut state = self.state.lock();
                if !std::mem::replace(&mut state.checkpoint_failing, true) {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        error = %e,
                        "could not write the recovery-point checkpoint (the data is durable; a restart rescans more of the log)"
                    );
                }
                // Tried again at the next upkeep, not at once.
                state.last_checkpoint = SystemTime::now();
            }
        }
    }

    /// Flushes everything appended so far; see [`PartitionLog::flush_to`].
    pub fn flush(&self) -> Result<(), LogError> {
        self.flush_to(self.next_offset())
    }

    fn fail_flush(&self, what: &str, e: std::io::Error) -> LogError {
        let reason = format!("{what} failed: {e}");
        tracing::error!(dir = %self.dir.display(), %reason, "taking partition log offline");
        self.state.lock().offline = Some(reason.clone());
        self.offline_error(&reason)
    }

    /// How often, at most, [`PartitionLog::maintain`] checkpoints a recovery
    /// point that moved inside the active segment (a flush that leaves a
    /// segment checkpoints at once). Kafka checkpoints every 60 s
    /// (`log.flush.offset.checkpoint.interval.ms`).
    pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

    /// The recovery point a checkpoint may record for the durable point
    /// `durable`: at most what [`PartitionLog::cap_checkpoints`] allows.
    fn checkpointable(&self, durable: u64) -> u64 {
        durable.min(self.checkpoint_cap.load(Ordering::Acquire))
    }

    /// Keeps later checkpoints at or below `offset` (raised as the owner
    /// learns more is durable). A replicated partition sets it to the end
    /// of its synced Raft index, which it syncs alongside the segments: a
    /// checkpoint must not vouch for offsets whose index records a power
    /// cut could still take, or recovery would take the loss of those
    /// records for damage. Unset, checkpoints follow the durable point.
    pub fn cap_checkpoints(&self, offset: u64) {
        self.checkpoint_cap.store(offset, Ordering::Release);
    }

    /// Writes the recovery-point checkpoint durably: a temporary file,
    /// `fdatasync`, rename over the old one, directory sync.
    pub(crate) fn write_checkpoint(&self, recovery_point: u64) -> Result<(), LogError> {
        let bytes = Checkpoint { recovery_point }.encode();
        write_file_atomically(&*self.fs, &self.dir, CHECKPOINT_FILE, &bytes)
            .map_err(|e| LogError::io("write checkpoint in", &self.dir, e))?;
        let mut state = self.state.lock();
        state.checkpointed = state.checkpointed.max(recovery_point);
        state.last_checkpoint = SystemTime::now();
        Ok(())
    }

    /// Periodic upkeep, to be called every few seconds by the log's owner:
    /// flushes when the [`FlushPolicy::Interval`] is due, flushes sealed
    /// segments that are not yet durable (so recovery stays short under
    /// every policy), seals an active segment past its retention age
    /// ([`PartitionLog::roll_expired_active`]), writes the producer table
    /// the last roll took, applies retention, and closes the files of
    /// sealed segments nobody read for a while.
    pub fn maintain(&self, now: SystemTime) -> Result<MaintainOutcome, LogError> {
        let mut outcome = self.maintain_except_retention(now)?;
        outcome.retained = self.retain(now)?;
        Ok(outcome)
    }

    /// [`PartitionLog::maintain`] without retention: for a replicated
    /// partition, whose retention must keep what its Raft log still reads
    /// (see `ReplicatedPartition::retain`).
    pub fn maintain_except_retention(&self, now: SystemTime) -> Result<MaintainOutcome, LogError> {
        let mut outcome = MaintainOutcome::default();
        let (active_base, last_flush) = {
            let state = self.state.lock();
            (state.active().base_offset(), state.last_flush)
        };
        let due = match self.config.flush {
            FlushPolicy::Interval(every) => now
                .duration_since(last_flush)
                .is_ok_and(|waited| waited >= every),
            FlushPolicy::Never | FlushPolicy::BeforeAck => false,
        };
        if due && self.recovery_point() < self.next_offset() {
            self.flush()?;
            outcome.flushed = true;
        } else if self.recovery_point() < active_base {
            self.flush_to(active_base)?;
            outcome.flushed = true;
        }
        // What was flushed inside the active segment is checkpointed too,
        // at most every [`PartitionLog::CHECKPOINT_INTERVAL`]: recovery then treats damage
        // below it as damage of flushed data (the partition goes offline,
        // nothing is cut) rather than as an unflushed tail, and rescans
        // only what lies past it.
        // Under the flush lock, as every checkpoint write: a truncation
        // lowers the checkpoint before it cuts, and nothing may raise it
        // again meanwhile. Not for an offline log, whose files stay as
        // they are.
        let flush_guard = self.flush_lock.lock();
        let stale = {
            let state = self.state.lock();
            let since = now
                .duration_since(state.last_checkpoint)
                .unwrap_or_default();
            let rp = self.checkpointable(state.durable.offset);
            (self.refusal(&state).is_none()
                && rp > state.checkpointed
                && since >= Self::CHECKPOINT_INTERVAL)
                .then_some(rp)
        };
        if let Some(rp) = stale {
            self.checkpoint_or_report(rp);
        }
        drop(flush_guard);
        if let Err(e) = self.roll_expired_active(now) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not roll an expired active segment");
        }
        // The producer table as of the last roll, in every mode: retention
        // writes it too before it deletes a segment, but a replicated log's
        // retention runs only when it deletes, and recovery after a crash
        // rescans the log from the newest snapshot on.
        self.write_pending_producer_snapshot();
        self.expire_producers(now);
        self.state.lock().release_idle_sealed();
        Ok(outcome)
    }

    /// Closes the log cleanly; see [`PartitionLog::shutdown`].
    pub fn close(self) -> Result<(), LogError> {
        self.shutdown()
    }

    /// Takes the log out of service because its topic is being deleted:
    /// appends and flushes are refused from now on with
    /// [`LogError::Deleted`] (the appends in flight finish first), and
    /// nothing is flushed, trimmed or marked clean, since the files are
    /// about to go. Readers holding a slice keep reading its file.
    pub fn close_for_deletion(&self) {
        let mut state = self.state.lock();
        state.deleted = true;
        state.closing = true;
        while !state.pending.is_idle() {
            self.turn.wait(&mut state);
        }
        state
            .offline
            .get_or_insert_with(|| "the log's topic was deleted".to_owned());
    }

    /// Shuts the log down cleanly: flushes, trims the active segment's
    /// indexes, writes the checkpoint and the clean-shutdown marker, so the
    /// next open skips recovery; afterwards the log refuses appends. An
    /// offline log is left without the marker (its next open recovers).
    pub fn shutdown(&self) -> Result<(), LogError> {
        if self.is_offline() {
            return Ok(());
        }
        // Refuse appends first, so everything covered by the marker was
        // flushed.
        {
            let mut state = self.state.lock();
            state.closing = true;
            while !state.pending.is_idle() {
                self.turn.wait(&mut state);
            }
        }
        self.flush()?;
        self.snapshot_producers_now();
        let mut state = self.state.lock();
        state.active_mut().trim_indexes()?;
        state.offline = Some("the log was shut down".to_owned());
        drop(state);
        self.write_checkpoint(self.next_offset())?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let file = self
            .fs
            .open(&marker, OpenMode::Create)
            .map_err(|e| LogError::io("create", &marker, e))?;
        file.sync_data()
            .map_err(|e| LogError::io("fdatasync", &marker, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io("fsync", &self.dir, e))?;
        Ok(())
    }
}

/// Whether `e` is a failure to open a file (out of descriptors or memory),
/// which `fsync` itself never reports: the sync did not run, so no write
/// back failed.
fn not_opened(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    )
}

/// A flush request waiting for the log flusher thread.
struct FlushRequest {
    log: Arc<PartitionLog>,
    offset: u64,
    done: tokio::sync::oneshot::Sender<Result<(), LogError>>,
}

/// The process-wide log flusher: one thread that takes every queued flush
/// request at once, runs one [`PartitionLog::flush_to`] per partition (to
/// the largest offset asked of it), and completes the waiters. Waiting
/// requests cost a queue entry and a oneshot channel, no thread.
struct Flusher {
    queue: parking_lot::Mutex<Vec<FlushRequest>>,
    wake: parking_lot::Condvar,
}

impl Flusher {
    fn get() -> &'static Flusher {
        static FLUSHER: std::sync::OnceLock<&'static Flusher> = std::sync::OnceLock::new();
        FLUSHER.get_or_init(|| {
            let flusher: &'static Flusher = Box::leak(Box::new(Flusher {
                queue: parking_lot::Mutex::new(Vec::new()),
                wake: parking_lot::Condvar::new(),
            }));
            let spawned = std::thread::Builder::new()
                .name("sluice-log-flusher".to_owned())
                .spawn(move || flusher.run());
            if let Err(e) = spawned {
                // Without the thread, requests are flushed by the caller
                // (see `submit`).
                tracing::error!(error = %e, "could not start the log flusher thread");
            } else {
                FLUSHER_RUNNING.store(true, Ordering::Release);
            }
            flusher
        })
    }

    fn submit(&self, requests: Vec<FlushRequest>) {
        if !FLUSHER_RUNNING.load(Ordering::Acquire) {
            Self::complete(requests);
            return;
        }
        self.queue.lock().extend(requests);
        self.wake.notify_one();
    }

    fn run(&self) {
        loop {
            let batch = {
                let mut queue = self.queue.lock();
                while queue.is_empty() {
                    self.wake.wait(&mut queue);
                }
                std::mem::take(&mut *queue)
            };
            // A panic fails this batch's waiters (their senders drop), not
            // the thread.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Self::complete(batch);
            }));
        }
    }

    /// Flushes each partition of `batch` once, to the largest offset asked,
    /// then answers every request.
    fn complete(batch: Vec<FlushRequest>) {
        let mut targets: Vec<(&Arc<PartitionLog>, u64)> = Vec::new();
        for r in &batch {
            match targets.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &r.log)) {
                Some((_, o)) => *o = (*o).max(r.offset),
                None => targets.push((&r.log, r.offset)),
            }
        }
        for (log, offset) in targets {
            // An error takes the log offline; each waiter learns it below.
            let _ = log.flush_to(offset);
        }
        for r in batch {
            // Covered now (an atomic load), or the log's error again.
            let result = r.log.flush_to(r.offset);
            let _ = r.done.send(result);
        }
    }
}

static FLUSHER_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl PartitionLog {
    /// [`PartitionLog::flush_to`] without blocking the caller: the
    /// `fdatasync` runs on the process-wide log flusher thread, which groups
    /// every request queued meanwhile (of this and other partitions) into
    /// one flush per partition. A waiting caller holds no thread; the
    /// future resolves once every record below `offset` is durable (and,
    /// with [`FlushPolicy::BeforeAck`], visible), or with the error that
    /// took the log offline. Already covered offsets resolve at once.
    pub fn flush_to_async(
        self: &Arc<Self>,
        offset: u64,
    ) -> impl std::future::Future<Output = Result<(), LogError>> + Send + 'static {
        let mut all = Self::flush_all_async([(Arc::clone(self), offset)]);
        async move { all.pop_result().await }
    }

    /// Flushes several partitions (those of one produce request) together
    /// on the log flusher thread; see [`PartitionLog::flush_to_async`]. The
    /// results come in the order of `items`.
    pub fn flush_all_async(
        items: impl IntoIterator<Item = (Arc<PartitionLog>, u64)>,
    ) -> FlushWaiters {
        let mut waiting = Vec::new();
        let mut requests = Vec::new();
        for (log, offset) in items {
            let target = offset.min(log.next_offset());
            if log.recovery_point() >= target {
                waiting.push(Waiter::Done);
                continue;
            }
            let (done, rx) = tokio::sync::oneshot::channel();
            waiting.push(Waiter::Pending(log.dir.clone(), rx));
            requests.push(FlushRequest { log, offset, done });
        }
        if !requests.is_empty() {
            Flusher::get().submit(requests);
        }
        FlushWaiters { waiting }
    }
}

enum Waiter {
    Done,
    Pending(
        std::path::PathBuf,
        tokio::sync::oneshot::Receiver<Result<(), LogError>>,
    ),
}

/// The pending results of [`PartitionLog::flush_all_async`].
pub struct FlushWaiters {
    waiting: Vec<Waiter>,
}

impl std::fmt::Debug for FlushWaiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushWaiters")
            .field("partitions", &self.waiting.len())
            .finish()
    }
}

impl FlushWaiters {
    /// Waits for every flush; one result per partition, in request order.
    pub async fn wait(self) -> Vec<Result<(), LogError>> {
        let mut out = Vec::with_capacity(self.waiting.len());
        for w in self.waiting {
            out.push(Self::one(w).await);
        }
        out
    }

    async fn pop_result(&mut self) -> Result<(), LogError> {
        match self.waiting.pop() {
            Some(w) => Self::one(w).await,
            None => Ok(()),
        }
    }

    async fn one(w: Waiter) -> Result<(), LogError> {
        match w {
            Waiter::Done => Ok(()),
            Waiter::Pending(dir, rx) => rx.await.unwrap_or_else(|_| {
                Err(LogError::Offline {
                    dir,
                    reason: "the log flusher stopped".to_owned(),
                })
            }),
        }
    }
}
