//! [`Admin`]: create, delete, list, describe and change topics (partition
//! count, retention, records at the start); broker status.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
pub use sluice_protocol::wire::alter_topics::ConfigField;
use sluice_protocol::wire::alter_topics::{
    AlterTopicConfigRequest, CreatePartitionsRequest, PartitionCount, TopicConfigChange,
};
use sluice_protocol::wire::broker_status::BrokerStatusResponse;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::delete_records::{
    DeleteRecordsRequest, DeleteRecordsResponse, RecordsBelow,
};
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, ListOffsetsPartitionResponse};
use sluice_protocol::wire::metadata::TopicMetadata;
use sluice_protocol::wire::partition_status::TopicState;
pub use sluice_protocol::wire::topic_config::{FlushMode, TopicCompression, TopicConfig};

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;
use crate::error::ClientError;

/// Topic administration over one connection, made again after a call
/// that left it in doubt. Each request, and each connect made again, is
/// bounded by the request timeout ([`DEFAULT_REQUEST_TIMEOUT`],
/// [`Admin::with_request_timeout`]): a broker that does not answer in time
/// fails the call with a timed-out [`ClientError::Io`], and the next call
/// connects anew, from the bootstrap list's next address (an answer that
/// came late would be out of order). A timed-out change may still be made.
#[derive(Debug)]
pub struct Admin {
    conn: Option<Connection>,
    brokers: Bootstrap,
    request_timeout: Duration,
}

/// How long an [`Admin`] call waits for its answer unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `$call` on the admin's connection (made anew if the last call left
/// it in doubt) bound to `$c`, within the request timeout. The connection
/// is put back only after an answer (a broker's refusal included): one
/// that failed, timed out, or whose call was dropped half-way is not.
macro_rules! admin_call {
    ($self:ident, $what:expr, |$c:ident| $call:expr) => {{
        let limit = $self.request_timeout;
        match $self.take_conn().await {
            Ok(mut conn) => {
                let r = {
                    let $c = &mut conn;
                    crate::consumer::within(limit, $what, $call).await
                };
                if r.is_ok() || matches!(r, Err(ClientError::Broker { .. })) {
                    $self.conn = Some(conn);
                } else {
                    // The next connect starts at the list's next address.
                    $self.brokers.failed();
                }
                r
            }
            Err(e) => Err(e),
        }
    }};
}

fn check(code: ErrorCode, message: Option<String>) -> Result<(), ClientError> {
    if code == ErrorCode::None {
        Ok(())
    } else {
        Err(ClientError::Broker {
            code,
            message: message.unwrap_or_default(),
        })
    }
}

impl Admin {
    /// Connects to the first broker of a comma-separated bootstrap list
    /// (`host:port` or `host1:port,host2:port`) that answers; see
    /// [`Bootstrap::connect`].
    pub async fn connect(broker: &str) -> Result<Self, ClientError> {
        Self::connect_to(&Bootstrap::parse(broker)).await
    }

    /// Connects to the first broker of `brokers` that answers.
    pub async fn connect_to(brokers: &Bootstrap) -> Result<Self, ClientError> {
        Ok(Admin {
            conn: Some(brokers.connect().await?),
            brokers: brokers.clone(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// The same admin, its calls bounded by `timeout` instead.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connection, taken for a call (made anew through the bootstrap
    /// list if the last call left none).
    async fn take_conn(&mut self) -> Result<Connection, ClientError> {
        match self.conn.take() {
            Some(c) => Ok(c),
            None => {
                let made = crate::consumer::within(
                    self.request_timeout,
                    "connecting",
                    self.brokers.connect(),
                )
                .await;
                if made.is_err() {
                    self.brokers.failed();
                }
                made
            }
        }
    }

    /// An admin of broker `addr`, with this one's request timeout.
    async fn at(&self, addr: &str) -> Result<Admin, ClientError> {
        let limit = self.request_timeout;
        let theirs = crate::consumer::within(limit, "connecting", Admin::connect(addr)).await?;
        Ok(theirs.with_request_timeout(limit))
    }

    /// Creates a topic with the broker's default replication factor.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<(), ClientError> {
        self.create_replicated_topic(name, partitions, None, config)
            .await
    }

    /// Creates a topic whose partitions each have `replication_factor`
    /// replicas (`None`: the broker's `default_replication_factor`). A
    /// factor above the number of brokers fails with
    /// `InvalidReplicationFactor`.
    pub async fn create_replicated_topic(
        &mut self,
        name: &str,
        partitions: u32,
        replication_factor: Option<u16>,
        config: TopicConfig,
    ) -> Result<(), ClientError> {
        let topic = NewTopic {
            name: name.to_owned(),
            partitions,
            config,
            replication_factor,
        };
        let r = admin_call!(self, "CreateTopics", |c| c
            .create_topics(vec![topic.clone()]))?;
        let t = r.results.into_iter().next().ok_or(ClientError::Closed)?;
        check(t.error_code, t.message)
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let r = admin_call!(self, "DeleteTopics", |c| c
            .delete_topics(vec![name.to_owned()]))?;
        let t = r.results.into_iter().next().ok_or(ClientError::Closed)?;
        check(t.error_code, t.message)
    }

    /// Raises a topic's partition count to `count`; the new partitions
    /// start empty. A count not above the current one fails with
    /// `InvalidPartitions`.
    pub async fn add_partitions(&mut self, name: &str, count: u32) -> Result<(), ClientError> {
        self.partitions_request(name, count, false).await
    }

    /// Whether [`Admin::add_partitions`] and [`Admin::alter_topic_config`]
    /// with these arguments would both succeed, asked of the broker with
    /// `validate_only`: nothing changes. A caller making both changes asks
    /// first, so that a refusal of one leaves the topic as it was.
    pub async fn check_topic_changes(
        &mut self,
        name: &str,
        count: Option<u32>,
        settings: Option<(TopicConfig, Vec<ConfigField>)>,
    ) -> Result<(), ClientError> {
        if let Some((set, reset)) = settings {
            self.config_request(name, set, reset, true).await?;
        }
        if let Some(count) = count {
            self.partitions_request(name, count, true).await?;
        }
        Ok(())
    }

    async fn partitions_request(
        &mut self,
        name: &str,
        count: u32,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let req = CreatePartitionsRequest {
            topics: vec![PartitionCount {
                name: name.to_owned(),
                count,
            }],
            validate_only,
        };
        let r = admin_call!(self, "CreatePartitions", |c| c.create_partitions(&req))?;
        let t = r.results.into_iter().next().ok_or(ClientError::Closed)?;
        check(t.error_code, t.message)
    }

    /// Changes a topic's settings: the fields `set` gives replace the
    /// topic's, then the fields `reset` names return to the broker's
    /// defaults. All but the flush policy may change (`InvalidConfig`
    /// for it).
    pub async fn alter_topic_config(
        &mut self,
        name: &str,
        set: TopicConfig,
        reset: Vec<ConfigField>,
    ) -> Result<(), ClientError> {
        self.config_request(name, set, reset, false).await
    }

    async fn config_request(
        &mut self,
        name: &str,
        set: TopicConfig,
        reset: Vec<ConfigField>,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let req = AlterTopicConfigRequest {
            topics: vec![TopicConfigChange {
                name: name.to_owned(),
                set,
                reset,
            }],
            validate_only,
        };
        let r = admin_call!(self, "AlterTopicConfig", |c| c.alter_topic_config(&req))?;
        let t = r.results.into_iter().next().ok_or(ClientError::Closed)?;
        check(t.error_code, t.message)
    }

    /// Deletes the records of partition `partition` of `topic` below
    /// `before` (`None`: every record consumers may read); returns the
    /// partition's log start offset afterwards. Asked of the connected
    /// broker, then, if it does not lead the partition, of the leader the
    /// cluster's metadata names (each step within the request timeout).
    pub async fn delete_records(
        &mut self,
        topic: &str,
        partition: u32,
        before: Option<u64>,
    ) -> Result<u64, ClientError> {
        let req = DeleteRecordsRequest {
            partitions: vec![RecordsBelow {
                topic: topic.to_owned(),
                partition,
                before,
            }],
        };
        let mut r = admin_call!(self, "DeleteRecords", |c| c.delete_records(&req))?;
        let first = |r: &mut DeleteRecordsResponse| r.partitions.pop().ok_or(ClientError::Closed);
        let mut p = first(&mut r)?;
        if p.error_code == ErrorCode::NotLeaderForPartition {
            let meta = self.metadata(Some(vec![topic.to_owned()])).await?;
            let leader = meta.leader(topic, partition).flatten();
            if let Some(addr) = leader.and_then(|l| meta.broker_address(l)) {
                let mut theirs = self.at(addr).await?;
                let mut r = admin_call!(theirs, "DeleteRecords", |c| c.delete_records(&req))?;
                p = first(&mut r)?;
            }
        }
        // The caller names the partition: the error names only the cause.
        check(p.error_code, None)?;
        Ok(p.log_start_offset)
    }

    /// Where each of `partitions` is (ListOffsets), one answer per
    /// partition in the order asked; see [`list_offsets_at_leaders`].
    pub async fn list_offsets(
        &mut self,
        partitions: Vec<ListOffsetsPartition>,
    ) -> Result<Vec<ListOffsetsPartitionResponse>, ClientError> {
        admin_call!(self, "ListOffsets", |c| list_offsets_at_leaders(
            c,
            partitions.clone()
        ))
    }

    /// The cluster's brokers and the given topics (or all) with each
    /// partition's leader, epoch, replicas and in-sync replicas.
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<sluice_protocol::wire::metadata::MetadataResponse, ClientError> {
        admin_call!(self, "Metadata", |c| c.metadata(topics.clone()))
    }

    /// Every topic with its partitions and settings.
    pub async fn list_topics(&mut self) -> Result<Vec<TopicMetadata>, ClientError> {
        Ok(self.metadata(None).await?.topics)
    }

    /// One topic, or [`ErrorCode::UnknownTopicOrPartition`].
    pub async fn describe_topic(&mut self, name: &str) -> Result<TopicMetadata, ClientError> {
        self.describe_one(name, false).await
    }

    /// [`describe_topic`](Self::describe_topic), the topic created first
    /// with the broker's defaults if it does not exist and the broker
    /// creates topics on first use (see
    /// [`Connection::metadata_creating`](crate::Connection::metadata_creating)),
    /// as a producer's first send to it would.
    pub async fn describe_topic_creating(
        &mut self,
        name: &str,
    ) -> Result<TopicMetadata, ClientError> {
        self.describe_one(name, true).await
    }

    /// One topic's Metadata, asking for it to be created first or not.
    async fn describe_one(
        &mut self,
        name: &str,
        create: bool,
    ) -> Result<TopicMetadata, ClientError> {
        let topics = Some(vec![name.to_owned()]);
        let t = admin_call!(self, "Metadata", |c| c
            .metadata_asking(topics.clone(), create))?
        .topics
        .into_iter()
        .next()
        .ok_or(ClientError::Closed)?;
        check(t.error_code, Some(format!("topic {name:?}")))?;
        Ok(t)
    }

    /// What each partition of a topic holds on disk, each row from a node
    /// that hosts it: in a cluster a node keeps the state of only the
    /// partitions it holds a replica of, so the partitions the connected
    /// broker does not host are asked of their leaders (one connection per
    /// leader, the leaders at once: connect and answer within one request
    /// timeout, however many leaders there are). A partition whose leader
    /// is unknown or does not answer in that time has no row. Rows are in
    /// partition order.
    pub async fn topic_status_from_leaders(
        &mut self,
        name: &str,
    ) -> Result<TopicState, ClientError> {
        let meta = self.metadata(Some(vec![name.to_owned()])).await?;
        let mut state = self.topic_status(name).await?;
        let mut by_leader: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for p in meta.topics.iter().flat_map(|t| &t.partitions) {
            let held = state.partitions.iter().any(|s| s.partition == p.partition);
            if let (false, Some(leader)) = (held, p.leader) {
                by_leader.entry(leader).or_default().push(p.partition);
            }
        }
        // The tasks end with the set if this call is dropped.
        let limit = self.request_timeout;
        let mut asks = tokio::task::JoinSet::new();
        for (leader, wanted) in by_leader {
            let Some(addr) = meta.broker_address(leader).map(str::to_owned) else {
                continue;
            };
            let name = name.to_owned();
            asks.spawn(async move {
                let asked = async {
                    let theirs = Admin::connect(&addr).await?;
                    theirs.with_request_timeout(limit).topic_status(&name).await
                };
                match tokio::time::timeout(limit, asked).await {
                    Ok(Ok(t)) => Some((wanted, t)),
                    _ => None,
                }
            });
        }
        while let Some(done) = asks.join_next().await {
            if let Ok(Some((wanted, t))) = done {
                state.partitions.extend(
                    t.partitions
                        .into_iter()
                        .filter(|p| wanted.contains(&p.partition)),
                );
            }
        }
        state.partitions.sort_by_key(|p| p.partition);
        Ok(state)
    }

    /// What each partition of a topic holds on disk (offsets, size,
    /// segments, offline), or [`ErrorCode::UnknownTopicOrPartition`].
    pub async fn topic_status(&mut self, name: &str) -> Result<TopicState, ClientError> {
        let t = admin_call!(self, "PartitionStatus", |c| c
            .partition_status(vec![name.to_owned()]))?
        .topics
        .into_iter()
        .next()
        .ok_or(ClientError::Closed)?;
        check(t.error_code, Some(format!("topic {name:?}")))?;
        Ok(t)
    }

    /// The broker's version, uptime, addresses, disk space and connections.
    pub async fn broker_status(&mut self) -> Result<BrokerStatusResponse, ClientError> {
        admin_call!(self, "BrokerStatus", |c| c.broker_status())
    }
}

/// How long [`list_offsets_at_leaders`] keeps asking again for partitions
/// whose leader is moving or not yet known.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// How long [`list_offsets_at_leaders`] waits for one leader's answer,
/// connection included.
const ASK_LEADER: Duration = Duration::from_secs(10);

/// Where each of `partitions` is (ListOffsets), one answer per partition in
/// the order asked. Only a partition's leader answers ListOffsets, and in a
/// cluster a node leads only some partitions: the connected broker (`conn`)
/// is asked first, then every partition it refused as not its own (or as
/// without a leader) is asked of the leader the cluster's metadata names,
/// grouped by leader, the leaders at once, again every 100 ms while a
/// leader is moving or unknown, for up to 10 s in all. A partition still refused after that keeps
/// its last answer's error code; a broker that answers nothing is an
/// error.
pub async fn list_offsets_at_leaders(
    conn: &mut Connection,
    partitions: Vec<ListOffsetsPartition>,
) -> Result<Vec<ListOffsetsPartitionResponse>, ClientError> {
    let first = conn.list_offsets(partitions.clone()).await?.partitions;
    let mut answers: Vec<ListOffsetsPartitionResponse> =
        partitions.iter().map(unanswered).collect();
    fill(&mut answers, &partitions, first);
    let elsewhere = |a: &ListOffsetsPartitionResponse| {
        matches!(
            a.error_code,
            ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable
        )
    };
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let pending: Vec<usize> = (0..answers.len())
            .filter(|&i| elsewhere(&answers[i]))
            .collect();
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(answers);
        }
        let mut topics: Vec<String> = pending
            .iter()
            .map(|&i| partitions[i].topic.clone())
            .collect();
        topics.sort();
        topics.dedup();
        let meta = conn.metadata(Some(topics)).await?;
        let mut by_leader: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &i in &pending {
            let p = &partitions[i];
            if let Some(Some(leader)) = meta.leader(&p.topic, p.partition) {
                by_leader.entry(leader).or_default().push(i);
            }
        }
        // The leaders are asked at once, each for at most ASK_LEADER and
        // not past the deadline (the tasks end with the set if this call is
        // dropped).
        let limit = ASK_LEADER.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let mut asks = tokio::task::JoinSet::new();
        for (leader, asked) in by_leader {
            let Some(addr) = meta.broker_address(leader).map(str::to_owned) else {
                continue;
            };
            let request: Vec<ListOffsetsPartition> =
                asked.iter().map(|&i| partitions[i].clone()).collect();
            asks.spawn(async move {
                let answer = tokio::time::timeout(limit, async {
                    let mut theirs = Connection::connect(addr).await?;
                    theirs.list_offsets(request.clone()).await
                })
                .await;
                (asked, request, answer)
            });
        }
        while let Some(done) = asks.join_next().await {
            // A leader that cannot be reached leaves its partitions as they
            // were: asked again after the next metadata.
            if let Ok((asked, request, Ok(Ok(r)))) = done {
                let mut theirs: Vec<ListOffsetsPartitionResponse> =
                    asked.iter().map(|&i| answers[i].clone()).collect();
                fill(&mut theirs, &request, r.partitions);
                for (i, a) in asked.into_iter().zip(theirs) {
                    answers[i] = a;
                }
            }
        }
        if answers.iter().any(elsewhere) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The answer of a partition the broker left out: `Unknown`.
fn unanswered(p: &ListOffsetsPartition) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        topic: p.topic.clone(),
        partition: p.partition,
        error_code: ErrorCode::Unknown,
        offset: 0,
    }
}

/// Puts each answer of `got` in the slot of `answers` whose request in
/// `asked` names the same partition (the first such slot not yet filled by
/// this call); an answer for a partition not asked is dropped.
fn fill(
    answers: &mut [ListOffsetsPartitionResponse],
    asked: &[ListOffsetsPartition],
    got: Vec<ListOffsetsPartitionResponse>,
) {
    // Each partition's slots, last first (so `pop` takes the first).
    let mut slots: std::collections::HashMap<(String, u32), Vec<usize>> =
        std::collections::HashMap::new();
    for (i, p) in asked.iter().enumerate().rev() {
        slots
            .entry((p.topic.clone(), p.partition))
            .or_default()
            .push(i);
    }
    for a in got {
        let slot = slots
            .get_mut(&(a.topic.clone(), a.partition))
            .and_then(Vec::pop);
        if let Some(i) = slot {
            answers[i] = a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::wire::list_offsets::OffsetSpec;

    fn ask(topic: &str, partition: u32) -> ListOffsetsPartition {
        ListOffsetsPartition {
            topic: topic.into(),
            partition,
            spec: OffsetSpec::Latest,
        }
    }

    fn answer(topic: &str, partition: u32, offset: u64) -> ListOffsetsPartitionResponse {
        ListOffsetsPartitionResponse {
            topic: topic.into(),
            partition,
            error_code: ErrorCode::None,
            offset,
        }
    }

    #[test]
    fn answers_fill_the_slots_of_their_partitions_in_order() {
        let asked = [ask("a", 0), ask("b", 1), ask("a", 0), ask("a", 1)];
        let mut answers: Vec<_> = asked.iter().map(unanswered).collect();
        fill(
            &mut answers,
            &asked,
            vec![
                answer("a", 1, 7),
                answer("a", 0, 1),
                answer("x", 0, 9),
                answer("a", 0, 2),
                answer("a", 0, 3),
            ],
        );
        let got: Vec<(ErrorCode, u64)> = answers.iter().map(|a| (a.error_code, a.offset)).collect();
        assert_eq!(
            got,
            [
                (ErrorCode::None, 1),
                (ErrorCode::Unknown, 0),
                (ErrorCode::None, 2),
                (ErrorCode::None, 7)
            ]
        );
    }
}
