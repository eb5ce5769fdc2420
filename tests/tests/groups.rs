//! Consumer groups end to end: `sluice consume --group` processes sharing a
//! six-partition topic against a real broker — disjoint shares, a SIGKILLed
//! member's partitions taken over from its last commit, a clean leave, a
//! zombie (SIGSTOPped past its session) fenced, a static member restarted
//! without a rebalance, the coordinator restarted mid-rebalance, and
//! `sluice group describe|reset-offsets|delete`.
//!
//! Records are identified by (partition, offset), printed as `%p %o`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sluice_tests::TestBroker;

const TOPIC: &str = "events";
const PARTITIONS: u32 = 6;

fn sluice_binary() -> PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

fn sluice(addr: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(sluice_binary())
        .arg("--broker")
        .arg(addr)
        .args(args)
        .env_remove("SLUICE_BROKER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting sluice");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("waiting for sluice")
}

fn ok(addr: &str, args: &[&str]) -> String {
    let out = sluice(addr, args, b"");
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Appends `n` records to every partition.
fn produce(addr: &str, n: usize) {
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
fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `sluice consume --group` process; its stdout records and stderr lines
/// are collected as they come.
struct Member {
    child: Child,
    records: Arc<Mutex<Vec<(u32, u64)>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(addr: &str, group: &str, extra: &[&str]) -> Member {
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

    fn records(&self) -> Vec<(u32, u64)> {
        self.records.lock().unwrap().clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn stderr_has(&self, needle: &str) -> bool {
        self.stderr().iter().any(|l| l.contains(needle))
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    /// SIGTERM, then waits for a clean exit (commit, and leave unless
    /// static); returns everything it printed.
    fn stop(mut self) -> Vec<(u32, u64)> {
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

fn describe(addr: &str, group: &str) -> Value {
    serde_json::from_str(&ok(addr, &["group", "describe", group, "--output", "json"])).unwrap()
}

/// partition → owning member id, from the coordinator's assignment.
fn owners(d: &Value) -> BTreeMap<u32, String> {
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
fn committed(d: &Value) -> BTreeMap<u32, u64> {
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
fn wait_balanced(addr: &str, group: &str, n: usize) -> Value {
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
fn wait_all_committed(addr: &str, group: &str, end: u64) {
    wait_until("commits at the log end", 60, || {
        let c = committed(&describe(addr, group));
        (0..PARTITIONS).all(|p| c.get(&p) == Some(&end))
    });
}

fn all_records(end: u64) -> BTreeSet<(u32, u64)> {
    (0..PARTITIONS)
        .flat_map(|p| (0..end).map(move |o| (p, o)))
        .collect()
}

fn seen(members: &[&Member]) -> BTreeSet<(u32, u64)> {
    members.iter().flat_map(|m| m.records()).collect()
}

fn setup() -> (TestBroker, String) {
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

#[test]
fn three_members_share_the_partitions_and_take_over_from_a_killed_one() {
    let (_broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "3000",
        "--commit-interval-ms",
        "200",
    ];
    let mut members: Vec<Member> = (0..3).map(|_| Member::start(&addr, "g", &opts)).collect();
    let d = wait_balanced(&addr, "g", 3);
    let owner_of = owners(&d);

    produce(&addr, 50);
    let refs: Vec<&Member> = members.iter().collect();
    wait_until("all records read", 60, || seen(&refs) == all_records(50));
    // Disjoint: each partition read by exactly one member, no record twice.
    let mut readers: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
    let mut total = 0;
    for (i, m) in members.iter().enumerate() {
        for (p, _) in m.records() {
            readers.entry(p).or_default().insert(i);
            total += 1;
        }
    }
    assert_eq!(total, 50 * PARTITIONS as usize, "a record was read twice");
    assert!(readers.values().all(|r| r.len() == 1), "{readers:?}");
    wait_all_committed(&addr, "g", 50);

    // The victim reads more, then dies before (some of) its next commits.
    let victim = members.remove(0);
    let victim_member = owner_of[&victim.records()[0].0].clone();
    let victim_parts: BTreeSet<u32> = owner_of
        .iter()
        .filter(|(_, m)| **m == victim_member)
        .map(|(p, _)| *p)
        .collect();
    produce(&addr, 50);
    wait_until("the victim reads new records", 60, || {
        victim.records().iter().any(|&(_, o)| o >= 50)
    });
    let before_kill = committed(&describe(&addr, "g"));
    let victim_printed = victim.records();
    drop(victim); // SIGKILL
    // Records the victim cannot have seen: the survivors must read them,
    // on its partitions from its last commit on.
    produce(&addr, 50);
    let refs: Vec<&Member> = members.iter().collect();
    wait_until("the survivors read everything", 60, || {
        let mut all = seen(&refs);
        all.extend(victim_printed.iter().copied());
        all == all_records(150)
    });
    wait_balanced(&addr, "g", 2);

    // No record skipped (checked above); duplicates only of the victim's
    // records after its last commit.
    let mut printed: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in members
        .iter()
        .flat_map(|m| m.records())
        .chain(victim_printed.iter().copied())
    {
        *printed.entry(r).or_default() += 1;
    }
    let duplicates: Vec<(u32, u64)> = printed
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(r, _)| *r)
        .collect();
    for (p, o) in &duplicates {
        assert!(
            victim_parts.contains(p),
            "duplicate {p}/{o} outside the victim's partitions"
        );
        assert!(
            o >= &before_kill[p],
            "duplicate {p}/{o} below the commit {}",
            before_kill[p]
        );
        assert!(
            victim_printed.contains(&(*p, *o)),
            "duplicate {p}/{o} the victim never read"
        );
    }
    eprintln!(
        "duplicates after SIGKILL: {} of {} records",
        duplicates.len(),
        150 * PARTITIONS
    );
}

#[test]
fn a_clean_leave_hands_over_at_once_without_duplicates() {
    let (_broker, addr) = setup();
    // A session timeout far beyond the wait below: only LeaveGroup can
    // move the partitions in time.
    let opts = [
        "--session-timeout-ms",
        "120000",
        "--commit-interval-ms",
        "200",
    ];
    let a = Member::start(&addr, "g", &opts);
    let b = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 20);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(20)
    });
    let left_at = Instant::now();
    let b_records = b.stop();
    wait_balanced(&addr, "g", 1);
    eprintln!("takeover after a clean leave: {:?}", left_at.elapsed());
    produce(&addr, 20);
    wait_until("all records read", 60, || {
        let mut s = seen(&[&a]);
        s.extend(b_records.iter().copied());
        s == all_records(40)
    });
    let mut count: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in a.records().into_iter().chain(b_records) {
        *count.entry(r).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "read twice after a clean leave: {twice:?}"
    );
}

#[test]
fn a_zombie_back_from_a_pause_returns_nothing_stale_and_rejoins() {
    let (_broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "1500",
        "--commit-interval-ms",
        "200",
    ];
    let zombie = Member::start(&addr, "g", &opts);
    let other = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&zombie, &other]) == all_records(10)
    });
    wait_all_committed(&addr, "g", 10);

    zombie.signal(Signal::SIGSTOP);
    // Its session expires; the other member takes everything over.
    wait_balanced(&addr, "g", 1);
    produce(&addr, 10);
    wait_until("the other member reads the new records", 60, || {
        let mut s = seen(&[&other]);
        s.extend(zombie.records());
        s == all_records(20)
    });
    wait_all_committed(&addr, "g", 20);
    let zombie_before = zombie.records().len();

    zombie.signal(Signal::SIGCONT);
    wait_until("the zombie notices and rejoins", 30, || {
        zombie.stderr_has("group: lost")
    });
    wait_balanced(&addr, "g", 2);
    // Everything it could have read was already committed by the other
    // member: whatever it printed since it woke up is a stale read.
    let stale: Vec<_> = zombie.records()[zombie_before..].to_vec();
    assert!(
        stale.is_empty(),
        "the zombie returned records it no longer owned: {stale:?}"
    );
    // Its stale positions never overwrote the newer commits.
    let c = committed(&describe(&addr, "g"));
    assert!((0..PARTITIONS).all(|p| c.get(&p) == Some(&20)), "{c:?}");
}

#[test]
fn a_static_member_restarts_without_a_rebalance() {
    let (_broker, addr) = setup();
    let opts = |id: &'static str| ["--group-instance-id", id, "--session-timeout-ms", "30000"];
    let a = Member::start(&addr, "g", &opts("a"));
    let b = Member::start(&addr, "g", &opts("b"));
    let before = wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(10)
    });
    let a_parts: BTreeSet<u32> = a.records().iter().map(|r| r.0).collect();
    let a_records = a.stop();
    let a = Member::start(&addr, "g", &opts("a"));
    wait_until("the restarted member is assigned", 30, || {
        a.stderr_has("group: assigned")
    });
    let after = wait_balanced(&addr, "g", 2);
    assert_eq!(
        after["generation"], before["generation"],
        "a rebalance happened"
    );
    let b_events: Vec<String> = b
        .stderr()
        .into_iter()
        .filter(|l| l.contains("assigned") || l.contains("revoked"))
        .collect();
    assert_eq!(
        b_events.len(),
        1,
        "the other member saw a rebalance: {b_events:?}"
    );
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        let mut s = seen(&[&a, &b]);
        s.extend(a_records.iter().copied());
        s == all_records(20)
    });
    let again: BTreeSet<u32> = a.records().iter().map(|r| r.0).collect();
    assert_eq!(again, a_parts, "the static member got other partitions");
    assert!(
        a.records().iter().all(|&(_, o)| o >= 10),
        "it re-read committed records"
    );
}

#[test]
fn the_group_recovers_when_the_coordinator_restarts_mid_rebalance() {
    let (mut broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "5000",
        "--commit-interval-ms",
        "200",
    ];
    let a = Member::start(&addr, "g", &opts);
    let b = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(10)
    });
    wait_all_committed(&addr, "g", 10);
    // A stopped member keeps the rebalance a newcomer starts from ending.
    b.signal(Signal::SIGSTOP);
    let c = Member::start(&addr, "g", &opts);
    wait_until("a rebalance under way", 30, || {
        describe(&addr, "g")["state"] == "PreparingRebalance"
    });
    broker.kill();
    broker.restart();
    b.signal(Signal::SIGCONT);
    wait_balanced(&addr, "g", 3);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b, &c]) == all_records(20)
    });
    let mut count: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in [&a, &b, &c].iter().flat_map(|m| m.records()) {
        *count.entry(r).or_default() += 1;
    }
    // Everything before the restart was committed: nothing is read twice.
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{twice:?}");
}

#[test]
fn offsets_are_reset_only_without_members_and_groups_deleted() {
    let (_broker, addr) = setup();
    produce(&addr, 10);
    let consume_all = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "consume",
            TOPIC,
            "--group",
            "g",
            "--format",
            "%p %o",
            "--timeout-ms",
            "1500",
        ];
        args.extend_from_slice(extra);
        ok(&addr, &args).lines().map(str::to_owned).collect()
    };
    assert_eq!(consume_all(&["--from-beginning"]).len(), 60);
    let d = describe(&addr, "g");
    assert_eq!(d["state"], "Empty");
    for p in d["partitions"].as_array().unwrap() {
        assert_eq!(
            (
                p["committed_offset"].as_u64(),
                p["log_end_offset"].as_u64(),
                p["lag"].as_u64()
            ),
            (Some(10), Some(10), Some(0))
        );
    }
    let text = ok(&addr, &["group", "describe", "g"]);
    assert!(text.contains("state: Empty"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with(TOPIC)).count(),
        6,
        "{text}"
    );
    assert!(
        ok(&addr, &["group", "list"])
            .lines()
            .any(|l| l.starts_with("g "))
    );

    let reset = |to: &[&str]| {
        let mut args = vec!["group", "reset-offsets", "g", "--topic", TOPIC];
        args.extend_from_slice(to);
        ok(&addr, &args)
    };
    let plan = reset(&["--to-offset", "4", "--dry-run"]);
    assert!(plan.contains("dry run"), "{plan}");
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![10; 6]
    );
    reset(&["--to-earliest"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![0; 6]
    );
    reset(&["--to-latest"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![10; 6]
    );
    reset(&["--to-time", "0"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![0; 6]
    );
    reset(&["--to-offset", "4"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![4; 6]
    );
    // A consumer of the group continues from the reset offsets.
    let again = consume_all(&[]);
    assert_eq!(again.len(), 36, "{again:?}");

    // With a member: both refused, with a clear message.
    let m = Member::start(&addr, "g", &[]);
    wait_balanced(&addr, "g", 1);
    let out = sluice(
        &addr,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            TOPIC,
            "--to-earliest",
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("has 1 member"), "{err}");
    let out = sluice(&addr, &["group", "delete", "g"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("it has members"), "{err}");
    m.stop();

    assert_eq!(
        ok(&addr, &["group", "delete", "g"]).trim(),
        "deleted group g"
    );
    assert!(
        !ok(&addr, &["group", "list"])
            .lines()
            .any(|l| l.starts_with("g "))
    );
    assert!(committed(&describe(&addr, "g")).is_empty());
}
