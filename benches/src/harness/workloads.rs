//! The standard workloads (see `shared/design/WORKLOADS.md` and
//! `docs/benchmarks.md`). Each returns a [`WorkloadResult`].

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::BytesMut;
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, BatchIter, NewRecord, verify_crc};
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::topic_config::{FlushMode, TopicConfig};

use super::broker_proc::CpuTimes;
use super::report::WorkloadResult;
use crate::XorShift;

/// Settings shared by the produce and consume workloads.
#[derive(Debug, Clone)]
pub struct Params {
    /// Records to produce.
    pub records: u64,
    /// Bytes per record value.
    pub value_len: usize,
    /// Target bytes per record batch.
    pub batch_bytes: usize,
    /// Produce requests in flight per producer.
    pub in_flight: usize,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Bytes asked for per fetch.
    pub fetch_bytes: u32,
    /// Whether consumers verify batch CRCs.
    pub verify_crc: bool,
}

impl Params {
    fn records_per_batch(&self) -> usize {
        (self.batch_bytes / (self.value_len + 8)).max(1)
    }
}

/// Creates a topic (ignoring "already exists").
pub async fn create_topic(
    addr: SocketAddr,
    name: &str,
    partitions: u32,
    flush: Option<FlushMode>,
) -> anyhow::Result<()> {
    let mut conn = Connection::connect(addr).await?;
    let r = conn
        .create_topics(vec![NewTopic {
            name: name.to_owned(),
            partitions,
            config: TopicConfig {
                flush,
                ..TopicConfig::default()
            },
        }])
        .await?;
    let res = &r.results[0];
    if res.error_code != ErrorCode::None && res.error_code != ErrorCode::TopicAlreadyExists {
        bail!("creating {name}: {:?}", res.message);
    }
    Ok(())
}

/// Produces `records` records to partition `partition` over one connection,
/// pipelining `in_flight` requests. Returns (records, value bytes, batch bytes).
pub async fn produce(
    addr: SocketAddr,
    topic: &str,
    partition: u32,
    records: u64,
    p: &Params,
    seed: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    let mut conn = Connection::connect(addr).await?;
    let mut rng = XorShift::new(seed);
    // A pool of random values, reused round-robin: generating random bytes
    // is not what is measured.
    let pool: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            let mut v = vec![0u8; p.value_len];
            rng.fill(&mut v);
            v
        })
        .collect();
    let per_batch = p.records_per_batch();
    let (mut sent, mut acked, mut batch_bytes) = (0u64, 0u64, 0u64);
    let mut outstanding = 0usize;
    let mut next_value = 0usize;
    let mut buf = BytesMut::new();
    while acked < records {
        while sent < records && outstanding < p.in_flight {
            let n = per_batch.min((records - sent) as usize);
            let mut builder = BatchBuilder::with_capacity(n * (p.value_len + 16) + 128);
            let now = now_ms();
            for _ in 0..n {
                builder.push(&NewRecord {
                    timestamp: now,
                    key: None,
                    value: Some(&pool[next_value % pool.len()]),
                    headers: &[],
                });
                next_value += 1;
            }
            buf.clear();
            builder.finish_into(&mut buf);
            batch_bytes += buf.len() as u64;
            let req = ProduceRequest {
                acks: p.acks,
                timeout_ms: 30_000,
                partitions: vec![ProducePartition {
                    topic: topic.to_owned(),
                    partition,
                    records_len: buf.len() as u32,
                }],
            };
            conn.send(ApiKey::Produce, &req, &buf).await?;
            sent += n as u64;
            outstanding += 1;
            if p.acks == Acks::None {
                acked += n as u64;
                outstanding -= 1;
            }
        }
        if outstanding > 0 {
            let (resp, _): (ProduceResponse, _) = conn.recv().await?;
            let r = &resp.partitions[0];
            if r.error_code != ErrorCode::None {
                bail!("produce failed: {} {:?}", r.error_code, r.message);
            }
            outstanding -= 1;
            acked += per_batch.min((records - acked) as usize) as u64;
        }
    }
    Ok((records, records * p.value_len as u64, batch_bytes))
}

/// Reads partition `partition` from offset 0 until `records` records were
/// seen. Returns (records, value bytes, batch bytes).
pub async fn consume(
    addr: SocketAddr,
    topic: &str,
    partition: u32,
    records: u64,
    p: &Params,
) -> anyhow::Result<(u64, u64, u64)> {
    let mut conn = Connection::connect(addr).await?;
    let (mut offset, mut seen, mut bytes) = (0u64, 0u64, 0u64);
    while seen < records {
        let resp = conn
            .fetch(
                500,
                1,
                p.fetch_bytes,
                vec![FetchPartition {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    max_bytes: p.fetch_bytes,
                }],
            )
            .await?;
        let part = &resp[0];
        if part.error_code != ErrorCode::None {
            bail!("fetch failed: {}", part.error_code);
        }
        bytes += part.records.len() as u64;
        let mut iter = BatchIter::new(&part.records);
        for b in iter.by_ref() {
            let (header, raw) = b.context("malformed batch")?;
            if p.verify_crc {
                verify_crc(raw).context("CRC check")?;
            }
            let next = header.next_offset() as u64;
            seen += next - offset.max(header.base_offset as u64);
            offset = next;
        }
    }
    Ok((seen, seen * p.value_len as u64, bytes))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Builds a result from what a run moved, its duration and the broker CPU
/// it used.
#[allow(clippy::too_many_arguments)]
pub fn result(
    workload: &str,
    variant: &str,
    parameters: Vec<(String, String)>,
    moved: (u64, u64, u64),
    started: Instant,
    cpu: CpuTimes,
) -> WorkloadResult {
    let seconds = started.elapsed().as_secs_f64();
    let (records, value_bytes, batch_bytes) = moved;
    let gib = batch_bytes as f64 / f64::from(1u32 << 30);
    WorkloadResult {
        workload: workload.to_owned(),
        variant: variant.to_owned(),
        parameters,
        records,
        value_bytes,
        batch_bytes,
        seconds,
        records_per_sec: records as f64 / seconds,
        mb_per_sec: value_bytes as f64 / 1e6 / seconds,
        broker_user_s: cpu.user,
        broker_sys_s: cpu.sys,
        broker_cpu_s_per_gib: if gib > 0.0 { cpu.total() / gib } else { 0.0 },
        latency: None,
    }
}
