//! A cluster of real broker processes on loopback: writes the cluster file
//! (free raft ports), starts every node with `--node-id N --cluster FILE`,
//! and reads each node's view of the cluster from its `/cluster` endpoint.
//! Nodes can be killed and restarted by id; each has a fault-rules file
//! (`SLUICE_RAFT_FAULTS`, honoured by brokers built with `raft-faults`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;

use crate::TestBroker;

/// Controller timeout of test clusters (`controller_timeout_ms`): short, so
/// refusals come quickly, long enough for an election on a loaded machine.
pub const CONTROLLER_TIMEOUT_MS: u64 = 3000;

/// A running cluster; nodes are SIGKILLed when it is dropped.
#[derive(Debug)]
pub struct TestCluster {
    /// Node `id` is `nodes[id - 1]`.
    pub nodes: Vec<TestBroker>,
    /// The cluster file.
    pub file: PathBuf,
    dir: tempfile::TempDir,
}

/// How a failed wait for an agreed controller leader begins.
const NO_LEADER: &str = "no agreed controller leader";

impl TestCluster {
    /// Starts `n` nodes (ids 1..=n) and waits until they agree on a
    /// controller leader.
    pub fn start(n: u64) -> Self {
        Self::start_with(n, "")
    }

    /// [`TestCluster::start`] with extra broker config file lines.
    ///
    /// Raft ports are picked below the ephemeral port range (no outgoing
    /// connection takes them meanwhile); should one be taken anyway, the
    /// whole cluster is started again on new ports.
    pub fn start_with(n: u64, config: &str) -> Self {
        Self::start_opts(n, config, false)
    }

    /// [`TestCluster::start`] with a fixed Kafka listener per node, written
    /// in the cluster file as the node's `kafka` address.
    pub fn start_with_kafka(n: u64) -> Self {
        Self::start_opts(n, "", true)
    }

    /// [`TestCluster::start_with_kafka`] with extra broker config file
    /// lines.
    pub fn start_with_kafka_config(n: u64, config: &str) -> Self {
        Self::start_opts(n, config, true)
    }

    /// [`TestCluster::start_with`] with more config lines for some nodes
    /// (`(id, lines)`), written to that node's own config file
    /// ([`TestCluster::config_file`]).
    pub fn start_with_node_configs(n: u64, config: &str, nodes: &[(u64, &str)]) -> Self {
        Self::start_nodes(n, config, nodes, false)
    }

    /// Node `id`'s broker config file: a test may rewrite it before
    /// [`TestCluster::restart`].
    pub fn config_file(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("broker-{id}.toml"))
    }

    fn start_opts(n: u64, config: &str, kafka: bool) -> Self {
        Self::start_nodes(n, config, &[], kafka)
    }

    fn start_nodes(n: u64, config: &str, node_configs: &[(u64, &str)], kafka: bool) -> Self {
        let mut tries = 0;
        let mut retried_no_leader = false;
        loop {
            match Self::try_start(n, config, node_configs, kafka) {
                Ok(c) => return c,
                // Taken meanwhile, or picked twice by chance: new ports.
                Err(e)
                    if tries < 5
                        && (e.contains("Address already in use")
                            || e.contains("is used twice")) =>
                {
                    tries += 1
                }
                // A fresh cluster that did not agree on a controller leader
                // within a minute (seen once, on a 2-core machine running
                // three clusters at once): said loudly, with every node's
                // state and log, then tried once more from scratch.
                Err(e) if tries < 5 && e.contains(NO_LEADER) && !retried_no_leader => {
                    eprintln!("cluster start: {e}\nstarting a new cluster once more");
                    retried_no_leader = true;
                    tries += 1
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn try_start(
        n: u64,
        config: &str,
        node_configs: &[(u64, &str)],
        kafka: bool,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = String::new();
        // Fixed client ports too: every node advertises the others'
        // listeners from the file (clients follow leaders through them).
        let listens: Vec<std::net::SocketAddr> = (1..=n)
            .map(|_| std::net::SocketAddr::from(([127, 0, 0, 1], raft_port())))
            .collect();
        let kafkas: Vec<Option<String>> = (1..=n)
            .map(|_| kafka.then(|| format!("127.0.0.1:{}", raft_port())))
            .collect();
        for id in 1..=n {
            text.push_str(&format!(
                "[[node]]\nid = {id}\nlisten = \"{}\"\nraft = \"127.0.0.1:{}\"\n",
                listens[id as usize - 1],
                raft_port()
            ));
            if let Some(k) = &kafkas[id as usize - 1] {
                text.push_str(&format!("kafka = \"{k}\"\n"));
            }
            text.push('\n');
        }
        let file = dir.path().join("cluster.toml");
        std::fs::write(&file, text).expect("cluster file");
        let mut nodes = Vec::new();
        for id in 1..=n {
            let own = node_configs
                .iter()
                .filter(|(node, _)| *node == id)
                .map(|(_, lines)| *lines)
                .collect::<Vec<_>>()
                .join("\n");
            let config_file = dir.path().join(format!("broker-{id}.toml"));
            // The short controller timeout unless the test sets its own.
            let timeout = if config.contains("controller_timeout_ms") {
                String::new()
            } else {
                format!("controller_timeout_ms = {CONTROLLER_TIMEOUT_MS}\n")
            };
            std::fs::write(&config_file, format!("{timeout}{config}\n{own}\n"))
                .expect("config file");
            let faults = dir.path().join(format!("faults-{id}"));
            let id_s = id.to_string();
            let mut args = vec![
                "--node-id",
                &id_s,
                "--cluster",
                file.to_str().expect("utf-8 path"),
                "--config",
                config_file.to_str().expect("utf-8 path"),
            ];
            if let Some(k) = &kafkas[id as usize - 1] {
                args.extend(["--kafka-listen", k.as_str()]);
            }
            nodes.push(TestBroker::try_start_at(
                listens[id as usize - 1],
                &args,
                &[("SLUICE_RAFT_FAULTS", faults.to_str().expect("utf-8 path"))],
            )?);
        }
        let c = TestCluster { nodes, file, dir };
        c.try_wait_for_leader_among(&c.live(), Duration::from_secs(60))
            .map_err(|seen| c.no_leader(&c.live(), Duration::from_secs(60), &seen))?;
        Ok(c)
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> &TestBroker {
        &self.nodes[id as usize - 1]
    }

    /// Node `id`, to stop or restart it.
    pub fn node_mut(&mut self, id: u64) -> &mut TestBroker {
        &mut self.nodes[id as usize - 1]
    }

    /// SIGKILLs node `id`.
    pub fn kill(&mut self, id: u64) {
        self.nodes[id as usize - 1].kill();
    }

    /// Restarts node `id` on its data directory and ports.
    pub fn restart(&mut self, id: u64) {
        self.nodes[id as usize - 1].restart();
    }

    /// Ids of the nodes whose process runs.
    pub fn live(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|&id| self.node(id).pid() != 0)
            .collect()
    }

    /// Node `id`'s view: `{node_id, leader, metadata: {nodes, topics,
    /// next_topic_id}}`, or `None` if it does not answer.
    pub fn status(&self, id: u64) -> Option<Value> {
        let addr = self.node(id).metrics_addr?;
        if self.node(id).pid() == 0 {
            return None;
        }
        serde_json::from_str(&try_get(addr, "/cluster")?).ok()
    }

    /// The leader node `id` knows of.
    pub fn leader_seen_by(&self, id: u64) -> Option<u64> {
        self.status(id)?["leader"].as_u64()
    }

    /// Waits until every live node names the same live leader; returns it.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        self.wait_for_leader_among(&self.live(), timeout)
    }

    /// Waits until every node of `ids` names the same leader, one of `ids`;
    /// panics after `timeout` with every node's cluster state and log.
    pub fn wait_for_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        self.try_wait_for_leader_among(ids, timeout)
            .unwrap_or_else(|seen| panic!("{}", self.no_leader(ids, timeout, &seen)))
    }

    /// [`TestCluster::wait_for_leader_among`], or what each node named last.
    fn try_wait_for_leader_among(
        &self,
        ids: &[u64],
        timeout: Duration,
    ) -> Result<u64, Vec<Option<u64>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen: Vec<Option<u64>> = ids.iter().map(|&id| self.leader_seen_by(id)).collect();
            if let Some(Some(l)) = seen.first() {
                if ids.contains(l) && seen.iter().all(|s| *s == Some(*l)) {
                    return Ok(*l);
                }
            }
            if Instant::now() >= deadline {
                return Err(seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The failure of a leader wait: what each node named, its `/cluster`
    /// state and the end of its log.
    fn no_leader(&self, ids: &[u64], timeout: Duration, seen: &[Option<u64>]) -> String {
        let mut out = format!("{NO_LEADER} among {ids:?} within {timeout:?}: {seen:?}");
        for &id in ids {
            out.push_str(&format!(
                "\n--- node {id}: /cluster {:?}\n{}",
                self.status(id),
                self.node(id).log_tail(40)
            ));
        }
        out
    }

    /// Node `id`'s metadata of topic `name`, if it has applied its creation.
    pub fn topic(&self, id: u64, name: &str) -> Option<Value> {
        let t = self.status(id)?["metadata"]["topics"][name].clone();
        (!t.is_null()).then_some(t)
    }

    /// Waits until `check` holds, panicking with `what` after `timeout`.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut check: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes node `id`'s fault rules (see the broker's
    /// `replication::transport::faults`); an empty string heals it.
    pub fn set_faults(&self, id: u64, rules: &str) {
        let path = self.dir.path().join(format!("faults-{id}"));
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, rules).expect("fault rules");
        std::fs::rename(&tmp, &path).expect("fault rules");
    }

    /// Cuts node `id` off from every other node, both ways.
    pub fn isolate(&self, id: u64) {
        let n = self.nodes.len() as u64;
        let others: String = (1..=n)
            .filter(|&o| o != id)
            .map(|o| format!("partition {o}\n"))
            .collect();
        self.set_faults(id, &others);
        for o in (1..=n).filter(|&o| o != id) {
            self.set_faults(o, &format!("partition {id}\n"));
        }
    }

    /// Removes every fault rule.
    pub fn heal(&self) {
        for id in 1..=self.nodes.len() as u64 {
            self.set_faults(id, "");
        }
    }
}

/// `GET path` answered 200: its body; `None` on any failure.
fn try_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A loopback port that binds now, from 20000..32000: below Linux's
/// ephemeral range, so outgoing connections do not take it meanwhile.
/// Never the same port twice in one test process: two clusters started
/// at once by parallel tests once drew the same port before either bound
/// it; the one that lost the bind was started again, but meanwhile its
/// other nodes had reached the winner's node through it, and a controller
/// leader that received the other cluster's AppendEntries carrying a vote
/// equal to its own (same term, same node id) failed openraft's check
/// that only a follower appends them.
fn raft_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12000) as u16;
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// The directory of partition `name` (`topic-N`) anywhere under `dir`.
pub fn partition_dir(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
            if let Some(found) = partition_dir(&p, name) {
                return Some(found);
            }
        }
    }
    None
}

/// `(base offset, length, next offset)` of every batch in the segment
/// files of partition `name` under `dir`, in offset order, read from the
/// files independently of the broker (empty if there is no directory).
pub fn segment_batches(dir: &Path, name: &str) -> Vec<(i64, usize, i64)> {
    let Some(d) = partition_dir(dir, name) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|x| x == "log"));
    logs.sort();
    let mut out = Vec::new();
    for p in logs {
        let mut bytes = bytes::Bytes::from(std::fs::read(p).unwrap_or_default());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            let h = b.header();
            out.push((h.base_offset, h.total_len(), h.next_offset()));
        }
    }
    out
}

impl TestCluster {
    /// Creates `name` with `partitions` partitions and replication factor
    /// `rf` through node 1, asserting success.
    pub async fn create_replicated(
        &self,
        name: &str,
        partitions: u32,
        rf: u16,
        config: TopicConfig,
    ) {
        let r = self
            .node(1)
            .connect()
            .await
            .create_topics(vec![NewTopic {
                name: name.into(),
                partitions,
                config,
                replication_factor: Some(rf),
            }])
            .await
            .expect("create_topics");
        assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    }

    /// Partition 0's leader of `topic` as node `id`'s Metadata names it.
    pub async fn partition_leader(&self, id: u64, topic: &str) -> Option<u64> {
        let mut conn = sluice_client::Connection::connect(self.node(id).addr)
            .await
            .ok()?;
        let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
        m.topics.first()?.partitions.first()?.leader
    }

    /// Waits until every node of `ids` names the same leader of partition 0
    /// of `topic`, one of `ids`, through Metadata; returns it.
    pub async fn wait_partition_leader(&self, ids: &[u64], topic: &str, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for &id in ids {
                seen.push(self.partition_leader(id, topic).await);
            }
            if let Some(Some(l)) = seen.first() {
                if ids.contains(l) && seen.iter().all(|s| *s == Some(*l)) {
                    return *l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader of {topic} among {ids:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The coordinator every node of `ids` names for `group` (native
    /// FindCoordinator) once they agree on one of `ids` and that node has
    /// loaded the group's state (an OffsetFetch there is answered, not
    /// refused as still loading), with the address it advertises checked
    /// against that node's listener. Panics after 30 s.
    ///
    /// A node named coordinator answers `CoordinatorNotAvailable` until it
    /// has replayed the group-state partition, as Kafka's
    /// `COORDINATOR_LOAD_IN_PROGRESS`; callers that go on to commit at the
    /// coordinator need it loaded.
    pub async fn agreed_coordinator(&self, ids: &[u64], group: &str) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut loading = String::new();
        loop {
            let mut seen = Vec::new();
            for &id in ids {
                let mut conn = self.node(id).connect().await;
                seen.push(
                    conn.find_coordinator(group)
                        .await
                        .ok()
                        .map(|f| (f.node_id, f.address)),
                );
            }
            if let Some(Some(first)) = seen.first() {
                if ids.contains(&first.0) && seen.iter().all(|s| s.as_ref() == Some(first)) {
                    assert_eq!(first.1, self.node(first.0).addr.to_string());
                    let mut conn = self.node(first.0).connect().await;
                    match conn.offset_fetch(group, None).await {
                        Ok(r) if r.error_code == ErrorCode::None => return first.0,
                        other => loading = format!("; OffsetFetch there: {other:?}"),
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "nodes {ids:?} agree on a loaded coordinator of {group}: {seen:?}{loading}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The offsets `group` committed for partitions `0..partitions` of
    /// `topic` (`None`: no commit), read with OffsetFetch at the coordinator
    /// the nodes of `ids` agree on, once `done` accepts them (retried every
    /// 50 ms for up to 30 s, the coordinator found again each time);
    /// returns the last answer.
    pub async fn committed_offsets(
        &self,
        ids: &[u64],
        group: &str,
        topic: &str,
        partitions: u32,
        done: impl Fn(&[Option<u64>]) -> bool,
    ) -> Vec<Option<u64>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let at = self.agreed_coordinator(ids, group).await;
            let mut conn = self.node(at).connect().await;
            let mut out = vec![None; partitions as usize];
            match conn.offset_fetch(group, None).await {
                Ok(r) => {
                    for p in r.partitions.iter().filter(|p| p.topic == topic) {
                        if let Some(slot) = out.get_mut(p.partition as usize) {
                            *slot = p.offset;
                        }
                    }
                }
                Err(e) => eprintln!("offset fetch at node {at}: {e}"),
            }
            if done(&out) || Instant::now() > deadline {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Produces the values `v-{i}` for `i` in `range`, each to partition
    /// `i % partitions` of `topic`, with acks=all through the client's
    /// producer bootstrapped at `nodes`, and waits for every delivery
    /// (panicking on a failed one).
    pub async fn produce_spread(
        &self,
        nodes: &[u64],
        topic: &str,
        partitions: u32,
        range: std::ops::Range<u64>,
    ) {
        use sluice_client::{Acks as ClientAcks, Producer, ProducerConfig, ProducerRecord};
        let producer = Producer::new(ProducerConfig {
            acks: ClientAcks::All,
            linger: Duration::from_millis(1),
            ..ProducerConfig::with_brokers(nodes.iter().map(|&i| self.node(i).addr.to_string()))
        });
        let mut deliveries = Vec::new();
        for i in range {
            let v = format!("v-{i}");
            deliveries.push(
                producer
                    .send_record(ProducerRecord {
                        topic,
                        partition: Some((i % u64::from(partitions)) as u32),
                        value: Some(v.as_bytes()),
                        ..Default::default()
                    })
                    .await
                    .expect("send_record"),
            );
        }
        for d in deliveries {
            d.await.expect("delivery");
        }
    }

    /// Produces `records` to partition 0 of `topic` with acks=all through
    /// the leader that the nodes of `live` name, until an answer other than
    /// a retriable refusal: returns the leader and the answer's code (`None`
    /// or one of `accept`). Panics after `timeout`.
    pub async fn produce_through_leader(
        &self,
        live: &[u64],
        topic: &str,
        records: &[u8],
        accept: &[ErrorCode],
        timeout: Duration,
    ) -> (u64, ErrorCode) {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer from a leader of {topic}"
            );
            for &id in live {
                let Some(l) = self.partition_leader(id, topic).await else {
                    continue;
                };
                if !live.contains(&l) {
                    continue;
                }
                let mut conn = self.node(l).connect().await;
                let Ok(Some(r)) = conn
                    .produce(Acks::All, 10_000, &[(topic, 0, records)])
                    .await
                else {
                    continue;
                };
                let code = r.partitions[0].error_code;
                if code == ErrorCode::None || accept.contains(&code) {
                    return (l, code);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
