//! Kafka's own clients against a 3-node cluster whose cluster file names a
//! Kafka listener per node: Metadata lists every broker with its node id
//! and per-partition leaders, CreateTopics takes a replication factor,
//! confluent-kafka (librdkafka) and kafka-python produce with acks=all to a
//! 3-partition topic replicated on all three nodes, each partition led by
//! another node, and read everything back
//! exactly once; then the leader of a partition is SIGKILLed while
//! confluent-kafka produces, and every record it acknowledged is there
//! afterwards, once, and a confluent-kafka consumer tailing meanwhile read
//! each once. kcat lists the brokers if it is installed.
//!
//! Needs the Python of `SLUICE_KAFKA_PYTHON` (see `kafka_clients.rs`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{kcat, python, run_clients, run_kcat};

fn bootstrap(c: &TestCluster, ids: &[u64]) -> String {
    ids.iter()
        .map(|&id| c.node(id).kafka_addr.unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Leaders of the topic's partitions as node `id`'s native Metadata names
/// them (`None` while any has none).
async fn leaders(c: &TestCluster, id: u64, topic: &str) -> Option<Vec<u64>> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    m.topics
        .first()?
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect()
}

/// A child process killed when dropped, so that a failed assertion does not
/// leave it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Values read back by `client`: each must appear exactly once.
fn read_back(python: &std::path::Path, client: &str, bootstrap: &str, n: usize) -> Vec<String> {
    let out = run_clients(
        python,
        &["consume-all", client, bootstrap, "kc", &n.to_string()],
    );
    let got: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut values: Vec<String> = got
        .iter()
        .map(|r| r[2].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    let len = values.len();
    values.dedup();
    assert_eq!(values.len(), len, "{client} read a record twice");
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_clients_produce_and_consume_through_a_cluster_and_a_leader_kill() {
    let Some(python) = python() else { return };
    let mut c = TestCluster::start_with_kafka(3);
    let all = bootstrap(&c, &[1, 2, 3]);

    // CreateTopics with replication factor 3 through node 2.
    let out = run_clients(&python, &["create", &bootstrap(&c, &[2]), "kc", "3", "3"]);
    let created: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<u64> = created["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3], "{created}");
    for (id, b) in (1..=3).zip(created["brokers"].as_array().unwrap()) {
        let addr = c.node(id).kafka_addr.unwrap();
        assert_eq!(b[2].as_u64().unwrap(), u64::from(addr.port()), "{created}");
    }
    for p in created["partitions"].as_array().unwrap() {
        let mut replicas: Vec<u64> = p["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect();
        replicas.sort_unstable();
        assert_eq!(replicas, [1, 2, 3], "{created}");
    }
    // Every partition has a leader, the same one on every node, each on
    // another node (a new partition's preferred replica takes the lead).
    let deadline = Instant::now() + Duration::from_secs(30);
    let led = loop {
        let mut seen = Vec::new();
        for id in 1..=3 {
            seen.push(leaders(&c, id, "kc").await);
        }
        let spread = seen[0].as_ref().is_some_and(|l| {
            let mut l = l.clone();
            l.sort_unstable();
            l == [1, 2, 3]
        });
        if spread && seen.iter().all(|s| *s == seen[0]) {
            break seen[0].clone().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leaders on three nodes: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("partition leaders: {led:?}");
    if kcat() {
        let meta = run_kcat(&["-b", &all, "-L", "-t", "kc"], b"");
        for id in 1..=3 {
            let addr = c.node(id).kafka_addr.unwrap();
            assert!(meta.contains(&format!("broker {id} at {addr}")), "{meta}");
        }
        for (p, l) in led.iter().enumerate() {
            assert!(
                meta.contains(&format!("partition {p}, leader {l},")),
                "{meta}"
            );
        }
    }

    // Both clients produce across the three partitions; both read all of
    // it back, each record once.
    for client in ["confluent", "kafka-python"] {
        let out = run_clients(&python, &["cluster-produce", client, &all, "kc", "90", "0"]);
        assert!(out.trim_end().ends_with("{\"done\": 90}"), "{out}");
    }
    let mut want: Vec<String> = ["confluent", "kafka-python"]
        .iter()
        .flat_map(|c| (0..90).map(move |i| format!("{c}-{i}")))
        .collect();
    want.sort();
    for client in ["confluent", "kafka-python"] {
        assert_eq!(read_back(&python, client, &all, 180), want, "{client}");
    }

    // confluent-kafka produces while the leader of partition 0 is killed;
    // every record it acknowledged is there once afterwards. A
    // confluent-kafka consumer tails all partitions meanwhile, follows
    // partition 0 to its new leader, and reads each acknowledged record
    // once, at the offset its producer was given.
    let victim = led[0];
    let tail_err = tempfile::NamedTempFile::new().unwrap();
    let mut tailer = KillOnDrop(
        Command::new(&python)
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka_clients/clients.py"))
            .args(["tail", &all, "kc", "kill", "300"])
            .stdout(Stdio::piped())
            .stderr(tail_err.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let mut tail_lines = std::io::BufReader::new(tailer.0.stdout.take().unwrap()).lines();
    let mut tail_line = || {
        tail_lines.next().and_then(Result::ok).unwrap_or_else(|| {
            let err = std::fs::read_to_string(tail_err.path()).unwrap_or_default();
            panic!("the tailing consumer ended early: {err}")
        })
    };
    assert_eq!(tail_line(), "{\"reading\": true}");
    let mut child = Command::new(&python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka_clients/clients.py"))
        .args([
            "cluster-produce",
            "confluent",
            &all,
            "kc",
            "300",
            "10",
            "kill",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut acked: HashMap<String, (u64, u64)> = HashMap::new();
    let mut done = None;
    let mut killed_at = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "producer stalled after {} acks: {}",
                acked.len(),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(n) = v.get("done") {
            done = n.as_u64();
            continue;
        }
        acked.insert(
            v["v"].as_str().unwrap().to_owned(),
            (v["p"].as_u64().unwrap(), v["o"].as_u64().unwrap()),
        );
        if acked.len() == 60 && killed_at.is_none() {
            c.kill(victim);
            killed_at = Some(acked.len());
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(done, Some(300));
    assert_eq!(acked.len(), 300);
    let after_kill = acked
        .iter()
        .filter(|(v, _)| v["kill-".len()..].parse::<usize>().unwrap() >= 60)
        .count();
    assert!(after_kill >= 240, "{after_kill}");
    let tailed: Vec<Value> = serde_json::from_str(&tail_line()).unwrap();
    assert!(tailer.0.wait().unwrap().success());
    let mut at: Vec<(u64, u64)> = tailed
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    at.sort_unstable();
    let len = at.len();
    at.dedup();
    assert_eq!(at.len(), len, "the tailing consumer read a record twice");
    let tailed: HashMap<String, (u64, u64)> = tailed
        .iter()
        .map(|r| {
            let v = r[2].as_str().unwrap().to_owned();
            (v, (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        })
        .collect();
    for (v, at) in &acked {
        assert_eq!(tailed.get(v), Some(at), "the tailing consumer and {v}");
    }
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != victim).collect();
    let got = read_back(&python, "confluent", &bootstrap(&c, &survivors), 480);
    for v in acked.keys() {
        assert!(got.binary_search(v).is_ok(), "acknowledged {v} is missing");
    }
    for v in &want {
        assert!(
            got.binary_search(v).is_ok(),
            "{v} is missing after the kill"
        );
    }
}
