//! The `sluice` command-line tool against a real broker: 100,000 lines
//! produced and consumed back, topic administration and bad input, and a
//! consumer group continuing where its last run committed. Also checks
//! that the code in `docs/client.md` is copied from the examples, which
//! the build compiles.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_tests::{TestBroker, free_port, sluice_with_input as sluice};

/// The `sluice` binary of this build (see
/// [`sluice_tests::workspace_binary`]).
fn sluice_binary() -> PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

/// Runs `sluice` and asserts success; returns stdout.
fn ok(broker: &str, args: &[&str], stdin: &[u8]) -> String {
    let out = sluice(broker, args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sluice` and asserts it fails cleanly with one `error:` line
/// containing `expect`.
fn fails(broker: &str, args: &[&str], stdin: &[u8], expect: &str) {
    let out = sluice(broker, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "sluice {args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "sluice {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "sluice {args:?}: {stderr}");
    assert!(stderr.contains(expect), "sluice {args:?}: {stderr}");
}

/// Waits up to `limit` for `child` to exit; kills it and panics with
/// `why` if it has not.
fn wait_for_exit(
    child: &mut std::process::Child,
    limit: Duration,
    why: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hundred_thousand_lines_come_back_once_in_order_per_partition() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &["topic", "create", "lines", "--partitions", "4"],
        b"",
    );

    let n = 100_000;
    let lines: Vec<(String, String)> = (0..n)
        .map(|i| (format!("key-{}", i % 101), format!("value {i} with spaces")))
        .collect();
    let mut input = String::new();
    for (k, v) in &lines {
        input.push_str(&format!("{k}|{v}\n"));
    }
    let printed = ok(
        &addr,
        &[
            "produce",
            "lines",
            "--key-separator",
            "|",
            "--print-offsets",
        ],
        input.as_bytes(),
    );
    let acked: Vec<(u32, u64)> = printed
        .lines()
        .map(|l| {
            let (p, o) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(acked.len(), n, "one line per input line");

    let consume = |extra: &[&str]| {
        let count = n.to_string();
        let mut args = vec![
            "consume",
            "lines",
            "--from-beginning",
            "--count",
            &count,
            "--timeout-ms",
            "30000",
            "--format",
            "%p %o %k %v",
        ];
        args.extend_from_slice(extra);
        ok(&addr, &args, b"")
    };
    let consumed = consume(&[]);
    // A stream reads the same records, in the same order per partition.
    let streamed = consume(&["--fetch-stream"]);
    let sorted = |s: &str| {
        let mut l: Vec<String> = s.lines().map(str::to_owned).collect();
        l.sort_unstable();
        l
    };
    assert_eq!(sorted(&consumed), sorted(&streamed));
    let per_partition = |s: &str| {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in s.lines() {
            let (p, rest) = l.split_once(' ').unwrap();
            by.entry(p.to_owned()).or_default().push(rest.to_owned());
        }
        by
    };
    assert_eq!(per_partition(&consumed), per_partition(&streamed));
    let mut stored: HashMap<(u32, u64), (String, String)> = HashMap::new();
    let mut last_offset: HashMap<u32, u64> = HashMap::new();
    for line in consumed.lines() {
        let mut parts = line.splitn(4, ' ');
        let p: u32 = parts.next().unwrap().parse().unwrap();
        let o: u64 = parts.next().unwrap().parse().unwrap();
        let k = parts.next().unwrap().to_owned();
        let v = parts.next().unwrap().to_owned();
        if let Some(prev) = last_offset.insert(p, o) {
            assert!(o > prev, "partition {p}: offset {o} after {prev}");
        }
        assert!(stored.insert((p, o), (k, v)).is_none(), "{p} {o} twice");
    }
    assert_eq!(stored.len(), n, "every record consumed once");
    assert!(last_offset.len() > 1, "keys spread over partitions");

    // Each input line is stored where the producer said, and per partition
    // the input order is the offset order.
    let mut by_partition: BTreeMap<u32, Vec<(u64, usize)>> = BTreeMap::new();
    let mut partition_of_key: HashMap<&str, u32> = HashMap::new();
    for (i, ((k, v), &(p, o))) in lines.iter().zip(&acked).enumerate() {
        assert_eq!(
            stored.get(&(p, o)),
            Some(&(k.clone(), v.clone())),
            "line {i}"
        );
        assert_eq!(*partition_of_key.entry(k).or_insert(p), p, "key {k}");
        by_partition.entry(p).or_default().push((o, i));
    }
    for (p, mut records) in by_partition {
        records.sort_unstable();
        assert!(
            records.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {p} out of input order"
        );
    }
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    let created = ok(
        &addr,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--retention-ms",
            "60000",
            "--segment-bytes",
            "1048576",
            "--flush",
            "before-ack",
        ],
        b"",
    );
    assert!(created.contains("orders"), "{created}");
    ok(&addr, &["topic", "create", "audit"], b"");
    fails(
        &addr,
        &["topic", "create", "orders"],
        b"",
        "topic already exists",
    );
    assert_eq!(ok(&addr, &["topic", "list"], b""), "audit 1\norders 3\n");

    ok(
        &addr,
        &["produce", "orders", "--partition", "2"],
        b"a\nb\nc\n",
    );
    let described = ok(&addr, &["topic", "describe", "orders"], b"");
    for expected in [
        "topic: orders",
        "partitions: 3",
        "retention-ms: 60000",
        "segment-bytes: 1048576",
        "flush: before-ack",
    ] {
        assert!(described.lines().any(|l| l == expected), "{described}");
    }
    let rows: Vec<Vec<String>> = described
        .lines()
        .skip_while(|l| !l.contains("high-watermark"))
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let offsets: Vec<Vec<u64>> = rows
        .iter()
        .map(|r| r[..4].iter().map(|w| w.parse().unwrap()).collect())
        .collect();
    // partition, log start, high watermark, log end
    assert_eq!(offsets, [[0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 3, 3]]);
    let sizes: Vec<u64> = rows.iter().map(|r| r[4].parse().unwrap()).collect();
    assert_eq!(sizes[..2], [0, 0]);
    assert!(sizes[2] > 3, "three records take bytes: {described}");
    assert!(
        rows.iter().all(|r| r[5] == "1" && r[6] == "online"),
        "{described}"
    );

    // The same for scripts.
    let json: serde_json::Value = serde_json::from_str(&ok(
        &addr,
        &["topic", "describe", "orders", "--output", "json"],
        b"",
    ))
    .unwrap();
    assert_eq!(json["name"], "orders");
    assert_eq!(json["config"]["retention_ms"], 60000);
    assert_eq!(json["config"]["flush"], "before-ack");
    assert_eq!(json["config"]["segment_ms"], 604_800_000, "the default");
    let p2 = &json["partitions"][2];
    assert_eq!(p2["high_watermark"], 3);
    assert_eq!(p2["log_end_offset"], 3);
    assert_eq!(p2["size_bytes"], sizes[2]);
    assert_eq!(p2["segments"], 1);
    assert_eq!(p2["offline"], false);
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&addr, &["topic", "list", "--output", "json"], b"")).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({"topics": [
            {"name": "audit", "partitions": 1},
            {"name": "orders", "partitions": 3},
        ]})
    );

    ok(&addr, &["topic", "delete", "orders"], b"");
    assert_eq!(ok(&addr, &["topic", "list"], b""), "audit 1\n");
    fails(
        &addr,
        &["topic", "describe", "orders"],
        b"",
        "unknown topic \"orders\"",
    );
}

/// The settings line `key: value` of `sluice topic describe NAME`.
fn setting(addr: &str, name: &str, key: &str) -> String {
    let described = ok(addr, &["topic", "describe", name], b"");
    let prefix = format!("{key}: ");
    described
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {described}"))
        .to_owned()
}

/// The log start of each partition, from `sluice topic describe`.
fn log_starts(addr: &str, name: &str) -> Vec<u64> {
    let json: serde_json::Value = serde_json::from_str(&ok(
        addr,
        &["topic", "describe", name, "--output", "json"],
        b"",
    ))
    .unwrap();
    json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_start_offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn topics_are_altered_and_their_first_records_deleted() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "plain"], b"");
    let default_retention = setting(&addr, "plain", "retention-ms");
    ok(
        &addr,
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "2",
            "--retention-ms",
            "60000",
        ],
        b"",
    );
    ok(
        &addr,
        &["produce", "t", "--partition", "1"],
        b"a\nb\nc\nd\ne\n",
    );

    // More partitions and another retention, in one command.
    let out = ok(
        &addr,
        &[
            "topic",
            "alter",
            "t",
            "--partitions",
            "4",
            "--retention-ms",
            "120000",
            "--retention-bytes",
            "1000000",
        ],
        b"",
    );
    assert!(out.contains("t has 4 partitions"), "{out}");
    assert!(out.contains("changed the settings of topic t"), "{out}");
    assert_eq!(setting(&addr, "t", "partitions"), "4");
    assert_eq!(setting(&addr, "t", "retention-ms"), "120000");
    assert_eq!(setting(&addr, "t", "retention-bytes"), "1000000");
    ok(&addr, &["produce", "t", "--partition", "3"], b"new\n");
    let read = ok(
        &addr,
        &[
            "consume",
            "t",
            "--partition",
            "3",
            "--from-beginning",
            "--count",
            "1",
        ],
        b"",
    );
    assert_eq!(read, "new\n");
    // Back to the broker's default.
    ok(
        &addr,
        &["topic", "alter", "t", "--retention-ms", "default"],
        b"",
    );
    assert_eq!(setting(&addr, "t", "retention-ms"), default_retention);
    assert_eq!(setting(&addr, "t", "retention-bytes"), "1000000");
    // The segment size and the codec too.
    ok(
        &addr,
        &[
            "topic",
            "alter",
            "t",
            "--segment-bytes",
            "2097152",
            "--compression",
            "zstd",
        ],
        b"",
    );
    assert_eq!(setting(&addr, "t", "segment-bytes"), "2097152");
    assert_eq!(setting(&addr, "t", "compression"), "zstd");
    ok(
        &addr,
        &["topic", "alter", "t", "--compression", "default"],
        b"",
    );
    assert_eq!(
        setting(&addr, "t", "compression"),
        setting(&addr, "plain", "compression")
    );
    // Refusals leave the topic as it was.
    fails(
        &addr,
        &["topic", "alter", "t", "--partitions", "3"],
        b"",
        "cannot raise the partition count",
    );
    // Nothing to change is a usage error.
    let out = sluice(&addr, &["topic", "alter", "t"], b"");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Both changes or neither.
    fails(
        &addr,
        &[
            "topic",
            "alter",
            "t",
            "--partitions",
            "2",
            "--retention-ms",
            "7",
        ],
        b"",
        "cannot change topic \"t\"",
    );
    assert_eq!(setting(&addr, "t", "retention-bytes"), "1000000");
    assert_ne!(setting(&addr, "t", "retention-ms"), "7");
    fails(
        &addr,
        &["topic", "alter", "nope", "--retention-ms", "1"],
        b"",
        "cannot change topic \"nope\"",
    );
    assert_eq!(setting(&addr, "t", "partitions"), "4");

    // The first three records of partition 1, then the rest.
    let out = ok(
        &addr,
        &[
            "topic",
            "delete-records",
            "t",
            "--partition",
            "1",
            "--before",
            "3",
        ],
        b"",
    );
    assert_eq!(out, "partition 1 of topic t starts at offset 3\n");
    assert_eq!(log_starts(&addr, "t"), [0, 3, 0, 0]);
    let read = ok(
        &addr,
        &[
            "consume",
            "t",
            "--partition",
            "1",
            "--from-beginning",
            "--count",
            "2",
        ],
        b"",
    );
    assert_eq!(read, "d\ne\n");
    // An offset below the log start reads from the start, saying so; one
    // past the end waits at the end. (stdout, stderr) of a read of up to
    // `count` records of partition 1 from `offset`, for up to `ms`.
    let from = |offset: &str, count: &str, ms: &str| {
        let args = [
            "consume",
            "t",
            "--partition",
            "1",
            "--offset",
            offset,
            "--count",
            count,
            "--timeout-ms",
            ms,
        ];
        let out = sluice(&addr, &args, b"");
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (read, said) = from("1", "2", "10000");
    assert_eq!(read, "d\ne\n");
    assert!(
        said.contains(
            "t-1: offset 1 is below the log start 3 (older records were deleted); reading from 3"
        ),
        "{said}"
    );
    let (read, said) = from("50", "1", "300");
    assert_eq!(read, "");
    assert!(
        said.contains("t-1: offset 50 is past the end 5; reading from 5"),
        "{said}"
    );
    fails(
        &addr,
        &[
            "topic",
            "delete-records",
            "t",
            "--partition",
            "1",
            "--before",
            "99",
        ],
        b"",
        "cannot delete records of partition 1 of \"t\": offset 99 is past the partition's \
         readable records, which end at offset 5",
    );
    ok(
        &addr,
        &["topic", "delete-records", "t", "--partition", "1"],
        b"",
    );
    assert_eq!(log_starts(&addr, "t"), [0, 5, 0, 0]);
    fails(
        &addr,
        &["topic", "delete-records", "t", "--partition", "9"],
        b"",
        "cannot delete records of partition 9 of \"t\": the topic has no partition 9 (it has 4",
    );
    fails(
        &addr,
        &["topic", "delete-records", "nope", "--partition", "0"],
        b"",
        "cannot delete records of partition 0 of \"nope\": no such topic",
    );
}

#[test]
fn broker_status_shows_version_uptime_listeners_disk_and_connections() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "s", "--partitions", "2"], b"");
    let text = ok(&addr, &["broker", "status"], b"");
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    assert_eq!(field("version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("listen"), addr);
    assert_eq!(field("node-id"), "none");
    assert_eq!(
        field("kafka-listen"),
        broker.kafka_addr.unwrap().to_string()
    );
    assert_eq!(
        field("metrics-listen"),
        broker.metrics_addr.unwrap().to_string()
    );
    assert_eq!(field("data-dir"), broker.data_dir.display().to_string());
    assert_eq!(field("connections"), "1");
    assert_eq!(field("topics"), "1");
    assert_eq!(field("partitions"), "2");
    assert_eq!(field("partitions-offline"), "0");
    let total: u64 = field("disk-total-bytes").parse().unwrap();
    let free: u64 = field("disk-free-bytes").parse().unwrap();
    assert!(total > 0 && free <= total, "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(&addr, &["broker", "status", "--output", "json"], b"")).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["listen"], addr.as_str());
    assert_eq!(json["node_id"], serde_json::Value::Null);
    assert_eq!(
        json["kafka_listen"],
        broker.kafka_addr.unwrap().to_string().as_str()
    );
    assert_eq!(json["partitions"], 2);
    assert_eq!(json["connections_open"], 1);
    assert!(json["uptime_ms"].as_u64().is_some(), "{json}");
    assert!(json["disk_total_bytes"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    fails(
        &addr,
        &["topic", "create", "../x"],
        b"",
        "cannot create topic \"../x\": invalid topic name",
    );
    fails(
        &addr,
        &["produce", "nowhere"],
        b"lost\n",
        "unknown topic \"nowhere\": create it first (`sluice topic create nowhere --partitions N`)",
    );
    fails(
        &addr,
        &["consume", "nowhere", "--timeout-ms", "100"],
        b"",
        "unknown topic \"nowhere\"",
    );
    // A name that could not be created gets no advice to create it.
    for (name, says) in [
        ("__consumer_offsets", "is reserved for the broker's own use"),
        (
            "a/b",
            "\"a/b\" is not a topic name: a topic name is 1 to 249",
        ),
    ] {
        let out = sluice(&addr, &["produce", name], b"lost\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("create it first"), "{stderr}");
    }
    ok(&addr, &["topic", "create", "one"], b"");
    fails(
        &addr,
        &["produce", "one", "--partition", "1"],
        b"x\n",
        "no partition 1",
    );
    // The smallest segment a topic may have, whatever is asked.
    for bytes in ["0", "1", "2147483648", "4294967296"] {
        fails(
            &addr,
            &["topic", "create", "tiny", "--segment-bytes", bytes],
            b"",
            &format!("must be between 65536 and 2147483647, got {bytes}"),
        );
    }
    let down = format!("127.0.0.1:{}", free_port());
    fails(
        &down,
        &["topic", "list"],
        b"",
        &format!("cannot connect to {down}: "),
    );
    // Usage errors exit with 2 (clap).
    let out = sluice(
        &addr,
        &["topic", "create", "t", "--flush", "sometimes"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let out = sluice(&addr, &["consume", "one", "--format", "%x"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_group_continues_where_its_last_run_committed() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &["topic", "create", "jobs", "--partitions", "2"],
        b"",
    );
    let input: String = (0..100).map(|i| format!("k{}:job {i}\n", i % 10)).collect();
    ok(
        &addr,
        &["produce", "jobs", "--key-separator", ":"],
        input.as_bytes(),
    );
    let run = |extra: &[&str]| -> Vec<(u32, u64)> {
        let mut args = vec!["consume", "jobs", "--group", "g", "--format", "%p %o"];
        args.extend_from_slice(extra);
        ok(&addr, &args, b"")
            .lines()
            .map(|l| {
                let (p, o) = l.split_once(' ').unwrap();
                (p.parse().unwrap(), o.parse().unwrap())
            })
            .collect()
    };
    // One fetch brings all 100 records; the first runs print (and commit)
    // only 30 each. The second reads with a stream: same positions, same
    // commits.
    let first = run(&["--from-beginning", "--count", "30"]);
    let second = run(&["--count", "30", "--fetch-stream"]);
    let rest = run(&["--timeout-ms", "1000"]);
    assert_eq!((first.len(), second.len(), rest.len()), (30, 30, 40));
    let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (p, o) in first.into_iter().chain(second).chain(rest) {
        per_partition.entry(p).or_default().push(o);
    }
    let mut total = 0;
    for (p, offsets) in &per_partition {
        let expected: Vec<u64> = (0..offsets.len() as u64).collect();
        assert_eq!(offsets, &expected, "partition {p}");
        total += offsets.len();
    }
    assert_eq!(total, 100);
    // Nothing left for the group.
    assert!(run(&["--timeout-ms", "300"]).is_empty());
}

/// A group consumer whose output closes (`| head -n 1`) commits nothing it
/// did not print: its positions are past the whole batch it polled, most
/// of which never reached the closed pipe, so it leaves without a commit
/// and the group's next run starts where its last commit was (here, none:
/// from the beginning).
#[test]
fn a_group_consumer_whose_output_closes_commits_nothing_unprinted() {
    use std::io::BufRead;
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "piped"], b"");
    // Far more than a pipe holds (64 KiB), fetched in a few polls.
    let input: String = (0..20_000).map(|i| format!("line {i:05}\n")).collect();
    ok(&addr, &["produce", "piped"], input.as_bytes());
    let mut child = Command::new(sluice_binary())
        .args(["--broker", &addr, "consume", "piped", "--group", "g"])
        .args(["--from-beginning", "--format", "%o"])
        .env_remove("SLUICE_BROKER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "0\n");
    drop(out);
    let status = wait_for_exit(
        &mut child,
        Duration::from_secs(20),
        "sluice consume did not end when its output closed",
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    // The group's next run: nothing was committed, so it starts at the
    // beginning again (`--from-beginning` is for partitions without a
    // commit).
    let next = ok(
        &addr,
        &[
            "consume",
            "piped",
            "--group",
            "g",
            "--from-beginning",
            "--count",
            "1",
            "--timeout-ms",
            "5000",
            "--format",
            "%o",
        ],
        b"",
    );
    assert_eq!(next, "0\n", "the first run committed what it never printed");
}

/// Every Rust block in `docs/client.md` is copied from an example under
/// `client/examples/` (which `cargo build --examples` compiles), so the
/// guide cannot drift from the API.
#[test]
fn guide_code_is_copied_from_the_compiled_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/client.md")).unwrap();
    let examples: Vec<String> = ["producer.rs", "consumer.rs", "group_consumer.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join("client/examples").join(f)).unwrap())
        .collect();
    let normalize = |s: &str| -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "// ...")
            .map(str::to_owned)
            .collect()
    };
    let examples: Vec<Vec<String>> = examples.iter().map(|e| normalize(e)).collect();
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```rust\n") {
        let body = &rest[start + "```rust\n".len()..];
        let end = body.find("```").unwrap();
        let block = normalize(&body[..end]);
        // Each run of lines between `// ...` markers appears in an example.
        for part in body[..end].split("// ...") {
            let part = normalize(part);
            if part.is_empty() {
                continue;
            }
            let found = examples
                .iter()
                .any(|e| e.windows(part.len()).any(|w| w == part.as_slice()));
            assert!(found, "not in any example:\n{}", part.join("\n"));
        }
        assert!(!block.is_empty());
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert!(blocks >= 2, "the guide shows the examples");
}

/// `sluice produce --compression` stores compressed batches (checked by
/// fetching them raw) and `sluice consume` prints them like any other.
#[test]
fn compressed_topics_produce_and_consume_like_any_other() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "zipped"], b"");
    let lines: String = (0..300).map(|i| format!("line {i} of text\n")).collect();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        ok(
            &addr,
            &["produce", "zipped", "--compression", codec],
            lines.as_bytes(),
        );
    }
    fails(
        &addr,
        &[
            "produce",
            "zipped",
            "--compression",
            "gzip",
            "--compression-level",
            "12",
        ],
        b"x\n",
        "--compression-level 12: gzip has no compression level 12: 0 to 9",
    );
    fails(
        &addr,
        &[
            "produce",
            "zipped",
            "--compression",
            "lz4",
            "--compression-level",
            "5",
        ],
        b"x\n",
        "--compression-level 5: only gzip (0-9) and zstd (1-22) take a level, and --compression is lz4",
    );
    let consumed = ok(
        &addr,
        &[
            "consume",
            "zipped",
            "--from-beginning",
            "--count",
            "1200",
            "--timeout-ms",
            "30000",
        ],
        b"",
    );
    let want: String = std::iter::repeat_n(lines.as_str(), 4).collect();
    assert_eq!(consumed, want);
    // The stored batches carry the codecs, in produce order.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let codecs = rt.block_on(async {
        let mut c = broker.connect().await;
        let resp = c
            .fetch(
                0,
                0,
                8 << 20,
                vec![sluice_protocol::wire::fetch::FetchPartition {
                    topic: "zipped".into(),
                    partition: 0,
                    offset: 0,
                    max_bytes: 4 << 20,
                }],
            )
            .await
            .unwrap();
        let mut bytes = resp[0].records.clone();
        let mut codecs = Vec::new();
        while !bytes.is_empty() {
            let b = sluice_protocol::batch::RecordBatch::split_first(&mut bytes).unwrap();
            codecs.push(b.header().compression().to_string());
        }
        codecs
    });
    codecs.iter().for_each(|c| assert_ne!(c, "none"));
    let mut distinct = codecs.clone();
    distinct.dedup();
    assert_eq!(distinct, ["gzip", "snappy", "lz4", "zstd"]);
}

#[test]
fn replication_factor_leaders_and_brokers_are_shown() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &[
            "topic",
            "create",
            "r",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
        b"",
    );
    fails(
        &addr,
        &["topic", "create", "r3", "--replication-factor", "3"],
        b"",
        "the cluster has 1 broker",
    );
    let described = ok(&addr, &["topic", "describe", "r"], b"");
    let header = described
        .lines()
        .find(|l| l.contains("high-watermark"))
        .unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns[7..],
        ["leader", "leader-epoch", "replicas", "isr"],
        "{described}"
    );
    let rows: Vec<Vec<&str>> = described
        .lines()
        .skip_while(|l| !l.contains("high-watermark"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{described}");
    for r in &rows {
        assert_eq!(r[7..], ["0", "0", "0", "0"], "{described}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(
        &addr,
        &["topic", "describe", "r", "--output", "json"],
        b"",
    ))
    .unwrap();
    let p1 = &json["partitions"][1];
    assert_eq!(p1["leader"], 0);
    assert_eq!(p1["leader_epoch"], 0);
    assert_eq!(p1["replicas"], serde_json::json!([0]));
    assert_eq!(p1["isr"], serde_json::json!([0]));

    let kafka = broker.kafka_addr.unwrap().to_string();
    let text = ok(&addr, &["cluster", "describe"], b"");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [vec!["id", "listen", "kafka"], vec!["0", &addr, &kafka]],
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        &addr,
        &["cluster", "describe", "--output", "json"],
        b"",
    ))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"brokers": [{"id": 0, "listen": addr, "kafka": kafka}]})
    );
}

/// A plain `sluice consume` (no group) that is following a topic when the
/// broker restarts reconnects and goes on from its position: every record
/// once, the ones produced after the restart included.
#[test]
fn a_following_consumer_rides_out_a_broker_restart() {
    let mut b = TestBroker::start();
    let addr = b.addr.to_string();
    ok(&addr, &["topic", "create", "follow"], b"");
    ok(&addr, &["produce", "follow"], b"a\nb\nc\n");
    let child = Command::new(sluice_binary())
        .args(["--broker", &addr])
        .args(["consume", "follow", "--from-beginning", "--count", "6"])
        .env_remove("SLUICE_BROKER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    b.kill();
    std::thread::sleep(Duration::from_secs(2));
    b.restart();
    ok(&addr, &["produce", "follow"], b"d\ne\nf\n");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\nd\ne\nf\n");
}

/// `sluice consume ... | head -2` exits once `head` has its lines, also
/// when the topic has no more records to write (the consumer notices the
/// closed pipe while it waits), with and without a group.
#[test]
fn a_consumer_piped_into_head_exits_when_head_does() {
    let b = TestBroker::start();
    let addr = b.addr.to_string();
    ok(&addr, &["topic", "create", "piped"], b"");
    // A CRLF line ending is a line ending.
    ok(&addr, &["produce", "piped"], b"a\r\nb\nc\n");
    for group in [None, Some("readers")] {
        let mut cmd = format!(
            "'{}' --broker {addr} consume piped --from-beginning",
            sluice_binary().display()
        );
        if let Some(g) = group {
            cmd.push_str(&format!(" --group {g}"));
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} | head -2"))
            .env_remove("SLUICE_BROKER")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_for_exit(
            &mut child,
            Duration::from_secs(20),
            &format!("the consumer went on after head exited ({group:?})"),
        );
        assert!(status.success());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        assert_eq!(out, "a\nb\n");
    }
}

/// A broker that stops answering without closing its connections (here
/// SIGSTOPped) cannot hang an admin or group command: it fails once
/// `--command-timeout-ms` has passed, saying so, and works again once the
/// broker answers.
#[test]
fn admin_commands_give_up_on_a_silent_broker() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "quiet"], b"");
    broker.pause();
    for args in [
        &["topic", "list", "--command-timeout-ms", "1000"][..],
        &["group", "describe", "g", "--command-timeout-ms", "1000"][..],
    ] {
        let started = std::time::Instant::now();
        fails(&addr, args, b"", "did not answer within 1000 ms");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    broker.resume();
    assert!(ok(&addr, &["topic", "list"], b"").contains("quiet"));
}

/// A broker that stops answering without closing its connections (a
/// paused process): `consume --timeout-ms` still ends on time, and a
/// consume without one gives up 60 s after the broker's last answer with
/// one clear error, instead of waiting for good.
#[test]
fn a_consumer_gives_up_on_a_silent_broker() {
    use std::time::Instant;
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &["topic", "create", "quiet", "--partitions", "2"],
        b"",
    );
    ok(&addr, &["produce", "quiet"], b"a\nb\n");
    let spawn = |extra: &[&str]| {
        Command::new(sluice_binary())
            .args(["--broker", &addr, "consume", "quiet", "--from-beginning"])
            .args(extra)
            .env_remove("SLUICE_BROKER")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut timed = spawn(&["--timeout-ms", "3000"]);
    let mut silent = spawn(&[]);
    // Both have read the two records (and heard the broker) before it
    // stops.
    std::thread::sleep(Duration::from_secs(2));
    broker.pause();
    let paused = Instant::now();
    let wait = |child: &mut std::process::Child, limit: Duration| loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status, paused.elapsed());
        }
        if paused.elapsed() > limit {
            let _ = child.kill();
            broker.resume();
            panic!("sluice consume still running {limit:?} after the broker stopped answering");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, took) = wait(&mut timed, Duration::from_secs(20));
    let out = timed.wait_with_output().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert!(
        took < Duration::from_secs(8),
        "--timeout-ms 3000 took {took:?}"
    );

    let (status, took) = wait(&mut silent, Duration::from_secs(120));
    broker.resume();
    let out = silent.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: fetching from \"quiet\": no answer from the broker"),
        "{stderr}"
    );
    assert!(
        (Duration::from_secs(55)..Duration::from_secs(90)).contains(&took),
        "gave up after {took:?}"
    );
}

/// A consumer of a topic one partition of which the broker refuses to
/// serve (a batch's base offset damaged on disk): the other partition's
/// records are printed all the same, and at its idle timeout
/// (`--timeout-ms`) it exits with the error, since that partition was
/// failing, not idle (it printed nothing, for the one refusal held up the
/// whole answer, and exited 0 as if everything had been read).
#[test]
fn a_consumer_whose_reads_are_refused_until_its_timeout_says_why() {
    let mut broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &[
            "topic",
            "create",
            "scarred",
            "--partitions",
            "2",
            "--segment-bytes",
            "65536",
        ],
        b"",
    );
    let line = format!("{}\n", "x".repeat(1000));
    for _ in 0..20 {
        ok(
            &addr,
            &["produce", "scarred", "--partition", "0"],
            line.repeat(10).as_bytes(),
        );
    }
    let healthy: String = (0..15).map(|i| format!("p1-{i}\n")).collect();
    ok(
        &addr,
        &["produce", "scarred", "--partition", "1"],
        healthy.as_bytes(),
    );
    broker.stop();
    // Partition 0's first segment's batches: (position, base offset).
    let path = broker
        .data_dir
        .join("scarred-0")
        .join("00000000000000000000.log");
    let mut data = std::fs::read(&path).unwrap();
    let mut batches = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let base = u64::from_be_bytes(data[at..at + 8].try_into().unwrap());
        batches.push((at, base));
        at += 12 + u32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    assert!(batches.len() >= 4, "{batches:?}");
    // The second batch's base offset (outside its CRC) made to lie.
    let (position, offset) = batches[1];
    assert!((1..15).contains(&offset), "{batches:?}");
    data[position..position + 8].copy_from_slice(&(offset + 1000).to_be_bytes());
    std::fs::write(&path, &data).unwrap();
    broker.restart();

    let out = sluice(
        &addr,
        &[
            "consume",
            "scarred",
            "--offset",
            &offset.to_string(),
            "--format",
            "%p %v",
            "--timeout-ms",
            "3000",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected: String = (offset..15).map(|i| format!("1 p1-{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: fetching from \"scarred\": "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(broker.log().contains("the read is refused"));
}

/// A `consume --timeout-ms` whose broker dies right after it printed every
/// record ends with an error, not as if the topic had gone idle: the polls
/// after the failed one returned nothing without any broker answering
/// them (the partitions waiting for a leader), and used to clear the
/// failure, so it exited 0. With a group too.
#[test]
fn a_consumer_whose_broker_dies_says_so_at_its_timeout() {
    use std::io::BufRead;
    for group in [None, Some("watchers")] {
        let mut b = TestBroker::start();
        let addr = b.addr.to_string();
        ok(
            &addr,
            &["topic", "create", "doomed", "--partitions", "2"],
            b"",
        );
        let lines: String = (0..10).map(|i| format!("r{i}\n")).collect();
        ok(&addr, &["produce", "doomed"], lines.as_bytes());
        let mut cmd = Command::new(sluice_binary());
        cmd.args(["--broker", &addr]).args([
            "consume",
            "doomed",
            "--from-beginning",
            "--timeout-ms",
            "3000",
        ]);
        if let Some(g) = group {
            cmd.args(["--group", g]);
        }
        let mut child = cmd
            .env_remove("SLUICE_BROKER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut printed = 0;
        let mut line = String::new();
        while printed < 10 {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "{group:?}");
            printed += 1;
        }
        b.kill();
        let status = wait_for_exit(
            &mut child,
            Duration::from_secs(60),
            &format!("the consumer did not end ({group:?})"),
        );
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(1), "{group:?}: {stderr}");
        assert!(
            stderr.contains("error: fetching from \"doomed\": ")
                || stderr.contains("error: consuming \"doomed\" in a group: "),
            "{group:?}: {stderr}"
        );
    }
}

/// A group consuming a partition taken offline at start (its only segment
/// cut short after a clean shutdown) keeps its committed offset: reads past
/// the valid data are refused as offline, not answered out of range, which
/// made the consumer reset to the earliest offset and commit it (10 became
/// 0), and a Kafka ListOffsets of the latest offset is refused
/// (`KAFKA_STORAGE_ERROR`), not answered 0.
#[test]
fn a_group_on_an_offline_partition_keeps_its_committed_offset() {
    use sluice_protocol::kafka::error_code::code;
    use sluice_protocol::kafka::list_offsets::{
        LATEST, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopic,
    };
    let mut broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "marred"], b"");
    let lines: String = (0..10).map(|i| format!("m{i}\n")).collect();
    ok(&addr, &["produce", "marred"], lines.as_bytes());
    let read = ok(
        &addr,
        &[
            "consume",
            "marred",
            "--group",
            "mg",
            "--from-beginning",
            "--count",
            "10",
        ],
        b"",
    );
    assert_eq!(read, lines);
    broker.stop();
    let segment = broker.data_dir.join("marred-0/00000000000000000000.log");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(50).unwrap();
    drop(file);
    broker.restart();
    let addr = broker.addr.to_string();

    let out = sluice(
        &addr,
        &["consume", "marred", "--group", "mg", "--timeout-ms", "3000"],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("partition offline"), "{stderr}");
    assert!(out.stdout.is_empty());
    let described = ok(&addr, &["group", "describe", "mg", "--output", "json"], b"");
    assert!(described.contains("\"committed_offset\":10"), "{described}");
    // The consumer that failed left the group.
    assert!(described.contains("\"members\":[]"), "{described}");

    let mut s = std::net::TcpStream::connect(broker.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: "marred".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp: LATEST,
            }],
        }],
    };
    let r: ListOffsetsResponse = sluice_tests::kafka::call(&mut s, 4, &mut req);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code::KAFKA_STORAGE_ERROR
    );
}

/// Pointed at a broker's metrics port (HTTP), the CLI says so instead of
/// reporting a frame of 1,213,486,160 bytes ("HTTP" read as a length).
#[test]
fn pointed_at_the_metrics_port_it_says_so() {
    let broker = TestBroker::start();
    let metrics = broker.metrics_addr.expect("metrics address").to_string();
    fails(
        &metrics,
        &["topic", "list"],
        b"",
        "the server answered in HTTP, not in Sluice's native protocol",
    );
    fails(&metrics, &["topic", "list"], b"", "metrics port");
}

#[test]
fn pointed_at_the_kafka_port_it_says_so() {
    let broker = TestBroker::start();
    let kafka = broker.kafka_addr.expect("kafka address").to_string();
    // The Kafka listener closes a connection whose bytes are not a Kafka
    // request; the CLI names the likely mix-up instead of a bare "closed".
    fails(
        &kafka,
        &["topic", "list"],
        b"",
        "closed the connection without answering",
    );
    fails(&kafka, &["produce", "t"], b"x\n", "Kafka or Raft port");
    // The native listener itself still works.
    let native = broker.addr.to_string();
    ok(&native, &["topic", "create", "t", "--partitions", "1"], b"");
}

#[test]
fn a_refused_group_member_says_what_to_change() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "g", "--partitions", "1"], b"");
    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", "g", "--timeout-ms", "2000"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = consume(&["--group", "grp", "--session-timeout-ms", "10"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        &addr,
        &args,
        b"",
        "invalid session timeout (42): join group \"grp\" (--session-timeout-ms must lie within \
         the broker's group_min_session_timeout_ms and group_max_session_timeout_ms",
    );
    let args = consume(&[
        "--group",
        "grp",
        "--session-timeout-ms",
        "6000",
        "--heartbeat-interval-ms",
        "6000",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        &addr,
        &args,
        b"",
        "--heartbeat-interval-ms (6000) must be below --session-timeout-ms (6000)",
    );
    let args = consume(&["--group", "bell\u{7}"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&addr, &args, b"", "without control characters");
}

#[test]
fn a_plain_consumer_reads_the_partitions_added_while_it_runs() {
    use std::io::BufRead;
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(
        &addr,
        &["topic", "create", "grows", "--partitions", "1"],
        b"",
    );
    // Without --from-beginning: only records produced from now on, but
    // every record of a partition added meanwhile.
    let mut child = Command::new(sluice_binary())
        .args(["--broker", &addr, "consume", "grows"])
        .args(["--timeout-ms", "20000", "--format", "%p %v"])
        .env_remove("SLUICE_BROKER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    // Produced until the consumer prints it: then it is reading.
    let mut first = String::new();
    let reader = std::thread::spawn(move || {
        out.read_line(&mut first).unwrap();
        (out, first)
    });
    while !reader.is_finished() {
        ok(&addr, &["produce", "grows", "--partition", "0"], b"first\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (mut out, first) = reader.join().unwrap();
    assert_eq!(first, "0 first\n");
    ok(
        &addr,
        &["topic", "alter", "grows", "--partitions", "3"],
        b"",
    );
    ok(&addr, &["produce", "grows", "--partition", "2"], b"new-2\n");
    ok(&addr, &["produce", "grows", "--partition", "1"], b"new-1\n");
    // Read until both new records came (or the consumer gave up after
    // 20 s without records and closed its output).
    let mut seen = Vec::new();
    let mut line = String::new();
    while seen.len() < 2 && out.read_line(&mut line).unwrap() > 0 {
        if !line.starts_with("0 ") {
            seen.push(line.trim_end().to_owned());
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    seen.sort_unstable();
    assert_eq!(seen, ["1 new-1", "2 new-2"], "{err}");
    assert!(
        err.contains("grows: 3 partitions now; reading partitions 1 to 2 from their first record"),
        "{err}"
    );
}

#[test]
fn headers_are_produced_and_printed_and_null_is_told_from_empty() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "h", "--partitions", "1"], b"");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let producer = sluice_client::Producer::new(sluice_client::ProducerConfig::new(&addr));
        let headers: &[(&str, Option<&[u8]>)] = &[
            ("trace", Some(b"a=1")),
            ("flag", None),
            ("empty", Some(b"")),
        ];
        for (key, value, headers) in [
            (Some(&b"k1"[..]), None, headers),
            (None, Some(&b""[..]), &[][..]),
            (
                Some(&b""[..]),
                Some(&b"v3"[..]),
                &[("only", Some(&b"x"[..]))][..],
            ),
        ] {
            producer
                .send_record(sluice_client::ProducerRecord {
                    topic: "h",
                    partition: Some(0),
                    key,
                    value,
                    headers,
                    ..Default::default()
                })
                .await
                .unwrap()
                .await
                .unwrap();
        }
        producer.close().await;
    });
    let out = ok(
        &addr,
        &[
            "consume",
            "h",
            "--from-beginning",
            "--count",
            "3",
            "--format",
            "%o [%k|%K] [%v|%V] [%h]",
        ],
        b"",
    );
    assert_eq!(
        out,
        "0 [k1|2] [|-1] [trace=a=1,flag,empty=]\n\
         1 [|-1] [|0] []\n\
         2 [|0] [v3|2] [only=x]\n"
    );
    // Headers given to produce go on every record, in order.
    ok(
        &addr,
        &[
            "produce",
            "h",
            "--key-separator",
            ":",
            "--header",
            "trace=b=2",
            "--header",
            "flag",
            "--header",
            "trace=again",
        ],
        b"k4:v4\nv5\n",
    );
    let out = ok(
        &addr,
        &[
            "consume",
            "h",
            "--offset",
            "3",
            "--count",
            "2",
            "--format",
            "%o %K %k %v [%h]",
        ],
        b"",
    );
    assert_eq!(
        out,
        "3 2 k4 v4 [trace=b=2,flag,trace=again]\n\
         4 -1  v5 [trace=b=2,flag,trace=again]\n"
    );
}

/// A reserved name is refused as reserved, whatever the command (it was
/// "not a topic name", though it is one), and a command whose output
/// reader went away (`| head -1`) ends quietly with status 0, as consume
/// does.
#[test]
fn reserved_names_and_a_closed_output_are_told_as_what_they_are() {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    for name in ["__sluice_x", "__consumer_offsets"] {
        fails(
            &addr,
            &["produce", name],
            b"x\n",
            "is reserved for the broker's own use",
        );
        fails(&addr, &["topic", "describe", name], b"", "is reserved");
    }
    ok(
        &addr,
        &["topic", "create", "wide", "--partitions", "200"],
        b"",
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --broker {addr} topic describe wide | head -1",
            sluice_binary().display()
        ))
        .env_remove("SLUICE_BROKER")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "topic: wide\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sluice consume --group --timeout-ms` whose broker dies while the
/// member waits for its group to form fails soon after the timeout, saying
/// why (the rebalance inside the poll would retry for 40 s); one whose
/// group only forms slowly, the broker answering, ends as idle.
#[test]
fn a_group_consume_held_up_past_its_timeout_ends_then() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    // The first member's join waits this long for others.
    std::fs::write(&config, "group_initial_rebalance_delay_ms = 8000\n").unwrap();
    let mut broker = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let addr = broker.addr.to_string();
    ok(&addr, &["topic", "create", "held"], b"");
    let consume = |group: &str| {
        Command::new(sluice_binary())
            .args(["--broker", &addr, "consume", "held", "--group", group])
            .args(["--timeout-ms", "1000"])
            .env_remove("SLUICE_BROKER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let started = std::time::Instant::now();
    let slow = consume("slow").wait_with_output().unwrap();
    let took = started.elapsed();
    // Given up at 3 s (1 s and the 2 s grace), its leave waited for up to
    // 5 s behind the join still held on the same connection.
    assert!(slow.status.success(), "{slow:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");

    let mut child = consume("dies");
    std::thread::sleep(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    broker.kill();
    let status = wait_for_exit(
        &mut child,
        Duration::from_secs(20),
        "the group consumer went on long after its broker died",
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no records within --timeout-ms (1000 ms), and cannot connect to"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
