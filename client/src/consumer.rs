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
//! fetched buffer (no copy per record). While the application works on them,
//! the next fetch is already on the wire, so the pipe stays full. Batch
//! CRCs are verified by default.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch::{Record, RecordBatch};
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest, FetchResponse};
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::offset_commit::{CommitPartition, OffsetCommitRequestV1};
use sluice_protocol::wire::offset_fetch::TopicPartitionRef;

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;
use crate::error::ClientError;

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
    /// than its `max_partitions_per_request`, 1000 by default). A consumer
    /// assigned more partitions fetches them in turns of this many, so a
    /// partition outside the current turn waits up to one fetch's
    /// `max_wait` longer.
    pub max_partitions_per_fetch: usize,
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
}

/// Whether a partition's error means "ask Metadata who leads it".
fn leader_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable
    )
}

/// A consumer of assigned partitions over one connection.
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    /// The config's bootstrap list and the address that answered last.
    brokers: Bootstrap,
    conn: Connection,
    /// For commits and lookups, so they never queue behind a long poll.
    control: Option<Connection>,
    assigned: Vec<Assigned>,
    /// A fetch is on the wire; `true` if a seek made its answer stale.
    in_flight: Option<bool>,
    last_commit: Instant,
    pending: VecDeque<ConsumerRecord>,
    /// Index in `assigned` where the next fetch's turn of partitions starts.
    fetch_from: usize,
    /// Set while the consumer is a member of its group: commits carry it.
    member: Option<MemberIdentity>,
    /// A partition the connected broker said it does not lead: its leader
    /// is looked up and followed before the next fetch.
    moved: Option<(String, u32)>,
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
    /// Connects to the first broker of the config's bootstrap list that
    /// answers.
    pub async fn connect(config: ConsumerConfig) -> Result<Self, ClientError> {
        let brokers = Bootstrap::parse(&config.broker);
        let conn = brokers.connect().await?;
        Ok(Consumer {
            config,
            brokers,
            conn,
            control: None,
            assigned: Vec::new(),
            in_flight: None,
            last_commit: Instant::now(),
            pending: VecDeque::new(),
            fetch_from: 0,
            member: None,
            moved: None,
        })
    }

    async fn control(&mut self) -> Result<&mut Connection, ClientError> {
        if self.control.is_none() {
            self.control = Some(self.brokers.connect().await?);
        }
        self.control.as_mut().ok_or(ClientError::Closed)
    }

    /// Assigns every partition of `topic`.
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        let meta = self
            .control()
            .await?
            .metadata(Some(vec![topic.to_owned()]))
            .await?;
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
    pub async fn assign(&mut self, partitions: Vec<(String, u32)>) -> Result<(), ClientError> {
        let mut assigned = Vec::with_capacity(partitions.len());
        let committed = match self.config.group.clone() {
            Some(group) => {
                let refs = partitions
                    .iter()
                    .map(|(t, p)| TopicPartitionRef {
                        topic: t.clone(),
                        partition: *p,
                    })
                    .collect();
                let r = self
                    .control()
                    .await?
                    .offset_fetch(&group, Some(refs))
                    .await?;
                if r.error_code != ErrorCode::None {
                    return Err(ClientError::Broker {
                        code: r.error_code,
                        message: format!("group {group:?}"),
                    });
                }
                r.partitions.into_iter().map(|p| p.offset).collect()
            }
            None => vec![None; partitions.len()],
        };
        let reset = match self.config.offset_reset {
            OffsetReset::Earliest => SeekTo::Earliest,
            OffsetReset::Latest => SeekTo::Latest,
        };
        for ((topic, partition), committed) in partitions.into_iter().zip(committed) {
            let position = match committed {
                Some(o) => o,
                None => self.lookup(&topic, partition, reset).await?,
            };
            assigned.push(Assigned {
                topic: topic.into(),
                partition,
                position,
            });
        }
        self.assigned = assigned;
        self.invalidate();
        Ok(())
    }

    async fn lookup(
        &mut self,
        topic: &str,
        partition: u32,
        to: SeekTo,
    ) -> Result<u64, ClientError> {
        let spec = match to {
            SeekTo::Offset(o) => return Ok(o),
            SeekTo::Earliest => OffsetSpec::Earliest,
            SeekTo::Latest => OffsetSpec::Latest,
            SeekTo::Timestamp(t) => OffsetSpec::Timestamp(t),
        };
        let mut p = None;
        for _ in 0..2 {
            let r = self
                .control()
                .await?
                .list_offsets(vec![ListOffsetsPartition {
                    topic: topic.to_owned(),
                    partition,
                    spec,
                }])
                .await?;
            let found = r.partitions.into_iter().next().ok_or(ClientError::Closed)?;
            if !leader_moved(found.error_code) || p.is_some() {
                p = Some(found);
                break;
            }
            // Once: follow the leader and ask it.
            self.moved = Some((topic.to_owned(), partition));
            self.follow_leader().await?;
            p = Some(found);
        }
        let p = p.ok_or(ClientError::Closed)?;
        if p.error_code != ErrorCode::None {
            return Err(ClientError::Broker {
                code: p.error_code,
                message: format!("{topic}-{partition}"),
            });
        }
        Ok(p.offset)
    }

    fn invalidate(&mut self) {
        self.pending.clear();
        if let Some(stale) = self.in_flight.as_mut() {
            *stale = true;
        }
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
        self.invalidate();
        Ok(())
    }

    /// The next offset to be returned for a partition.
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.assigned
            .iter()
            .find(|a| &*a.topic == topic && a.partition == partition)
            .map(|a| a.position)
    }

    /// The assigned partitions the next fetch lists: all of them, or the
    /// next `max_partitions_per_fetch` in turn, wrapping around.
    fn fetch_turn(&mut self) -> impl Iterator<Item = &Assigned> {
        let n = self.assigned.len();
        let take = n.min(self.config.max_partitions_per_fetch.max(1));
        let start = if n == 0 { 0 } else { self.fetch_from % n };
        self.fetch_from = if n == 0 { 0 } else { (start + take) % n };
        let assigned = &self.assigned;
        (0..take).filter_map(move |i| assigned.get((start + i) % n))
    }

    async fn send_fetch(&mut self) -> Result<(), ClientError> {
        let max_wait_ms = self.config.max_wait.as_millis().min(u128::from(u32::MAX)) as u32;
        let max_bytes = self.config.fetch_max_bytes;
        let partition_max_bytes = self.config.partition_max_bytes;
        let req = FetchRequest {
            max_wait_ms,
            min_bytes: 1,
            max_bytes,
            partitions: self
                .fetch_turn()
                .map(|a| FetchPartition {
                    topic: a.topic.to_string(),
                    partition: a.partition,
                    offset: a.position,
                    max_bytes: partition_max_bytes,
                })
                .collect(),
        };
        self.conn.send(ApiKey::Fetch, &req, &[]).await?;
        self.in_flight = Some(false);
        Ok(())
    }

    /// Waits up to `max_wait` for records and returns them (possibly none).
    /// Positions advance past the returned records. If the connection
    /// breaks (a broker restart), the consumer reconnects once and fetches
    /// again from its positions; if that fails the error is returned and the
    /// next call tries again.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assigned.is_empty() {
            return Ok(Vec::new());
        }
        self.maybe_auto_commit().await?;
        self.poll_fetch().await
    }

    /// [`poll`](Self::poll) without the auto-commit. Cancel-safe while it
    /// waits for a fetch response: dropping the future leaves the fetch in
    /// flight and the next call takes its answer.
    pub(crate) async fn poll_fetch(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assigned.is_empty() {
            return Ok(Vec::new());
        }
        if self.moved.is_some() {
            self.follow_leader().await?;
        }
        match self.poll_once().await {
            Err(ClientError::Broker { code, .. }) if leader_moved(code) && self.moved.is_some() => {
                self.follow_leader().await?;
                self.poll_once().await
            }
            Err(
                ClientError::Io(_)
                | ClientError::Closed
                | ClientError::Wire(_)
                | ClientError::OutOfOrder { .. },
            ) => {
                self.in_flight = None;
                self.control = None;
                self.brokers.failed();
                self.conn = self.brokers.connect().await?;
                self.poll_once().await
            }
            other => other,
        }
    }

    /// Looks up the leader of the partition in `moved` on a broker of the
    /// bootstrap list, follows it, and reconnects (both connections) there.
    /// `moved` is cleared only once a leader was found and reached.
    async fn follow_leader(&mut self) -> Result<(), ClientError> {
        let Some((topic, partition)) = self.moved.clone() else {
            return Ok(());
        };
        match self.brokers.find_leader(&topic, partition).await? {
            Some(addr) => self.brokers.follow(addr),
            None => {
                return Err(ClientError::Broker {
                    code: ErrorCode::LeaderNotAvailable,
                    message: format!("{topic}-{partition} has no leader right now"),
                });
            }
        }
        self.in_flight = None;
        self.control = None;
        self.conn = self.brokers.connect().await?;
        self.moved = None;
        Ok(())
    }

    async fn poll_once(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        loop {
            if self.in_flight.is_none() {
                self.send_fetch().await?;
            }
            let received: Result<(FetchResponse, Bytes), ClientError> = self.conn.recv().await;
            let stale = self.in_flight.take().unwrap_or(false);
            let (resp, tail) = received?;
            if stale {
                continue;
            }
            resp.check_tail(tail.len())?;
            let records = self.take_records(&resp, &tail)?;
            // Keep the pipe full while the application works. The records
            // are returned even if this fails: the next poll resends.
            if self.send_fetch().await.is_err() {
                self.in_flight = None;
            }
            return Ok(records);
        }
    }

    /// Decodes a fetch response. Positions move only if every partition
    /// decoded: on an error nothing is returned and nothing is skipped.
    fn take_records(
        &mut self,
        resp: &FetchResponse,
        tail: &Bytes,
    ) -> Result<Vec<ConsumerRecord>, ClientError> {
        let before: Vec<u64> = self.assigned.iter().map(|a| a.position).collect();
        let result = self.take_records_inner(resp, tail);
        if result.is_err() {
            for (a, p) in self.assigned.iter_mut().zip(before) {
                a.position = p;
            }
        }
        result
    }

    fn take_records_inner(
        &mut self,
        resp: &FetchResponse,
        tail: &Bytes,
    ) -> Result<Vec<ConsumerRecord>, ClientError> {
        let mut out = Vec::new();
        let mut at = 0usize;
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
                ErrorCode::None => {}
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
                code => {
                    if leader_moved(code) {
                        self.moved = Some((p.topic.clone(), p.partition));
                    }
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
                    ClientError::Wire(sluice_protocol::wire::WireError::Body(format!(
                        "record batch from {}-{}: {e}",
                        p.topic, p.partition
                    )))
                })?;
                for r in batch.records() {
                    let record = r.map_err(|e| {
                        ClientError::Wire(sluice_protocol::wire::WireError::Body(e.to_string()))
                    })?;
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
        }
        Ok(out)
    }

    /// Commits the current positions of all assigned partitions for the
    /// group (durably stored by the broker). A group member's commit
    /// carries its generation and member id; the coordinator refuses it
    /// (`UnknownMemberId`, `IllegalGeneration`, `RebalanceInProgress`,
    /// `FencedInstanceId`) if the member no longer owns its partitions.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.commit_where(|_, _| true).await
    }

    /// Commits the positions of the assigned partitions `keep` selects.
    pub(crate) async fn commit_where(
        &mut self,
        keep: impl Fn(&str, u32) -> bool,
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
            .filter(|a| keep(&a.topic, a.partition))
            .map(|a| CommitPartition {
                topic: a.topic.to_string(),
                partition: a.partition,
                offset: a.position,
                metadata: String::new(),
            })
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        let r = match self.member.clone() {
            None => self.control().await?.offset_commit(&group, parts).await?,
            Some(m) => {
                let req = OffsetCommitRequestV1 {
                    group,
                    generation_id: m.generation_id,
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    partitions: parts,
                };
                self.control().await?.offset_commit_as(&req).await?
            }
        };
        if let Some(p) = r
            .partitions
            .iter()
            .find(|p| p.error_code != ErrorCode::None)
        {
            return Err(ClientError::Broker {
                code: p.error_code,
                message: format!("commit {}-{}", p.topic, p.partition),
            });
        }
        self.last_commit = Instant::now();
        Ok(())
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
        let mut keep = std::mem::take(&mut self.assigned);
        let fresh: Vec<(String, u32)> = partitions
            .into_iter()
            .filter(|(t, p)| !keep.iter().any(|a| &*a.topic == t && a.partition == *p))
            .collect();
        let result = self.assign(fresh).await;
        keep.append(&mut self.assigned);
        self.assigned = keep;
        self.invalidate();
        result
    }

    /// Stops consuming the partitions `drop` selects: records of them
    /// already fetched are never returned.
    pub(crate) fn remove_partitions(&mut self, drop: impl Fn(&str, u32) -> bool) {
        self.assigned.retain(|a| !drop(&a.topic, a.partition));
        self.invalidate();
    }

    /// The assigned partitions with their positions.
    pub(crate) fn positions(&self) -> impl Iterator<Item = (&str, u32, u64)> {
        self.assigned
            .iter()
            .map(|a| (&*a.topic, a.partition, a.position))
    }

    /// Whether the periodic auto-commit is due.
    pub(crate) fn auto_commit_due(&self) -> bool {
        matches!(self.config.auto_commit, Some(every) if self.last_commit.elapsed() >= every)
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The bootstrap list this consumer connects through (shared by its
    /// connections: they follow the broker together).
    pub fn brokers(&self) -> &Bootstrap {
        &self.brokers
    }

    async fn maybe_auto_commit(&mut self) -> Result<(), ClientError> {
        if let (Some(every), Some(_)) = (self.config.auto_commit, &self.config.group) {
            if self.last_commit.elapsed() >= every {
                self.commit().await?;
            }
        }
        Ok(())
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
        let r = self
            .control()
            .await?
            .offset_fetch(
                &group,
                Some(vec![TopicPartitionRef {
                    topic: topic.to_owned(),
                    partition,
                }]),
            )
            .await?;
        Ok(r.partitions.first().and_then(|p| p.offset))
    }
}
