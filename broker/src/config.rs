//! Broker settings: defaults, a TOML file, and command-line overrides.
//!
//! Every field has a default, so the broker starts with no file and no
//! arguments: data under `./sluice-data`, listening on `127.0.0.1:9292`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::topic_config::TopicConfig;

pub use crate::tcp::TcpCongestion;

mod listen;
mod topic_defaults;

pub use listen::{KafkaListen, MetricsListen, listen_addr, split_host_port};
pub use topic_defaults::{CompressionSetting, FlushName, FlushSetting, TopicDefaults};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9292";
/// The default address of the metrics and health HTTP endpoint.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9393";
/// Default Kafka-protocol listen address (Kafka's own port).
pub const DEFAULT_KAFKA_LISTEN: &str = "127.0.0.1:9092";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "sluice-data";

/// How fetched record bytes reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FetchPath {
    /// `sendfile(2)` from the segment file to the socket: the bytes never
    /// enter user space.
    #[default]
    Sendfile,
    /// `pread` into a buffer, then `write`: exists only so benchmarks can
    /// show what zero copy saves.
    Copy,
}

impl std::str::FromStr for FetchPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sendfile" => Ok(FetchPath::Sendfile),
            "copy" => Ok(FetchPath::Copy),
            other => Err(format!(
                "fetch path must be sendfile or copy, not {other:?}"
            )),
        }
    }
}

/// Where the disk work of produce and fetch requests runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DiskIo {
    /// Appends (`pwrite`) and fetch resolution (index lookups, batch-header
    /// reads) run on the blocking pool: a slow disk delays only the requests
    /// that wait for it, never other connections on the same reactor thread.
    BlockingPool,
    /// Produce requests carrying at most [`DiskIo::SMALL_APPEND_BYTES`] of
    /// records, no compressed batch and no partition of a topic with a fixed
    /// `compression` append inline on the reactor thread, others on the
    /// blocking pool; fetch resolution runs inline. Flushes, cold-range
    /// read-ins, list-offsets and admin work stay on the blocking pool. A
    /// small append stuck in the kernel (dirty-page throttling, a failing
    /// disk) stalls the connections of its reactor thread.
    #[default]
    SmallInline,
    /// They run on the reactor thread that serves the connection (the
    /// behaviour before the service layer): one thread hop less per request,
    /// but a page fault or a slow write stalls every connection of that
    /// thread. For comparison in benchmarks.
    Reactor,
}

impl DiskIo {
    /// The largest produce request (record bytes) that
    /// [`DiskIo::SmallInline`] appends on the reactor thread.
    pub const SMALL_APPEND_BYTES: usize = 64 << 10;
}

/// The most worker threads `runtime_threads` may ask for: far above what a
/// reactor per core needs, and below the process limits a mistyped value
/// would run into.
pub const MAX_RUNTIME_THREADS: usize = 1024;

/// Settings of the broker process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where partitions, topic metadata and committed offsets live.
    pub data_dir: PathBuf,
    /// Address to listen on (in the config file an IP address or a host
    /// name, resolved when the file is read, as `--listen` is).
    #[serde(deserialize_with = "listen::deserialize_listen_addr")]
    pub listen: SocketAddr,
    /// Connections served at once; more are accepted and closed at once.
    /// Lowered at start when the open-file limit cannot hold it beside
    /// `max_partitions` ([`BrokerConfig::fit_open_files`]).
    pub max_connections: usize,
    /// Connections one client address may hold at once (Kafka's
    /// `max.connections.per.ip`); 0: no bound beyond `max_connections`.
    /// One past it takes the seat of a silent connection of the same
    /// address, as past `max_connections`, else is closed at once.
    pub max_connections_per_ip: usize,
    /// Largest request frame accepted, in bytes.
    pub max_frame_bytes: u32,
    /// Bytes of request frames held in memory across all connections beyond
    /// each connection's fixed 64 KiB read buffer. A frame larger than that
    /// buffer takes budget step by step as its bytes arrive and gives it back
    /// once served; a connection that cannot get budget stops reading
    /// (backpressure). One maximum frame of it is kept as a reserve so that
    /// frames growing side by side always complete. At least
    /// `max_frame_bytes + 4`.
    pub max_request_bytes_in_flight: u64,
    /// Bytes of decompressed records held at once across the broker: as
    /// many compressed batches as this holds at
    /// `topic_defaults.max_decompressed_batch_bytes` each (at least one) are
    /// decompressed at a time, to be checked on produce, re-encoded for a
    /// topic's codec or read for a timestamp look-up; others wait their
    /// turn (see `log::decompression`).
    pub max_decompressed_bytes_in_flight: u64,
    /// Close a connection that sends nothing for this many milliseconds.
    pub idle_timeout_ms: u64,
    /// Close a connection whose response cannot be written within this many
    /// milliseconds (a client that stopped reading).
    pub write_timeout_ms: u64,
    /// Close a connection that has not sent the whole of a started request
    /// frame within this many milliseconds (it holds request budget).
    pub frame_timeout_ms: u64,
    /// Longest long-poll wait honoured, in milliseconds.
    pub max_fetch_wait_ms: u32,
    /// How fetched record bytes reach the socket.
    pub fetch_path: FetchPath,
    /// How often partitions are flushed (per policy), checkpointed and
    /// retained, in milliseconds.
    pub maintenance_interval_ms: u64,
    /// Worker threads of the async runtime (0: one per CPU; at most
    /// [`MAX_RUNTIME_THREADS`]).
    pub runtime_threads: usize,
    /// Fetch ranges within this many bytes of a partition's end are taken to
    /// be in the page cache (just written); older ranges are checked with
    /// `mincore(2)` and, if cold, read in off the reactor before sending.
    pub hot_tail_bytes: u64,
    /// Defaults for new topics.
    pub topic_defaults: TopicDefaults,
    /// Largest metadata string of one committed offset, in bytes (Kafka's
    /// `offset.metadata.max.bytes`); larger ones are refused with
    /// `OFFSET_METADATA_TOO_LARGE`.
    pub offset_metadata_max_bytes: u32,
    /// Most `(group, topic, partition)` committed offsets the broker holds;
    /// commits adding more are refused with `TOO_MANY_COMMITTED_OFFSETS`.
    /// Offsets of deleted topics are forgotten.
    pub max_committed_offsets: u64,
    /// How long the committed offsets of a group without members are kept
    /// after its last member left or its last commit, whichever is later
    /// (Kafka's `offsets.retention.minutes`, 7 days by default); a group
    /// left with nothing is removed. 0 keeps them for good.
    pub offsets_retention_ms: u64,
    /// How often offsets past `offsets_retention_ms` are looked for
    /// (Kafka's `offsets.retention.check.interval.ms`).
    pub offsets_retention_check_interval_ms: u64,
    /// Bytes of offsets log after which the committed offsets are
    /// snapshotted and the log below the snapshot deleted (at least the size
    /// of the previous snapshot).
    pub offsets_snapshot_bytes: u64,
    /// Most (topic, partition) entries one Produce, Fetch, ListOffsets or OffsetCommit request may
    /// list; a longer list is refused with `TooManyPartitions`. Unset, it is
    /// `max_partitions` (at least 10,000): Kafka clients name every
    /// partition they use through a broker in one request.
    pub max_partitions_per_request: u32,
    /// Most record bytes one fetch response carries, whatever the request
    /// asks for (the first record batch is sent whole even if larger, so a
    /// consumer always makes progress).
    pub max_fetch_response_bytes: u32,
    /// Most partitions, over all topics, the broker serves; a CreateTopics
    /// that would go beyond it is refused (`InvalidPartitions`). Lowered at
    /// start when the open-file limit cannot hold it
    /// ([`BrokerConfig::fit_open_files`]).
    pub max_partitions: u32,
    /// The open-file limit under which the broker lowered `max_partitions`
    /// or `max_connections` at start ([`crate::fd_limit::fit`]); `None`
    /// when it lowered neither. Not a setting: refusals at the limit name it.
    #[serde(skip)]
    pub lowered_for_open_files: Option<u64>,
    /// Most idempotent-producer entries (one per producer id and
    /// partition, about 260 bytes each) held over all partitions; past it a
    /// partition recording a new producer forgets its own least recently
    /// active one ([`crate::producer::state::ProducerBudget`]).
    pub max_producer_states: u64,
    /// Where the disk work of produce and fetch requests runs
    /// (`blocking-pool` or `reactor`).
    pub disk_io: DiskIo,
    /// Where the Prometheus metrics and health endpoints listen
    /// (`HOST:PORT`, or `"none"` for no endpoint).
    pub metrics_listen: MetricsListen,
    /// Whether `/metrics` has series per topic partition (and per committed
    /// group offset); turn off on brokers with very many partitions.
    pub metrics_per_partition: bool,
    /// Log a warning for every request that takes longer than this many
    /// milliseconds (beyond a fetch's own `max_wait`); 0: never.
    pub slow_request_ms: u64,
    /// Shortest session timeout a group member may ask for, in ms (Kafka's
    /// `group.min.session.timeout.ms`); shorter: `InvalidSessionTimeout`.
    pub group_min_session_timeout_ms: u32,
    /// Longest session timeout a group member may ask for, in ms (Kafka's
    /// `group.max.session.timeout.ms`).
    pub group_max_session_timeout_ms: u32,
    /// Most members (joined or holding a fresh member id) of one group;
    /// more: `GroupMaxSizeReached`.
    pub group_max_size: u32,
    /// Most bytes of protocol names, metadata and assignments the
    /// coordinator holds for one group's members (each member's own are
    /// at most 1 MiB of each): a join or a leader's assignments past it get
    /// `GroupMaxSizeReached`. It bounds the group's stored record and every
    /// answer that lists its members (JoinGroup to the leader,
    /// DescribeGroups).
    pub group_max_bytes: u64,
    /// The same over all groups together.
    pub groups_max_bytes: u64,
    /// How long the first rebalance of an Empty group waits for more
    /// members to join, in ms, extended by as much for each member that
    /// joins meanwhile, up to the rebalance timeout (Kafka's
    /// `group.initial.rebalance.delay.ms`). Only a group with no members
    /// waits: a takeover after a member leaves or dies does not.
    pub group_initial_rebalance_delay_ms: u32,
    /// Session timeout of members of Kafka's consumer group protocol
    /// (KIP-848), in ms (Kafka's `group.consumer.session.timeout.ms`): the
    /// broker, not the member, sets it.
    pub group_consumer_session_timeout_ms: u32,
    /// How often members of Kafka's consumer group protocol heartbeat, in
    /// ms (Kafka's `group.consumer.heartbeat.interval.ms`); the lower, the
    /// sooner a member learns of partitions to give up or take.
    pub group_consumer_heartbeat_interval_ms: u32,
    /// Where the Kafka-protocol listener listens (`HOST:PORT`, or `"none"`).
    pub kafka_listen: KafkaListen,
    /// `HOST:PORT` Kafka clients are told to connect to (Metadata,
    /// FindCoordinator); empty: the address the Kafka listener is bound to.
    pub kafka_advertised: String,
    /// Replicas of each partition of a topic created without a replication
    /// factor of its own (1..=the number of brokers; 1 without a cluster).
    pub default_replication_factor: u16,
    /// Kafka's `auto.create.topics.enable`: a Metadata request that names
    /// a topic which does not exist, and allows its creation, creates it
    /// with `topic_defaults.partitions` partitions and
    /// `default_replication_factor` replicas: a Kafka client's (every
    /// request before version 4; later ones say so) or a native client's
    /// (version 3, `allow_auto_create`; the library's producer asks for it).
    /// Off by default: a misspelt name then gets `UNKNOWN_TOPIC_OR_PARTITION`
    /// instead of a new topic.
    pub auto_create_topics: bool,
    /// Cluster mode: how long an admin request waits for the controller
    /// leader to commit and apply it before `ControllerUnavailable`.
    pub controller_timeout_ms: u64,
    /// Cluster mode: how often a partition group's leader sends heartbeats
    /// (ms). Below `raft_election_timeout_min_ms`.
    pub raft_heartbeat_ms: u64,
    /// Cluster mode: a follower that hears no leader for a random time in
    /// `raft_election_timeout_min_ms..raft_election_timeout_max_ms` starts an
    /// election. These bound how fast a partition fails over.
    pub raft_election_timeout_min_ms: u64,
    /// Upper end of the partition groups' election timeout (ms).
    pub raft_election_timeout_max_ms: u64,
    /// Cluster mode: how often each node looks at the partitions whose
    /// preferred replica (the first of the replica list) it holds, and takes
    /// back the leadership of those another node leads while it is in
    /// sync, when more than `leader_imbalance_percent` of them are led
    /// elsewhere (Kafka's `auto.leader.rebalance.enable` and
    /// `leader.imbalance.check.interval.seconds`). 0: never.
    pub leader_rebalance_interval_ms: u64,
    /// The share (percent, 0..=100) of a node's preferred partitions that
    /// may be led by other nodes before it takes them back (Kafka's
    /// `leader.imbalance.per.broker.percentage`).
    pub leader_imbalance_percent: u32,
    /// TCP congestion control of client connections (`auto`: `cubic` for
    /// loopback peers, the system default for others; `system`; or an
    /// algorithm name for all). See [`crate::tcp`].
    pub tcp_congestion: TcpCongestion,
    /// Cluster mode: partitions of the internal replicated topic that holds
    /// consumer groups' committed offsets and metadata (at least 1). Read
    /// when the controller creates the topic, once; later changes have no
    /// effect on an existing cluster.
    pub offsets_topic_partitions: u32,
    /// Cluster mode: free bytes a node keeps on its data directory's file
    /// system. Below it, the partitions it leads refuse produce requests
    /// with `DiskFull`; below half of it, it refuses to store more entries
    /// of the partitions it follows, which then wait for space as lagging
    /// followers. 0: no floor (a full disk then stops the replicas that
    /// hit it until they are reopened). See
    /// [`crate::replication::free_space`].
    pub min_free_bytes: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("valid literal")),
            max_connections: 1024,
            max_connections_per_ip: 0,
            max_producer_states: 1_000_000,
            max_frame_bytes: 64 << 20,
            max_request_bytes_in_flight: 512 << 20,
            max_decompressed_bytes_in_flight: 512 << 20,
            idle_timeout_ms: 10 * 60 * 1000,
            write_timeout_ms: 30 * 1000,
            frame_timeout_ms: 60 * 1000,
            max_fetch_wait_ms: 30 * 1000,
            fetch_path: FetchPath::Sendfile,
            maintenance_interval_ms: 1000,
            hot_tail_bytes: 64 << 20,
            runtime_threads: 0,
            topic_defaults: TopicDefaults::default(),
            offset_metadata_max_bytes: 4096,
            max_committed_offsets: 1_000_000,
            offsets_snapshot_bytes: 16 << 20,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 10 * 60 * 1000,
            // As many as the broker may hold: Kafka has no such limit, and
            // its clients put every partition they read or write through one
            // broker in one request.
            max_partitions_per_request: crate::topics::DEFAULT_MAX_PARTITIONS,
            max_fetch_response_bytes: 64 << 20,
            max_partitions: crate::topics::DEFAULT_MAX_PARTITIONS,
            lowered_for_open_files: None,
            disk_io: DiskIo::SmallInline,
            metrics_listen: MetricsListen::default(),
            metrics_per_partition: true,
            slow_request_ms: 1000,
            group_min_session_timeout_ms: 1000,
            group_max_session_timeout_ms: 30 * 60 * 1000,
            group_max_size: 1000,
            group_max_bytes: 16 << 20,
            groups_max_bytes: 512 << 20,
            group_initial_rebalance_delay_ms: 500,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            kafka_listen: KafkaListen::default(),
            kafka_advertised: String::new(),
            default_replication_factor: 1,
            auto_create_topics: false,
            controller_timeout_ms: 5000,
            raft_heartbeat_ms: 50,
            raft_election_timeout_min_ms: 150,
            raft_election_timeout_max_ms: 300,
            leader_rebalance_interval_ms: 300_000,
            leader_imbalance_percent: 10,
            offsets_topic_partitions: 8,
            min_free_bytes: 256 << 20,
            tcp_congestion: TcpCongestion::Auto,
        }
    }
}

impl BrokerConfig {
    /// How a refusal at the partition limit names it: `max_partitions`, and
    /// the open-file limit when that lowered it.
    pub fn max_partitions_name(&self) -> String {
        match self.lowered_for_open_files {
            None => "max_partitions".to_owned(),
            Some(limit) => format!(
                "max_partitions, lowered to fit the broker's open-file limit of {limit}: \
                 raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) for more"
            ),
        }
    }

    /// Lowers `max_partitions` and `max_connections` to what an open-file
    /// limit of `limit` descriptors holds ([`crate::fd_limit::fit`], with
    /// `clustered` for the Raft log's descriptor per partition). Returns
    /// the values asked for when it lowered either.
    pub fn fit_open_files(&mut self, limit: u64, clustered: bool) -> Option<(u32, usize)> {
        let fit = crate::fd_limit::fit(limit, clustered, self.max_partitions, self.max_connections);
        if (fit.partitions, fit.connections) == (self.max_partitions, self.max_connections) {
            return None;
        }
        let asked = (self.max_partitions, self.max_connections);
        self.max_partitions = fit.partitions;
        self.max_connections = fit.connections;
        self.lowered_for_open_files = Some(limit);
        Some(asked)
    }

    /// The limits of the committed-offsets store.
    pub fn offsets_config(&self) -> crate::offsets::OffsetsConfig {
        crate::offsets::OffsetsConfig {
            max_metadata_bytes: self.offset_metadata_max_bytes as usize,
            max_keys: usize::try_from(self.max_committed_offsets).unwrap_or(usize::MAX),
            snapshot_bytes: self.offsets_snapshot_bytes,
        }
    }

    /// The group coordinator's settings.
    pub fn group_config(&self) -> crate::group::GroupConfig {
        use std::time::Duration;
        crate::group::GroupConfig {
            min_session_timeout: Duration::from_millis(self.group_min_session_timeout_ms.into()),
            max_session_timeout: Duration::from_millis(self.group_max_session_timeout_ms.into()),
            max_size: self.group_max_size as usize,
            initial_rebalance_delay: Duration::from_millis(
                self.group_initial_rebalance_delay_ms.into(),
            ),
            max_groups: usize::try_from(self.max_committed_offsets).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(self.group_max_bytes).unwrap_or(usize::MAX),
            max_total_bytes: usize::try_from(self.groups_max_bytes).unwrap_or(usize::MAX),
            consumer_session_timeout: Duration::from_millis(
                self.group_consumer_session_timeout_ms.into(),
            ),
            consumer_heartbeat_interval: Duration::from_millis(
                self.group_consumer_heartbeat_interval_ms.into(),
            ),
        }
    }

    /// Reads a TOML file; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        let mut config: BrokerConfig = toml::from_str(text)?;
        // Unless set, a request may name every partition the broker may
        // hold, also when `max_partitions` is raised (see the field).
        let table: toml::Table = toml::from_str(text)?;
        if !table.contains_key("max_partitions_per_request") {
            config.max_partitions_per_request = config
                .max_partitions
                .clamp(crate::topics::DEFAULT_MAX_PARTITIONS, 1_000_000);
        }
        Ok(config)
    }

    /// Checks ranges; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_producer_states == 0 {
            return Err("max_producer_states must be positive".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be positive".into());
        }
        if self.runtime_threads > MAX_RUNTIME_THREADS {
            return Err(format!(
                "runtime_threads must be at most {MAX_RUNTIME_THREADS} (0: one per CPU)"
            ));
        }
        if self.max_frame_bytes < 64 {
            return Err("max_frame_bytes must be at least 64".into());
        }
        if u64::from(self.max_frame_bytes) + 4 > self.max_request_bytes_in_flight {
            return Err("max_request_bytes_in_flight must be at least max_frame_bytes + 4".into());
        }
        if self.max_frame_bytes > u32::MAX - 4 {
            return Err(format!("max_frame_bytes must be at most {}", u32::MAX - 4));
        }
        if self.offset_metadata_max_bytes > 1 << 20 {
            return Err("offset_metadata_max_bytes must be at most 1048576".into());
        }
        if self.max_committed_offsets == 0 {
            return Err("max_committed_offsets must be positive".into());
        }
        if self.offsets_retention_check_interval_ms == 0 {
            return Err("offsets_retention_check_interval_ms must be positive".into());
        }
        if self.offsets_snapshot_bytes < 4096 {
            return Err("offsets_snapshot_bytes must be at least 4096".into());
        }
        if self.max_partitions_per_request == 0 || self.max_partitions_per_request > 1_000_000 {
            return Err("max_partitions_per_request must be between 1 and 1000000".into());
        }
        if self.max_fetch_response_bytes == 0 || self.max_fetch_response_bytes > 1 << 30 {
            return Err("max_fetch_response_bytes must be between 1 and 1073741824 (1 GiB)".into());
        }
        if self.topic_defaults.partitions == 0 {
            return Err("topic_defaults.partitions must be positive".into());
        }
        if self.max_partitions == 0 {
            return Err("max_partitions must be positive".into());
        }
        if self.group_min_session_timeout_ms == 0
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
        {
            return Err(
                "group_min_session_timeout_ms must be positive and at most group_max_session_timeout_ms"
                    .into(),
            );
        }
        if self.default_replication_factor == 0 {
            return Err("default_replication_factor must be at least 1".into());
        }
        if !(100..=600_000).contains(&self.controller_timeout_ms) {
            return Err("controller_timeout_ms must be between 100 and 600000".into());
        }
        if self.raft_heartbeat_ms == 0
            || self.raft_heartbeat_ms >= self.raft_election_timeout_min_ms
            || self.raft_election_timeout_min_ms >= self.raft_election_timeout_max_ms
            || self.raft_election_timeout_max_ms > 600_000
        {
            return Err("raft timing must satisfy 0 < raft_heartbeat_ms < raft_election_timeout_min_ms < raft_election_timeout_max_ms <= 600000".into());
        }
        if self.leader_rebalance_interval_ms != 0
            && !(1000..=86_400_000).contains(&self.leader_rebalance_interval_ms)
        {
            return Err(
                "leader_rebalance_interval_ms must be 0 (never) or between 1000 and 86400000"
                    .into(),
            );
        }
        if self.leader_imbalance_percent > 100 {
            return Err("leader_imbalance_percent must be between 0 and 100".into());
        }
        if !(1..=crate::topics::MAX_PARTITIONS).contains(&self.offsets_topic_partitions) {
            return Err(format!(
                "offsets_topic_partitions must be between 1 and {}",
                crate::topics::MAX_PARTITIONS
            ));
        }
        if self.group_max_size == 0 || self.group_max_size > 1_000_000 {
            return Err("group_max_size must be between 1 and 1000000".into());
        }
        if self.group_max_bytes < 4096 {
            return Err("group_max_bytes must be at least 4096".into());
        }
        if self.groups_max_bytes < self.group_max_bytes {
            return Err("groups_max_bytes must be at least group_max_bytes".into());
        }
        if self.group_initial_rebalance_delay_ms > 300_000 {
            return Err("group_initial_rebalance_delay_ms must be at most 300000".into());
        }
        if self.group_consumer_heartbeat_interval_ms == 0
            || self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms
            || self.group_consumer_session_timeout_ms > 30 * 60 * 1000
        {
            return Err(
                "group_consumer_heartbeat_interval_ms must be positive and below \
                 group_consumer_session_timeout_ms, itself at most 1800000"
                    .into(),
            );
        }
        if self.topic_defaults.producer_id_expiration_ms < 1000
            || self.topic_defaults.producer_id_expiration_ms > i64::MAX as u64
        {
            return Err("topic_defaults.producer_id_expiration_ms must be at least 1000".into());
        }
        if self.topic_defaults.max_producer_ids == 0 {
            return Err("topic_defaults.max_producer_ids must be positive".into());
        }
        if !self.kafka_advertised.is_empty() && split_host_port(&self.kafka_advertised).is_none() {
            return Err(format!(
                "kafka_advertised must be HOST:PORT, not {:?}",
                self.kafka_advertised
            ));
        }
        if self.default_replication_factor == 0 {
            return Err("default_replication_factor must be positive".into());
        }
        crate::topics::check_topic_limits(&self.topic_defaults.resolve(&TopicConfig::default()))
            .map_err(|e| format!("topic_defaults: {e}"))?;
        self.topic_defaults
            .log_config(&TopicConfig::default())
            .validate()
            .map_err(|e| format!("topic_defaults: {e}"))
    }
}

#[cfg(test)]
mod tests;
