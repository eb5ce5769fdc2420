//! The zero-copy probe: `strace` attached to a running broker, counting the
//! segment-file bytes that leave by `sendfile(2)` and the `read`-family
//! calls that return segment bytes into user space.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `strace` runs here. Without it a probe test is skipped with a
/// message, unless `SLUICE_REQUIRE_STRACE` is set, which makes it fail.
pub fn strace_available() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SLUICE_REQUIRE_STRACE").is_err(),
            "strace is required (SLUICE_REQUIRE_STRACE is set) but not installed"
        );
        eprintln!("SKIPPED: strace is not installed; the zero-copy probe did not run");
    }
    ok
}

/// What the broker did with segment files while traced.
#[derive(Debug, Default)]
pub struct Trace {
    /// Bytes `sendfile` moved out of segment files.
    pub sendfile_bytes: u64,
    /// `read`-family calls that returned segment bytes (the strace lines).
    pub segment_reads: Vec<String>,
}

/// `strace` attached to every thread of a process.
#[derive(Debug)]
pub struct SegmentTrace {
    strace: Child,
    out: tempfile::NamedTempFile,
}

impl SegmentTrace {
    /// Attaches to `pid` and returns once strace reports it attached.
    pub async fn attach(pid: u32) -> Self {
        let (strace, out) =
            spawn_attached(pid, "trace=read,pread64,readv,preadv,preadv2,sendfile").await;
        SegmentTrace { strace, out }
    }

    /// Detaches (after a short grace for the last calls) and sums up.
    pub async fn finish(self) -> Trace {
        let text = stop(self.strace, &self.out).await;
        let mut trace = Trace::default();
        for line in text.lines() {
            let ret = line
                .rsplit_once(" = ")
                .and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok());
            if line.contains("sendfile(") && line.contains(".log>") {
                trace.sendfile_bytes += ret.unwrap_or(0).max(0) as u64;
            } else if (line.contains("read(")
                || line.contains("read64(")
                || line.contains("readv")
                || line.contains("preadv"))
                && line.contains(".log>")
                && ret.unwrap_or(0) > 0
            {
                trace.segment_reads.push(line.to_owned());
            }
        }
        trace
    }
}

/// `strace` of chosen system calls of every thread of a process, in the
/// order the kernel saw them (one line each, file descriptors decoded).
#[derive(Debug)]
pub struct CallTrace {
    strace: Child,
    out: tempfile::NamedTempFile,
}

impl CallTrace {
    /// Attaches to `pid`, tracing the calls `filter` names (strace's `-e`
    /// syntax, e.g. `trace=sendto,sendfile`); returns once attached.
    pub async fn attach(pid: u32, filter: &str) -> Self {
        let (strace, out) = spawn_attached(pid, filter).await;
        CallTrace { strace, out }
    }

    /// Detaches (after a short grace for the last calls) and returns the
    /// traced lines.
    pub async fn finish(self) -> Vec<String> {
        let text = stop(self.strace, &self.out).await;
        text.lines().map(str::to_owned).collect()
    }
}

async fn spawn_attached(pid: u32, filter: &str) -> (Child, tempfile::NamedTempFile) {
    let out = tempfile::NamedTempFile::new().expect("trace file");
    let mut strace = Command::new("strace")
        .args(["-f", "-y", "-e", filter, "-o"])
        .arg(out.path())
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace");
    // Wait until strace has attached to every thread.
    let stderr = strace.stderr.take().expect("strace stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("strace attached");
    tokio::time::sleep(Duration::from_millis(300)).await;
    (strace, out)
}

/// Stops strace (after a short grace for the last calls) and returns its
/// output.
async fn stop(mut strace: Child, out: &tempfile::NamedTempFile) -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT to strace");
    strace.wait().expect("strace exit");
    std::fs::read_to_string(out.path()).expect("trace file")
}
