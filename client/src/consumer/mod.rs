//! [`Consumer`]: reads records from assigned partitions.
//!
//! Partitions are assigned explicitly ([`Consumer::assign`]) or all of a
//! topic ([`Consumer::subscribe`]); with a group name, each partition starts
//! at the group's committed offset, and [`Consumer::commit`] (or periodic
//! auto-commit) stores the positions durably in the broker. This type does
//! not join the group: several consumers of one group must be given
//! disjoint partitions by the application, or use
//! [`GroupConsumer`](crate::group::GroupConsumer), which shares the
//! subscribed topics' partitions among the group's members.
//!
//! [`Consumer::poll`] yields records whose keys and values are slices of the
//! fetched buffer (no copy per record). When the records returned leave the
//! consumer behind the log end, the next fetch is already on the wire while
//! the application works on them, so the pipe stays full; at the log end the
//! records are returned first and the next call sends the fetch (it would
//! only wait at the broker). Batch
//! CRCs are verified by default.
//!
//! Each partition is fetched from its leader, named by a
//! [`MetadataCache`]: one connection per leader, one fetch in flight on
//! each, all leaders long-polled at once (`fetch.rs`). Commits and group
//! calls go to the group's coordinator (found through the bootstrap list
//! with FindCoordinator; the bootstrap list's broker against a broker
//! without it), on a connection of their own, found again after
//! `NotCoordinator` or a broken connection.

mod fetch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::batch::Record;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::offset_commit::{CommitPartition, OffsetCommitRequestV1};
use sluice_protocol::wire::offset_fetch::TopicPartitionRef;

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::metadata::MetadataCache;
use crate::pool::{self, Dest};

/// How long a connect (to a leader or the bootstrap list) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// [`ConsumerConfig::request_timeout`] by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `call`, or a timed-out [`ClientError::Io`] naming `what` if it takes
/// longer than `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what}: no answer within {limit:?}"),
        )))
    })
}

/// First wait after a failed Metadata refresh (doubling up to 5 s).
const METADATA_BACKOFF: Duration = Duration::from_millis(100);

/// How long an offset look-up keeps retrying while its partition's leader
/// moves.
const LOOKUP_PATIENCE: Duration = Duration::from_secs(30);

/// How long [`Consumer::assign`] tries to find where a partition starts
/// before leaving the look-up to the polls that follow.
const ASSIGN_PATIENCE: Duration = Duration::from_secs(2);

/// The longest a poll waits for one look-up of a pending partition's start
/// (a leader that accepts connections but does not answer would otherwise
/// hold up the other partitions for the request timeout).
const PENDING_LOOKUP_LIMIT: Duration = Duration::from_secs(2);

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// At the log start.
    Earliest,
    /// At the end: only records produced from now on.
    Latest,
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset.
    Offset(u64),
    /// The log start.
    Earliest,
    /// The end.
    Latest,
    /// The first record with a timestamp at or after this (ms since epoch).
    Timestamp(i64),
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Bootstrap list: one `host:port` or several, comma-separated
    /// (`host1:port,host2:port`); the consumer connects to the first that
    /// answers (see [`Bootstrap`]).
    pub broker: String,
    /// Consumer group whose committed offsets are used, if any.
    pub group: Option<String>,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Bytes per fetch, all partitions.
    pub fetch_max_bytes: u32,
    /// Bytes per fetch, per partition.
    pub partition_max_bytes: u32,
    /// How long a fetch waits for data.
    pub max_wait: Duration,
    /// Commit positions this often while polling (needs a group).
    pub auto_commit: Option<Duration>,
    /// Verify each batch's CRC-32C.
    pub verify_crc: bool,
    /// Most partitions one fetch request lists (the broker refuses more
    /// than its `max_partitions_per_request`, 10,000 by default). A consumer
    /// assigned more partitions fetches them in turns of this many, so a
    /// partition outside the current turn waits up to one fetch's
    /// `max_wait` longer. The limit applies per leader.
    pub max_partitions_per_fetch: usize,
    /// Longest time partition leaders from Metadata are kept before asking
    /// again (Kafka's `metadata.max.age.ms`, default 5 minutes); an error
    /// that says a leader moved, or a lost connection, asks at once.
    pub metadata_max_age: Duration,
    /// Read each leader's partitions with one FetchStream request, which
    /// the broker answers with a frame per append, instead of a Fetch per
    /// read: a tailing consumer then costs the broker one wake-up per
    /// append instead of two. Used where all of a leader's partitions fit
    /// one request and the broker speaks the API; a seek, an assignment
    /// change or a partition joining that leader's set reconnects. Off by
    /// default: the broker keeps sending while the socket takes it, so an
    /// application that stops polling for longer than the broker's write
    /// timeout (30 s by default) with records waiting is disconnected (the
    /// next poll reconnects from its positions); a Fetch per read never
    /// sends ahead of the application.
    pub fetch_stream: bool,
    /// Longest wait for the answer to a call other than a fetch: Metadata,
    /// offset look-ups, OffsetFetch and commits, and a group member's
    /// heartbeats, SyncGroup and LeaveGroup (a JoinGroup may take 5
    /// minutes more, or the member's rebalance timeout if longer). A call
    /// not answered in time fails with a timed-out [`ClientError::Io`] and
    /// its connection is dropped (a
    /// consumer's own calls are made once more on a new connection first),
    /// so a broker that stopped answering without closing its connections
    /// cannot hang the consumer. Kafka's `request.timeout.ms`, 30 s by
    /// default.
    pub request_timeout: Duration,
}

impl ConsumerConfig {
    /// Defaults for the bootstrap list `broker` (one address or several,
    /// comma-separated): no group, earliest, 16 MiB per fetch (8 MiB per
    /// partition), 500 ms wait, CRCs verified.
    pub fn new(broker: impl Into<String>) -> Self {
        ConsumerConfig {
            broker: broker.into(),
            group: None,
            offset_reset: OffsetReset::Earliest,
            fetch_max_bytes: 16 << 20,
            partition_max_bytes: 8 << 20,
            max_wait: Duration::from_millis(500),
            auto_commit: None,
            verify_crc: true,
            max_partitions_per_fetch: 1000,
            metadata_max_age: crate::metadata::DEFAULT_METADATA_MAX_AGE,
            fetch_stream: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
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

/// A record as consumed, with where it came from. Key, value and headers
/// share the fetched buffer.
#[derive(Debug, Clone)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// The record (offset, timestamp, key, value, headers).
    pub record: Record,
}

impl ConsumerRecord {
    /// Offset.
    pub fn offset(&self) -> u64 {
        self.record.offset as u64
    }
    /// Value bytes (empty for a null value).
    pub fn value(&self) -> &[u8] {
        self.record.value.as_deref().unwrap_or_default()
    }
    /// Key bytes, if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.record.key.as_deref()
    }
}

#[derive(Debug)]
struct Assigned {
    topic: Arc<str>,
    partition: u32,
    position: u64,
    /// Where the partition starts, while that is still to be looked up
    /// (its leader could not be reached when it was assigned), and why the
    /// last look-up failed. Such a partition is neither fetched nor
    /// committed; each poll asks again (after `retry`'s backoff).
    pending: Option<(SeekTo, String)>,
    /// Refusals in a row that said the leader moved, and when the
    /// partition may be fetched again.
    retry: Option<(u32, Instant)>,
}

/// Runs `$call` with the control connection to `$dest` bound to `$c`; a
/// connection that broke since its last use (a broker restart) is replaced
/// and the call made once more (every control call can be repeated).
macro_rules! control_call {
    ($self:ident, $dest:expr, |$c:ident| $call:expr) => {{
        let limit = $self.config.request_timeout;
        control_call!($self, $dest, limit, |$c| $call)
    }};
    ($self:ident, $dest:expr, $limit:expr, |$c:ident| $call:expr) => {{
        let dest: &Dest = $dest;
        let limit: Duration = $limit;
        let mut retried = false;
        loop {
            // A call not answered in time fails as a broken connection
            // would: the connection is dropped (its answer would come out
            // of order) and the call made once more on a new one.
            let asked = match $self.control_at(dest).await {
                Ok($c) => within(limit, "a call to the broker", $call).await,
                Err(e) => Err(e),
            };
            match $self.check_control(dest, asked) {
                Err(e) if !retried && is_connection_error(&e) => retried = true,
                Err(e) if !retried && is_not_coordinator(&e) => {
                    // The group's coordinator is elsewhere (or moved): find
                    // it again after a short pause.
                    retried = true;
                    tokio::time::sleep(pool::quick_backoff(1)).await;
                }
                r => break r,
            }
        }
    }};
}

/// Whether a partition's look-up at `dest` failed for want of its leader
/// (it cannot be reached, has moved, or refuses for now), so that asking
/// again later may succeed.
fn is_leader_trouble(e: &ClientError, dest: &Dest) -> bool {
    match e {
        ClientError::Broker { code, .. } => code.is_retriable() || fetch::leader_moved(*code, dest),
        e => is_connection_error(e),
    }
}

/// Whether a broker refused a group's call as not its coordinator: find
/// the coordinator again.
pub(crate) fn is_not_coordinator(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Broker {
            code: ErrorCode::NotCoordinator,
            ..
        }
    )
}

/// Whether a connection broke (or answered bytes that do not decode as
/// a response): reconnecting may help.
pub(crate) fn is_connection_error(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Io(_)
            | ClientError::Closed
            | ClientError::ClosedUnanswered
            | ClientError::OutOfOrder { .. }
    )
}

/// A consumer of assigned partitions, each fetched from its leader.
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    /// The config's bootstrap list and the address that answered last.
    brokers: Bootstrap,
    /// Partition leaders.
    metadata: MetadataCache,
    /// For commits, group calls (`None`: the bootstrap list's broker) and
    /// offset look-ups (at each partition's leader), so they never queue
    /// behind a long poll.
    control: HashMap<Dest, Connection>,
    /// One fetch session per leader.
    fetch: fetch::Sessions,
    assigned: Vec<Assigned>,
    /// Records taken from fetch answers (their partitions' positions moved
    /// past them) that no poll has returned yet: a poll dropped after it
    /// took them (while it sent the next fetches, or while a group member
    /// checked its membership) leaves them here, and the next poll returns
    /// them first. Positions read or committed are those of the records
    /// returned: a partition's first record here, not its fetch position.
    unreturned: Vec<ConsumerRecord>,
    last_commit: Instant,
    /// When the consumer was made.
    created: Instant,
    /// Set while the consumer is a member of its group: commits carry it.
    member: Option<MemberIdentity>,
}

/// Who commits, when the consumer is a group member: the coordinator
/// refuses commits of an unknown member or a stale generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberIdentity {
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

impl Consumer {
    /// Connects to the group's coordinator (the connection commits and
    /// group calls use), found through the config's bootstrap list; without
    /// a group, to the first broker of the list that answers. Fetches
    /// connect to each partition's leader as Metadata names it.
    pub async fn connect(config: ConsumerConfig) -> Result<Self, ClientError> {
        let brokers = Bootstrap::parse(&config.broker);
        let conn = match &config.group {
            Some(group) => match within(
                CONNECT_TIMEOUT.min(config.request_timeout),
                "FindCoordinator",
                brokers.connect_coordinator(group),
            )
            .await
            {
                Ok(conn) => conn,
                // The coordinator named is unreachable (a node that just
                // failed, before its groups moved) or not known yet (no
                // leader, or a cluster's group-state topic being created):
                // start at a broker of the list; the group's calls find the
                // coordinator again, retrying with backoff.
                Err(e) if is_connection_error(&e) || e.is_retriable() => brokers.connect().await?,
                Err(e) => return Err(e),
            },
            None => brokers.connect().await?,
        };
        let metadata =
            MetadataCache::new(brokers.clone(), config.metadata_max_age, METADATA_BACKOFF);
        Ok(Consumer {
            config,
            brokers,
            metadata,
            control: HashMap::from([(None, conn)]),
            fetch: fetch::Sessions::default(),
            assigned: Vec::new(),
            unreturned: Vec::new(),
            last_commit: Instant::now(),
            created: Instant::now(),
            member: None,
        })
    }

    /// The control connection to `dest`, opened on first use.
    async fn control_at(&mut self, dest: &Dest) -> Result<&mut Connection, ClientError> {
        if !self.control.contains_key(dest) {
            let conn = match (dest, &self.config.group) {
                // Commits and offset look-ups of a group: its coordinator.
                (None, Some(group)) => {
                    let limit = CONNECT_TIMEOUT.min(self.config.request_timeout);
                    let found = self.brokers.connect_coordinator(group);
                    within(limit, "finding the coordinator", found).await?
                }
                _ => pool::connect(&self.brokers, dest, CONNECT_TIMEOUT).await?,
            };
            self.control.insert(dest.clone(), conn);
        }
        self.control.get_mut(dest).ok_or(ClientError::Closed)
    }

    /// Forgets the control connection to `dest` after `result` said it
    /// broke; returns `result`.
    fn check_control<T>(
        &mut self,
        dest: &Dest,
        result: Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        if let Err(e) = &result
            && (is_connection_error(e) || is_not_coordinator(e))
        {
            self.control.remove(dest);
        }
        result
    }

    /// Assigns every partition of `topic`.
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        let meta = control_call!(self, &None, |c| c.metadata(Some(vec![topic.to_owned()])))?;
        let t = meta.topics.into_iter().next().ok_or(ClientError::Closed)?;
        if t.error_code != ErrorCode::None {
            return Err(ClientError::Broker {
                code: t.error_code,
                message: format!("topic {topic:?}"),
            });
        }
        let parts = (0..t.partitions.len() as u32)
            .map(|p| (topic.to_owned(), p))
            .collect();
        self.assign(parts).await
    }

    /// Consumes exactly these partitions from now on. Each starts at the
    /// group's committed offset, or as `offset_reset` says.
    ///
    /// A partition whose leader cannot be reached for about 2 s (a broker
    /// that is down, a partition without a leader) does not hold up the
    /// others, as in Kafka's consumer: the call returns, the polls that
    /// follow read the other partitions and look its start up again until
    /// they find it ([`unresolved`](Self::unresolved) lists it meanwhile,
    /// with the reason; [`position`](Self::position) is `None` for it).
    /// Errors: the group's committed offsets cannot be read, or a broker
    /// refuses a look-up for a reason other than its leader.
    pub async fn assign(&mut self, partitions: Vec<(String, u32)>) -> Result<(), ClientError> {
        let assigned = self
            .starting_positions(partitions, None, Some(ASSIGN_PATIENCE))
            .await?;
        self.assigned = assigned;
        self.unreturned.clear();
        self.invalidate();
        Ok(())
    }

    /// [`assign`](Self::assign), with every partition starting where `to`
    /// says instead (committed offsets are not read): the log start, the
    /// end, a timestamp or an offset. A partition whose leader cannot be
    /// reached is looked up by the polls that follow, as in `assign`.
    pub async fn assign_at(
        &mut self,
        partitions: Vec<(String, u32)>,
        to: SeekTo,
    ) -> Result<(), ClientError> {
        let assigned = self
            .starting_positions(partitions, Some(to), Some(ASSIGN_PATIENCE))
            .await?;
        self.assigned = assigned;
        self.unreturned.clear();
        self.invalidate();
        Ok(())
    }

    /// Adds `partitions` to the assignment, each starting where `from`
    /// says; those already assigned keep their positions, and a partition
    /// named that is already assigned is left as it is. For partitions a
    /// topic gained while it was consumed (`SeekTo::Earliest`: none of
    /// their records is missed). A call dropped at any await changes
    /// nothing.
    pub async fn assign_more(
        &mut self,
        partitions: Vec<(String, u32)>,
        from: SeekTo,
    ) -> Result<(), ClientError> {
        let mut added = Vec::new();
        for (topic, partition) in partitions {
            let known = self
                .assigned
                .iter()
                .chain(&added)
                .any(|a: &Assigned| *a.topic == *topic && a.partition == partition);
            if known {
                continue;
            }
            // A partition this new may not be in the cached metadata yet.
            if matches!(
                self.metadata.route(&topic, partition),
                crate::metadata::Route::Bootstrap
            ) {
                self.metadata.invalidate();
            }
            let position = self.lookup(&topic, partition, from).await?;
            added.push(Assigned {
                topic: topic.into(),
                partition,
                position,
                pending: None,
                retry: None,
            });
        }
        if !added.is_empty() {
            self.assigned.extend(added);
            // A fetch stream carries the partitions it opened with.
            self.invalidate();
        }
        Ok(())
    }

    /// Where each of `partitions` starts: the group's committed offset, or
    /// as `offset_reset` says. Changes nothing of the assignment, so a
    /// call dropped at any await leaves the consumer as it was. With
    /// `leave_pending`, a partition whose leader cannot be reached within
    /// that time is returned pending (so is every later one with the same
    /// leader, without waiting again); without it, that is an error after
    /// [`LOOKUP_PATIENCE`].
    async fn starting_positions(
        &mut self,
        partitions: Vec<(String, u32)>,
        start: Option<SeekTo>,
        leave_pending: Option<Duration>,
    ) -> Result<Vec<Assigned>, ClientError> {
        let mut assigned = Vec::with_capacity(partitions.len());
        let committed = match self.config.group.clone() {
            Some(group) if start.is_none() => {
                let refs: Vec<_> = partitions
                    .iter()
                    .map(|(t, p)| TopicPartitionRef {
                        topic: t.clone(),
                        partition: *p,
                    })
                    .collect();
                let r = control_call!(self, &None, |c| c.offset_fetch(&group, Some(refs.clone())))?;
                if r.error_code != ErrorCode::None {
                    return Err(ClientError::Broker {
                        code: r.error_code,
                        message: format!("group {group:?}"),
                    });
                }
                r.partitions.into_iter().map(|p| p.offset).collect()
            }
            _ => vec![None; partitions.len()],
        };
        let reset = match (start, self.config.offset_reset) {
            (Some(to), _) => to,
            (None, OffsetReset::Earliest) => SeekTo::Earliest,
            (None, OffsetReset::Latest) => SeekTo::Latest,
        };
        // Leaders that could not be reached in this call, and why.
        let mut unreachable: HashMap<Dest, String> = HashMap::new();
        for ((topic, partition), committed) in partitions.into_iter().zip(committed) {
            let mut pending = None;
            let position = match (committed, leave_pending) {
                (Some(o), _) => o,
                (None, None) => self.lookup(&topic, partition, reset).await?,
                (None, Some(patience)) => {
                    let dest = self.route(&topic, partition).await?;
                    let tried = match unreachable.get(&dest) {
                        Some(why) => Err(why.clone()),
                        None => {
                            let give_up = Instant::now() + patience;
                            match self.lookup_until(&topic, partition, reset, give_up).await {
                                Ok(o) => Ok(o),
                                Err(e) if is_leader_trouble(&e, &dest) => {
                                    let why = e.to_string();
                                    // A leader out of reach: its other
                                    // partitions are not tried again here.
                                    // So is a partition without a leader
                                    // after another one (both go through
                                    // the bootstrap list).
                                    if is_connection_error(&e) || dest.is_none() {
                                        unreachable.insert(dest, why.clone());
                                    }
                                    Err(why)
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    };
                    tried.unwrap_or_else(|why| {
                        pending = Some((reset, why));
                        0
                    })
                }
            };
            assigned.push(Assigned {
                topic: topic.into(),
                partition,
                position,
                retry: pending
                    .is_some()
                    .then(|| (1, Instant::now() + pool::quick_backoff(1))),
                pending,
            });
        }
        Ok(assigned)
    }

    /// The assigned partitions whose start is still to be looked up
    /// (their leader could not be reached when they were assigned, nor at
    /// any poll since), each with why the last look-up failed. They are
    /// read once it succeeds.
    pub fn unresolved(&self) -> impl Iterator<Item = (&str, u32, &str)> {
        self.assigned.iter().filter_map(|a| {
            a.pending
                .as_ref()
                .map(|(_, why)| (&*a.topic, a.partition, why.as_str()))
        })
    }

    /// One look-up for each pending partition whose backoff has ended and
    /// whose leader is not resting, each bounded by
    /// [`PENDING_LOOKUP_LIMIT`]: a found start makes the partition
    /// fetchable; a leader still out of reach backs it off again (up to
    /// 1 s between tries). Errors: a refusal not about its leader.
    pub(crate) async fn resolve_pending(&mut self) -> Result<(), ClientError> {
        let now = Instant::now();
        let due: Vec<(Arc<str>, u32, SeekTo)> = self
            .assigned
            .iter()
            .filter(|a| a.retry.is_none_or(|(_, until)| until <= now))
            .filter_map(|a| {
                let (to, _) = a.pending.as_ref()?;
                Some((Arc::clone(&a.topic), a.partition, *to))
            })
            .collect();
        for (topic, partition, to) in due {
            let Some(dest) = pool::dest_of(self.metadata.route(&topic, partition)) else {
                continue;
            };
            if self.fetch.rests.resting(&dest, Instant::now()) {
                continue;
            }
            let found = self.lookup_once(&topic, partition, to, &dest).await;
            let Some(a) = self
                .assigned
                .iter_mut()
                .find(|a| a.topic == topic && a.partition == partition && a.pending.is_some())
            else {
                continue;
            };
            match found {
                Ok(o) => {
                    a.position = o;
                    a.pending = None;
                    a.retry = None;
                }
                Err(e) if is_leader_trouble(&e, &dest) => {
                    let n = a.retry.map_or(0, |r| r.0) + 1;
                    a.retry = Some((n, Instant::now() + fetch::refused_backoff(n)));
                    a.pending = Some((to, e.to_string()));
                    if is_connection_error(&e) {
                        self.fetch
                            .rests
                            .failed(dest, Instant::now(), pool::quick_backoff);
                    }
                    self.metadata.invalidate();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where a partition's requests go now, after a Metadata refresh if
    /// one is due (the topic's first look-up waits for it).
    async fn route(&mut self, topic: &str, partition: u32) -> Result<Dest, ClientError> {
        loop {
            if self.metadata.refresh_due(Instant::now()) {
                self.metadata.refresh().await?;
            }
            if let Some(dest) = pool::dest_of(self.metadata.route(topic, partition)) {
                return Ok(dest);
            }
            tokio::time::sleep(crate::metadata::QUICK_REFRESH_MIN).await;
        }
    }

    /// Asks the partition's leader (ListOffsets) where `to` is. While the
    /// leader moves (a refusal that says so, or a broken connection to
    /// it), asks Metadata again and retries with the quick backoff, for
    /// up to [`LOOKUP_PATIENCE`].
    async fn lookup(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
    ) -> Result<u64, ClientError> {
        let give_up = Instant::now() + LOOKUP_PATIENCE;
        self.lookup_until(topic, partition, to, give_up).await
    }

    /// [`lookup`](Self::lookup), retrying until `give_up`.
    async fn lookup_until(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
        give_up: Instant,
    ) -> Result<u64, ClientError> {
        let mut attempts = 0u32;
        loop {
            let dest = self.route(topic, partition).await?;
            let limit = self.config.request_timeout;
            let refused = match self.ask_offset(topic, partition, to, &dest, limit).await {
                Ok(o) => return Ok(o),
                Err(e @ ClientError::Broker { code, .. }) if fetch::leader_moved(code, &dest) => e,
                Err(e) if is_connection_error(&e) && dest.is_some() => e,
                Err(e) => return Err(e),
            };
            self.metadata.invalidate();
            attempts += 1;
            if Instant::now() >= give_up {
                return Err(refused);
            }
            tokio::time::sleep(pool::quick_backoff(attempts)).await;
        }
    }

    /// One look-up of where `to` is in a partition, at `dest`, waiting at
    /// most [`PENDING_LOOKUP_LIMIT`] for the answer.
    async fn lookup_once(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
        dest: &Dest,
    ) -> Result<u64, ClientError> {
        let limit = PENDING_LOOKUP_LIMIT.min(self.config.request_timeout);
        self.ask_offset(topic, partition, to, dest, limit).await
    }

    /// Asks `dest` (ListOffsets) where `to` is, waiting at most `limit`
    /// for the answer. A refusal is [`ClientError::Broker`] naming the
    /// partition.
    async fn ask_offset(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
        dest: &Dest,
        limit: Duration,
    ) -> Result<u64, ClientError> {
        let spec = match to {
            SeekTo::Offset(o) => return Ok(o),
            SeekTo::Earliest => OffsetSpec::Earliest,
            SeekTo::Latest => OffsetSpec::Latest,
            SeekTo::Timestamp(t) => OffsetSpec::Timestamp(t),
        };
        let r = control_call!(self, dest, limit, |c| c.list_offsets(vec![
            ListOffsetsPartition {
                topic: topic.to_owned(),
                partition,
                spec,
            }
        ]))?;
        let p = r.partitions.into_iter().next().ok_or(ClientError::Closed)?;
        if p.error_code == ErrorCode::None {
            return Ok(p.offset);
        }
        let moved = fetch::leader_moved(p.error_code, dest);
        if moved {
            // A refresh finds where it went.
            self.metadata.invalidate();
        }
        let message = match (moved, dest) {
            // Asked through the bootstrap list: Metadata names no leader
            // (none elected, or one the brokers cannot reach).
            (true, None) => format!("{topic}-{partition} has no leader the brokers can reach"),
            _ => format!("{topic}-{partition}"),
        };
        Err(ClientError::Broker {
            code: p.error_code,
            message,
        })
    }

    /// Fetches on the wire are answered for old positions: their answers
    /// are dropped.
    fn invalidate(&mut self) {
        self.fetch.invalidate();
    }

    /// Moves a partition's position; records already fetched past it are
    /// dropped.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
    ) -> Result<(), ClientError> {
        let offset = self.lookup(topic, partition, to).await?;
        let a = self
            .assigned
            .iter_mut()
            .find(|a| &*a.topic == topic && a.partition == partition)
            .ok_or_else(|| ClientError::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                message: format!("{topic}-{partition} is not assigned"),
            })?;
        a.position = offset;
        if a.pending.take().is_some() {
            a.retry = None;
        }
        self.unreturned
            .retain(|r| !(&*r.topic == topic && r.partition == partition));
        self.invalidate();
        Ok(())
    }

    /// The next offset to be returned for a partition; `None` if it is not
    /// assigned, or its start is still to be looked up
    /// ([`unresolved`](Self::unresolved)).
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.assigned
            .iter()
            .find(|a| &*a.topic == topic && a.partition == partition && a.pending.is_none())
            .map(|a| self.returned_position(a))
    }

    /// Waits up to `max_wait` for records and returns them (possibly none),
    /// in offset order per partition. Positions advance past the returned
    /// records. Each partition is fetched from its leader; a partition
    /// whose leader moved (a refusal saying so, or a broken connection to
    /// it) is looked up again and fetched from the new leader at its
    /// position, so nothing is skipped or returned twice. Errors: no broker
    /// of the bootstrap list answers (Metadata, or the connection a
    /// partition without a leader goes through breaks twice in one call),
    /// a response that does not decode twice in one call, or a refusal
    /// that is not about leadership; the next call tries again.
    ///
    /// Cancel-safe: a poll dropped before it returns (a `select!` or a
    /// timeout around it) loses nothing; records it had taken are returned
    /// by the next poll, and positions and commits count only records
    /// returned.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assigned.is_empty() {
            return Ok(Vec::new());
        }
        self.maybe_auto_commit().await?;
        self.poll_fetch().await
    }

    /// Commits the current positions of all assigned partitions for the
    /// group (durably stored by the broker). A group member's commit
    /// carries its generation and member id; the coordinator refuses it
    /// (`UnknownMemberId`, `IllegalGeneration`, `RebalanceInProgress`,
    /// `FencedInstanceId`) if the member no longer owns its partitions.
    /// While the group's coordinator is moving or loading the group
    /// (`NotCoordinator`, `CoordinatorNotAvailable`) the same offsets are
    /// committed again, for about the request timeout.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let patience = self.config.request_timeout;
        self.commit_where(|_, _| true, patience).await
    }

    /// Commits the positions of the assigned partitions `keep` selects;
    /// while the coordinator is moving or loading the group, again until
    /// `patience` has passed (zero: once).
    pub(crate) async fn commit_where(
        &mut self,
        keep: impl Fn(&str, u32) -> bool,
        patience: Duration,
    ) -> Result<(), ClientError> {
        let Some(group) = self.config.group.clone() else {
            return Err(ClientError::Broker {
                code: ErrorCode::InvalidGroupName,
                message: "commit needs a consumer group".into(),
            });
        };
        let parts: Vec<_> = self
            .assigned
            .iter()
            // A partition whose start is not known yet has no position.
            .filter(|a| a.pending.is_none() && keep(&a.topic, a.partition))
            .map(|a| CommitPartition {
                topic: a.topic.to_string(),
                partition: a.partition,
                offset: self.returned_position(a),
                metadata: String::new(),
            })
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        // While the group's coordinator moves (or loads the group), the
        // same offsets are committed again, until the request timeout: a
        // commit of the same offsets twice changes nothing.
        let deadline = Instant::now() + patience;
        let mut attempts = 0;
        loop {
            let r = match self.member.clone() {
                None => control_call!(self, &None, |c| c.offset_commit(&group, parts.clone())),
                Some(m) => {
                    let req = OffsetCommitRequestV1 {
                        group: group.clone(),
                        generation_id: m.generation_id,
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        partitions: parts.clone(),
                    };
                    control_call!(self, &None, |c| c.offset_commit_as(&req))
                }
            };
            let outcome =
                r.and_then(
                    |r| match r.partitions.iter().find(|p| !p.error_code.is_ok()) {
                        Some(p) => Err(ClientError::Broker {
                            code: p.error_code,
                            message: format!("commit {}-{}", p.topic, p.partition),
                        }),
                        None => Ok(()),
                    },
                );
            match outcome {
                Err(ClientError::Broker {
                    code: code @ (ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable),
                    ..
                }) if Instant::now() < deadline => {
                    if code == ErrorCode::NotCoordinator {
                        // Found again: the next call connects anew.
                        self.control.remove(&None);
                    }
                    attempts += 1;
                    tokio::time::sleep(pool::quick_backoff(attempts)).await;
                }
                Ok(()) => {
                    self.last_commit = Instant::now();
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets (or clears) the group member identity commits carry.
    pub(crate) fn set_member(&mut self, member: Option<MemberIdentity>) {
        self.member = member;
    }

    /// Adds partitions to the assignment, each at the group's committed
    /// offset or as `offset_reset` says; partitions already assigned keep
    /// their positions.
    pub(crate) async fn add_partitions(
        &mut self,
        partitions: Vec<(String, u32)>,
    ) -> Result<(), ClientError> {
        let fresh: Vec<(String, u32)> = partitions
            .into_iter()
            .filter(|(t, p)| {
                !self
                    .assigned
                    .iter()
                    .any(|a| &*a.topic == t && a.partition == *p)
            })
            .collect();
        // The partitions kept (and their records not returned yet) are
        // untouched until the new ones' positions are known.
        let mut added = self
            .starting_positions(fresh, None, Some(ASSIGN_PATIENCE))
            .await?;
        self.assigned.append(&mut added);
        self.invalidate();
        Ok(())
    }

    /// Stops consuming the partitions `drop` selects: records of them
    /// already fetched are never returned.
    pub(crate) fn remove_partitions(&mut self, drop: impl Fn(&str, u32) -> bool) {
        self.assigned.retain(|a| !drop(&a.topic, a.partition));
        self.unreturned.retain(|r| !drop(&r.topic, r.partition));
        self.invalidate();
    }

    /// The assigned partitions with their positions.
    pub(crate) fn positions(&self) -> impl Iterator<Item = (&str, u32, u64)> {
        self.assigned
            .iter()
            .filter(|a| a.pending.is_none())
            .map(|a| (&*a.topic, a.partition, self.returned_position(a)))
    }

    /// The next offset of `a` the application gets: its first record not
    /// returned yet, else its fetch position.
    fn returned_position(&self, a: &Assigned) -> u64 {
        self.unreturned
            .iter()
            .find(|r| r.topic == a.topic && r.partition == a.partition)
            .map_or(a.position, ConsumerRecord::offset)
    }

    /// The records kept for the next poll (see [`Consumer::put_back`]).
    pub(crate) fn take_unreturned(&mut self) -> Vec<ConsumerRecord> {
        std::mem::take(&mut self.unreturned)
    }

    /// Keeps `records` (taken from this consumer's poll, in order) for the
    /// next poll to return first, before any taken since.
    pub(crate) fn put_back(&mut self, mut records: Vec<ConsumerRecord>) {
        if records.is_empty() {
            return;
        }
        records.append(&mut self.unreturned);
        self.unreturned = records;
    }

    /// Whether the periodic auto-commit is due.
    pub(crate) fn auto_commit_due(&self) -> bool {
        matches!(self.config.auto_commit, Some(every) if self.last_commit.elapsed() >= every)
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The bootstrap list this consumer connects through: commits and
    /// group calls go to the broker of the list that answers, Metadata is
    /// asked there first.
    pub fn brokers(&self) -> &Bootstrap {
        &self.brokers
    }

    async fn maybe_auto_commit(&mut self) -> Result<(), ClientError> {
        if let (Some(every), Some(_)) = (self.config.auto_commit, &self.config.group) {
            if self.last_commit.elapsed() >= every {
                // Once: a poll is not held up by a coordinator moving.
                self.commit_where(|_, _| true, Duration::ZERO).await?;
            }
        }
        Ok(())
    }

    /// When a fetch answer (with records or without: a long poll that
    /// ended empty, a stream's heartbeat frame) last came from any broker,
    /// or when the consumer was made if none has; a poll with no partition
    /// assigned counts as an answer (nothing is waited for). A consumer whose brokers
    /// stopped answering without closing their connections (a paused
    /// process) polls no records and retries quietly, as Kafka's consumer
    /// does; this tells an application how long that has lasted.
    pub fn last_fetch_answer(&self) -> Instant {
        self.fetch.last_answer().unwrap_or(self.created)
    }

    /// The group's committed offset of a partition.
    pub async fn committed(
        &mut self,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, ClientError> {
        let Some(group) = self.config.group.clone() else {
            return Ok(None);
        };
        let r = control_call!(self, &None, |c| c.offset_fetch(
            &group,
            Some(vec![TopicPartitionRef {
                topic: topic.to_owned(),
                partition,
            }]),
        ))?;
        Ok(r.partitions.first().and_then(|p| p.offset))
    }
}
