//! The TCP server: the native protocol front-end over the
//! [`crate::service`] layer.
//!
//! - [`Broker`]: the [`Service`] (settings, topics, committed offsets,
//!   counters) plus what only the network server needs: the request memory
//!   budget and the data-directory lock.
//! - [`run`]: the listener: accepts connections up to the cap (closing
//!   those over it at once), runs
//!   periodic maintenance, and on shutdown stops accepting, lets requests in
//!   flight finish, and shuts the logs down cleanly.
//! - `native`: the native protocol — `native::connection` reads frames
//!   (with all limits on what a client may hold), `native` decodes each
//!   request, calls the service and encodes the answer.
//! - `kafka`: the Kafka protocol front-end over the same connection
//!   machinery and service (see `docs/kafka.md`).
//! - `gather`: sends any interleaving of encoded bytes and segment file
//!   ranges (`MSG_MORE`, `sendfile(2)`, cold ranges read in off the reactor).

pub mod gather;
pub mod kafka;
mod native;
pub(crate) mod seats;
/// Counters (kept here under their old path; they live in the service).
pub use crate::service::stats;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sluice_protocol::wire::frame::LEN_PREFIX;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::offsets::OffsetStore;
use crate::producer::ids::ProducerIds;
use crate::service::Service;
use crate::service::leadership::{Installable, Leadership, SingleNode};
use crate::topics::TopicStore;
use stats::Stats;

/// Everything the connections share: the service, and the native server's
/// own state. Dereferences to the [`Service`].
#[derive(Debug)]
pub struct Broker {
    /// The protocol-independent service.
    pub service: Arc<Service>,
    /// The shared part of the request budget (bytes of request frames
    /// beyond each connection's baseline buffer): large frames grow into it
    /// step by step.
    pub(crate) request_budget: Arc<Semaphore>,
    /// The reserve part of the budget, one maximum frame: taken whole for
    /// the rest of a frame when the shared part is exhausted. Its holders
    /// never wait for more, so growing frames cannot deadlock.
    pub(crate) request_reserve: Arc<Semaphore>,
    /// The whole budget's size in bytes (permits of both parts).
    pub(crate) request_budget_total: u64,
    /// Exclusive lock on the data directory, held for the broker's life.
    _lock: nix::fcntl::Flock<std::fs::File>,
    /// The leadership of a broker without `--cluster` (the service's
    /// default): `main` records the bound listener addresses in it.
    pub single_node: Arc<SingleNode>,
    /// The service's leadership: `single_node` until `main` installs the
    /// cluster's view (cluster mode).
    pub leadership_slot: Arc<Installable>,
}

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = ".lock";

/// Takes an exclusive `flock` on `<data_dir>/.lock`, so two brokers never
/// share a data directory.
fn lock_data_dir(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, BrokerError> {
    let named = |what: &str, path: &std::path::Path, e: std::io::Error| {
        BrokerError::Io(std::io::Error::new(
            e.kind(),
            format!("{what} {}: {e}", path.display()),
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| named("cannot create", dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| named("cannot open", &path, e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| {
            BrokerError::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "data directory {} is in use by another broker (cannot lock {}: {errno})",
                    dir.display(),
                    path.display()
                ),
            ))
        },
    )
}

impl Broker {
    /// Opens the data directory: topics (recovering their partitions) and
    /// committed offsets. Blocking.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        Self::open_with(config, Arc::new(crate::log::StdFs))
    }

    /// [`Broker::open`] with the topics' partition logs and the committed
    /// offsets doing their file I/O through `fs` (tests inject disk faults
    /// and take crash images this way).
    pub fn open_with(
        config: BrokerConfig,
        fs: Arc<dyn crate::log::FileSystem>,
    ) -> Result<Arc<Broker>, BrokerError> {
        config.validate().map_err(|message| BrokerError::Request {
            code: sluice_protocol::wire::ErrorCode::InvalidConfig,
            message,
        })?;
        let lock = lock_data_dir(&config.data_dir)?;
        // Before the partitions recover their producer tables.
        crate::producer::state::ProducerBudget::global()
            .set_max(usize::try_from(config.max_producer_states).unwrap_or(usize::MAX));
        let topics = TopicStore::open_with(
            Arc::clone(&fs),
            &config.data_dir,
            config.topic_defaults.clone(),
        )?
        .with_max_partitions(config.max_partitions)
        .with_max_partitions_name(config.max_partitions_name());
        let stats = Stats {
            partitions_offline_at_open: topics.partitions_offline_at_open().into(),
            ..Stats::default()
        };
        let producer_ids = ProducerIds::open(Arc::clone(&fs), &config.data_dir)?;
        let offsets = Arc::new(OffsetStore::open(
            fs,
            &config.data_dir,
            config.offsets_config(),
        )?);
        // Offsets of topics deleted while the broker was down (or before a
        // crash let it write their tombstones) are forgotten.
        offsets.forget_topics(|t| topics.topic(t).is_some())?;
        crate::log::decompression::set_slots(crate::log::decompression::slots_for(
            config.max_decompressed_bytes_in_flight,
            config.topic_defaults.max_decompressed_batch_bytes,
        ));
        let budget = config.max_request_bytes_in_flight.min(u64::from(u32::MAX)) as usize;
        // `validate` checked that the budget holds at least one whole frame.
        let reserve = (config.max_frame_bytes as usize + LEN_PREFIX).min(budget);
        let groups = crate::group::Coordinator::open(config.group_config(), Arc::clone(&offsets));
        let single_node = Arc::new(SingleNode::default());
        let leadership_slot = Arc::new(Installable::new(Arc::clone(&single_node)));
        let free_space = Arc::new(crate::replication::free_space::FreeSpace::new(
            &config.data_dir,
            config.min_free_bytes,
        ));
        Ok(Arc::new(Broker {
            service: Arc::new(Service {
                free_space,
                config,
                topics,
                offsets,
                stats,
                producer_ids,
                groups,
                bound_listen: Default::default(),
                bound_kafka: Default::default(),
                leadership: Arc::clone(&leadership_slot) as Arc<dyn Leadership>,
                cluster: Default::default(),
                replicas: Default::default(),
            }),
            request_budget: Arc::new(Semaphore::new(budget - reserve)),
            request_reserve: Arc::new(Semaphore::new(reserve)),
            request_budget_total: budget as u64,
            _lock: lock,
            single_node,
            leadership_slot,
        }))
    }

    /// Bytes of the request budget currently held by frames.
    pub fn request_bytes_held(&self) -> u64 {
        let free =
            self.request_budget.available_permits() + self.request_reserve.available_permits();
        self.request_budget_total.saturating_sub(free as u64)
    }

    /// Flushes and closes every log, writing clean-shutdown markers. Blocking.
    pub fn shutdown(&self) {
        self.service.shutdown();
    }
}

impl std::ops::Deref for Broker {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

/// Serves connections from `listener` until `shutdown` completes, then
/// stops accepting, waits (up to 10 s) for requests in flight, and shuts the
/// broker's logs down cleanly.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    run_with_kafka(listener, None, broker, shutdown).await
}

/// [`run`] with a second listener speaking the Kafka protocol: its
/// connections count against the same connection cap and request budget,
/// and shut down the same way.
pub async fn run_with_kafka(
    listener: TcpListener,
    kafka: Option<(TcpListener, kafka::Advertised)>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    run_then_close(listener, kafka, broker, shutdown, async {}).await
}

/// [`run_with_kafka`] that awaits `before_close` after the requests in
/// flight are done and before the logs are closed (cluster mode: the
/// partition groups and the controller stop there, so nothing writes to a
/// log after its clean-shutdown marker).
pub async fn run_then_close(
    listener: TcpListener,
    kafka: Option<(TcpListener, kafka::Advertised)>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
    before_close: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    use crate::throttle::Throttle;
    use native::connection::Front;
    let (kafka, advertised) = match kafka {
        Some((l, a)) => (Some(l), Some(Arc::new(a))),
        None => (None, None),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let seats = seats::Seats::with_per_address(
        broker.config.max_connections,
        broker.config.max_connections_per_ip,
    );
    let mut connections = JoinSet::new();
    let maintenance = tokio::spawn(maintain(Arc::clone(&broker), stop_rx.clone()));
    let offset_expiry = tokio::spawn(expire_offsets(Arc::clone(&broker), stop_rx.clone()));

    let accept = async {
        // Repeated warnings (out of file descriptors, a flood over the
        // connection limit): at most one line every 10 s each.
        let accept_failed = Throttle::new(Duration::from_secs(10));
        let over_limit = Throttle::new(Duration::from_secs(10));
        let over_address_limit = Throttle::new(Duration::from_secs(10));
        let displaced = Throttle::new(Duration::from_secs(10));
        loop {
            let kafka_accept = async {
                match &kafka {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            };
            let (accepted, front) = tokio::select! {
                a = listener.accept() => (a, Front::Native),
                a = kafka_accept => match &advertised {
                    Some(adv) => (a, Front::Kafka(Arc::clone(adv))),
                    None => continue,
                },
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    if let Some(held_back) = accept_failed.allow() {
                        tracing::warn!(error = %e, held_back, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let seat = match seats.admit(peer.ip()) {
                seats::Admission::Free(seat) => seat,
                seats::Admission::TakenOver(seat) => {
                    // A connection silent past its grace gave way.
                    Stats::add(&broker.stats.connections_displaced, 1);
                    if let Some(held_back) = displaced.allow() {
                        tracing::warn!(%peer, max = broker.config.max_connections, max_per_ip = broker.config.max_connections_per_ip, held_back, "connection limit reached (max_connections, or max_connections_per_ip of this client address); closed a silent connection to seat a new one");
                    }
                    seat
                }
                seats::Admission::Full => {
                    // Over the cap with nobody to give way: close at once,
                    // so a flood cannot hold the accept queue and the
                    // clients already served go on as before.
                    Stats::add(&broker.stats.connections_rejected, 1);
                    if let Some(held_back) = over_limit.allow() {
                        tracing::warn!(%peer, max = broker.config.max_connections, held_back, "connection limit reached; closing new connection");
                    }
                    drop(stream);
                    continue;
                }
                seats::Admission::AddressFull => {
                    // As Kafka's `max.connections.per.ip`: this client
                    // address holds its share, all of them busy.
                    Stats::add(&broker.stats.connections_rejected, 1);
                    if let Some(held_back) = over_address_limit.allow() {
                        tracing::warn!(%peer, max_per_ip = broker.config.max_connections_per_ip, held_back, "connection limit of this client address reached (max_connections_per_ip); closing new connection");
                    }
                    drop(stream);
                    continue;
                }
            };
            Stats::add(&broker.stats.connections_accepted, 1);
            let front = reachable_front(front, &stream);
            let broker = Arc::clone(&broker);
            let stop = stop_rx.clone();
            connections.spawn(async move {
                // A restarted cluster node serves once its metadata has
                // caught up with the controller's (see
                // `Cluster::wait_caught_up`).
                if let Some(cluster) = broker.cluster.get() {
                    let mut stopping = stop.clone();
                    tokio::select! {
                        _ = cluster.wait_caught_up(CATCH_UP_WAIT) => {}
                        _ = stopping.changed() => return,
                    }
                }
                native::connection::serve(stream, peer, broker, stop, front, seat).await;
            });
            // Reap finished connections so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still busy after 10 s; closing them");
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    let _ = maintenance.await;
    let _ = offset_expiry.await;
    before_close.await;
    let b = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .map_err(|e| BrokerError::Io(std::io::Error::other(e)))?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// How long a connection to a restarted cluster node waits for the node's
/// metadata to catch up with the controller's before it is served anyway.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// Every `offsets_retention_check_interval_ms`: removes the committed
/// offsets of groups without members that are older than
/// `offsets_retention_ms` (unless that is 0), and groups left with nothing.
async fn expire_offsets(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let retention = broker.config.offsets_retention_ms;
    if retention == 0 {
        return;
    }
    let every = Duration::from_millis(broker.config.offsets_retention_check_interval_ms.max(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        broker
            .groups
            .expire_offsets(Duration::from_millis(retention))
            .await;
    }
}

/// Every `maintenance_interval_ms`: flushes due partitions, flushes sealed
/// segments, applies retention, and wakes fetches whose high watermark moved.
async fn maintain(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(broker.config.maintenance_interval_ms.max(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let b = Arc::clone(&broker);
        // Cluster mode: every partition is replicated; retention goes
        // through the groups below.
        let replicas = broker.replicas.get().cloned();
        let replicated = replicas.is_some();
        let done = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let mut failed = 0usize;
            let mut first = None;
            for p in b.topics.all_partitions() {
                let r = match replicated {
                    true => p.maintain_replicated(now),
                    false => p.maintain(now),
                };
                match r {
                    Ok(()) => {}
                    // Said (as an error) when it was taken offline; its
                    // state is in Metadata and the metrics.
                    Err(crate::log::LogError::Offline { .. }) => {}
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert_with(|| (p.log.dir().to_path_buf(), e));
                    }
                }
            }
            if let Some((dir, e)) = first {
                maintenance_failed(&dir, &e, failed);
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "maintenance task failed");
        }
        if let Some(m) = replicas {
            // Records deleted through the controller (DeleteRecords): this
            // replica's log start follows, as far as its log reaches.
            let raise = m.log_starts_to_raise();
            if !raise.is_empty() {
                let b = Arc::clone(&broker);
                let done = tokio::task::spawn_blocking(move || {
                    for (r, to) in raise {
                        let log = &r.partition().log;
                        if let Err(e) = b.topics.freeing_space(|| log.raise_log_start(to)) {
                            tracing::warn!(dir = %log.dir().display(), error = %e, "could not raise the log start to deleted records");
                        }
                    }
                })
                .await;
                if let Err(e) = done {
                    tracing::error!(error = %e, "raising log starts failed");
                }
            }
            let now = SystemTime::now();
            for r in m.replicas() {
                // A snapshot purges the Raft log: only when retention has
                // something to delete.
                if !r.partition().log.retention_due(now) {
                    continue;
                }
                if let Err(e) = r.retain(now).await {
                    tracing::warn!(dir = %r.partition().log.dir().display(), error = %e, "retention of a replicated partition failed");
                }
            }
        }
    }
}

/// Warns of failed maintenance passes: the first at once, then at most one
/// line a minute (a shortage of descriptors or space fails every partition's
/// pass every second), each with the number of partitions the pass failed.
fn maintenance_failed(dir: &std::path::Path, e: &crate::log::LogError, partitions: usize) {
    static LAST: parking_lot::Mutex<Option<std::time::Instant>> = parking_lot::Mutex::new(None);
    let mut last = LAST.lock();
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    drop(last);
    tracing::warn!(
        dir = %dir.display(),
        error = %e,
        partitions,
        "maintenance failed (of this pass's failed partitions, the first; said at most once a minute)"
    );
}

/// `front`, with the address a Kafka listener bound to every interface
/// (`0.0.0.0`, `::`) and advertised as bound tells this connection's client
/// replaced by the one the client reached: a client told `0.0.0.0` would
/// connect to its own host.
fn reachable_front(
    front: native::connection::Front,
    stream: &tokio::net::TcpStream,
) -> native::connection::Front {
    use native::connection::Front;
    match front {
        Front::Kafka(adv)
            if adv
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified()) =>
        {
            match stream.local_addr() {
                Ok(local) => Front::Kafka(Arc::new(kafka::Advertised {
                    host: local.ip().to_canonical().to_string(),
                    ..kafka::Advertised::clone(&adv)
                })),
                Err(_) => Front::Kafka(adv),
            }
        }
        front => front,
    }
}
