//! Bootstrap lists (`--broker host1:port,host2:port`): the CLI and the
//! client library skip addresses where nothing listens, follow a broker
//! that moved to another address of the list, and fail fast with every
//! address named when none answers.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sluice_client::{Acks, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};
use sluice_tests::{TestBroker, free_port};

fn sluice_binary() -> PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

/// Runs `sluice --broker LIST ARGS...` with `stdin` as its input.
fn sluice(list: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(sluice_binary())
        .arg("--broker")
        .arg(list)
        .args(args)
        .env_remove("SLUICE_BROKER")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting sluice");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("waiting for sluice");
    writer.join().unwrap();
    out
}

fn ok(list: &str, args: &[&str], stdin: &[u8]) -> String {
    let out = sluice(list, args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An address where nothing listens.
fn dead() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn cli_skips_dead_entries_for_admin_produce_consume_and_groups() {
    let broker = TestBroker::start();
    // Two dead ports, then the broker by host name.
    let list = format!("{},{},localhost:{}", dead(), dead(), broker.addr.port());
    ok(
        &list,
        &["topic", "create", "boot", "--partitions", "2"],
        b"",
    );
    assert!(ok(&list, &["topic", "list"], b"").contains("boot"));
    ok(&list, &["topic", "describe", "boot"], b"");
    let input: String = (0..50).map(|i| format!("k{}:v{i}\n", i % 7)).collect();
    ok(
        &list,
        &["produce", "boot", "--key-separator", ":"],
        input.as_bytes(),
    );
    let plain = ok(
        &list,
        &[
            "consume",
            "boot",
            "--from-beginning",
            "--count",
            "50",
            "--timeout-ms",
            "30000",
            "--format",
            "%v",
        ],
        b"",
    );
    let mut got: Vec<&str> = plain.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    let grouped = ok(
        &list,
        &[
            "consume",
            "boot",
            "--group",
            "g",
            "--from-beginning",
            "--count",
            "50",
            "--timeout-ms",
            "30000",
            "--format",
            "%v",
        ],
        b"",
    );
    assert_eq!(grouped.lines().count(), 50);
    assert!(ok(&list, &["group", "list"], b"").contains('g'));
    ok(&list, &["topic", "delete", "boot"], b"");
    assert!(!ok(&list, &["topic", "list"], b"").contains("boot"));
}

#[test]
fn cli_with_an_all_dead_list_fails_fast_naming_every_address() {
    let (a, b, c) = (dead(), dead(), dead());
    let list = format!("{a},{b},{c}");
    for args in [
        &["topic", "list"][..],
        &["produce", "t"][..],
        &["consume", "t", "--timeout-ms", "100"][..],
        &["group", "list"][..],
    ] {
        let started = Instant::now();
        let out = sluice(&list, args, b"x\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
        assert!(
            stderr.contains("no broker of the list answered"),
            "{stderr}"
        );
        for addr in [&a, &b, &c] {
            assert!(stderr.contains(&format!("{addr}: ")), "{args:?}: {stderr}");
        }
    }
}

/// A producer with acks=all and idempotence keeps sending while its broker
/// is killed and restarted on another address of its list: every record is
/// acknowledged once and stored exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_follows_a_broker_restarted_on_another_address() {
    const RECORDS: usize = 3000;
    let mut broker = TestBroker::start();
    let first = broker.addr;
    let moved: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let brokers = [dead(), first.to_string(), dead(), moved.to_string()];
    let mut admin = sluice_client::Admin::connect(&brokers.join(","))
        .await
        .unwrap();
    admin
        .create_topic("moving", 1, Default::default())
        .await
        .unwrap();
    drop(admin);

    let producer = std::sync::Arc::new(Producer::new(ProducerConfig {
        acks: Acks::All,
        batch_bytes: 8 * 1024,
        linger: Duration::from_millis(2),
        retry_backoff: Duration::from_millis(20),
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::with_brokers(&brokers)
    }));
    // Connected to the first live address before the move.
    producer
        .send_record(ProducerRecord {
            topic: "moving",
            partition: Some(0),
            value: Some(b"r-first"),
            ..Default::default()
        })
        .await
        .unwrap()
        .await
        .unwrap();
    let sender = {
        let producer = std::sync::Arc::clone(&producer);
        tokio::spawn(async move {
            let mut deliveries = Vec::with_capacity(RECORDS);
            for i in 0..RECORDS {
                let value = format!("r{i:06}");
                let d = producer
                    .send_record(ProducerRecord {
                        topic: "moving",
                        partition: Some(0),
                        value: Some(value.as_bytes()),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                deliveries.push(d);
                if i % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            deliveries
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !sender.is_finished(),
        "the broker moves while records are sent"
    );
    broker.kill();
    tokio::task::block_in_place(|| broker.restart_at(moved));
    assert_eq!(broker.addr, moved);

    let deliveries = sender.await.unwrap();
    let mut acked = BTreeMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = d.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert!(
            acked.insert(meta.offset.unwrap(), i).is_none(),
            "offset acked twice"
        );
    }
    producer.close().await;

    // Read back through the same list: the first live entry is gone.
    let mut consumer = Consumer::connect(ConsumerConfig::with_brokers(&brokers))
        .await
        .unwrap();
    consumer.subscribe("moving").await.unwrap();
    let mut stored = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored.len() < RECORDS + 1 && Instant::now() < deadline {
        for r in consumer.poll().await.unwrap() {
            stored.push((r.offset(), String::from_utf8(r.value().to_vec()).unwrap()));
        }
    }
    assert_eq!(
        consumer.brokers().current(),
        Some(moved.to_string().as_str())
    );
    assert_eq!(stored.len(), RECORDS + 1, "no record lost or duplicated");
    assert_eq!(stored.remove(0).1, "r-first");
    for (n, (offset, value)) in stored.iter().enumerate() {
        assert_eq!(*value, format!("r{n:06}"), "at offset {offset}");
        assert_eq!(acked.get(offset), Some(&n), "acked offset of {value}");
    }
}

/// A broker bound to the unspecified address advertises `0.0.0.0:PORT` in
/// Metadata, which names no host another machine can dial: the client
/// lists it at the host it reached it on, and produce and consume (which
/// dial the advertised leader) work through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_bound_to_every_address_is_dialled_at_the_host_that_answered() {
    let broker = TestBroker::try_start_at("0.0.0.0:0".parse().unwrap(), &[], &[]).unwrap();
    assert!(broker.addr.ip().is_unspecified(), "{}", broker.addr);
    let reached = format!("127.0.0.1:{}", broker.addr.port());
    let mut conn = sluice_client::Connection::connect(&reached).await.unwrap();
    let meta = conn.metadata(None).await.unwrap();
    assert_eq!(meta.brokers.len(), 1, "{meta:?}");
    assert_eq!(meta.brokers[0].listen, reached, "{meta:?}");

    ok(
        &reached,
        &["topic", "create", "any", "--partitions", "1"],
        b"",
    );
    ok(&reached, &["produce", "any"], b"one\ntwo\n");
    let got = ok(
        &reached,
        &[
            "consume",
            "any",
            "--from-beginning",
            "--count",
            "2",
            "--timeout-ms",
            "30000",
            "--format",
            "%v",
        ],
        b"",
    );
    assert_eq!(got.lines().collect::<Vec<_>>(), ["one", "two"]);
}
