//! Helpers of the consumer-group end-to-end tests: `sluice consume --group`
//! processes whose output is collected as it comes, and the group's state
//! read with `sluice group describe --output json`.

#![allow(dead_code)] // each test file uses some of them

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sluice_tests::TestBroker;

pub(crate) const TOPIC: &str = "events";
pub(crate) const PARTITIONS: u32 = 6;

pub(crate) fn sluice_binary() -> PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

pub(crate) use sluice_tests::sluice_with_input as sluice;

pub(crate) fn ok(addr: &str, args: &[&str]) -> String {
    let out = sluice(addr, args, b"");
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Appends `n` records to every partition.
pub(crate) fn produce(addr: &str, n: usize) {
    let lines: String = (0..n).map(|i| format!("r{i}\n")).collect();
    for p in 0..PARTITIONS {
        let out = sluice(
            addr,
            &["produce", TOPIC, "--partition", &p.to_string()],
            lines.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Polls `cond` every 20 ms until it holds; panics after `secs`.
pub(crate) fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `sluice consume --group` process; its stdout records and stderr lines
/// are collected as they come.
pub(crate) struct Member {
    child: Child,
    records: Arc<Mutex<Vec<(u32, u64)>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Member {
    pub(crate) fn start(addr: &str, group: &str, extra: &[&str]) -> Member {
        let mut child = Command::new(sluice_binary())
            .args(["--broker", addr, "consume", TOPIC, "--group", group])
            .args(["--format", "%p %o", "--from-beginning", "--verbose"])
            .args(extra)
            .env_remove("SLUICE_BROKER")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting sluice consume");
        let records = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let r = Arc::clone(&records);
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let (p, o) = line.split_once(' ').unwrap();
                r.lock()
                    .unwrap()
                    .push((p.parse().unwrap(), o.parse().unwrap()));
            }
        });
        let e = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                e.lock().unwrap().push(line);
            }
        });
        Member {
            child,
            records,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    pub(crate) fn records(&self) -> Vec<(u32, u64)> {
        self.records.lock().unwrap().clone()
    }

    pub(crate) fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn stderr_has(&self, needle: &str) -> bool {
        self.stderr().iter().any(|l| l.contains(needle))
    }

    pub(crate) fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    /// SIGTERM, then waits for a clean exit (commit, and leave unless
    /// static); returns everything it printed.
    pub(crate) fn stop(mut self) -> Vec<(u32, u64)> {
        self.signal(Signal::SIGTERM);
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        assert!(
            status.success(),
            "member exited with {status}: {:?}",
            self.stderr()
        );
        self.records()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn describe(addr: &str, group: &str) -> Value {
    serde_json::from_str(&ok(addr, &["group", "describe", group, "--output", "json"])).unwrap()
}

/// partition → owning member id, from the coordinator's assignment.
pub(crate) fn owners(d: &Value) -> BTreeMap<u32, String> {
    d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == TOPIC && p["member_id"].is_string())
        .map(|p| {
            (
                p["partition"].as_u64().unwrap() as u32,
                p["member_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// partition → committed offset.
pub(crate) fn committed(d: &Value) -> BTreeMap<u32, u64> {
    d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                p["partition"].as_u64()? as u32,
                p["committed_offset"].as_u64()?,
            ))
        })
        .collect()
}

/// Waits until the group is Stable with `n` members sharing all partitions
/// evenly.
pub(crate) fn wait_balanced(addr: &str, group: &str, n: usize) -> Value {
    let mut last = Value::Null;
    wait_until(&format!("{n} members sharing the partitions"), 60, || {
        last = describe(addr, group);
        let owners = owners(&last);
        let mut per_member: BTreeMap<&String, usize> = BTreeMap::new();
        for m in owners.values() {
            *per_member.entry(m).or_default() += 1;
        }
        last["state"] == "Stable"
            && last["members"].as_array().unwrap().len() == n
            && owners.len() == PARTITIONS as usize
            && per_member.len() == n
            && per_member.values().all(|&c| c == PARTITIONS as usize / n)
    });
    last
}

/// Waits until the group's commits reach every partition's end.
pub(crate) fn wait_all_committed(addr: &str, group: &str, end: u64) {
    wait_until("commits at the log end", 60, || {
        let c = committed(&describe(addr, group));
        (0..PARTITIONS).all(|p| c.get(&p) == Some(&end))
    });
}

pub(crate) fn all_records(end: u64) -> BTreeSet<(u32, u64)> {
    (0..PARTITIONS)
        .flat_map(|p| (0..end).map(move |o| (p, o)))
        .collect()
}

pub(crate) fn seen(members: &[&Member]) -> BTreeSet<(u32, u64)> {
    members.iter().flat_map(|m| m.records()).collect()
}

pub(crate) fn setup() -> (TestBroker, String) {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            &PARTITIONS.to_string(),
        ],
    );
    (broker, addr)
}
