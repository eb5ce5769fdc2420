//! The service layer: what the broker does, independent of any wire
//! protocol.
//!
//! Front-ends (the native protocol in `server::native`, later a Kafka
//! listener) decode requests into the typed requests of this module, call a
//! [`Service`] function and encode what it returns. Nothing here knows about
//! frames, sockets or postcard. Dependencies point one way:
//! front-end → service → [`crate::partition`] → [`crate::log`].
//!
//! - [`produce`]: append record sets, acknowledged by the partition's policy.
//! - [`fetch`]: long-poll fetch returning a [`fetch::Plan`] of byte chunks
//!   and file ranges.
//! - [`admin`]: create, delete, list and describe topics; list offsets.
//! - [`offsets`]: commit and fetch consumer-group offsets.
//! - [`coordinator`]: which node coordinates each consumer group.
//! - [`groups`]: consumer groups (join, sync, heartbeat, leave, describe,
//!   list, delete) through the [`crate::group`] coordinator.
//! - [`stats`](mod@stats): counters.
//! - [`status`]: partition and broker status for operators.
//! - `replicated`: produce through partition groups (cluster mode).
//! - [`leadership`]: which node leads each partition, and the cluster's
//!   brokers ([`leadership::SingleNode`] without a cluster).
//!
//! Every function that may touch the disk runs that part on the blocking
//! pool (`tokio::task::spawn_blocking`), never on a reactor thread.

pub mod admin;
pub mod coordinator;
pub mod elections;
pub mod fetch;
pub mod groups;
pub mod leadership;
pub mod offsets;
pub mod produce;
pub mod producer_ids;
pub mod records;
mod replicated;
pub mod stats;
pub mod status;

use crate::config::BrokerConfig;
use crate::offsets::OffsetStore;
use crate::topics::TopicStore;
use sluice_protocol::wire::ErrorCode;
use stats::Stats;

/// The broker's state shared by every front-end: settings, topics,
/// committed offsets, counters.
#[derive(Debug)]
pub struct Service {
    /// Settings.
    pub config: BrokerConfig,
    /// Topics and their partitions.
    pub topics: TopicStore,
    /// Committed offsets of consumer groups (shared with the coordinator).
    pub offsets: std::sync::Arc<OffsetStore>,
    /// Counters.
    pub stats: Stats,
    /// The producer id allocator (InitProducerId).
    pub producer_ids: crate::producer::ids::ProducerIds,
    /// The consumer group coordinator.
    pub groups: std::sync::Arc<crate::group::Coordinator>,
    /// The address the native listener is bound to, once it is (the
    /// configured one may name port 0).
    pub bound_listen: std::sync::OnceLock<std::net::SocketAddr>,
    /// The address the Kafka listener is bound to, once it is; never set
    /// when it is off.
    pub bound_kafka: std::sync::OnceLock<std::net::SocketAddr>,
    /// Who leads each partition; produce, fetch and list-offsets of a
    /// partition this broker does not lead are refused.
    pub leadership: std::sync::Arc<dyn leadership::Leadership>,
    /// Cluster mode (`--cluster`): the controller that topic changes go
    /// through. Unset for a single broker.
    pub cluster: std::sync::OnceLock<std::sync::Arc<crate::replication::controller::Cluster>>,
    /// Cluster mode: this node's partition replicas; produce to them goes
    /// through their Raft groups.
    pub replicas: std::sync::OnceLock<std::sync::Arc<crate::replication::manager::ReplicaManager>>,
    /// Cluster mode: the free space kept on the data directory
    /// (`min_free_bytes`; see [`crate::replication::free_space`]).
    pub free_space: std::sync::Arc<crate::replication::free_space::FreeSpace>,
}

/// A whole request refused: the error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refused {
    /// Stable error code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
}

impl Service {
    /// Flushes and closes every log, writing clean-shutdown markers. Blocking.
    pub fn shutdown(&self) {
        self.topics.shutdown();
        self.offsets.shutdown();
    }

    /// The partition, if this broker leads it: `NotLeaderForPartition` when
    /// another node does, `LeaderNotAvailable` when none does,
    /// `UnknownTopicOrPartition` when it does not exist. No allocation in
    /// single-broker mode.
    pub fn led_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<std::sync::Arc<crate::partition::Partition>, ErrorCode> {
        leadership::check_leader(self.leadership.as_ref(), topic, partition)
            .map_err(|n| n.code())?;
        self.topics.partition(topic, partition)
    }

    /// The idempotent producers a partition this broker leads holds state
    /// for, by id: each one's newest epoch, last sequence and when it last
    /// appended (the broker's clock). Errors as [`Service::led_partition`].
    /// Takes the partition's lock briefly, no I/O.
    pub fn producers_of(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<crate::producer::ActiveProducer>, ErrorCode> {
        let part = self.led_partition(topic, partition)?;
        Ok(part
            .log
            .producer_states()
            .into_iter()
            .map(|(producer_id, e)| crate::producer::ActiveProducer {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.batches.back().map_or(-1, |b| b.timestamp),
            })
            .collect())
    }

    /// Why a partition's request failed with `code`, for the client.
    pub(crate) fn refusal_message(&self, code: ErrorCode, topic: &str, partition: u32) -> String {
        match leadership::check_leader(self.leadership.as_ref(), topic, partition) {
            Err(n) if n.code() == code => n.message(topic, partition),
            _ => format!("no partition {partition} of topic {topic:?}"),
        }
    }
}

/// `names` without repeats, each where it first appears: a topic or group
/// named twice in a request is answered once, as Kafka does, so an answer
/// stays in proportion to what it describes, not to the request.
pub fn first_of_each(names: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names
        .iter()
        .map(String::as_str)
        .filter(|n| seen.insert(*n))
        .collect()
}

/// The list elements one request may hold in all, on either listener:
/// room for `max_partitions_per_request` partitions many times over (a
/// partition list with its topics, replica lists, the config names of many
/// topics) and 64 Ki more. A request past it is refused before it is
/// decoded, so that a frame naming millions of topics, groups or members
/// never becomes millions of values (nor an answer with one entry each).
pub fn element_cap(config: &crate::config::BrokerConfig) -> usize {
    (config.max_partitions_per_request as usize)
        .saturating_mul(16)
        .saturating_add(1 << 16)
}

/// Refuses a request listing more than `max` partitions (ListOffsets and
/// OffsetCommit, where one partition may appear more than once).
pub fn check_partition_count(n: usize, max: u32) -> Result<(), Refused> {
    if n > max as usize {
        return Err(Refused {
            code: ErrorCode::TooManyPartitions,
            message: format!("{n} partitions in one request; at most {max} are accepted"),
        });
    }
    Ok(())
}

/// Checks that a request names at most `max` (`max_partitions_per_request`)
/// `what`s (topics, groups): checked before any of them is looked at, so
/// that a request naming millions of names costs no more than its bytes.
pub fn check_entry_count(n: usize, max: u32, what: &str) -> Result<(), Refused> {
    if n > max as usize {
        return Err(Refused {
            code: ErrorCode::InvalidRequest,
            message: format!(
                "{n} {what} in one request; at most {max} are accepted (max_partitions_per_request)"
            ),
        });
    }
    Ok(())
}

/// Checks the partition list of a produce or fetch request: at most `max`
/// entries, no (topic, partition) twice.
pub fn check_partition_list<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, u32)> + Clone,
    max: u32,
) -> Result<(), Refused> {
    let n = entries.len();
    check_partition_count(n, max)?;
    let duplicate = |(topic, partition): (&str, u32)| Refused {
        code: ErrorCode::DuplicatePartition,
        message: format!("partition {partition} of topic {topic:?} is listed more than once"),
    };
    if n <= 16 {
        // Short lists (the usual case): compare pairs, no allocation.
        for (i, a) in entries.clone().enumerate() {
            if entries.clone().skip(i + 1).any(|b| a == b) {
                return Err(duplicate(a));
            }
        }
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        for e in entries {
            if !seen.insert(e) {
                return Err(duplicate(e));
            }
        }
    }
    Ok(())
}

/// Runs blocking work (file I/O, fsync) on the blocking pool. A panic in it
/// becomes an error, never a panic of the caller.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::BytesMut;
    use sluice_protocol::batch::{BatchBuilder, NewRecord};

    use super::*;
    use crate::service::fetch::{FetchPartition, FetchRequest};
    use crate::service::produce::{Acks, ProducePartition, ProduceRequest};

    fn service(dir: &std::path::Path) -> Arc<Service> {
        service_led_by(dir, Arc::new(leadership::SingleNode::default()))
    }

    pub(crate) fn service_led_by(
        dir: &std::path::Path,
        leadership: Arc<dyn leadership::Leadership>,
    ) -> Arc<Service> {
        let config = BrokerConfig {
            data_dir: dir.to_owned(),
            ..BrokerConfig::default()
        };
        let topics = TopicStore::open(dir, config.topic_defaults.clone()).unwrap();
        let offsets = Arc::new(
            OffsetStore::open(Arc::new(crate::log::StdFs), dir, config.offsets_config()).unwrap(),
        );
        let groups = crate::group::Coordinator::open(config.group_config(), Arc::clone(&offsets));
        let svc = Arc::new(Service {
            config,
            topics,
            offsets,
            stats: Stats::default(),
            producer_ids: crate::producer::ids::ProducerIds::open(Arc::new(crate::log::StdFs), dir)
                .unwrap(),
            groups,
            bound_listen: Default::default(),
            bound_kafka: Default::default(),
            leadership,
            cluster: Default::default(),
            replicas: Default::default(),
            free_space: Arc::new(crate::replication::free_space::FreeSpace::new(dir, 0)),
        });
        svc.topics.create("t", 1, &Default::default()).unwrap();
        svc
    }

    fn records(n: usize) -> BytesMut {
        let mut b = BatchBuilder::new();
        for _ in 0..n {
            b.push(&NewRecord {
                timestamp: 1,
                key: None,
                value: Some(b"v"),
                headers: &[],
            });
        }
        b.finish()
    }

    fn produce_req(records: BytesMut, range: std::ops::Range<usize>) -> ProduceRequest {
        ProduceRequest {
            acks: Acks::Leader,
            timeout: Duration::from_secs(5),
            partitions: vec![ProducePartition {
                topic: "t".into(),
                partition: 0,
                records: range,
            }],
            records,
        }
    }

    /// Look-ups asked again in one request get the first one's answer,
    /// each in its place; different queries of the same partition are
    /// answered each on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeated_offset_lookups_are_answered_in_place() {
        use crate::service::admin::{OffsetLookup, OffsetQuery};
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let batch = records(3);
        let len = batch.len();
        svc.produce(produce_req(batch, 0..len)).await.unwrap();
        let queries = [
            OffsetQuery::Timestamp(0),
            OffsetQuery::Latest,
            OffsetQuery::Timestamp(0),
            OffsetQuery::Timestamp(2),
            OffsetQuery::Earliest,
            OffsetQuery::Latest,
        ];
        let lookups = queries
            .iter()
            .map(|&query| OffsetLookup {
                topic: "t".into(),
                partition: 0,
                query,
            })
            .collect();
        let found = svc.list_offsets(lookups).await.unwrap();
        let got: Vec<(u64, bool)> = found.iter().map(|f| (f.offset, f.past_end)).collect();
        assert_eq!(
            got,
            [
                (0, false),
                (3, false),
                (0, false),
                (3, true),
                (0, false),
                (3, false)
            ]
        );
        assert_eq!(found[0], found[2]);
        assert_eq!(found[0].found, Some((1, 0)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_poll_is_woken_by_a_produce() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let req = tail_fetch(Duration::from_secs(20));
        let fetch = tokio::spawn({
            let svc = Arc::clone(&svc);
            async move { svc.fetch(req, stop).await }
        });
        let batch = records(3);
        let len = batch.len();
        let produced = svc.produce(produce_req(batch, 0..len)).await.unwrap();
        assert_eq!(produced[0].error_code, ErrorCode::None);
        let fetched = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .expect("the long poll was not woken by the append")
            .unwrap()
            .unwrap();
        assert_eq!(fetched.total, len as u64);
        assert_eq!(fetched.partitions[0].high_watermark, 3);
        let chunks = fetched.plan_after(b"head");
        assert_eq!(chunks.len(), 2);
    }

    /// A long poll of partition 0 of "t" from offset 0 for `max_wait`.
    fn tail_fetch(max_wait: Duration) -> FetchRequest {
        FetchRequest {
            max_wait,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        }
    }

    /// The producer's task waits for the long poll its append woke: when
    /// `let_woken_fetches_answer` returns, the fetch has its records. With
    /// no fetch watching it returns at once. (One runtime thread: the
    /// producer is resumed only after the fetch's task has finished its
    /// turn; on several threads it may resume while that turn ends.)
    #[tokio::test(flavor = "current_thread")]
    async fn an_append_lets_the_fetch_it_woke_resolve_first() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let appended = || std::iter::once(("t", 0u32));
        // Nobody watches: no wait.
        tokio::time::timeout(
            Duration::from_secs(5),
            svc.let_woken_fetches_answer(appended()),
        )
        .await
        .expect("waited with no fetch watching");
        for round in 0..20u64 {
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let fetch = tokio::spawn({
                let svc = Arc::clone(&svc);
                let mut req = tail_fetch(Duration::from_secs(20));
                req.partitions[0].offset = round;
                async move {
                    let r = svc.fetch(req, stop).await;
                    let _ = done_tx.send(());
                    r
                }
            });
            let part = svc.topics.partition("t", 0).unwrap();
            while !part.has_waiters() {
                tokio::task::yield_now().await;
            }
            let mut done_rx = done_rx;
            // Give the fetch time to park in its long poll.
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(
                done_rx.try_recv().is_err(),
                "the fetch answered with nothing to read"
            );
            let batch = records(1);
            let len = batch.len();
            let produced = svc.produce(produce_req(batch, 0..len)).await.unwrap();
            assert_eq!(produced[0].error_code, ErrorCode::None);
            tokio::time::timeout(
                Duration::from_secs(5),
                svc.let_woken_fetches_answer(appended()),
            )
            .await
            .expect("the producer kept waiting after the fetch resolved");
            assert_eq!(
                done_rx.try_recv(),
                Ok(()),
                "round {round}: the producer went on before the woken fetch resolved"
            );
            let fetched = fetch.await.unwrap().unwrap();
            assert_eq!(fetched.total, len as u64);
        }
    }

    /// A produce to two partitions waits for the fetches it woke: one fetch
    /// watching both, or one fetch per partition.
    #[tokio::test(flavor = "current_thread")]
    async fn a_produce_to_several_partitions_waits_for_each_woken_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        svc.topics.create("m", 2, &Default::default()).unwrap();
        let at = |partition: u32, offset: u64| FetchPartition {
            topic: "m".into(),
            partition,
            offset,
            max_bytes: 1 << 20,
        };
        for (round, fetches) in [vec![vec![0, 1]], vec![vec![0], vec![1]]]
            .into_iter()
            .enumerate()
        {
            let offset = round as u64;
            let mut done = Vec::new();
            for parts in &fetches {
                let (stop_tx, stop) = tokio::sync::watch::channel(false);
                let req = FetchRequest {
                    partitions: parts.iter().map(|&p| at(p, offset)).collect(),
                    ..tail_fetch(Duration::from_secs(20))
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let svc = Arc::clone(&svc);
                tokio::spawn(async move {
                    let r = svc.fetch(req, stop).await.unwrap();
                    let _ = tx.send(r.total);
                    drop(stop_tx);
                });
                done.push(rx);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            for p in 0..2 {
                assert_eq!(svc.topics.partition("m", p).unwrap().waiters(), 1);
            }
            let (a, b) = (records(1), records(1));
            let (la, lb) = (a.len(), b.len());
            let mut both = a;
            both.extend_from_slice(&b);
            let produced = svc
                .produce(ProduceRequest {
                    acks: Acks::Leader,
                    timeout: Duration::from_secs(5),
                    partitions: vec![
                        ProducePartition {
                            topic: "m".into(),
                            partition: 0,
                            records: 0..la,
                        },
                        ProducePartition {
                            topic: "m".into(),
                            partition: 1,
                            records: la..la + lb,
                        },
                    ],
                    records: both,
                })
                .await
                .unwrap();
            assert!(produced.iter().all(|p| p.error_code.is_ok()));
            tokio::time::timeout(
                Duration::from_secs(5),
                svc.let_woken_fetches_answer([("m", 0u32), ("m", 1)].into_iter()),
            )
            .await
            .expect("the producer kept waiting after the fetches resolved");
            for rx in &mut done {
                assert!(
                    rx.try_recv().is_ok_and(|total| total > 0),
                    "round {round}: the producer went on before a woken fetch answered"
                );
            }
        }
    }

    /// A fetch parked past the high watermark (a new leader's trailing
    /// watermark) waits there; when the log is then cut below its offset
    /// and the partition woken, it answers `OffsetOutOfRange` at once, not
    /// at its deadline.
    #[tokio::test(flavor = "current_thread")]
    async fn a_fetch_past_the_high_watermark_waits_then_learns_of_a_cut() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let part = svc.topics.partition("t", 0).unwrap();
        part.log.set_high_watermark(0).unwrap();
        for _ in 0..3 {
            let batch = records(1);
            let len = batch.len();
            let produced = svc.produce(produce_req(batch, 0..len)).await.unwrap();
            assert!(produced[0].error_code.is_ok());
        }
        assert_eq!((part.log.high_watermark(), part.log.next_offset()), (0, 3));
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut req = tail_fetch(Duration::from_secs(20));
        req.partitions[0].offset = 2;
        let mut fetch = Box::pin(svc.fetch(req, stop));
        assert!(futures::poll!(fetch.as_mut()).is_pending());
        part.log.truncate_to(1).unwrap();
        part.wake_all();
        assert_eq!(
            first_code_soon(fetch, "the cut").await,
            ErrorCode::OffsetOutOfRange
        );
    }

    /// The first partition's code of a fetch that must answer well before
    /// its 20 s deadline once woken after `what`.
    async fn first_code_soon(
        fetch: impl std::future::Future<Output = Result<fetch::FetchResult, Refused>>,
        what: &str,
    ) -> ErrorCode {
        let fetched = tokio::time::timeout(Duration::from_secs(5), fetch)
            .await
            .unwrap_or_else(|_| panic!("the fetch waited out its deadline after {what}"))
            .unwrap();
        fetched.partitions[0].error_code
    }

    /// Node 1 of a cluster whose partitions' leader the test moves.
    #[derive(Debug)]
    struct Moving(std::sync::atomic::AtomicU64);

    impl leadership::Leadership for Moving {
        fn local_node(&self) -> u64 {
            1
        }
        fn brokers(&self) -> Vec<leadership::BrokerInfo> {
            Vec::new()
        }
        fn partition(&self, _: &str, _: u32) -> Option<leadership::PartitionLeadership> {
            Some(leadership::PartitionLeadership {
                leader: Some(self.0.load(std::sync::atomic::Ordering::SeqCst)),
                leader_epoch: 1,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
            })
        }
    }

    /// A fetch parked on a partition this node then stops leading answers
    /// `NotLeaderForPartition` once the partition is woken, not at its
    /// deadline and not from this replica's log.
    #[tokio::test(flavor = "current_thread")]
    async fn a_parked_fetch_answers_when_its_partition_is_led_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let moving = Arc::new(Moving(std::sync::atomic::AtomicU64::new(1)));
        let svc = service_led_by(
            dir.path(),
            Arc::clone(&moving) as Arc<dyn leadership::Leadership>,
        );
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut fetch = Box::pin(svc.fetch(tail_fetch(Duration::from_secs(20)), stop));
        assert!(futures::poll!(fetch.as_mut()).is_pending());
        moving.0.store(3, std::sync::atomic::Ordering::SeqCst);
        svc.topics.partition("t", 0).unwrap().wake_all();
        assert_eq!(
            first_code_soon(fetch, "the leader moved").await,
            ErrorCode::NotLeaderForPartition
        );
    }

    /// A fetch that is dropped while an append waits for it (its connection
    /// closed) ends the wait: the producer is never held by a fetch that
    /// will not run again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_fetch_ends_the_appends_wait() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut fetch = Box::pin(svc.fetch(tail_fetch(Duration::from_secs(20)), stop));
        // Polled once: subscribed and parked in its long poll.
        assert!(futures::poll!(fetch.as_mut()).is_pending());
        let part = svc.topics.partition("t", 0).unwrap();
        assert_eq!(part.waiters(), 1);
        let batch = records(1);
        let len = batch.len();
        svc.produce(produce_req(batch, 0..len)).await.unwrap();
        let wait = svc.let_woken_fetches_answer(std::iter::once(("t", 0u32)));
        tokio::pin!(wait);
        // The fetch has not run since the append: the producer waits.
        assert!(futures::poll!(wait.as_mut()).is_pending());
        drop(fetch);
        assert_eq!(part.waiters(), 0);
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the producer kept waiting for a dropped fetch");
    }

    #[tokio::test]
    async fn a_produce_range_outside_the_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let batch = records(1);
        let len = batch.len();
        let r = svc.produce(produce_req(batch, 0..len + 1)).await;
        assert_eq!(r.map_err(|e| e.code).err(), Some(ErrorCode::InvalidRequest));
        assert_eq!(svc.topics.partition("t", 0).unwrap().log.next_offset(), 0);
    }

    /// Produce, fetch and list-offsets of a partition led by another node
    /// are refused with its id; with no leader, `LeaderNotAvailable`.
    #[tokio::test]
    async fn a_partition_led_elsewhere_is_refused() {
        use crate::service::admin::{OffsetLookup, OffsetQuery};
        use leadership::tests::Scripted;
        for (leader, code) in [
            (Some(3), ErrorCode::NotLeaderForPartition),
            (None, ErrorCode::LeaderNotAvailable),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let svc = service_led_by(dir.path(), Arc::new(Scripted { local: 1, leader }));
            let batch = records(1);
            let len = batch.len();
            let produced = svc.produce(produce_req(batch, 0..len)).await.unwrap();
            assert_eq!(produced[0].error_code, code);
            let message = produced[0].message.clone().unwrap();
            assert_eq!(message.contains("node 3"), leader.is_some(), "{message}");
            assert_eq!(svc.topics.partition("t", 0).unwrap().log.next_offset(), 0);
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let fetched = svc.fetch(tail_fetch(Duration::ZERO), stop).await.unwrap();
            assert_eq!(fetched.partitions[0].error_code, code);
            let found = svc
                .list_offsets(vec![OffsetLookup {
                    topic: "t".into(),
                    partition: 0,
                    query: OffsetQuery::Latest,
                }])
                .await
                .unwrap();
            assert_eq!(found[0].error_code, code);
        }
        // Led by this node: served.
        let dir = tempfile::tempdir().unwrap();
        let svc = service_led_by(
            dir.path(),
            Arc::new(Scripted {
                local: 2,
                leader: Some(2),
            }),
        );
        let batch = records(1);
        let len = batch.len();
        let produced = svc.produce(produce_req(batch, 0..len)).await.unwrap();
        assert_eq!(produced[0].error_code, ErrorCode::None);
    }

    /// A member's commit checked, then held up (as on the blocking pool)
    /// while the member leaves and its group is deleted, is checked again
    /// where it is stored and refused: the deleted group's offsets do not
    /// come back.
    #[tokio::test]
    async fn a_commit_checked_before_its_group_was_deleted_is_refused_where_it_is_stored() {
        use crate::group::{CommitAs, JoinGroup, MemberRef, SyncGroup};
        use crate::service::offsets::Commit;
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let join = |member_id: &str| JoinGroup {
            group: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Vec::new())],
            require_known_member_id: true,
        };
        let id = svc.groups.join(join("")).await.member_id;
        let joined = svc.groups.join(join(&id)).await;
        assert_eq!(joined.error, ErrorCode::None);
        let synced = svc
            .groups
            .sync(SyncGroup {
                group: "g".into(),
                generation_id: joined.generation_id,
                member_id: id.clone(),
                group_instance_id: None,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(id.clone(), Vec::new())],
            })
            .await;
        assert_eq!(synced.error, ErrorCode::None);
        let who = CommitAs {
            generation_id: joined.generation_id,
            member_id: id.clone(),
            group_instance_id: None,
        };
        let commit = || {
            vec![Commit {
                topic: "t".into(),
                partition: 0,
                offset: Some(5),
                metadata: String::new(),
            }]
        };
        // The first check passes; then the member leaves and the group is
        // deleted before the commit reaches the store.
        assert_eq!(svc.groups.check_commit("g", &who, &[("t", 0)]), Ok(()));
        let member = MemberRef {
            member_id: id.clone(),
            group_instance_id: None,
        };
        assert_eq!(svc.groups.leave("g", vec![member]).error, ErrorCode::None);
        svc.commit_offsets("g".into(), commit()).await.unwrap();
        let deleted = svc.groups.delete(vec!["g".into()]).await;
        assert_eq!(deleted[0].1, ErrorCode::None);
        let r = svc
            .commit_offsets_checked("g".into(), commit(), Some(who.clone()))
            .await
            .unwrap();
        assert_ne!(r[0].error_code, ErrorCode::None, "{r:?}");
        assert_eq!(svc.offsets.get("g", "t", 0), None);
        // Nor does its commit clearing the offset (a negative one) remove
        // what was committed since.
        svc.commit_offsets("g".into(), commit()).await.unwrap();
        let mut clear = commit();
        clear[0].offset = None;
        let r = svc
            .commit_offsets_checked("g".into(), clear, Some(who))
            .await
            .unwrap();
        assert_ne!(r[0].error_code, ErrorCode::None, "{r:?}");
        assert_eq!(svc.offsets.get("g", "t", 0), Some((5, String::new())));
    }

    /// A single broker takes replication factor 1 (or none: the default)
    /// and refuses more, saying how many brokers there are.
    #[tokio::test]
    async fn replication_factor_is_checked_against_the_brokers() {
        use crate::service::admin::NewTopic;
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let topic = |name: &str, replication_factor| NewTopic {
            name: name.into(),
            partitions: 1,
            config: Default::default(),
            replication_factor,
        };
        let done = svc
            .create_topics(
                vec![
                    topic("a", None),
                    topic("b", Some(1)),
                    topic("c", Some(2)),
                    topic("d", Some(0)),
                ],
                Duration::ZERO,
            )
            .await
            .unwrap();
        let codes: Vec<ErrorCode> = done.iter().map(|o| o.error_code).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::None,
                ErrorCode::None,
                ErrorCode::InvalidReplicationFactor,
                ErrorCode::InvalidReplicationFactor
            ]
        );
        let message = done[2].message.as_deref().unwrap();
        assert!(message.contains("1 broker"), "{message}");
        assert!(svc.topics.topic("c").is_none());
        // Three brokers: 3 is accepted.
        let dir = tempfile::tempdir().unwrap();
        let svc = service_led_by(
            dir.path(),
            Arc::new(leadership::tests::Scripted {
                local: 1,
                leader: Some(1),
            }),
        );
        let done = svc
            .create_topics(
                vec![topic("e", Some(3)), topic("f", Some(4))],
                Duration::ZERO,
            )
            .await
            .unwrap();
        assert_eq!(done[0].error_code, ErrorCode::None);
        assert_eq!(done[1].error_code, ErrorCode::InvalidReplicationFactor);
        assert!(done[1].message.as_deref().unwrap().contains("3 brokers"));
    }

    #[test]
    fn partition_lists_are_capped_and_free_of_duplicates() {
        let check = |list: &[(&str, u32)], max: u32| {
            check_partition_list(list.iter().copied(), max).map_err(|r| r.code)
        };
        assert_eq!(check(&[("a", 0), ("a", 1), ("b", 0)], 3), Ok(()));
        assert_eq!(
            check(&[("a", 0), ("a", 1)], 1),
            Err(ErrorCode::TooManyPartitions)
        );
        assert_eq!(
            check(&[("a", 0), ("b", 0), ("a", 0)], 3),
            Err(ErrorCode::DuplicatePartition)
        );
        // Long lists take the hash-set path.
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let mut long: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 7)).collect();
        assert_eq!(check(&long, 40), Ok(()));
        long.push(("t39", 7));
        assert_eq!(check(&long, 41), Err(ErrorCode::DuplicatePartition));
    }
}
