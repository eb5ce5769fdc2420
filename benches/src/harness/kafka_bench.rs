//! `--protocol kafka`: W1 and W2 through the broker's Kafka listener, next
//! to the native runs of the same invocation. The producer and consumer
//! here are the harness's own, built on the Kafka codec of
//! `sluice_protocol::kafka`, and shaped like the native ones in
//! [`super::workloads`]: `in_flight` pipelined Produce requests of about
//! `batch_bytes`, one Fetch of `fetch_bytes` at a time, batches walked and
//! (by default) CRC-checked. Idempotence is not used.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use serde_json::json;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::batch::{BatchBuilder, BatchIter, Compression, NewRecord, verify_crc};
use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_protocol::kafka::header::{RequestHeader, decode_response_header};
use sluice_protocol::kafka::io::Records;
use sluice_protocol::kafka::produce::{
    ProducePartitionData, ProduceRequest, ProduceResponse, ProduceTopicData,
};
use sluice_protocol::kafka::{Message, decode, encode};
use sluice_protocol::wire::produce::Acks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bench::{Bench, measured};
use super::broker_proc::CpuTimes;
use super::meter::{Meter, Sampler};
use super::options::{Params, ValueKind};
use super::report::{Moved, WorkloadResult};
use super::w1_produce::ensure_w1_log;
use super::workloads::{self, create_topic, now_ms};
use crate::XorShift;

/// Produce and Fetch versions used: the highest the listener serves, and
/// the last Fetch version that names topics (later ones take ids, which
/// would cost a Metadata lookup without changing what is measured).
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
/// A consumer that sees no new record for this long gives up.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// A Kafka-protocol connection: requests out, responses in, in order.
struct KafkaConn {
    stream: TcpStream,
    next_id: i32,
    out: Vec<u8>,
}

impl KafkaConn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        // The congestion control the native client library gives its
        // connections, so that the two protocols are compared alike.
        sluice_client::tcp::apply(&stream, addr);
        Ok(KafkaConn {
            stream,
            next_id: 0,
            out: Vec::new(),
        })
    }

    async fn send<M: Message>(
        &mut self,
        version: i16,
        body: &mut M,
        records: &[u8],
    ) -> anyhow::Result<()> {
        self.next_id = self.next_id.wrapping_add(1);
        self.out.clear();
        self.out.extend_from_slice(&[0; 4]);
        RequestHeader {
            api_key: M::API as i16,
            api_version: version,
            correlation_id: self.next_id,
            client_id: Some("sluice-bench".to_owned()),
        }
        .encode(&mut self.out);
        encode(body, version, &mut self.out, records)?;
        let len = u32::try_from(self.out.len() - 4)?;
        self.out[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&self.out).await?;
        Ok(())
    }

    /// The next response and its body's bytes (after the header) in
    /// `buf`, so that record sets are positions in `&buf[..len]`. The
    /// buffer is reused: it grows, and is never cleared or zeroed again.
    async fn recv<'b, M: Message>(
        &mut self,
        version: i16,
        buf: &'b mut Vec<u8>,
    ) -> anyhow::Result<(M, &'b [u8])> {
        let len = self.stream.read_u32().await? as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let frame = buf.get_mut(..len).context("response buffer")?;
        self.stream.read_exact(frame).await?;
        let (_, at) = decode_response_header(frame, M::API.response_header_version(version))?;
        let body = frame.get(at..).unwrap_or_default();
        Ok((decode(body, version)?, body))
    }
}

fn kafka_acks(a: Acks) -> i16 {
    match a {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    }
}

/// Produces `records` to partition 0 of `topic`, pipelining `p.in_flight`
/// requests; acknowledged value bytes are counted on `meter`.
async fn produce(
    addr: SocketAddr,
    topic: &str,
    records: u64,
    p: &Params,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let mut conn = KafkaConn::connect(addr).await?;
    let mut rng = XorShift::new(1);
    let pool: Vec<Vec<u8>> = match p.value_kind {
        ValueKind::Random => crate::random_values(&mut rng, 1024, p.value_len),
        ValueKind::Text => crate::text_values(&mut rng, 1024, p.value_len),
    };
    let codec = Codec::new(p.compression);
    let per_batch = p.records_per_batch() as u64;
    let acks = kafka_acks(p.acks);
    let mut left = records;
    let mut outstanding: VecDeque<u64> = VecDeque::new();
    let mut moved = Moved::default();
    let mut next_value = 0usize;
    let mut buf = BytesMut::new();
    let mut resp_buf = Vec::new();
    while left > 0 || !outstanding.is_empty() {
        while left > 0 && outstanding.len() < p.in_flight.max(1) {
            let n = per_batch.min(left);
            left -= n;
            let mut builder = BatchBuilder::with_capacity(n as usize * (p.value_len + 16) + 128);
            let now = now_ms();
            for _ in 0..n {
                builder.push(&NewRecord {
                    timestamp: now,
                    key: None,
                    value: pool.get(next_value % pool.len()).map(Vec::as_slice),
                    headers: &[],
                });
                next_value += 1;
            }
            buf.clear();
            builder.finish_into(&mut buf);
            if p.compression != Compression::None {
                buf = compress_batch(&buf, codec)?;
            }
            moved.batch_bytes += buf.len() as u64;
            let mut req = ProduceRequest {
                transactional_id: None,
                acks,
                timeout_ms: 30_000,
                topics: vec![ProduceTopicData {
                    name: topic.to_owned(),
                    partitions: vec![ProducePartitionData {
                        index: 0,
                        records: Some(Records {
                            start: 0,
                            len: buf.len(),
                        }),
                    }],
                }],
            };
            conn.send(PRODUCE_VERSION, &mut req, &buf).await?;
            if acks == 0 {
                meter.add(n * p.value_len as u64);
                moved.records += n;
            } else {
                outstanding.push_back(n);
            }
        }
        if let Some(n) = outstanding.pop_front() {
            let (resp, _): (ProduceResponse, _) = conn.recv(PRODUCE_VERSION, &mut resp_buf).await?;
            let r = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .context("empty produce response")?;
            if r.error_code != 0 {
                bail!(
                    "Kafka produce failed: {} {:?}",
                    r.error_code,
                    r.error_message
                );
            }
            meter.add(n * p.value_len as u64);
            moved.records += n;
        }
    }
    moved.value_bytes = moved.records * p.value_len as u64;
    Ok(moved)
}

/// Reads `records` of partition 0 of `topic` from offset 0; value bytes are
/// counted on `meter`.
async fn consume(
    addr: SocketAddr,
    topic: &str,
    records: u64,
    p: &Params,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let mut conn = KafkaConn::connect(addr).await?;
    let mut moved = Moved::default();
    let (mut offset, mut left) = (0u64, records);
    let mut progress = Instant::now();
    let mut buf = Vec::new();
    let max = i32::try_from(p.fetch_bytes).unwrap_or(i32::MAX);
    let request = |offset: u64| -> anyhow::Result<FetchRequest> {
        Ok(FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: max,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                topic_id: [0; 16],
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: i64::try_from(offset)?,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: max,
                }],
            }],
            forgotten: Vec::new(),
            rack_id: String::new(),
        })
    };
    // As the native consumer: the next fetch goes out once an answer's
    // batch headers say where it starts, before its CRCs are checked.
    let mut in_flight = false;
    while left > 0 {
        if !in_flight {
            conn.send(FETCH_VERSION, &mut request(offset)?, &[]).await?;
        }
        let (resp, body): (FetchResponse, _) = conn.recv(FETCH_VERSION, &mut buf).await?;
        in_flight = false;
        let part = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty fetch response")?;
        if resp.error_code != 0 || part.error_code != 0 {
            bail!(
                "Kafka fetch failed: {} / {}",
                resp.error_code,
                part.error_code
            );
        }
        let bytes = part
            .records
            .and_then(|r| body.get(r.range()))
            .unwrap_or_default();
        moved.batch_bytes += bytes.len() as u64;
        let mut seen = 0u64;
        for b in BatchIter::new(bytes) {
            let (header, _) = b.context("malformed batch")?;
            let next = header.next_offset() as u64;
            seen += next.saturating_sub(offset.max(header.base_offset as u64));
            offset = offset.max(next);
        }
        if seen > 0 {
            progress = Instant::now();
        }
        left = left.saturating_sub(seen);
        moved.records += seen;
        meter.add(seen * p.value_len as u64);
        if left > 0 {
            conn.send(FETCH_VERSION, &mut request(offset)?, &[]).await?;
            in_flight = true;
        }
        if p.verify_crc {
            for b in BatchIter::new(bytes) {
                let (_, raw) = b.context("malformed batch")?;
                verify_crc(raw).context("CRC check")?;
            }
        }
        if progress.elapsed() > STALL_LIMIT {
            bail!("Kafka consumer of {topic} saw nothing new for {STALL_LIMIT:?}");
        }
    }
    moved.value_bytes = moved.records * p.value_len as u64;
    Ok(moved)
}

/// Records the Kafka row's throughput over the native row's as a detail of
/// the Kafka row, and prints both.
fn ratio(bench: &mut Bench, id: &str, native_variant: &str, kafka_variant: &str) {
    let find = |v: &str| {
        bench
            .results
            .iter()
            .rposition(|r| r.workload == id && r.variant == v)
    };
    let (Some(n), Some(k)) = (find(native_variant), find(kafka_variant)) else {
        return;
    };
    let (Some(native), Some(kafka)) = (bench.results.get(n), bench.results.get(k)) else {
        return;
    };
    let r = kafka.mb_per_sec / native.mb_per_sec;
    println!(
        "{id} Kafka vs native protocol: {:.0} vs {:.0} MB/s (ratio {r:.2})",
        kafka.mb_per_sec, native.mb_per_sec
    );
    if let Some(kafka) = bench.results.get_mut(k) {
        kafka.detail("kafka_over_native_throughput", r);
    }
}

/// Rounds of the W1 comparison.
const ROUNDS: u64 = 4;

/// W1 through the Kafka listener, next to native in the same run: W1's
/// records in [`ROUNDS`] pairs of a native and a Kafka pass of a quarter
/// each (each on a topic of its own; which goes first alternates), so both
/// see the same page-cache and writeback state. Reported as W1 `native
/// (paired)` and W1 `kafka produce`, each the sum of its passes.
pub async fn w1(bench: &mut Bench) -> anyhow::Result<()> {
    let base = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let mut p = base.clone();
    p.records = (base.records / ROUNDS).max(1);
    p.idempotent = false;
    let addr = bench.addr()?;
    let kafka = bench.kafka_addr()?;
    let mut sums = [(Moved::default(), 0.0, CpuTimes::default()); 2];
    for round in 0..ROUNDS {
        for k in 0..2 {
            let via_kafka = (k + round) % 2 == 1;
            let topic = bench.topic(&format!("w1-proto{round}-{}", u8::from(via_kafka)));
            create_topic(addr, &topic, 1, None).await?;
            let meter = Meter::new();
            let (moved, secs, cpu) = if via_kafka {
                measured(bench, produce(kafka, &topic, p.records, &p, &meter)).await?
            } else {
                let job = [(0, p.records)];
                measured(bench, workloads::produce(addr, &topic, &job, &p, 1, &meter)).await?
            };
            let sum = &mut sums[usize::from(via_kafka)];
            sum.0 = sum.0.plus(moved);
            sum.1 += secs;
            sum.2 = CpuTimes {
                user: sum.2.user + cpu.user,
                sys: sum.2.sys + cpu.sys,
            };
        }
    }
    for (via_kafka, (moved, secs, cpu)) in [false, true].into_iter().zip(sums) {
        let mut q = p.clone();
        q.records = p.records * ROUNDS;
        let variant = if via_kafka {
            "kafka produce"
        } else {
            "native (paired)"
        };
        let mut r = WorkloadResult::new("W1", variant, bench.params_json(&q), moved, secs, cpu);
        r.parameters.insert("producers".into(), json!(1));
        r.parameters.insert("rounds".into(), json!(ROUNDS));
        let protocol = if via_kafka { "kafka" } else { "native" };
        r.parameters.insert("protocol".into(), json!(protocol));
        bench.results.push(r);
    }
    ratio(bench, "W1", "native (paired)", "kafka produce");
    Ok(())
}

/// W2 through the Kafka listener, right after the native W2: one consumer
/// reads the W1 log (written through the native protocol) from a warm page
/// cache.
pub async fn w2(bench: &mut Bench) -> anyhow::Result<()> {
    let log = ensure_w1_log(bench).await?;
    let mut p = bench.opts.params(log.records, log.value_len, Acks::Leader);
    p.records = log.records;
    p.value_len = log.value_len;
    let kafka = bench.kafka_addr()?;
    consume(kafka, &log.topic, log.records, &p, &Meter::new()).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W2 Kafka consume");
    let (moved, secs, cpu) =
        measured(bench, consume(kafka, &log.topic, log.records, &p, &meter)).await?;
    sampler.finish().await;
    let path = bench.fetch_path().to_owned();
    let variant = format!("kafka {path}");
    let mut r = WorkloadResult::new("W2", &variant, bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("consumers".into(), json!(1));
    r.parameters.insert("protocol".into(), json!("kafka"));
    bench.results.push(r);
    ratio(bench, "W2", &path, &variant);
    Ok(())
}

/// W4 through the Kafka listener, right after the native W4 and with its
/// settings: the sender thread keeps the same fixed schedule (no
/// coordinated omission) and hands each record to a task that sends it as
/// its own batch in its own Produce request (pipelined, not waiting for
/// answers; the latency batch size and linger of the native producer do not
/// apply); a Kafka-protocol consumer tails the partition with long polls.
pub async fn w4(bench: &mut Bench) -> anyhow::Result<()> {
    let spec = super::w4_latency::spec(bench);
    let topic = bench.topic("w4-kafka");
    create_topic(bench.addr()?, &topic, 1, None).await?;
    let kafka = bench.kafka_addr()?;
    let before = bench.counter("produce_bytes").await;
    let (run, secs, cpu) = measured(bench, run_latency(kafka, &topic, &spec)).await?;
    let produced = bench.counter("produce_bytes").await.saturating_sub(before);
    let r =
        super::w4_latency::latency_result(bench, "W4", "kafka", &spec, &run, produced, (secs, cpu));
    bench.results.push(r);
    let p99 = |id: &str, v: &str| {
        bench
            .results
            .iter()
            .rfind(|r| r.workload == id && r.variant.starts_with(v))
            .and_then(|r| r.latency.as_ref().map(|l| l.p99_us))
    };
    if let (Some(native), Some(k)) = (p99("W4", "tail"), p99("W4", "kafka")) {
        println!("W4 Kafka vs native protocol: p99 {k:.0} vs {native:.0} µs");
    }
    Ok(())
}

fn latency_histogram() -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    Ok(hdrhistogram::Histogram::new_with_bounds(
        1,
        3_600_000_000_000,
        3,
    )?)
}

async fn run_latency(
    addr: SocketAddr,
    topic: &str,
    spec: &super::w4_latency::LatencySpec,
) -> anyhow::Result<super::w4_latency::LatencyRun> {
    use super::w4_latency::{LatencyRun, StallCounter};
    let total = (spec.rate as f64 * (spec.warmup + spec.duration).as_secs_f64()) as u64;
    let warm = (spec.rate as f64 * spec.warmup.as_secs_f64()) as u64;
    let base = Instant::now();
    let verify = spec.verify_crc;

    // The consumer: long polls from offset 0 until every record came.
    let mut fetcher = KafkaConn::connect(addr).await?;
    let consumer_topic = topic.to_owned();
    let receiver = tokio::spawn(async move {
        let mut hist = latency_histogram()?;
        let mut stalls = StallCounter::default();
        let (mut received, mut offset) = (0u64, 0i64);
        let mut buf = Vec::new();
        let mut last = Instant::now();
        while received < total {
            let mut req = FetchRequest {
                replica_id: -1,
                max_wait_ms: 500,
                min_bytes: 1,
                max_bytes: 8 << 20,
                isolation_level: 0,
                session_id: 0,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: consumer_topic.clone(),
                    topic_id: [0; 16],
                    partitions: vec![FetchPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        fetch_offset: offset,
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: 8 << 20,
                    }],
                }],
                forgotten: Vec::new(),
                rack_id: String::new(),
            };
            fetcher.send(FETCH_VERSION, &mut req, &[]).await?;
            let (resp, body): (FetchResponse, _) = fetcher.recv(FETCH_VERSION, &mut buf).await?;
            let now = base.elapsed().as_nanos() as u64;
            let bytes = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .and_then(|p| p.records)
                .and_then(|r| body.get(r.range()))
                .unwrap_or_default();
            for b in BatchIter::new(bytes) {
                let (_, raw) = b.context("malformed batch")?;
                if verify {
                    verify_crc(raw).context("CRC check")?;
                }
                let batch =
                    sluice_protocol::batch::RecordBatch::new(bytes::Bytes::copy_from_slice(raw))?;
                for r in batch.records() {
                    let r = r?;
                    if r.offset < offset {
                        continue;
                    }
                    offset = r.offset + 1;
                    received += 1;
                    let v = r.value.unwrap_or_default();
                    let field = |at: usize| -> anyhow::Result<u64> {
                        let b = v.get(at..at + 8).context("value shorter than 16 bytes")?;
                        Ok(u64::from_le_bytes(b.try_into()?))
                    };
                    if field(8)? >= warm {
                        let sent = field(0)?;
                        let ns = now.saturating_sub(sent).max(1);
                        hist.record(ns)?;
                        stalls.record(ns, sent);
                    }
                    last = Instant::now();
                }
            }
            if last.elapsed() > STALL_LIMIT {
                bail!("Kafka W4 consumer saw nothing for {STALL_LIMIT:?}");
            }
        }
        anyhow::Ok((hist, received, stalls))
    });

    // The producer: one task sends, one reads the answers.
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    sluice_client::tcp::apply(&stream, addr);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let acks = kafka_acks(spec.acks);
    let producer_topic = topic.to_owned();
    let writer = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut batch = BytesMut::new();
        let mut id = 0i32;
        while let Some(value) = rx.recv().await {
            let mut builder = BatchBuilder::with_capacity(value.len() + 128);
            builder.push(&NewRecord {
                timestamp: now_ms(),
                key: None,
                value: Some(&value),
                headers: &[],
            });
            batch.clear();
            builder.finish_into(&mut batch);
            id = id.wrapping_add(1);
            out.clear();
            out.extend_from_slice(&[0; 4]);
            RequestHeader {
                api_key: ProduceRequest::API as i16,
                api_version: PRODUCE_VERSION,
                correlation_id: id,
                client_id: Some("sluice-bench".to_owned()),
            }
            .encode(&mut out);
            let mut req = ProduceRequest {
                transactional_id: None,
                acks,
                timeout_ms: 30_000,
                topics: vec![ProduceTopicData {
                    name: producer_topic.clone(),
                    partitions: vec![ProducePartitionData {
                        index: 0,
                        records: Some(Records {
                            start: 0,
                            len: batch.len(),
                        }),
                    }],
                }],
            };
            encode(&mut req, PRODUCE_VERSION, &mut out, &batch)?;
            let len = u32::try_from(out.len() - 4)?;
            out[..4].copy_from_slice(&len.to_be_bytes());
            wr.write_all(&out).await?;
        }
        anyhow::Ok(())
    });
    let checker = tokio::spawn(async move {
        let mut acked = 0u64;
        let mut buf = Vec::new();
        while acks != 0 && acked < total {
            let len = rd.read_u32().await? as usize;
            buf.resize(len, 0);
            rd.read_exact(&mut buf).await?;
            let (_, at) = decode_response_header(
                &buf,
                ProduceRequest::API.response_header_version(PRODUCE_VERSION),
            )?;
            let resp: ProduceResponse = decode(buf.get(at..).unwrap_or_default(), PRODUCE_VERSION)?;
            let code = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .map_or(-1, |p| p.error_code);
            if code != 0 {
                bail!("Kafka produce failed: {code}");
            }
            acked += 1;
        }
        anyhow::Ok(if acks == 0 { total } else { acked })
    });
    let (rate, value_len) = (spec.rate, spec.value_len);
    let sender = std::thread::spawn(move || -> anyhow::Result<hdrhistogram::Histogram<u64>> {
        let _ = nix::sys::prctl::set_timerslack(1);
        let mut lag = latency_histogram()?;
        let mut value = vec![0u8; value_len];
        crate::XorShift::new(4).fill(&mut value);
        let start = Instant::now() + Duration::from_millis(10);
        for i in 0..total {
            let intended = start
                + Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64);
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            lag.record(intended.elapsed().as_nanos().max(1) as u64)?;
            let stamp = intended.duration_since(base).as_nanos() as u64;
            value
                .get_mut(..8)
                .context("short value")?
                .copy_from_slice(&stamp.to_le_bytes());
            value
                .get_mut(8..16)
                .context("short value")?
                .copy_from_slice(&i.to_le_bytes());
            if tx.send(value.clone()).is_err() {
                bail!("Kafka W4 writer stopped");
            }
        }
        Ok(lag)
    });
    let send_lag = tokio::task::spawn_blocking(move || sender.join())
        .await?
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    writer.await??;
    let acked = checker.await??;
    let (latency, received, stalls) = tokio::time::timeout(STALL_LIMIT, receiver)
        .await
        .context("Kafka W4 consumer did not finish")???;
    if acked != total {
        bail!("{acked} of {total} records acknowledged");
    }
    Ok(LatencyRun {
        latency,
        send_lag,
        sent: total,
        received,
        records_over_stall: stalls.over,
        stalls: stalls.stalls,
        stall_starts_ms: stalls.starts_ms,
    })
}
