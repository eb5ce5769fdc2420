//! Clients that misbehave at scale: a connection flood past the cap, clients
//! that never read their responses, and many long polls with huge waits.
//! The broker closes or bounds them and keeps serving a well-behaved client
//! with normal latency.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::{ClientError, Connection};
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest, FetchResponse};
use sluice_protocol::wire::frame::RequestHeader;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode, encode_body};
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};
use tokio::io::AsyncReadExt;

fn config_file(text: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("sluice-hostile-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Round-trip time of a small metadata request.
async fn rtt(conn: &mut Connection) -> Duration {
    let t = Instant::now();
    conn.metadata(None).await.unwrap();
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_stalled_readers_and_long_polls_do_not_hurt_others() {
    let config =
        config_file("max_connections = 40\nwrite_timeout_ms = 1000\nmax_fetch_wait_ms = 60000\n");
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut good = broker.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;
    for i in 0..16 {
        good.produce(
            Acks::Leader,
            5000,
            &[("t", 0, &batch_sized(&format!("b{i}"), 256, 1000))],
        )
        .await
        .unwrap();
    }
    let baseline = rtt(&mut good).await;

    // 20 long polls at the end of the log with a huge wait.
    let mut pollers = Vec::new();
    for _ in 0..20 {
        let mut c = broker.connect().await;
        let req = FetchRequest {
            max_wait_ms: u32::MAX,
            min_bytes: u32::MAX,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: 4096,
                max_bytes: 1 << 20,
            }],
        };
        c.send(ApiKey::Fetch, &req, &[]).await.unwrap();
        pollers.push(c);
    }
    // 10 clients ask for 4 MiB fetches and never read the answers.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut c = broker.connect().await;
        let req = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 8 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                max_bytes: 8 << 20,
            }],
        };
        for _ in 0..4 {
            c.send(ApiKey::Fetch, &req, &[]).await.unwrap();
        }
        stalled.push(c);
    }
    // A flood of raw connections past the cap: the extra ones are closed.
    let mut flood = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = tokio::net::TcpStream::connect(broker.addr).await {
            flood.push(s);
        }
    }
    let mut closed = 0;
    for s in &mut flood {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 20,
        "connections past the cap are closed ({closed} of {})",
        flood.len()
    );
    drop(flood);

    // The well-behaved client is still served, quickly, and reads everything.
    tokio::time::sleep(Duration::from_millis(1500)).await; // stalled writers time out
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(rtt(&mut good).await);
    }
    assert!(
        worst < baseline * 20 + Duration::from_millis(100),
        "latency {worst:?} vs baseline {baseline:?}"
    );
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 16 * 256);
    let stats = good.stats().await.unwrap();
    assert!(stats.get("connections_rejected").unwrap() >= 20);
    // The stalled readers were disconnected by the write timeout.
    for c in &mut stalled {
        let r = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if c.recv_raw().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "a client that stopped reading is eventually disconnected"
        );
    }
    drop(pollers);
}

/// Resident memory of a process, from `/proc/<pid>/status`, in bytes.
fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// A whole request frame of `frame_len` bytes after the prefix whose body
/// (all of it) does not decode as a Metadata request.
fn undecodable_frame(frame_len: u32, correlation_id: u32) -> Vec<u8> {
    let header = RequestHeader {
        api_key: ApiKey::Metadata as u16,
        api_version: 0,
        correlation_id,
        body_len: frame_len - 12,
    }
    .encode(0)
    .unwrap();
    let mut frame = vec![0u8; 4 + frame_len as usize];
    frame[..16].copy_from_slice(&header);
    frame
}

/// A produce request for `("t", 0)` carrying `batch`, as raw bytes.
fn produce_frame(batch: &[u8], correlation_id: u32) -> Vec<u8> {
    let body = ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 5000,
        partitions: vec![ProducePartition {
            topic: "t".into(),
            partition: 0,
            records_len: batch.len() as u32,
        }],
    };
    let mut frame = vec![0u8; 16];
    let body_len = encode_body(&body, &mut frame);
    let header = RequestHeader {
        api_key: ApiKey::Produce as u16,
        api_version: 0,
        correlation_id,
        body_len: body_len as u32,
    }
    .encode(batch.len())
    .unwrap();
    frame[..16].copy_from_slice(&header);
    frame.extend_from_slice(batch);
    frame
}

const MIB: u64 = 1 << 20;

/// 40 connections each send one near-maximum frame that does not decode,
/// get their error, and go idle. The broker must not keep 40 frames' worth
/// of buffers: its resident memory stays under the request budget plus a
/// fixed margin (without the fix it keeps ~320 MiB), and a normal client is
/// served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_keep_their_largest_frame() {
    let config = config_file(
        "max_connections = 64\nmax_frame_bytes = 8388608\nmax_request_bytes_in_flight = 67108864\n",
    );
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut good = broker.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;
    let frame = undecodable_frame(8 * MIB as u32 - 64, 7);
    let mut idle = Vec::new();
    for _ in 0..40 {
        let mut c = broker.connect().await;
        c.write_raw(&frame).await.unwrap();
        let (header, _, _) = c.recv_raw().await.unwrap();
        assert_eq!(header.error_code, ErrorCode::InvalidRequest);
        assert_eq!(header.correlation_id, 7);
        idle.push(c);
    }
    // The 40 connections are open and idle; the well-behaved client works.
    good.produce(Acks::Leader, 5000, &[("t", 0, &batch_sized("x", 10, 100))])
        .await
        .unwrap();
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 10);
    let stats = good.stats().await.unwrap();
    assert_eq!(stats.get("connections_open"), Some(41));
    budget_released(&mut good).await;
    let rss = vm_rss(broker.pid());
    eprintln!("broker RSS with 40 idle connections: {} MiB", rss / MIB);
    assert!(
        rss < 64 * MIB + 48 * MIB,
        "broker RSS {} MiB with 40 idle connections (budget 64 MiB)",
        rss / MIB
    );
    // They are still usable.
    for c in &mut idle {
        c.metadata(None).await.unwrap();
    }
}

/// Eight connections announce maximum frames and send only the start of
/// them. They hold budget only for the bytes they sent, so a 2 MiB produce
/// from another client (which needs budget) is served at once instead of
/// waiting for their frame timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricklers_do_not_hold_the_budget_for_what_they_announce() {
    // Budget: exactly eight maximum frames.
    let config = config_file(
        "max_frame_bytes = 8388608\nmax_request_bytes_in_flight = 67108896\nframe_timeout_ms = 30000\n",
    );
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut good = broker.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;
    let start = 200 * 1024;
    let frame = undecodable_frame(8 * MIB as u32, 1);
    let mut tricklers = Vec::new();
    for _ in 0..8 {
        let mut c = broker.connect().await;
        c.write_raw(&frame[..start]).await.unwrap();
        tricklers.push(c);
    }
    // Wait until the broker has buffered what they sent.
    let t = Instant::now();
    loop {
        let held = good.stats().await.unwrap().get("request_bytes_held");
        if held.unwrap() >= 8 * start as u64 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "held {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each holds at most twice what it sent plus the 1 MiB first step, not
    // 8 MiB.
    let held = good
        .stats()
        .await
        .unwrap()
        .get("request_bytes_held")
        .unwrap();
    assert!(held <= 8 * (2 * start as u64 + MIB), "held {held}");
    let batch = batch_sized("big", 2, 1 << 20);
    let mut c = broker.connect().await;
    c.write_raw(&produce_frame(&batch, 9)).await.unwrap();
    let (header, _, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
        .await
        .expect("a 2 MiB produce is served while tricklers hold their frames")
        .unwrap();
    assert_eq!(header.error_code, ErrorCode::None);
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 2);
    // A trickler that finishes its frame is served too.
    let mut first = tricklers.remove(0);
    first.write_raw(&frame[start..]).await.unwrap();
    let (header, _, _) = first.recv_raw().await.unwrap();
    assert_eq!(header.error_code, ErrorCode::InvalidRequest);
}

fn fetch_of(entries: &[(&str, u32)], max_bytes: u32) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes,
        partitions: entries
            .iter()
            .map(|(t, p)| FetchPartition {
                topic: (*t).to_owned(),
                partition: *p,
                offset: 0,
                max_bytes,
            })
            .collect(),
    }
}

/// Too many partitions in one request, or one partition twice, refuse the
/// whole request with a clear code; the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_lists_are_capped_and_duplicates_refused() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "t", 2, TopicConfig::default()).await;
    let batch = batch_sized("d", 3, 10);
    let expect_refused = |r: Result<_, ClientError>, code: ErrorCode| match r {
        Err(ClientError::Broker { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected {code:?}, got {other:?}"),
    };
    // Duplicates.
    let r = c
        .produce(
            Acks::Leader,
            5000,
            &[("t", 0, &batch), ("t", 1, &batch), ("t", 0, &batch)],
        )
        .await;
    expect_refused(r.map(|_| ()), ErrorCode::DuplicatePartition);
    let r = c
        .call::<_, FetchResponse>(
            ApiKey::Fetch,
            &fetch_of(&[("t", 1), ("t", 1)], 1 << 20),
            &[],
        )
        .await;
    expect_refused(r.map(|_| ()), ErrorCode::DuplicatePartition);
    // Nothing was appended by the refused produce.
    assert_eq!(read_partition(&mut c, "t", 0, 0).await.len(), 0);
    // More than the default cap of 10,000 entries (distinct, mostly
    // unknown).
    let names: Vec<String> = (0..10_001).map(|i| format!("n{i}")).collect();
    let many: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    let r = c
        .call::<_, FetchResponse>(ApiKey::Fetch, &fetch_of(&many, 1024), &[])
        .await;
    expect_refused(r.map(|_| ()), ErrorCode::TooManyPartitions);
    let sets: Vec<(&str, u32, &[u8])> = many.iter().map(|(t, p)| (*t, *p, &batch[..])).collect();
    let r = c.produce(Acks::Leader, 5000, &sets).await;
    expect_refused(r.map(|_| ()), ErrorCode::TooManyPartitions);
    // 10,000 is accepted.
    let r = c
        .call::<_, FetchResponse>(ApiKey::Fetch, &fetch_of(&many[..10_000], 1024), &[])
        .await;
    assert!(r.is_ok(), "{r:?}");
    // ListOffsets and OffsetCommit are capped too (each lookup may search
    // time indexes; each commit adds a key).
    let lookups = many
        .iter()
        .map(|(t, p)| ListOffsetsPartition {
            topic: (*t).to_owned(),
            partition: *p,
            spec: OffsetSpec::Latest,
        })
        .collect();
    expect_refused(
        c.list_offsets(lookups).await.map(|_| ()),
        ErrorCode::TooManyPartitions,
    );
    let commits = many
        .iter()
        .map(|(t, p)| CommitPartition {
            topic: (*t).to_owned(),
            partition: *p,
            offset: 0,
            metadata: String::new(),
        })
        .collect();
    expect_refused(
        c.offset_commit("g", commits).await.map(|_| ()),
        ErrorCode::TooManyPartitions,
    );
    // With acks=none no answer is read, so a refused list closes the
    // connection instead.
    let mut quiet = broker.connect().await;
    let req = ProduceRequest {
        acks: Acks::None,
        timeout_ms: 5000,
        partitions: vec![
            ProducePartition {
                topic: "t".into(),
                partition: 1,
                records_len: batch.len() as u32,
            };
            2
        ],
    };
    let tail = [&batch[..], &batch[..]].concat();
    quiet.send(ApiKey::Produce, &req, &tail).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), quiet.recv_raw())
        .await
        .expect("closed, not left hanging");
    assert!(r.is_err(), "no response, the connection is closed: {r:?}");
    assert_eq!(read_partition(&mut c, "t", 1, 0).await.len(), 0);
    // The connection still works.
    c.produce(Acks::Leader, 5000, &[("t", 0, &batch)])
        .await
        .unwrap();
    assert_eq!(read_partition(&mut c, "t", 0, 0).await.len(), 3);
}

/// `max_fetch_response_bytes` clamps a fetch response whatever the request
/// asks for (here 16 MiB over two partitions holding ~400 KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_responses_are_clamped_by_the_broker() {
    let config = config_file("max_fetch_response_bytes = 65536\n");
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut c = broker.connect().await;
    create_topic(&mut c, "t", 2, TopicConfig::default()).await;
    for i in 0..10 {
        for p in 0..2 {
            let batch = batch_sized(&format!("b{i}"), 20, 1000);
            c.produce(Acks::Leader, 5000, &[("t", p, &batch)])
                .await
                .unwrap();
        }
    }
    let resp = c
        .fetch(
            0,
            0,
            8 << 20,
            fetch_of(&[("t", 0), ("t", 1)], 8 << 20).partitions,
        )
        .await
        .unwrap();
    let total: usize = resp.iter().map(|p| p.records.len()).sum();
    assert!(total > 0);
    assert!(total <= 65536, "fetched {total} bytes");
    // The first batch is sent whole even when it is larger than the clamp.
    let big = batch_sized("big", 100, 1000);
    c.produce(Acks::Leader, 5000, &[("t", 1, &big)])
        .await
        .unwrap();
    let resp = c
        .fetch(
            0,
            0,
            8 << 20,
            vec![FetchPartition {
                topic: "t".into(),
                partition: 1,
                offset: 200,
                max_bytes: 8 << 20,
            }],
        )
        .await
        .unwrap();
    assert_eq!(resp[0].records.len(), big.len());
}

/// Six clients send maximum frames at once to a broker whose budget holds
/// two: each frame's buffer grows step by step, and when the budget runs out
/// one of them takes the reserve and completes, so all are served (none waits
/// for its frame timeout), and the budget is all given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_growing_together_all_complete() {
    let config = config_file(
        "max_frame_bytes = 8388608\nmax_request_bytes_in_flight = 16777224\nframe_timeout_ms = 30000\n",
    );
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let frame = std::sync::Arc::new(undecodable_frame(8 * MIB as u32, 3));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let mut c = broker.connect().await;
        let frame = std::sync::Arc::clone(&frame);
        tasks.push(tokio::spawn(async move {
            c.write_raw(&frame).await.unwrap();
            let (header, _, _) = c.recv_raw().await.unwrap();
            assert_eq!(header.error_code, ErrorCode::InvalidRequest);
        }));
    }
    tokio::time::timeout(Duration::from_secs(20), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("every large frame is served well before the frame timeout");
    let mut c = broker.connect().await;
    budget_released(&mut c).await;
}

/// Waits (up to 10 s) until the broker holds none of the request budget: a
/// connection gives its frame's budget back just after writing the response.
async fn budget_released(c: &mut Connection) {
    let t = Instant::now();
    loop {
        let held = c.stats().await.unwrap().get("request_bytes_held");
        if held == Some(0) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still held: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A request frame of `api` whose body is `prefix` (a body encoded with an
/// empty list as its last field, that list's count byte cut off) followed
/// by a list of `n` copies of `element`.
fn listing_frame(api: ApiKey, prefix: &[u8], element: &[u8], n: usize) -> Vec<u8> {
    let mut body = prefix[..prefix.len() - 1].to_vec();
    // The list's count: a varint, as postcard writes a `u64`.
    encode_body(&(n as u64), &mut body);
    body.reserve(element.len() * n);
    for _ in 0..n {
        body.extend_from_slice(element);
    }
    let mut frame = RequestHeader {
        api_key: api as u16,
        api_version: 0,
        correlation_id: 5,
        body_len: body.len() as u32,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Group requests listing millions of minimal entries (one or two bytes
/// each) are refused before they are decoded: without the element cap a
/// 60 MiB SyncGroup of empty assignments decoded to about 4 GB of broker
/// memory (and took a reactor thread for seconds). Each list here is past
/// the cap, the broker answers `InvalidRequest` naming it, its resident
/// memory stays small, and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_of_millions_of_minimal_entries_are_refused_before_they_are_built() {
    use sluice_protocol::wire::leave_group::LeaveGroupRequest;
    use sluice_protocol::wire::offset_commit::OffsetCommitRequest;
    use sluice_protocol::wire::offset_fetch::OffsetFetchRequest;
    use sluice_protocol::wire::sync_group::SyncGroupRequest;

    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "t", 1, TopicConfig::default()).await;
    let before = vm_rss(broker.pid());
    let prefix = |body: &dyn Fn(&mut Vec<u8>) -> usize| {
        let mut out = Vec::new();
        body(&mut out);
        out
    };
    let sync = prefix(&|o| {
        encode_body(
            &SyncGroupRequest {
                group: "g".into(),
                generation_id: 1,
                member_id: "m".into(),
                group_instance_id: None,
                protocol_type: None,
                protocol_name: None,
                assignments: Vec::new(),
            },
            o,
        )
    });
    let leave = prefix(&|o| {
        encode_body(
            &LeaveGroupRequest {
                group: "g".into(),
                members: Vec::new(),
            },
            o,
        )
    });
    let commit = prefix(&|o| {
        encode_body(
            &OffsetCommitRequest {
                group: "g".into(),
                partitions: Vec::new(),
            },
            o,
        )
    });
    let fetch = prefix(&|o| {
        encode_body(
            &OffsetFetchRequest {
                group: "g".into(),
                partitions: Some(Vec::new()),
            },
            o,
        )
    });
    let cases: [(ApiKey, &[u8], &[u8], usize); 4] = [
        // An assignment: empty member id, empty bytes.
        (ApiKey::SyncGroup, &sync, &[0, 0], 30_000_000),
        // A member: empty id, no instance id.
        (ApiKey::LeaveGroup, &leave, &[0, 0], 30_000_000),
        // A commit: empty topic, partition 0, offset 0, no metadata.
        (ApiKey::OffsetCommit, &commit, &[0, 0, 0, 0], 15_000_000),
        // A partition: empty topic, partition 0.
        (ApiKey::OffsetFetch, &fetch, &[0, 0], 30_000_000),
    ];
    for (api, prefix, element, n) in cases {
        let frame = listing_frame(api, prefix, element, n);
        c.write_raw(&frame).await.unwrap();
        let (header, body, _) = tokio::time::timeout(Duration::from_secs(60), c.recv_raw())
            .await
            .expect("answered")
            .unwrap();
        let message = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(
            header.error_code,
            ErrorCode::InvalidRequest,
            "{api:?}: {message}"
        );
        assert!(message.contains("elements"), "{api:?}: {message}");
        let rss = vm_rss(broker.pid());
        eprintln!("{api:?}: broker RSS {} MiB after", rss / MIB);
        // The frame itself (60 MiB) may still be counted; gigabytes may not.
        assert!(
            rss < before + 200 * MIB,
            "{api:?}: broker RSS {} MiB, {} MiB before",
            rss / MIB,
            before / MIB
        );
    }
    // The connection and the broker go on.
    c.produce(Acks::Leader, 5000, &[("t", 0, &batch_sized("x", 3, 10))])
        .await
        .unwrap();
    assert_eq!(read_partition(&mut c, "t", 0, 0).await.len(), 3);
}
