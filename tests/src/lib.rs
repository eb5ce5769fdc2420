//! Harness for end-to-end tests: starts the real `sluice-broker` binary on a
//! free loopback port with a temporary data directory, and helpers to build
//! and read record batches. One scenario per file in `tests/tests/`.

pub mod cluster;
pub mod fake;
pub mod kafka;
pub mod strace;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::topic_config::TopicConfig;

/// The binary `bin` of workspace package `package` in this build, brought
/// up to date first (a no-op when it is): `cargo test -p sluice-tests` does
/// not build other packages' binaries, so an existing one may be stale. The
/// environment variable `env`, when set, names a binary to use instead (CI
/// builds them once, with the suite's features).
pub fn workspace_binary(package: &str, bin: &str, env: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(b, _)| b == bin) {
        return path.clone();
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/<bin>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", package, "--bin", bin]);
    if package == "sluice-broker" {
        // The cluster tests inject network faults between nodes; the
        // feature adds no code path unless SLUICE_RAFT_FAULTS is set.
        cmd.args(["--features", "raft-faults"]);
    }
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "building {bin} failed");
    let path = dir.join(bin);
    built.push((bin.to_owned(), path.clone()));
    path
}

/// Runs this build's `sluice` CLI with `--broker broker` and `args`
/// (ignoring `SLUICE_BROKER` from the environment); asserts it succeeded
/// and returns its standard output.
pub fn sluice_ok(broker: &str, args: &[&str]) -> String {
    let bin = workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN");
    let out = Command::new(bin)
        .arg("--broker")
        .arg(broker)
        .args(args)
        .env_remove("SLUICE_BROKER")
        .output()
        .expect("running sluice");
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs this build's `sluice` CLI with `--broker broker`, `args` and
/// `stdin` as its input (ignoring `SLUICE_BROKER` from the environment);
/// returns what it did, whether it succeeded or not.
pub fn sluice_with_input(broker: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(workspace_binary(
        "sluice-client",
        "sluice",
        "SLUICE_CLI_BIN",
    ))
    .arg("--broker")
    .arg(broker)
    .args(args)
    .env_remove("SLUICE_BROKER")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("starting sluice");
    let mut input = child.stdin.take().expect("sluice's stdin");
    let stdin = stdin.to_vec();
    // Write from another thread: the child's output fills its pipe meanwhile.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("waiting for sluice");
    writer.join().expect("the stdin writer");
    out
}

/// A broker with `auto_create_topics` as given and 3 partitions for a
/// topic created without a count; keep the config file as long as the
/// broker (a restart reads it again).
pub fn broker_creating_topics(on: bool) -> (TestBroker, tempfile::NamedTempFile) {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().expect("config file");
    writeln!(
        f,
        "auto_create_topics = {on}\n[topic_defaults]\npartitions = 3"
    )
    .expect("config");
    let path = f.path().display().to_string();
    (TestBroker::start_with_args(&["--config", &path]), f)
}

/// The `sluice-broker` binary of this build (see [`workspace_binary`]).
pub fn broker_binary() -> PathBuf {
    workspace_binary("sluice-broker", "sluice-broker", "SLUICE_BROKER_BIN")
}

/// A free loopback port (bound once and released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running broker process. Stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct TestBroker {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where its metrics and health endpoint listens (`None` when the
    /// arguments turned it off or chose the address themselves).
    pub metrics_addr: Option<SocketAddr>,
    /// Where its Kafka-protocol listener listens (`None` when the
    /// arguments turned it off or chose the address themselves). The
    /// broker binds a free port of its choosing (`127.0.0.1:0`) on every
    /// start, so a restart never races another process for a port picked
    /// earlier; this field follows it.
    pub kafka_addr: Option<SocketAddr>,
    own_kafka_port: bool,
    /// Index in `extra` of the metrics address this helper chose.
    metrics_arg: Option<usize>,
    extra: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
    /// Environment variables set for the broker process.
    env: Vec<(String, String)>,
    /// Where its node-to-node Raft listener listens (cluster mode), from
    /// its startup line.
    pub raft_addr: Option<SocketAddr>,
    /// The open-file limit (soft and hard) the process starts under, when
    /// the test sets one (kept for restarts).
    open_files: Option<u64>,
}

impl TestBroker {
    /// Starts a broker on a temporary data directory.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Starts a broker on a temporary data directory with extra arguments.
    ///
    /// The native listener, and the metrics endpoint unless the arguments
    /// set it, bind a free port of the broker's choosing (`127.0.0.1:0`)
    /// on the first start, read back from the broker's startup lines, so
    /// brokers of parallel tests never race each other for a port picked
    /// in advance. Restarts reuse those ports.
    pub fn start_with_args(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    /// [`TestBroker::start_with_args`] with environment variables for the
    /// process (kept for restarts).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start_with_env(extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestBroker::start_with_env`], returning why the broker did not
    /// start (its log) instead of panicking.
    pub fn try_start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        Self::try_start_at(SocketAddr::from(([127, 0, 0, 1], 0)), extra, env)
    }

    /// [`TestBroker::try_start_with_env`] with the native listener on
    /// `addr` (a cluster node whose address the cluster file names).
    pub fn try_start_at(
        addr: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        Self::try_start_with_dir(addr, data_dir, Some(tmp), extra, env, None)
    }

    /// [`TestBroker::try_start_with_env`] on the data directory `data_dir`
    /// (say, a small file system the test mounted there); the broker's log
    /// goes beside it, to `data_dir` with the extension `log`.
    pub fn try_start_in(
        data_dir: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::try_start_with_dir(any, data_dir, None, extra, env, None)
    }

    /// [`TestBroker::try_start_in`] with the native listener on `addr` (a
    /// cluster node on a data directory the test chose).
    pub fn try_start_at_in(
        addr: SocketAddr,
        data_dir: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::try_start_with_dir(addr, data_dir, None, extra, env, None)
    }

    fn try_start_with_dir(
        addr: SocketAddr,
        data_dir: PathBuf,
        tmp: Option<tempfile::TempDir>,
        extra: &[&str],
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Result<Self, String> {
        let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        // Brokers of parallel tests must not share the default metrics port.
        let metrics_arg = if extra.iter().any(|a| a == "--metrics-listen") {
            None
        } else {
            extra.extend(["--metrics-listen".to_owned(), "127.0.0.1:0".to_owned()]);
            Some(extra.len() - 1)
        };
        // Nor Kafka's default port.
        let own_kafka_port = !extra.iter().any(|a| a == "--kafka-listen");
        if own_kafka_port {
            extra.extend(["--kafka-listen".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        let mut b = TestBroker {
            child: None,
            addr,
            data_dir,
            metrics_addr: None,
            kafka_addr: None,
            own_kafka_port,
            metrics_arg,
            extra,
            _tmp: tmp,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            raft_addr: None,
            open_files,
        };
        b.spawn()?;
        Ok(b)
    }

    /// [`TestBroker::start_with_args`] under an open-file limit of `limit`
    /// descriptors, soft and hard (set with util-linux's `prlimit`, which
    /// then runs the broker in its own place: the pid is the broker's).
    pub fn start_with_open_file_limit(limit: u64, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::try_start_with_dir(any, data_dir, Some(tmp), extra, &[], Some(limit))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("broker log file");
        let mut command = match self.open_files {
            None => Command::new(broker_binary()),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(broker_binary());
                c
            }
        };
        let mut child = command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.extra)
            // The broker's own default filter (info, but for openraft's
            // per-stream reports), unless a test sets one.
            .env_remove("RUST_LOG")
            .env_remove("SLUICE_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting sluice-broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut kafka, mut metrics, mut raft) = (None, None, None);
            let parse = |a: &str| a.trim().parse::<SocketAddr>().ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("sluice-broker kafka listening on ") {
                    kafka = parse(a);
                } else if let Some(a) = line.strip_prefix("sluice-broker metrics on ") {
                    metrics = parse(a);
                } else if let Some(a) = line.strip_prefix("sluice-broker raft listening on ") {
                    raft = parse(a);
                } else if let Some(a) = line.strip_prefix("sluice-broker listening on ") {
                    // The native listener's line comes last, once all are bound.
                    let _ = tx.send((parse(a), metrics, kafka, raft));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((native, metrics, kafka, raft)) => {
                self.addr = native.expect("the broker prints its native address");
                self.raft_addr = raft;
                if self.own_kafka_port || kafka.is_some() {
                    self.kafka_addr = kafka;
                }
                if let Some(i) = self.metrics_arg {
                    let m = metrics.expect("the broker prints its metrics address");
                    self.metrics_addr = Some(m);
                    // Later starts keep the port.
                    self.extra[i] = m.to_string();
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("broker did not start; log: {}", self.log()));
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// The broker's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// The last `n` lines of the log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Peak resident memory of the broker process so far (`VmHWM` in
    /// `/proc/<pid>/status`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the broker's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM");
        kib * 1024
    }

    /// Sends SIGSTOP and returns once every thread of the broker is
    /// stopped (`kill` only queues the signal: a busy thread may serve a
    /// few more requests before it stops). Panics after 10 s.
    pub fn pause(&self) {
        let pid = self.pid();
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).expect("SIGSTOP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if all_threads_stopped(pid) {
                return;
            }
            assert!(Instant::now() < deadline, "broker {pid} did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends SIGCONT (after [`TestBroker::pause`]).
    pub fn resume(&self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGCONT).expect("SIGCONT");
    }

    /// Sends SIGTERM and waits for a clean exit; panics if it fails.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
            let status = child.wait().expect("wait");
            assert!(
                status.success(),
                "broker exited with {status}; log: {}",
                self.log()
            );
        }
    }

    /// Waits up to `timeout` for the broker to exit on its own; its exit
    /// status, or `None` if it is still running (or was stopped already).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut()?.try_wait().expect("try_wait");
            if let Some(status) = status {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker with SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data directory and address.
    ///
    /// Another process may have taken one of its ports in the meantime (an
    /// outgoing connection's local port, say); the start is then tried
    /// again for a while.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        let mut tries = 0;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if tries < 40 && e.contains("Address already in use") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Starts the broker again on the same data directory, listening on
    /// `addr` instead of its old address (a broker moved to another host
    /// or port of a bootstrap list).
    pub fn restart_at(&mut self, addr: SocketAddr) {
        self.addr = addr;
        self.restart();
    }

    /// A new connection.
    pub async fn connect(&self) -> Connection {
        Connection::connect(self.addr).await.expect("connect")
    }
}

/// `GET path` from an HTTP server (one request, `Connection: close`): the
/// status code and the body. Panics on I/O errors or a malformed answer.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the HTTP endpoint");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status code");
    (status, body.to_owned())
}

/// The value of the sample `series` (name and labels exactly as written in
/// the exposition, e.g. `sluice_requests_total{api="Produce"}`), if present.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

impl TestBroker {
    /// Keeps the broker's directory when `SLUICE_KEEP_FAILED` is set.
    fn keep_if_asked(&mut self) {
        if std::env::var_os("SLUICE_KEEP_FAILED").is_some() {
            if let Some(tmp) = self._tmp.take() {
                eprintln!("kept broker directory {}", tmp.keep().display());
            }
        }
    }
}

impl Drop for TestBroker {
    /// Kills the broker and removes its directory, unless the test is
    /// failing and `SLUICE_KEEP_FAILED` is set: then the directory (data and
    /// `data.log`) is kept and its path printed, for a post-mortem.
    ///
    /// A broker thread that panicked at any time of the test (the log holds
    /// Rust's panic message) fails the test here, even when the broker
    /// carried on: a panic is a defect whatever input caused it.
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            if let Some(at) = lines
                .iter()
                .position(|l| l.starts_with("thread '") && l.contains(" panicked at "))
            {
                let excerpt = lines[at..lines.len().min(at + 4)].join("\n");
                let dir = self.data_dir.display().to_string();
                self.keep_if_asked();
                panic!("the broker at {dir} panicked during the test:\n{excerpt}");
            }
        } else {
            self.keep_if_asked();
        }
    }
}

/// Creates a topic, asserting success.
pub async fn create_topic(conn: &mut Connection, name: &str, partitions: u32, config: TopicConfig) {
    let resp = conn
        .create_topics(vec![NewTopic {
            name: name.to_owned(),
            partitions,
            config,
            replication_factor: None,
        }])
        .await
        .expect("create_topics");
    assert_eq!(
        resp.results[0].error_code,
        ErrorCode::None,
        "{:?}",
        resp.results[0].message
    );
}

/// A batch of records whose values are the given strings, stamped now.
///
/// Not a fixed old time: a replica that restarts seals its active segment
/// at its next append when the records' timestamps are older than the
/// segment age, and the default 7-day retention then deletes it, so a
/// test would see acknowledged records vanish for a reason it did not
/// mean to test.
pub fn batch_of(values: &[&str]) -> BytesMut {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut b = BatchBuilder::new();
    for v in values {
        b.push(&NewRecord {
            timestamp: now,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

/// A batch of `n` records of `len` bytes, values `"{tag}:{i}"` padded.
pub fn batch_sized(tag: &str, n: usize, len: usize) -> BytesMut {
    batch_sized_at(tag, n, len, 1_700_000_000_000)
}

/// [`batch_sized`] with every record stamped now: retention by age keeps
/// it (fixed old timestamps let a 7-day retention delete a sealed segment).
pub fn batch_sized_now(tag: &str, n: usize, len: usize) -> BytesMut {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    batch_sized_at(tag, n, len, now)
}

/// Records stamped `first`, `first + 1`, ...
fn batch_sized_at(tag: &str, n: usize, len: usize, first: i64) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut v = format!("{tag}:{i}").into_bytes();
        v.resize(len.max(v.len()), b'-');
        b.push(&NewRecord {
            timestamp: first + i as i64,
            key: None,
            value: Some(&v),
            headers: &[],
        });
    }
    b.finish()
}

/// The segment files (`*.log`) in the directory of a single broker's
/// partition `name` (`<topic>-<partition>`) under `data_dir`.
pub fn segment_file_count(data_dir: &std::path::Path, name: &str) -> usize {
    std::fs::read_dir(data_dir.join(name))
        .expect("partition directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count()
}

/// Decodes fetched records (verifying each batch's CRC) into
/// `(offset, value)`, skipping records below `from`.
pub fn decode_records(records: &Bytes, from: u64) -> Vec<(u64, Bytes)> {
    let mut bytes = records.clone();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let batch = RecordBatch::split_first(&mut bytes).expect("valid batch from the broker");
        for r in batch.records() {
            let r = r.expect("record");
            if r.offset as u64 >= from {
                out.push((r.offset as u64, r.value.unwrap_or_default()));
            }
        }
    }
    out
}

/// Reads a partition from `from` to its high watermark.
pub async fn read_partition(
    conn: &mut Connection,
    topic: &str,
    partition: u32,
    from: u64,
) -> Vec<(u64, Bytes)> {
    use sluice_protocol::wire::fetch::FetchPartition;
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let resp = conn
            .fetch(
                0,
                0,
                4 << 20,
                vec![FetchPartition {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    max_bytes: 1 << 20,
                }],
            )
            .await
            .expect("fetch");
        let p = &resp[0];
        assert_eq!(p.error_code, ErrorCode::None);
        let got = decode_records(&p.records, offset);
        match got.last() {
            Some((last, _)) => offset = last + 1,
            None => {
                assert_eq!(
                    offset, p.high_watermark,
                    "no records before the high watermark"
                );
                return out;
            }
        }
        out.extend(got);
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in
/// `/proc/<pid>/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // a thread that just exited
        };
        // The state follows the command name's closing parenthesis.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state != Some("T") {
            return false;
        }
        any = true;
    }
    any
}
