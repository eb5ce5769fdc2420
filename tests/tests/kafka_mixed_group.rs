//! One consumer group, two protocols: a native `sluice consume --group`
//! member and a confluent-kafka member with the cooperative-sticky assignor
//! on the Kafka port split a 4-partition topic and together read every
//! record exactly once (both carry Kafka's ConsumerProtocol in the group's
//! opaque metadata and assignment bytes).
//!
//! Needs the Python of `SLUICE_KAFKA_PYTHON` (installed by `.ci/run`);
//! skipped without it unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::python;
use sluice_tests::{TestBroker, batch_of, create_topic};

enum Line {
    Native(String),
    NativeLog(String),
    Kafka(Value),
}

fn kafka_line(l: String) -> Line {
    Line::Kafka(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
}

fn pump<R: std::io::Read + Send + 'static>(r: R, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(wrap(line)).is_err() {
                return;
            }
        }
    });
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_cooperative_sticky_confluent_members_split_a_topic_and_read_each_record_once() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "mixed", 4, TopicConfig::default()).await;
    let (tx, rx) = mpsc::channel();

    let cli = sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN");
    let mut native = Reaped(
        Command::new(cli)
            .args(["--broker", &b.addr.to_string(), "consume", "mixed"])
            .args(["--group", "mixed-g", "--from-beginning", "--verbose"])
            .args(["--format", "%p %o %v", "--commit-interval-ms", "200"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice consume"),
    );
    pump(native.0.stdout.take().unwrap(), tx.clone(), Line::Native);
    pump(native.0.stderr.take().unwrap(), tx.clone(), Line::NativeLog);
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = |what: &str| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    };
    // The native member joins first and owns all four partitions.
    loop {
        if let Line::NativeLog(l) = next("the native member's assignment") {
            if l.starts_with("group: assigned") {
                break;
            }
        }
    }

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka_clients/clients.py");
    let mut kafka = Reaped(
        Command::new(&py)
            .arg(script)
            .args([
                "coop-member",
                &b.kafka_addr.unwrap().to_string(),
                "mixed",
                "mixed-g",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clients.py coop-member"),
    );
    pump(kafka.0.stdout.take().unwrap(), tx.clone(), kafka_line);
    drop(tx);
    // Cooperative rebalancing: the native member gives up two partitions,
    // which the Kafka member then gets.
    let kafka_parts: Vec<u64> = loop {
        if let Line::Kafka(v) = next("the Kafka member's assignment") {
            let assigned: Vec<u64> = serde_json::from_value(v["assigned"].clone()).unwrap();
            if assigned.len() == 2 {
                break assigned;
            }
        }
    };

    for p in 0..4u32 {
        let values: Vec<String> = (0..50).map(|i| format!("p{p}-{i}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        c.produce(Acks::Leader, 5000, &[("mixed", p, &batch_of(&refs))])
            .await
            .unwrap()
            .unwrap();
    }

    // (partition, offset) -> (reader, value)
    let mut seen: BTreeMap<(u64, u64), (&str, String)> = BTreeMap::new();
    while seen.len() < 200 {
        let (who, p, o, v) = match next("all 200 records") {
            Line::Native(l) => {
                let mut it = l.splitn(3, ' ');
                let p = it.next().unwrap().parse().unwrap();
                let o = it.next().unwrap().parse().unwrap();
                ("native", p, o, it.next().unwrap().to_owned())
            }
            Line::Kafka(v) if v.get("p").is_some() => (
                "kafka",
                v["p"].as_u64().unwrap(),
                v["o"].as_u64().unwrap(),
                v["v"].as_str().unwrap().to_owned(),
            ),
            Line::Kafka(v) => {
                assert_eq!(
                    v["assigned"],
                    serde_json::json!(kafka_parts),
                    "rebalanced again"
                );
                continue;
            }
            Line::NativeLog(_) => continue,
        };
        let previous = seen.insert((p, o), (who, v.clone()));
        assert!(
            previous.is_none(),
            "{p}/{o} read twice: {previous:?} and {who}"
        );
        assert_eq!(v, format!("p{p}-{o}"));
        let want = if kafka_parts.contains(&p) {
            "kafka"
        } else {
            "native"
        };
        assert_eq!(
            who, want,
            "partition {p} read by the member that does not own it"
        );
    }
    drop(kafka.0.stdin.take()); // the Kafka member leaves
    let status = kafka.0.wait().unwrap();
    assert!(status.success(), "{status}");
}
