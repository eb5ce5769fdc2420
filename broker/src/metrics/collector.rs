//! The Prometheus exposition: a `prometheus-client` [`Collector`] that reads
//! the broker's counters and partition logs at scrape time.
//!
//! Cardinality: with `metrics_per_partition` on, each topic partition adds
//! one series to each of the nine `sluice_partition_*` families, and each
//! committed `(group, topic, partition)` offset two series
//! (`sluice_group_committed_offset`, `sluice_group_lag_records`), bounded by
//! `max_partitions` and `max_committed_offsets`. Consumer groups have no
//! series of their own (`sluice_groups` has one per state, five in all).
//! Everything else is a fixed
//! number of series (per API and error code, bounded by the API keys and
//! the 64 error-code slots; only codes that occurred are shown).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sluice_protocol::wire::{ApiKey, ErrorCode};

use super::Health;
use super::histogram::HistogramSnapshot;
use crate::server::Broker;
use crate::service::stats::ApiStats;

/// Reads the broker's state into Prometheus series on each scrape.
#[derive(Debug)]
pub struct BrokerCollector {
    health: Arc<Health>,
}

/// The registry holding the broker's collector.
pub fn registry(health: Arc<Health>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BrokerCollector { health }));
    registry
}

/// The whole exposition in the OpenMetrics text format. Takes the partition
/// logs' locks briefly (size, segments): call it off the reactor.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The exposition in the Prometheus text format (0.0.4), for scrapers that
/// do not ask for OpenMetrics (`curl`, `promtool check metrics`): the same
/// series, with counter families named by their `_total` samples, `+Inf`
/// spelled as that format spells it, and no `# UNIT` or `# EOF` lines.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in openmetrics.lines() {
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(&line.replace("le=\"inf\"", "le=\"+Inf\"")),
        }
        out.push('\n');
    }
    out
}

/// `value` as a label value of the text exposition format: `\`, `"` and
/// line feeds escaped. The encoder writes label values as given, and a
/// group name may hold `"` and `\` (a client chooses it): unescaped, one
/// commit could forge labels and make the whole scrape unreadable.
fn label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn load(v: &AtomicU64) -> u64 {
    v.load(Ordering::Relaxed)
}

/// One metric family being written.
struct Family<'a, 'e> {
    enc: &'a mut DescriptorEncoder<'e>,
}

impl Family<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
        let m = self
            .enc
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(v).encode(m)
    }

    fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        v: V,
    ) -> Result<(), std::fmt::Error> {
        let m = self
            .enc
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(v).encode(m)
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        h: &HistogramSnapshot,
    ) -> Result<(), std::fmt::Error> {
        let mut m = self
            .enc
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)
    }
}

/// Per-partition values read once per scrape.
struct PartitionRow {
    topic: String,
    partition: String,
    values: [u64; 9],
}

const PARTITION_FAMILIES: [(&str, &str, MetricType); 9] = [
    (
        "sluice_partition_records_appended",
        "Records appended to the partition since the broker started.",
        MetricType::Counter,
    ),
    (
        "sluice_partition_appended_bytes",
        "Bytes of record batches appended to the partition since the broker started.",
        MetricType::Counter,
    ),
    (
        "sluice_partition_fetched_bytes",
        "Bytes of record batches put in fetch responses for the partition since the broker started.",
        MetricType::Counter,
    ),
    (
        "sluice_partition_log_start_offset",
        "First offset the partition still holds.",
        MetricType::Gauge,
    ),
    (
        "sluice_partition_log_end_offset",
        "Offset the next record appended to the partition will get.",
        MetricType::Gauge,
    ),
    (
        "sluice_partition_high_watermark",
        "One past the last offset consumers of the partition may read.",
        MetricType::Gauge,
    ),
    (
        "sluice_partition_size_bytes",
        "Bytes of record batches the partition holds on disk.",
        MetricType::Gauge,
    ),
    (
        "sluice_partition_segments",
        "Segment files of the partition.",
        MetricType::Gauge,
    ),
    (
        "sluice_partition_offline",
        "1 if the partition is offline (refuses writes after a failed flush or damaged data at startup), else 0.",
        MetricType::Gauge,
    ),
];

impl Collector for BrokerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let health = &self.health;
        let mut f = Family { enc: &mut enc };
        f.gauge(
            "sluice_up",
            "1 when the broker is ready (recovery done, listeners up, no partition offline), else 0.",
            u64::from(health.ready().is_ok()),
        )?;
        f.gauge(
            "sluice_uptime_seconds",
            "Seconds since the broker process started.",
            health.started().elapsed().as_secs_f64(),
        )?;
        let p = super::process::read();
        if let Some(v) = p.resident_bytes {
            f.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                v,
            )?;
        }
        if let Some(v) = p.virtual_bytes {
            f.gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                v,
            )?;
        }
        if let Some(v) = p.open_fds {
            f.gauge("process_open_fds", "Open file descriptors.", v)?;
        }
        if let Some(v) = p.max_fds {
            f.gauge("process_max_fds", "Limit on open file descriptors.", v)?;
        }
        if let Some(v) = p.threads {
            f.gauge("process_threads", "Threads of the process.", v)?;
        }
        if let Some(v) = p.cpu_seconds {
            let m = f.enc.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(v).encode(m)?;
        }
        f.histogram(
            "sluice_fsync_duration_seconds",
            "Latency of each fdatasync of a segment file.",
            &super::FSYNC_LATENCY.snapshot(),
        )?;
        let Some(broker) = health.broker() else {
            return Ok(());
        };
        encode_broker(&mut enc, broker)
    }
}

/// The `code` (number) and `error` (name) labels of a broker error code.
fn error_labels(code: ErrorCode) -> (String, String) {
    (u16::from(code).to_string(), format!("{code:?}"))
}

fn encode_broker(enc: &mut DescriptorEncoder, broker: &Broker) -> Result<(), std::fmt::Error> {
    let s = &broker.stats;
    let mut f = Family { enc };
    f.gauge(
        "sluice_recovery_duration_seconds",
        "Seconds the broker took at startup to open its data directory, recovery included.",
        load(&s.recovery_micros) as f64 / 1e6,
    )?;
    f.counter(
        "sluice_connections_accepted",
        "Client connections accepted.",
        load(&s.connections_accepted),
    )?;
    f.counter(
        "sluice_connections_rejected",
        "Client connections closed at once because max_connections were open, or max_connections_per_ip from the client's address.",
        load(&s.connections_rejected),
    )?;
    f.counter(
        "sluice_connections_displaced",
        "Client connections closed to seat a new one while max_connections were open (or max_connections_per_ip from their address), after staying silent past their grace.",
        load(&s.connections_displaced),
    )?;
    f.gauge(
        "sluice_connections_open",
        "Client connections open.",
        load(&s.connections_open),
    )?;
    f.gauge(
        "sluice_request_bytes_held",
        "Bytes of request frames held against max_request_bytes_in_flight.",
        broker.request_bytes_held(),
    )?;
    f.gauge(
        "sluice_request_bytes_budget",
        "Size of the request memory budget (max_request_bytes_in_flight).",
        broker.request_budget_total,
    )?;
    f.counter(
        "sluice_produce_bytes",
        "Bytes of record batches appended by produce requests.",
        load(&s.produce_bytes),
    )?;
    {
        let mut m = f.enc.encode_descriptor(
            "sluice_produce_partition_errors",
            "Partitions of produce requests (native and Kafka) that reached the partitions and were not appended, or not made as durable as asked, by error code (a full disk counts here as DiskFull); the Kafka listener's own checks of a request's form are not counted here.",
            None,
            MetricType::Counter,
        )?;
        for (code, n) in s.produce_partition_errors.counted() {
            let (number, error) = error_labels(code);
            let labels = [("code", number.as_str()), ("error", error.as_str())];
            ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
        }
    }
    let (disk_size, disk_free) = broker.service.disk_space();
    f.gauge(
        "sluice_disk_size_bytes",
        "Size of the file system holding the data directory (0 if statvfs fails).",
        disk_size,
    )?;
    f.gauge(
        "sluice_disk_free_bytes",
        "Bytes free to the broker on the file system holding the data directory (0 if statvfs fails).",
        disk_free,
    )?;
    {
        let mut m = f.enc.encode_descriptor(
            "sluice_fetch_bytes",
            "Bytes of records sent by fetches, by fetch path (sendfile or copy).",
            None,
            MetricType::Counter,
        )?;
        for (path, v) in [
            ("sendfile", &s.fetch_bytes_sendfile),
            ("copy", &s.fetch_bytes_copy),
        ] {
            ConstCounter::new(load(v)).encode(m.encode_family(&[("path", path)])?)?;
        }
    }
    f.counter(
        "sluice_cold_reads",
        "Fetch ranges that were not in the page cache and were read in off the reactor.",
        load(&s.cold_reads),
    )?;
    f.counter(
        "sluice_cold_read_bytes",
        "Bytes of those cold fetch ranges.",
        load(&s.cold_bytes),
    )?;
    f.counter(
        "sluice_offloaded_sends",
        "Fetch responses sent from a blocking thread instead of the reactor (catch-up reads while other connections are open).",
        load(&s.offloaded_sends),
    )?;
    f.counter(
        "sluice_bad_requests",
        "Requests answered with a frame-level error or dropped as malformed.",
        load(&s.bad_requests),
    )?;
    f.gauge(
        "sluice_open_sealed_segments",
        "Sealed segments of all partitions holding their files open (read lately, or written and not yet flushed).",
        crate::log::open_sealed::open() as u64,
    )?;
    f.gauge(
        "sluice_open_sealed_segments_limit",
        "The most sealed segments kept open together, from the open-file limit; past it each partition keeps only the one it reads and idle ones go at the next maintenance pass.",
        crate::log::open_sealed::limit() as u64,
    )?;
    f.gauge(
        "sluice_partitions_offline_at_startup",
        "Partitions that recovery opened offline because flushed data is damaged.",
        load(&s.partitions_offline_at_open),
    )?;
    let topics = broker.topics.list();
    let offline = topics
        .iter()
        .flat_map(|t| t.hosted())
        .filter(|(_, p)| p.is_offline())
        .count() as u64;
    f.gauge(
        "sluice_partitions_offline",
        "Partitions offline now.",
        offline,
    )?;
    f.gauge(
        "sluice_partitions",
        "Partitions served (hosted by this broker).",
        topics
            .iter()
            .map(|t| t.hosted().count() as u64)
            .sum::<u64>(),
    )?;
    f.gauge("sluice_topics", "Topics.", topics.len() as u64)?;
    f.gauge(
        "sluice_producer_states",
        "Idempotent-producer entries (producer id, partition) held over all partitions (at most max_producer_states, plus one per partition).",
        crate::producer::state::ProducerBudget::global().held() as u64,
    )?;
    encode_groups(f.enc, broker)?;
    encode_cluster(f.enc, broker)?;
    encode_apis(f.enc, broker)?;
    encode_kafka_apis(f.enc, broker)?;
    if broker.config.metrics_per_partition {
        encode_partitions(f.enc, broker, &topics)?;
    }
    Ok(())
}

/// Consumer groups: by state, their members, rebalances started. A fixed
/// number of series, whatever the number of groups.
fn encode_groups(enc: &mut DescriptorEncoder, broker: &Broker) -> Result<(), std::fmt::Error> {
    let g = broker.groups.stats();
    {
        let mut m = enc.encode_descriptor(
            "sluice_groups",
            "Consumer groups the coordinator holds, by state.",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in crate::group::GroupState::ALL.iter().zip(g.by_state) {
            ConstGauge::new(n).encode(m.encode_family(&[("state", state.as_str())])?)?;
        }
    }
    let mut f = Family { enc };
    f.gauge(
        "sluice_group_members",
        "Members of all consumer groups.",
        g.members,
    )?;
    f.counter(
        "sluice_group_rebalances",
        "Consumer group rebalances started since the broker started.",
        g.rebalances,
    )
}

/// Cluster mode only: the controller role, the node-to-node calls (a
/// fixed number of series: 5 kinds × 4 results) and the pre-vote rounds (2
/// group kinds × 3 results).
fn encode_cluster(enc: &mut DescriptorEncoder, broker: &Broker) -> Result<(), std::fmt::Error> {
    let Some(cluster) = broker.cluster.get() else {
        return Ok(());
    };
    {
        let mut m = enc.encode_descriptor(
            "sluice_raft_rpc",
            "Node-to-node Raft calls this node made, by kind and result (ok, remote_error, timeout, unreachable).",
            None,
            MetricType::Counter,
        )?;
        for (kind, result, n) in cluster.transport.counters.snapshot() {
            ConstCounter::new(n).encode(m.encode_family(&[("kind", kind), ("result", result)])?)?;
        }
    }
    {
        let mut m = enc.encode_descriptor(
            "sluice_raft_pre_votes",
            "Pre-vote rounds this node's Raft groups held, by group kind (controller, partition) and result (won: an election called; lost; stale: won but overtaken).",
            None,
            MetricType::Counter,
        )?;
        for (group, result, n) in cluster.transport.pre_votes.snapshot() {
            ConstCounter::new(n)
                .encode(m.encode_family(&[("group", group), ("result", result)])?)?;
        }
    }
    let mut f = Family { enc };
    f.gauge(
        "sluice_controller_leader",
        "1 on the controller group's leader, else 0.",
        u64::from(cluster.is_leader()),
    )?;
    f.gauge(
        "sluice_controller_leader_with_quorum",
        "1 on the controller group's leader while a quorum acknowledged it within the last second, else 0.",
        u64::from(cluster.leads_with_quorum(QUORUM_ACK_WITHIN)),
    )?;
    let led = led_partitions(broker);
    f.gauge(
        "sluice_partitions_led",
        "Partitions this node leads.",
        led.led,
    )?;
    f.gauge(
        "sluice_partitions_under_replicated",
        "Partitions this node leads with fewer replicas in sync than the partition has.",
        led.under_replicated,
    )?;
    f.gauge(
        "sluice_partitions_without_quorum",
        "Partitions this node leads with fewer replicas in sync than a majority: acks=all produces to them wait and time out.",
        led.without_quorum,
    )
}

/// How recent the controller leader's last quorum acknowledgement must be
/// for `sluice_controller_leader_with_quorum` (heartbeats come every few
/// tens of milliseconds).
const QUORUM_ACK_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// What this node leads, and how much of it is short of replicas.
#[derive(Debug, Default)]
struct Led {
    led: u64,
    under_replicated: u64,
    without_quorum: u64,
}

/// Counts the hosted partitions this node leads by their in-sync sets
/// (the leader's own view: replicas that matched its log recently and
/// answered within `in_sync_max_silence_ms`).
fn led_partitions(broker: &Broker) -> Led {
    let svc = &broker.service;
    let leadership = svc.leadership.as_ref();
    let local = leadership.local_node();
    let mut out = Led::default();
    for t in svc.topics.list() {
        for (p, _) in t.hosted() {
            let Some(l) = leadership.partition(&t.name, p) else {
                continue;
            };
            if l.leader != Some(local) {
                continue;
            }
            out.led += 1;
            let (in_sync, replicas) = (l.isr.len(), l.replicas.len());
            if in_sync < replicas {
                out.under_replicated += 1;
            }
            if in_sync < replicas / 2 + 1 {
                out.without_quorum += 1;
            }
        }
    }
    out
}

fn api_name(slot: usize) -> String {
    ApiKey::ALL
        .get(slot)
        .map_or_else(|| "unknown".to_owned(), |k| format!("{k:?}"))
}

fn encode_apis(enc: &mut DescriptorEncoder, broker: &Broker) -> Result<(), std::fmt::Error> {
    let apis = &broker.stats.apis;
    let names: Vec<String> = (0..apis.len()).map(api_name).collect();
    encode_api_requests(
        enc,
        "sluice_requests",
        "Requests received, by API.",
        apis,
        &names,
    )?;
    {
        let mut m = enc.encode_descriptor(
            "sluice_request_errors",
            "Requests answered with a whole-request error, by API and error code.",
            None,
            MetricType::Counter,
        )?;
        for (a, name) in apis.iter().zip(&names) {
            for (code, n) in a.errors.counted() {
                let (number, error) = error_labels(code);
                let labels = [
                    ("api", name.as_str()),
                    ("code", number.as_str()),
                    ("error", error.as_str()),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
    }
    encode_api_latency(
        enc,
        "sluice_request_duration_seconds",
        "Time from a request frame read whole to its response written (a fetch's long-poll wait included), by API.",
        apis,
        &names,
    )
}

/// The Kafka listener's per-API series: API names are Kafka's (bounded by
/// the keys served, plus `unknown`), error codes Kafka's.
fn encode_kafka_apis(enc: &mut DescriptorEncoder, broker: &Broker) -> Result<(), std::fmt::Error> {
    use sluice_protocol::kafka::ApiKey as KafkaApi;
    use sluice_protocol::kafka::error_code::code;
    let apis: &[_] = &broker.stats.kafka_apis.0;
    let names: Vec<String> = (0..apis.len())
        .map(|slot| {
            KafkaApi::ALL
                .get(slot)
                .map_or_else(|| "unknown".to_owned(), |k| format!("{k:?}"))
        })
        .collect();
    encode_api_requests(
        enc,
        "sluice_kafka_requests",
        "Requests received on the Kafka listener, by Kafka API.",
        apis,
        &names,
    )?;
    {
        let mut m = enc.encode_descriptor(
            "sluice_kafka_request_errors",
            "Kafka requests not served: API or version not served (35; the connection is closed, except for ApiVersions), or the connection closed instead of an answer (42), by Kafka API and error code.",
            None,
            MetricType::Counter,
        )?;
        for (a, name) in apis.iter().zip(&names) {
            for (number, error) in [
                (code::UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION"),
                (code::INVALID_REQUEST, "INVALID_REQUEST"),
            ] {
                let n = a.errors.get(number as usize).map_or(0, load);
                if n == 0 {
                    continue;
                }
                let number = number.to_string();
                let labels = [
                    ("api", name.as_str()),
                    ("code", number.as_str()),
                    ("error", error),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
    }
    encode_api_latency(
        enc,
        "sluice_kafka_request_duration_seconds",
        "Time from a Kafka request frame read whole to its answer written or queued (a fetch's long-poll wait included), by Kafka API.",
        apis,
        &names,
    )
}

/// A request counter per API slot, labelled `api`.
fn encode_api_requests(
    enc: &mut DescriptorEncoder,
    metric: &str,
    help: &str,
    apis: &[ApiStats],
    names: &[String],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(metric, help, None, MetricType::Counter)?;
    for (a, name) in apis.iter().zip(names) {
        let labels = [("api", name.as_str())];
        ConstCounter::new(load(&a.requests)).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A latency histogram per API slot, labelled `api`.
fn encode_api_latency(
    enc: &mut DescriptorEncoder,
    metric: &str,
    help: &str,
    apis: &[ApiStats],
    names: &[String],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(metric, help, None, MetricType::Histogram)?;
    for (a, name) in apis.iter().zip(names) {
        let h = a.latency.snapshot();
        let labels = [("api", name.as_str())];
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            h.sum_seconds,
            h.count,
            &h.buckets,
            None,
        )?;
    }
    Ok(())
}

fn encode_partitions(
    enc: &mut DescriptorEncoder,
    broker: &Broker,
    topics: &[Arc<crate::topics::Topic>],
) -> Result<(), std::fmt::Error> {
    let mut rows = Vec::new();
    for t in topics {
        for (i, p) in t.hosted() {
            let c = &p.counters;
            rows.push(PartitionRow {
                topic: t.name.clone(),
                partition: i.to_string(),
                values: [
                    load(&c.records_appended),
                    load(&c.bytes_appended),
                    load(&c.bytes_fetched),
                    p.log.log_start_offset(),
                    p.log.next_offset(),
                    p.log.high_watermark(),
                    p.log.size_in_bytes(),
                    p.log.segment_count() as u64,
                    u64::from(p.is_offline()),
                ],
            });
        }
    }
    for (i, (name, help, kind)) in PARTITION_FAMILIES.iter().enumerate() {
        let mut m = enc.encode_descriptor(name, help, None, *kind)?;
        for r in &rows {
            let labels = [
                ("topic", r.topic.as_str()),
                ("partition", r.partition.as_str()),
            ];
            let v = r.values.get(i).copied().unwrap_or(0);
            let fam = m.encode_family(&labels)?;
            match kind {
                MetricType::Counter => ConstCounter::new(v).encode(fam)?,
                _ => ConstGauge::new(v).encode(fam)?,
            }
        }
    }
    // Committed offsets of consumer groups and their lag behind the high
    // watermark.
    let committed = broker.offsets.all();
    let mut committed_m = enc.encode_descriptor(
        "sluice_group_committed_offset",
        "Offset a consumer group committed for a partition.",
        None,
        MetricType::Gauge,
    )?;
    for (group, topic, partition, offset) in &committed {
        let partition = partition.to_string();
        let (group, topic) = (label_value(group), label_value(topic));
        let labels = [
            ("group", &*group),
            ("topic", &*topic),
            ("partition", partition.as_str()),
        ];
        ConstGauge::new(*offset).encode(committed_m.encode_family(&labels)?)?;
    }
    let mut lag_m = enc.encode_descriptor(
        "sluice_group_lag_records",
        "Records between a group's committed offset and the partition's high watermark.",
        None,
        MetricType::Gauge,
    )?;
    for (group, topic, partition, offset) in &committed {
        let Ok(part) = broker.topics.partition(topic, *partition) else {
            continue;
        };
        let lag = part.log.high_watermark().saturating_sub(*offset);
        let partition = partition.to_string();
        let (group, topic) = (label_value(group), label_value(topic));
        let labels = [
            ("group", &*group),
            ("topic", &*topic),
            ("partition", partition.as_str()),
        ];
        ConstGauge::new(lag).encode(lag_m.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("plain-group.1"), "plain-group.1");
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn prometheus_text_names_counter_families_by_their_samples() {
        let om = "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total{x=\"1\"} 3\n\
                  # HELP g A gauge.\n# TYPE g gauge\ng 1\n\
                  # HELP h A histogram.\n# TYPE h histogram\nh_bucket{le=\"inf\"} 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\na_bytes_total{x=\"1\"} 3\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 1\n\
             # HELP h A histogram.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n"
        );
    }
}
