//! Helpers for the Kafka-listener tests: the Kafka clients they drive
//! (kcat, and confluent-kafka, kafka-python and aiokafka through
//! `tests/kafka_clients/clients.py` in the Python of `SLUICE_KAFKA_PYTHON`;
//! kafka-python 3 through `tests/kafka_clients/kafka_python3.py` in the
//! Python of `SLUICE_KAFKA_PYTHON3`; sarama through the Go programs of
//! `tests/kafka_clients/go`).
//! A missing client skips a test, unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`
//! (set by `.ci/run`), which makes it a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn required() -> bool {
    std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref() == Ok("1")
}

/// The Python with the Kafka client libraries, or `None` (the test skips).
pub fn python() -> Option<PathBuf> {
    python_in(
        "SLUICE_KAFKA_PYTHON",
        "import kafka, confluent_kafka, aiokafka",
        "kafka-python, confluent-kafka or aiokafka",
    )
}

/// The Python named by the environment variable `var` if it runs `check`,
/// else `None` (the test skips), or a failure when the clients are
/// required; `lacks` names what a failed check means.
fn python_in(var: &str, check: &str, lacks: &str) -> Option<PathBuf> {
    let python = std::env::var_os(var).map(PathBuf::from);
    let usable = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", check])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if usable {
        return python;
    }
    assert!(
        !required(),
        "SLUICE_REQUIRE_KAFKA_CLIENTS=1 but {var} ({python:?}) lacks {lacks}"
    );
    eprintln!("SKIPPED: set {var} to a Python with {lacks}");
    None
}

/// Whether `program arg` runs and succeeds (its output dropped).
fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `kcat` is installed (else the test skips, or fails when
/// required).
pub fn kcat() -> bool {
    let ok = runs("kcat", "-V");
    assert!(
        ok || !required(),
        "SLUICE_REQUIRE_KAFKA_CLIENTS=1 but kcat is not installed"
    );
    if !ok {
        eprintln!("SKIPPED: kcat is not installed");
    }
    ok
}

/// The Python with kafka-python 3 (`SLUICE_KAFKA_PYTHON3`, a second
/// environment: kafka-python 2 and 3 cannot be installed side by side), or
/// `None` (the test skips, or fails when required).
pub fn python3_kafka() -> Option<PathBuf> {
    python_in(
        "SLUICE_KAFKA_PYTHON3",
        "import kafka, snappy, lz4, zstandard; assert kafka.__version__.startswith('3.')",
        "kafka-python 3 and its codecs",
    )
}

/// The Go program `tests/kafka_clients/go/NAME`, built against sarama
/// (Debian's `golang-github-shopify-sarama-dev`, in the GOPATH
/// `SLUICE_GOPATH`, by default `/usr/share/gocode`) into `dir`, or `None`
/// when `go` or sarama is missing (the test skips, or fails when required).
/// A build that fails is a failure.
pub fn sarama_program(name: &str, dir: &Path) -> Option<PathBuf> {
    let gopath = std::env::var_os("SLUICE_GOPATH").unwrap_or_else(|| "/usr/share/gocode".into());
    let has_go = runs("go", "version");
    let has_sarama = Path::new(&gopath)
        .join("src/github.com/Shopify/sarama")
        .is_dir();
    if !(has_go && has_sarama) {
        let missing = format!(
            "go ({has_go}) or sarama in the GOPATH {gopath:?} ({has_sarama}) is missing \
             (Debian: golang-go golang-github-shopify-sarama-dev)"
        );
        assert!(!required(), "SLUICE_REQUIRE_KAFKA_CLIENTS=1 but {missing}");
        eprintln!("SKIPPED: {missing}");
        return None;
    }
    let bin = dir.join(name);
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("kafka_clients/go")
                .join(name),
        )
        .env("GOPATH", &gopath)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join("go-cache"))
        .output()
        .unwrap_or_else(|e| panic!("running go build: {e}"));
    assert!(
        out.status.success(),
        "go build of {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

/// Runs a program built by [`sarama_program`] with `args` as
/// [`run_script`] runs a script, and returns its standard output.
pub fn run_program(bin: &Path, args: &[&str]) -> String {
    run_bounded(&bin.display().to_string(), &[bin.as_os_str()], args)
}

/// Runs `command` then `args` under [`CLIENTS_DEADLINE_SECS`] (SIGTERM,
/// then SIGKILL 10 s later) and returns its standard output (one JSON
/// document); panics with its standard error and output, naming `name`, if
/// it fails.
fn run_bounded(name: &str, command: &[&std::ffi::OsStr], args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["-k", "10", &CLIENTS_DEADLINE_SECS.to_string()])
        .args(command)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kafka_clients")
        .join(name)
}

/// Runs a scenario of `clients.py` and returns its standard output (one
/// JSON document). Panics with its standard error if it fails.
///
/// A run is given [`CLIENTS_DEADLINE_SECS`]: past it, the script is sent
/// SIGTERM (it prints every thread's stack on standard error, shown in the
/// failure) and killed 10 s later, so a stuck client fails its test
/// instead of hanging the suite.
pub fn run_clients(python: &Path, args: &[&str]) -> String {
    run_script(python, "clients.py", args)
}

/// Runs `tests/kafka_clients/NAME` as [`run_clients`] runs `clients.py`.
pub fn run_script(python: &Path, name: &str, args: &[&str]) -> String {
    run_bounded(name, &[python.as_os_str(), script(name).as_os_str()], args)
}

/// Checks a client's report of the offsets its producer was acknowledged
/// (`{"PARTITION": [OFFSET, ...], ...}`): each partition's must be dense
/// from 0, every record its own offset. Returns each partition's end
/// (`{"PARTITION": END}`) and the number of records.
pub fn dense_acknowledged_offsets(
    sent: &serde_json::Value,
) -> (serde_json::Map<String, serde_json::Value>, usize) {
    let mut ends = serde_json::Map::new();
    let mut total = 0;
    for (p, offsets) in sent.as_object().expect("offsets by partition") {
        let offsets: Vec<u64> = offsets
            .as_array()
            .expect("a partition's offsets")
            .iter()
            .map(|o| o.as_u64().expect("an offset"))
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as u64).collect::<Vec<_>>(),
            "partition {p}: {sent}"
        );
        total += offsets.len();
        ends.insert(p.clone(), serde_json::json!(offsets.len()));
    }
    (ends, total)
}

/// How long one run of clients.py may take (the longest scenario takes a
/// few seconds to a minute).
pub const CLIENTS_DEADLINE_SECS: u32 = 300;

/// Runs kcat with `args` (and `stdin`), returns its standard output;
/// panics if it fails.
pub fn run_kcat(args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .arg("60")
        .arg("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).expect("kcat stdin");
    }
    let out = child.wait_with_output().expect("kcat");
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// An ApiVersions request naming this test client ("sluice-tests" 1.0),
/// valid at every version (from v3 Kafka refuses an empty name).
pub fn api_versions_request() -> sluice_protocol::kafka::api_versions::ApiVersionsRequest {
    sluice_protocol::kafka::api_versions::ApiVersionsRequest {
        client_software_name: "sluice-tests".to_owned(),
        client_software_version: "1.0".to_owned(),
    }
}

/// A Kafka request frame: length, header (client id "sluice-tests"), body
/// (record sets copied from `records`).
pub fn request_frame<M: sluice_protocol::kafka::Message>(
    version: i16,
    correlation_id: i32,
    body: &mut M,
    records: &[u8],
) -> Vec<u8> {
    let mut out = vec![0; 4];
    sluice_protocol::kafka::header::RequestHeader {
        api_key: M::API as i16,
        api_version: version,
        correlation_id,
        client_id: Some("sluice-tests".to_owned()),
    }
    .encode(&mut out);
    sluice_protocol::kafka::encode(body, version, &mut out, records).expect("encode request");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Reads one Kafka response frame with a header of `header_version`:
/// (correlation id, body).
pub fn read_response(s: &mut std::net::TcpStream, header_version: i16) -> (i32, Vec<u8>) {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response length");
    let mut buf = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).expect("response");
    let (id, at) = sluice_protocol::kafka::header::decode_response_header(&buf, header_version)
        .expect("response header");
    (id, buf[at..].to_vec())
}

/// An OffsetCommit of `offset` for partition 0 of `topic` by `member_id`
/// of generation (or member epoch) `generation_id` in `group`: no
/// retention, commit time or leader epoch, no metadata. Tests change what
/// they need on the returned request.
pub fn commit_request(
    group: &str,
    generation_id: i32,
    member_id: &str,
    topic: &str,
    offset: i64,
) -> sluice_protocol::kafka::offsets::OffsetCommitRequest {
    use sluice_protocol::kafka::offsets::{
        OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic,
    };
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: 0,
        topics: vec![OffsetCommitTopic {
            name: topic.into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: 0,
                committed_offset: offset,
                commit_timestamp_ms: 0,
                committed_leader_epoch: -1,
                committed_metadata: None,
            }],
        }],
    }
}

/// A first JoinGroup of Kafka's classic protocol to `group`: no member id
/// yet, protocol type `consumer`, one `range` protocol without metadata,
/// 30 s session and 10 s rebalance timeouts. Tests change what they need
/// with struct update syntax.
pub fn classic_join(group: &str) -> sluice_protocol::kafka::groups::JoinGroupRequest {
    use sluice_protocol::kafka::groups::{JoinGroupRequest, JoinProtocol};
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinProtocol {
            name: "range".into(),
            metadata: Vec::new(),
        }],
    }
}

/// Sends one request and decodes its answer (on a blocking connection).
pub fn call<Req, Resp>(s: &mut std::net::TcpStream, version: i16, req: &mut Req) -> Resp
where
    Req: sluice_protocol::kafka::Message,
    Resp: sluice_protocol::kafka::Message,
{
    use std::io::Write;
    s.write_all(&request_frame(version, 1, req, &[]))
        .expect("send request");
    let (_, body) = read_response(s, Req::API.response_header_version(version));
    sluice_protocol::kafka::decode(&body, version).expect("decode response")
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka_clients/js")
}

/// Whether `node` and KafkaJS (`npm ci` in `tests/kafka_clients/js`, done
/// by `.ci/run`) are installed; else the test skips, or fails when
/// required.
pub fn kafkajs() -> bool {
    node_loads("KafkaJS", &["-e", "require('kafkajs')"])
}

/// Whether `node args` (loading the package `what`) runs in
/// `tests/kafka_clients/js`; else the test skips, or fails when required.
fn node_loads(what: &str, args: &[&str]) -> bool {
    let ok = Command::new("node")
        .args(args)
        .current_dir(js_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = format!("node or {what} (npm ci in tests/kafka_clients/js) is missing");
    assert!(
        ok || !required(),
        "SLUICE_REQUIRE_KAFKA_CLIENTS=1 but {missing}"
    );
    if !ok {
        eprintln!("SKIPPED: {missing}");
    }
    ok
}

/// Runs a scenario of `kafka_clients/js/clients.js` (at most 120 s) and
/// returns its standard output (one JSON document). Panics with its
/// standard error if it fails.
pub fn run_js(args: &[&str]) -> String {
    run_js_script("clients.js", args)
}

/// Whether `node` can run `@platformatic/kafka` (installed with KafkaJS by
/// `npm ci`); else the test skips, or fails when required. The client
/// needs Node.js 20.19 or later: with an older `node` it skips even when
/// required.
pub fn platformatic_kafka() -> bool {
    let version = Command::new("node")
        .args(["-p", "process.versions.node"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let parts: Vec<u32> = version
        .trim()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if parts.len() == 3 && (parts[0], parts[1]) < (20, 19) {
        eprintln!("SKIPPED: @platformatic/kafka needs Node.js 20.19 or later, not {version}");
        return false;
    }
    node_loads(
        "@platformatic/kafka",
        &[
            "--input-type=module",
            "-e",
            "await import('@platformatic/kafka')",
        ],
    )
}

/// Runs `script` of `kafka_clients/js` with `args` (at most 120 s) and
/// returns its standard output (one JSON document). Panics with its
/// standard error if it fails.
pub fn run_js_script(script: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["120", "node", script])
        .args(args)
        .current_dir(js_dir())
        .output()
        .expect("running a kafka_clients/js script");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
