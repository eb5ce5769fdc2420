//! The raw produce and fetch loops the throughput workloads are made of.
//!
//! They use a bare [`Connection`] rather than the client library's
//! `Producer`/`Consumer`, so that what is measured is the broker: each
//! producer keeps `in_flight` produce requests of about `batch_bytes` on the
//! wire; each consumer keeps one fetch of `fetch_bytes` on the wire and
//! walks (and by default CRC-checks) the batches it gets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use sluice_client::Connection;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::batch::{BatchBuilder, BatchIter, Compression, NewRecord, verify_crc};
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::topic_config::{FlushMode, TopicConfig};

use super::meter::Meter;
use super::options::{Params, ValueKind};
use super::report::Moved;
use crate::XorShift;

/// A consumer that sees no new record for this long gives up.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long a producer or consumer whose partition's leader moved (on a
/// cluster) waits for the brokers to name a new one.
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// Whether a partition's error means that its leader moved or is not
/// elected yet: nothing was stored or read, and the same request may go
/// to the new leader.
fn leader_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderForPartition | ErrorCode::LeaderNotAvailable
    )
}

/// Replaces `conn` with a connection to the leader of `topic`'s
/// `partition`, as the broker `conn` reaches names it in Metadata, asking
/// again every 100 ms while it names none (an election under way), for at
/// most [`LEADER_WAIT`].
async fn reconnect_to_leader(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let meta = conn.metadata(Some(vec![topic.to_owned()])).await?;
        let leader = meta
            .topics
            .first()
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
            .and_then(|p| p.leader);
        if let Some(addr) = leader.and_then(|id| meta.broker_address(id)) {
            let addr: SocketAddr = addr
                .parse()
                .with_context(|| format!("leader address {addr:?}"))?;
            *conn = Connection::connect(addr).await?;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no leader of {topic}-{partition} named within {LEADER_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a topic (ignoring "already exists").
pub async fn create_topic(
    addr: SocketAddr,
    name: &str,
    partitions: u32,
    flush: Option<FlushMode>,
) -> anyhow::Result<()> {
    // A cluster that just started may still be electing its controller.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut conn = Connection::connect(addr).await?;
        let r = conn
            .create_topics(vec![NewTopic {
                name: name.to_owned(),
                partitions,
                config: TopicConfig {
                    flush,
                    ..TopicConfig::default()
                },
                replication_factor: None,
            }])
            .await?;
        let res = r.results.first().context("empty CreateTopics response")?;
        match res.error_code {
            ErrorCode::None | ErrorCode::TopicAlreadyExists => return Ok(()),
            ErrorCode::ControllerUnavailable if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            code => bail!("creating {name}: {code} {:?}", res.message),
        }
    }
}

/// Splits `records` over `parts` shares as evenly as possible.
pub fn split(records: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| records / parts + u64::from(i < records % parts))
        .collect()
}

/// Produces to `job`'s partitions (partition, records) over one connection,
/// round-robin one batch per partition, pipelining `p.in_flight` requests.
/// Acknowledged value bytes are counted on `meter`. On a cluster, a request
/// refused because the partition's leader moved is sent again to the new
/// leader once the requests in flight are answered (not with idempotence,
/// whose sequence numbers were spent; nor with acks=none, which gets no
/// answer).
pub async fn produce(
    addr: SocketAddr,
    topic: &str,
    job: &[(u32, u64)],
    p: &Params,
    seed: u64,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let mut conn = Connection::connect(addr).await?;
    let mut rng = XorShift::new(seed);
    // A pool of values, reused round-robin: generating them is not what is
    // measured.
    let pool: Vec<Vec<u8>> = match p.value_kind {
        ValueKind::Random => crate::random_values(&mut rng, 1024, p.value_len),
        ValueKind::Text => crate::text_values(&mut rng, 1024, p.value_len),
    };
    let codec = Codec::new(p.compression);
    let per_batch = p.records_per_batch() as u64;
    // Idempotent produce: a producer id, and the next sequence per partition.
    let producer_id = match p.idempotent {
        true => Some(conn.init_producer_id().await?.producer_id),
        false => None,
    };
    let mut sequences: std::collections::HashMap<u32, i32> = Default::default();
    let mut left: Vec<(u32, u64)> = job.iter().copied().filter(|&(_, n)| n > 0).collect();
    // (partition, records) of each request in flight.
    let mut outstanding: VecDeque<(u32, u64)> = VecDeque::new();
    // The partition whose leader moved, once a request was refused so.
    let mut moved_away: Option<u32> = None;
    let mut moved = Moved::default();
    let (mut next_value, mut turn) = (0usize, 0usize);
    let mut buf = BytesMut::new();
    while !left.is_empty() || !outstanding.is_empty() {
        while moved_away.is_none() && !left.is_empty() && outstanding.len() < p.in_flight.max(1) {
            turn %= left.len();
            let Some(slot) = left.get_mut(turn) else {
                break;
            };
            let partition = slot.0;
            let n = per_batch.min(slot.1);
            slot.1 -= n;
            if slot.1 == 0 {
                left.remove(turn);
            } else {
                turn += 1;
            }
            let mut builder = BatchBuilder::with_capacity(n as usize * (p.value_len + 16) + 128);
            if let Some(pid) = producer_id {
                let seq = sequences.entry(partition).or_insert(0);
                builder = builder.producer(pid, 0, *seq);
                *seq = seq.wrapping_add(n as i32) & i32::MAX;
            }
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
                // Compressed here, as a producer would, before the request.
                buf = compress_batch(&buf, codec)?;
            }
            moved.batch_bytes += buf.len() as u64;
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
            if p.acks == Acks::None {
                meter.add(n * p.value_len as u64);
                moved.records += n;
            } else {
                outstanding.push_back((partition, n));
            }
        }
        if let Some((partition, n)) = outstanding.pop_front() {
            let (resp, _): (ProduceResponse, _) = conn.recv().await?;
            let r = resp.partitions.first().context("empty produce response")?;
            if leader_moved(r.error_code) && producer_id.is_none() {
                // Nothing was stored: these records go again.
                match left.iter_mut().find(|s| s.0 == partition) {
                    Some(slot) => slot.1 += n,
                    None => left.push((partition, n)),
                }
                moved_away.get_or_insert(partition);
            } else if r.error_code != ErrorCode::None {
                bail!("produce failed: {} {:?}", r.error_code, r.message);
            } else {
                meter.add(n * p.value_len as u64);
                moved.records += n;
            }
        }
        if outstanding.is_empty() {
            if let Some(partition) = moved_away.take() {
                reconnect_to_leader(&mut conn, topic, partition).await?;
            }
        }
    }
    moved.value_bytes = moved.records * p.value_len as u64;
    Ok(moved)
}

/// Runs one [`produce`] task per job at once; returns their sum.
pub async fn produce_parallel(
    addr: SocketAddr,
    topic: &str,
    jobs: Vec<Vec<(u32, u64)>>,
    p: &Params,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let tasks: Vec<_> = jobs
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            let (topic, p, meter) = (topic.to_owned(), p.clone(), meter.clone());
            tokio::spawn(async move { produce(addr, &topic, &job, &p, i as u64 + 1, &meter).await })
        })
        .collect();
    let mut total = Moved::default();
    for t in tasks {
        total = total.plus(t.await??);
    }
    Ok(total)
}

/// Reads `job`'s partitions (partition, records) from offset 0 over one
/// connection until each has yielded its records. Value bytes are counted
/// on `meter`. On a cluster, a fetch refused because the partition's
/// leader moved is asked again of the new leader.
///
/// Like a consumer that prefetches, it asks for the next records as soon as
/// an answer has told it where they start (a walk over the batch headers),
/// and checks the answer's CRCs while the broker works on that next fetch:
/// one fetch is in flight at a time, and the broker's connection is not
/// left idle while the consumer checks what it got.
pub async fn consume(
    addr: SocketAddr,
    topic: &str,
    job: &[(u32, u64)],
    p: &Params,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let mut conn = Connection::connect(addr).await?;
    // (partition, next offset, records still wanted)
    let mut left: Vec<(u32, u64, u64)> = job
        .iter()
        .filter(|&&(_, n)| n > 0)
        .map(|&(part, n)| (part, 0, n))
        .collect();
    let request = |left: &[(u32, u64, u64)]| -> Vec<FetchPartition> {
        let share = (p.fetch_bytes / left.len().max(1) as u32).max(64 * 1024);
        left.iter()
            .map(|&(partition, offset, _)| FetchPartition {
                topic: topic.to_owned(),
                partition,
                offset,
                max_bytes: share,
            })
            .collect()
    };
    let mut moved = Moved::default();
    let mut progress = Instant::now();
    // Whether a fetch is on the wire (sent, its answer not read yet).
    let mut in_flight = false;
    while !left.is_empty() {
        if !in_flight {
            conn.send_fetch(500, 1, p.fetch_bytes, request(&left))
                .await?;
        }
        let resp = conn.recv_fetch().await?;
        in_flight = false;
        if let Some(part) = resp.iter().find(|part| leader_moved(part.error_code)) {
            reconnect_to_leader(&mut conn, topic, part.partition).await?;
            continue;
        }
        for part in &resp {
            if part.error_code != ErrorCode::None {
                bail!(
                    "fetch {topic}-{} failed: {}",
                    part.partition,
                    part.error_code
                );
            }
            let Some(slot) = left.iter_mut().find(|s| s.0 == part.partition) else {
                continue;
            };
            moved.batch_bytes += part.records.len() as u64;
            let mut seen = 0u64;
            for b in BatchIter::new(&part.records) {
                let (header, _) = b.context("malformed batch")?;
                let next = header.next_offset() as u64;
                seen += next.saturating_sub(slot.1.max(header.base_offset as u64));
                slot.1 = slot.1.max(next);
            }
            if seen > 0 {
                progress = Instant::now();
            }
            slot.2 = slot.2.saturating_sub(seen);
            moved.records += seen;
            meter.add(seen * p.value_len as u64);
        }
        left.retain(|s| s.2 > 0);
        if !left.is_empty() {
            // The prefetch: the next records are asked for before these are
            // checked.
            conn.send_fetch(500, 1, p.fetch_bytes, request(&left))
                .await?;
            in_flight = true;
        }
        if p.verify_crc {
            for part in &resp {
                for b in BatchIter::new(&part.records) {
                    let (_, raw) = b.context("malformed batch")?;
                    verify_crc(raw).context("CRC check")?;
                }
            }
        }
        if progress.elapsed() > STALL_LIMIT {
            bail!("consumer of {topic} saw nothing new for {STALL_LIMIT:?}");
        }
    }
    moved.value_bytes = moved.records * p.value_len as u64;
    Ok(moved)
}

/// Runs one [`consume`] task per job at once; returns their sum.
pub async fn consume_parallel(
    addr: SocketAddr,
    topic: &str,
    jobs: Vec<Vec<(u32, u64)>>,
    p: &Params,
    meter: &Meter,
) -> anyhow::Result<Moved> {
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (topic, p, meter) = (topic.to_owned(), p.clone(), meter.clone());
            tokio::spawn(async move { consume(addr, &topic, &job, &p, &meter).await })
        })
        .collect();
    let mut total = Moved::default();
    for t in tasks {
        total = total.plus(t.await??);
    }
    Ok(total)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
