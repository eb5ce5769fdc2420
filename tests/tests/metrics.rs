//! The metrics and health endpoint of the real broker binary: figures that
//! move by exactly what was produced and fetched, the switch that drops
//! per-partition series, health (including not ready with an offline
//! partition), `promtool check metrics` on a real scrape, and JSON logs.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::{FlushMode, TopicConfig};
use sluice_protocol::wire::{ErrorCode, RequestHeader};
use sluice_tests::{TestBroker, batch_sized, create_topic, http_get, sample};

fn scrape(broker: &TestBroker) -> String {
    let (status, body) = http_get(broker.metrics_addr.unwrap(), "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of a series, 0 when absent (a counter not yet moved).
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or(0.0)
}

/// A connection serves its requests one at a time and counts each after
/// writing its response: once the answer to one more request (Metadata) is
/// back, every earlier request of `conn` has been counted.
async fn settle(conn: &mut sluice_client::Connection) {
    conn.metadata(Some(vec![])).await.unwrap();
}

fn part(name: &str, topic: &str, partition: u32) -> String {
    format!("{name}{{topic=\"{topic}\",partition=\"{partition}\"}}")
}

#[tokio::test]
async fn figures_move_by_what_was_produced_and_fetched() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    let durable = TopicConfig {
        flush: Some(FlushMode::BeforeAck),
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "m", 2, durable).await;
    let before = scrape(&broker);

    let batch = batch_sized("x", 7, 100);
    let r = conn
        .produce(Acks::All, 5000, &[("m", 1, &batch)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    let fetched = conn
        .fetch(
            0,
            0,
            1 << 20,
            vec![FetchPartition {
                topic: "m".into(),
                partition: 1,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    assert_eq!(fetched[0].records.len(), batch.len());
    let c = conn
        .offset_commit(
            "readers",
            vec![CommitPartition {
                topic: "m".into(),
                partition: 1,
                offset: 2,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(c.partitions[0].error_code, ErrorCode::None);
    // A whole-request error: an unknown API key.
    let frame = RequestHeader {
        api_key: 77,
        api_version: 0,
        correlation_id: 9,
        body_len: 0,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    conn.write_raw(&frame).await.unwrap();
    assert!(conn.recv::<()>().await.is_err());
    settle(&mut conn).await;
    let after = scrape(&broker);
    let len = batch.len() as f64;
    let delta = |series: &str| value(&after, series) - value(&before, series);

    for (name, want) in [
        ("sluice_partition_records_appended_total", 7.0),
        ("sluice_partition_appended_bytes_total", len),
        ("sluice_partition_fetched_bytes_total", len),
        ("sluice_partition_log_start_offset", 0.0),
        ("sluice_partition_log_end_offset", 7.0),
        ("sluice_partition_high_watermark", 7.0),
        ("sluice_partition_size_bytes", len),
        ("sluice_partition_segments", 1.0),
        ("sluice_partition_offline", 0.0),
    ] {
        assert_eq!(sample(&after, &part(name, "m", 1)), Some(want), "{name}");
        let untouched = if name == "sluice_partition_segments" {
            1.0
        } else {
            0.0
        };
        assert_eq!(
            sample(&after, &part(name, "m", 0)),
            Some(untouched),
            "{name} of the partition not written"
        );
    }
    assert_eq!(delta("sluice_produce_bytes_total"), len);
    assert_eq!(delta("sluice_fetch_bytes_total{path=\"sendfile\"}"), len);
    assert_eq!(delta("sluice_fetch_bytes_total{path=\"copy\"}"), 0.0);
    for api in ["Produce", "Fetch", "OffsetCommit", "unknown"] {
        assert_eq!(
            delta(&format!("sluice_requests_total{{api=\"{api}\"}}")),
            1.0,
            "{api}"
        );
        assert_eq!(
            delta(&format!(
                "sluice_request_duration_seconds_count{{api=\"{api}\"}}"
            )),
            1.0,
            "{api}"
        );
    }
    // Histogram buckets are cumulative and end at the count.
    let buckets: Vec<f64> = after
        .lines()
        .filter(|l| {
            l.starts_with("sluice_request_duration_seconds_bucket{")
                && l.contains("api=\"Produce\"")
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 19);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        buckets.last().copied(),
        sample(
            &after,
            "sluice_request_duration_seconds_count{api=\"Produce\"}"
        )
    );
    assert_eq!(
        sample(
            &after,
            "sluice_request_errors_total{api=\"unknown\",code=\"8\",error=\"UnsupportedApi\"}"
        ),
        Some(1.0)
    );
    assert!(
        !after.contains("sluice_request_errors_total{api=\"Produce\""),
        "no Produce request failed"
    );
    // acks=all on a flush-before-ack topic: at least one fdatasync.
    assert!(delta("sluice_fsync_duration_seconds_count") >= 1.0);
    let group = "{group=\"readers\",topic=\"m\",partition=\"1\"}";
    assert_eq!(
        sample(&after, &format!("sluice_group_committed_offset{group}")),
        Some(2.0)
    );
    assert_eq!(
        sample(&after, &format!("sluice_group_lag_records{group}")),
        Some(5.0)
    );
    assert_eq!(sample(&after, "sluice_connections_open"), Some(1.0));
    assert_eq!(sample(&after, "sluice_partitions"), Some(2.0));
    assert_eq!(sample(&after, "sluice_up"), Some(1.0));
    assert!(value(&after, "process_resident_memory_bytes") > 0.0);
    assert!(value(&after, "process_open_fds") > 0.0);
    assert!(value(&after, "process_threads") > 0.0);
}

#[tokio::test]
async fn per_partition_series_can_be_turned_off() {
    let broker = TestBroker::start_with_args(&["--metrics-per-partition", "false"]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "quiet", 3, TopicConfig::default()).await;
    let batch = batch_sized("q", 2, 10);
    conn.produce(Acks::Leader, 5000, &[("quiet", 0, &batch)])
        .await
        .unwrap()
        .unwrap();
    settle(&mut conn).await;
    let text = scrape(&broker);
    assert!(!text.contains("topic=\""), "{text}");
    assert_eq!(sample(&text, "sluice_partitions"), Some(3.0));
    assert_eq!(
        sample(&text, "sluice_requests_total{api=\"Produce\"}"),
        Some(1.0)
    );
}

#[tokio::test]
async fn health_endpoints_answer_and_unknown_paths_do_not() {
    let broker = TestBroker::start();
    let addr = broker.metrics_addr.unwrap();
    assert_eq!(http_get(addr, "/health/live"), (200, "live\n".to_owned()));
    assert_eq!(http_get(addr, "/health/ready"), (200, "ready\n".to_owned()));
    assert_eq!(http_get(addr, "/nope").0, 404);
}

/// Connections that hold every place of the endpoint — silent ones,
/// keep-alive ones between requests, and ones that asked for more scrapes
/// than they read — do not keep a scraper out: the oldest gives way to a
/// newcomer at once, instead of when the header timeout (10 s) closes it,
/// or never.
#[test]
fn a_scraper_is_answered_when_idle_connections_hold_every_place() {
    use std::io::{Read, Write};
    let broker = TestBroker::start();
    let addr = broker.metrics_addr.unwrap();
    // Enough partitions that one scrape's answer is far larger than what
    // the socket buffers of a small-windowed reader take in.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut conn = broker.connect().await;
        create_topic(&mut conn, "wide", 1000, TopicConfig::default()).await;
    });
    let mut held = Vec::new();
    for i in 0..64 {
        let mut s = if i % 3 == 0 {
            small_window_stream(addr)
        } else {
            std::net::TcpStream::connect(addr).unwrap()
        };
        if i % 3 == 2 {
            // Served once, then kept open between requests.
            write!(s, "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            assert!(s.read(&mut buf).unwrap() > 0);
        } else if i % 3 == 0 {
            // Scrapes asked for and none read, through a 4 KiB receive
            // buffer: the connection stays in the middle of an answer. The
            // oldest connection is one of these.
            let ask = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5);
            s.write_all(ask.as_bytes()).unwrap();
        }
        held.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(http_get(addr, "/health/live").0, 200);
        eprintln!("answered after {:?}", started.elapsed());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "answered after {:?}",
            started.elapsed()
        );
    }
    drop(held);
}

/// Connections opened without end, each sending one byte of a request and
/// then nothing (hundreds a second, from several threads), do not keep a
/// scraper or a health probe out: a newcomer never waits for a place, it
/// takes the oldest idle connection's at once.
#[test]
fn a_flood_of_half_opened_connections_does_not_keep_a_scraper_out() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let broker = TestBroker::start();
    let addr = broker.metrics_addr.unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                        let _ = s.write_all(b"G");
                        held.push(s);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                held.len()
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    for path in ["/metrics", "/health/ready", "/health/live", "/metrics"] {
        let started = std::time::Instant::now();
        let (status, _) = http_get(addr, path);
        assert_eq!(status, 200, "{path}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{path} answered after {:?}",
            started.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let opened: usize = flood.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(opened > 64, "only {opened} connections opened");
}

/// A connection to `addr` whose receive buffer is 4 KiB from the start (set
/// before connecting, so the window it offers stays that small).
fn small_window_stream(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, connect, setsockopt, socket, sockopt,
    };
    let family = match addr {
        std::net::SocketAddr::V4(_) => AddressFamily::Inet,
        std::net::SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .unwrap();
    std::net::TcpStream::from(fd)
}

#[tokio::test]
async fn metrics_endpoint_can_be_turned_off() {
    let broker = TestBroker::start_with_args(&["--metrics-listen", "none"]);
    assert!(
        broker.log().contains("metrics_listen=none"),
        "{}",
        broker.log()
    );
    // The broker itself serves.
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 1, TopicConfig::default()).await;
}

/// Damaged flushed data opens a partition offline (as in
/// `metadata_safety.rs`): the broker is live but not ready, and says which
/// partition is offline.
#[tokio::test]
async fn an_offline_partition_makes_the_broker_not_ready() {
    let mut broker = TestBroker::start();
    let mut conn = broker.connect().await;
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        flush: Some(FlushMode::BeforeAck),
        retention_ms: Some(0),
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "fragile", 1, config).await;
    for i in 0..40 {
        let b = batch_sized(&format!("f{i}"), 10, 1000);
        conn.produce(Acks::All, 5000, &[("fragile", 0, &b)])
            .await
            .unwrap()
            .unwrap();
    }
    drop(conn);
    broker.stop();
    let dir = broker.data_dir.join("fragile-0");
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    let victim = &logs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(victim, bytes).unwrap();
    std::fs::remove_file(victim.with_extension("index")).unwrap();

    broker.restart();
    let addr = broker.metrics_addr.unwrap();
    assert_eq!(http_get(addr, "/health/live").0, 200);
    let (status, body) = http_get(addr, "/health/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("fragile-0"), "{body}");
    let text = scrape(&broker);
    assert_eq!(sample(&text, "sluice_up"), Some(0.0));
    assert_eq!(sample(&text, "sluice_partitions_offline"), Some(1.0));
    assert_eq!(
        sample(&text, &part("sluice_partition_offline", "fragile", 0)),
        Some(1.0)
    );
    // PartitionStatus (`sluice topic describe`) and BrokerStatus say so too.
    let mut conn = broker.connect().await;
    let status = conn
        .partition_status(vec!["fragile".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(status.topics[0].error_code, ErrorCode::None);
    assert!(status.topics[0].partitions[0].offline);
    assert!(status.topics[0].partitions[0].segments >= 1);
    assert_eq!(
        status.topics[1].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
    assert_eq!(conn.broker_status().await.unwrap().v0.partitions_offline, 1);
}

/// Requests slower than `--slow-request-ms` are logged, with a fetch's own
/// long-poll wait not counted against it.
#[tokio::test]
async fn slow_requests_are_logged_but_long_polls_are_not() {
    let broker = TestBroker::start_with_args(&["--slow-request-ms", "100"]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "s", 1, TopicConfig::default()).await;
    // A long poll on an empty partition waits its whole 400 ms: allowed.
    let got = conn
        .fetch(
            400,
            1,
            1 << 20,
            vec![FetchPartition {
                topic: "s".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    assert!(got[0].records.is_empty());
    settle(&mut conn).await;
    assert!(!broker.log().contains("slow request"), "{}", broker.log());
    drop(conn);

    // With a 1 ms threshold, appending and fsyncing 8 MiB is slow.
    let broker = TestBroker::start_with_args(&["--slow-request-ms", "1"]);
    let mut conn = broker.connect().await;
    let durable = TopicConfig {
        flush: Some(FlushMode::BeforeAck),
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "big", 1, durable).await;
    let batch = batch_sized("b", 8, 1 << 20);
    conn.produce(Acks::All, 30_000, &[("big", 0, &batch)])
        .await
        .unwrap()
        .unwrap();
    settle(&mut conn).await;
    let log = broker.log();
    let line = log
        .lines()
        .find(|l| l.contains("slow request") && l.contains("api=\"Produce\""))
        .unwrap_or_else(|| panic!("no slow Produce logged: {log}"));
    assert!(line.contains("elapsed_ms="), "{line}");

    // The same on the Kafka listener: a Produce v8 of 8 MiB, acks=-1.
    use sluice_protocol::kafka::io::Records;
    use sluice_protocol::kafka::produce::{ProducePartitionData, ProduceRequest, ProduceTopicData};
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(broker.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopicData {
            name: "big".to_owned(),
            partitions: vec![ProducePartitionData {
                index: 0,
                records: Some(Records {
                    start: 0,
                    len: batch.len(),
                }),
            }],
        }],
    };
    s.write_all(&sluice_tests::kafka::request_frame(8, 5, &mut req, &batch))
        .unwrap();
    let (id, _) = sluice_tests::kafka::read_response(&mut s, 0);
    assert_eq!(id, 5);
    // The line is written by the Kafka connection's task after it sent the
    // answer: wait for it (the native connection's settling does not order
    // with that task).
    let logged = |log: &str| {
        log.lines()
            .any(|l| l.contains("slow request") && l.contains("api=\"Kafka Produce\""))
    };
    for _ in 0..100 {
        if logged(&broker.log()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = broker.log();
    assert!(logged(&log), "no slow Kafka Produce logged: {log}");
}

/// `promtool check metrics` (Debian's `prometheus` package) accepts a real
/// scrape. Skipped when promtool is missing, unless
/// `SLUICE_REQUIRE_PROMTOOL=1` (CI) makes that a failure.
#[tokio::test]
async fn promtool_accepts_a_real_scrape() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let have = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("SLUICE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "SLUICE_REQUIRE_PROMTOOL=1 but promtool is not installed (Debian package `prometheus`)"
        );
        eprintln!("skipping: promtool not installed");
        return;
    }
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "p", 2, TopicConfig::default()).await;
    let batch = batch_sized("p", 3, 50);
    conn.produce(Acks::Leader, 5000, &[("p", 0, &batch)])
        .await
        .unwrap()
        .unwrap();
    conn.offset_commit(
        "g",
        vec![CommitPartition {
            topic: "p".into(),
            partition: 0,
            offset: 1,
            metadata: String::new(),
        }],
    )
    .await
    .unwrap();
    // A group name a client chose to break the exposition format: its
    // quote and backslash are escaped, no label forged.
    let hostile = r#"x",topic="forged\"#;
    let r = conn
        .offset_commit(
            hostile,
            vec![CommitPartition {
                topic: "p".into(),
                partition: 1,
                offset: 2,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap();
    assert!(r.partitions[0].error_code.is_ok(), "{r:?}");
    let text = scrape(&broker);
    assert!(
        text.contains(r#"sluice_group_committed_offset{group="x\",topic=\"forged\\",topic="p",partition="1"} 2"#),
        "{text}"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn json_logs_parse_and_carry_the_startup_event() {
    let broker = TestBroker::start_with_args(&["--log-format", "json"]);
    let log = broker.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ready = events
        .iter()
        .find(|e| e["message"] == "broker ready")
        .unwrap_or_else(|| panic!("no startup event in {log}"));
    assert_eq!(ready["level"], "INFO");
    assert_eq!(ready["listen"], broker.addr.to_string());
    assert_eq!(
        ready["metrics_listen"],
        broker.metrics_addr.unwrap().to_string()
    );
    assert_eq!(
        ready["data_dir"],
        broker.data_dir.display().to_string().as_str()
    );
    // The filter flag: only warnings and worse.
    let quiet = TestBroker::start_with_args(&["--log", "warn"]);
    assert!(!quiet.log().contains("broker ready"), "{}", quiet.log());
}

/// Every query of the Grafana dashboard in `docs/grafana/sluice.json` names
/// only metrics a real scrape has, and (with promtool) parses as PromQL.
#[tokio::test]
async fn the_dashboard_queries_metrics_that_exist() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/grafana/sluice.json")).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "d", 1, TopicConfig::default()).await;
    conn.offset_commit(
        "g",
        vec![CommitPartition {
            topic: "d".into(),
            partition: 0,
            offset: 0,
            metadata: String::new(),
        }],
    )
    .await
    .unwrap();
    // One whole-request error, so that the error series exist.
    let frame = RequestHeader {
        api_key: 77,
        api_version: 0,
        correlation_id: 9,
        body_len: 0,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    conn.write_raw(&frame).await.unwrap();
    assert!(conn.recv::<()>().await.is_err());
    settle(&mut conn).await;
    let text = scrape(&broker);
    let names: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for expr in &exprs {
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for w in words.filter(|w| w.starts_with("sluice_") || w.starts_with("process_")) {
            assert!(
                names.contains(w),
                "the dashboard asks for {w}, not exposed: {expr}"
            );
        }
    }

    let have = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("SLUICE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "SLUICE_REQUIRE_PROMTOOL=1 but promtool is not installed (Debian package `prometheus`)"
        );
        eprintln!("promtool not installed: PromQL syntax not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let e = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$api", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {}\n",
            serde_json::to_string(&e).unwrap()
        ));
    }
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, &rules).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
