//! `--baseline`: the machine's own limits, measured in the same run as the
//! workloads and with their sizes, so that each throughput row can be set
//! against what the hardware and kernel allow:
//!
//! The two loopback limits are the fastest of [`PASSES`] passes.
//!
//! - **sendfile** (W2, W6): `sendfile(2)` from a warm file (written just
//!   before, so in the page cache) to a loopback TCP socket in chunks of
//!   `--fetch-bytes`; a reader thread reads into a 1 MiB buffer and
//!   discards. Also the sending thread's CPU seconds per GiB.
//! - **recv+pwrite** (W1): a sender writes `--batch-bytes` chunks to a
//!   loopback TCP socket; the receiver reads each chunk whole and `pwrite`s
//!   it at the end of a file (page cache, no sync), reserving the file's
//!   blocks [`PREALLOCATE_BYTES`] ahead as the broker does.
//! - **dsync write** (W5): sequential `O_DSYNC` writes of `--batch-bytes`
//!   appending to a new file — the disk's own synchronous write rate, like
//!   `dd oflag=dsync`. It stops after [`DSYNC_LIMIT`] if the W5 amount takes
//!   longer.
//! - **round trip** (W4): the least a request/response server costs on this
//!   machine. A client thread sends a request of `--value-len` +
//!   [`ROUND_TRIP_OVERHEAD`] bytes at W4's `--rate` (blocking socket, paced
//!   like W4's sender) to a bare echo server — one thread running a tokio
//!   current-thread runtime, which reads each request whole and writes it
//!   back — for W4's `--duration`, at most [`ROUND_TRIP_MAX_TIME`].
//!   Reported: the round trips' latency and the server thread's CPU per
//!   exchange. A W4 record costs the broker two such exchanges (the produce
//!   request and its answer, the consumer's fetch and its response) plus
//!   the append, so twice that CPU is a floor under W4's broker CPU per
//!   record that no broker on this machine goes below without fewer
//!   requests per record. The latency is also taken as W4 takes it, from
//!   each request's *scheduled* send time (`from_schedule_*` details): a
//!   sender thread that wakes late, or a machine that stops running its
//!   threads for a while, counts against every exchange due meanwhile. That
//!   is the least W4's percentiles can be on this machine: a broker that
//!   did no work at all would still show them.
//! - **cpu gaps** (W4, W7): one thread per CPU this process may run on,
//!   each pinned to its CPU, reads the monotonic clock in a loop for
//!   [`CPU_GAP_TIME`] with nothing else of the run going on, and counts the
//!   stretches of at least [`CPU_GAP_MIN`] between two readings: time the
//!   CPU did not run the thread at all. The guest's scheduler gives such a
//!   thread the whole CPU, so on a virtual machine what it misses was taken
//!   by the host (or by interrupts). Any thread of the broker or the
//!   harness due to run in such a stretch waits it out, so it is a floor
//!   under W4's slowest records.
//!
//! The files go in the directory the broker's data directory is in (the
//! same file system), and are removed afterwards (unlinking a file also
//! drops its dirty pages without writing them back). Sizes: the workloads'
//! record count × value length bytes in total. Rates are MB/s of raw bytes
//! (10^6); a workload's ratio to its limit divides the *record batch* bytes
//! it moved per second (what the broker receives, stores and sends) by it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

mod cpu_gaps;
mod round_trip;

use cpu_gaps::cpu_gaps_row;
pub use cpu_gaps::{CPU_GAP_MIN, CPU_GAP_TIME, CpuGaps, cpu_gaps};
use round_trip::round_trip_row;
pub use round_trip::{ROUND_TRIP_MAX_TIME, ROUND_TRIP_OVERHEAD, RoundTrip, round_trip_limit};

use super::bench::Bench;
use super::broker_proc::CpuTimes;
use super::report::{Moved, WorkloadResult, params};

/// Longest the synchronous-write measurement runs.
pub const DSYNC_LIMIT: Duration = Duration::from_secs(15);

/// Passes of the loopback measurements; the fastest is the limit (the
/// synchronous-write measurement runs once: it is long and its rate is
/// steady).
pub const PASSES: usize = 3;

/// Gives a loopback socket of a measurement the congestion control the
/// broker gives its loopback connections by default (`tcp_congestion =
/// "auto"`), so that a limit is not held down by a pacing system default
/// the broker does not use; left as it is if that fails.
fn loopback_algorithm(socket: &impl std::os::fd::AsFd) {
    let _ = sluice_broker::tcp::set_algorithm(socket, sluice_broker::tcp::LOOPBACK_ALGORITHM);
}

/// The fastest of `PASSES` runs of `f`.
fn best_of(mut f: impl FnMut() -> anyhow::Result<Limit>) -> anyhow::Result<Limit> {
    let mut best: Option<Limit> = None;
    for _ in 0..PASSES {
        let l = f()?;
        if best.is_none_or(|b| l.mb_per_sec() > b.mb_per_sec()) {
            best = Some(l);
        }
    }
    best.context("no pass")
}

/// How far ahead of its writes the recv+pwrite receiver reserves blocks
/// (`fallocate` keeping the size): the broker's active segment's step.
pub use sluice_broker::log::PREALLOCATE_BYTES;

/// The workload id of baseline rows.
pub const ID: &str = "base";

/// Variant of the loopback sendfile row.
pub const SENDFILE: &str = "sendfile";
/// Variant of the socket-to-pwrite row.
pub const RECV_PWRITE: &str = "recv+pwrite";
/// Variant of the socket-to-pwrite row measured in turns with W1's paired
/// passes (each pass into a new file, all kept until the passes end), so
/// that the broker and the limit write into the same kind of page-cache
/// pages at the same moments.
pub const RECV_PWRITE_PAIRED: &str = "recv+pwrite paired";
/// Variant of the synchronous write row.
pub const DSYNC: &str = "dsync write";
/// Variant of the request/response row.
pub const ROUND_TRIP: &str = "round trip";

/// One measured limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Bytes moved.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// CPU of the thread doing the work (sender or writer).
    pub cpu: CpuTimes,
}

impl Limit {
    /// The bytes, seconds and CPU of `self` and `other` together.
    pub fn plus(&self, other: &Limit) -> Limit {
        Limit {
            bytes: self.bytes + other.bytes,
            seconds: self.seconds + other.seconds,
            cpu: CpuTimes {
                user: self.cpu.user + other.cpu.user,
                sys: self.cpu.sys + other.cpu.sys,
            },
        }
    }

    /// MB (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }
}

/// CPU times of the calling thread, from `/proc/thread-self/stat`.
fn thread_cpu() -> CpuTimes {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t = |i: usize| f.get(i)?.parse::<f64>().ok().map(|v| v / 100.0);
            Some(CpuTimes {
                user: t(11)?,
                sys: t(12)?,
            })
        })
        .unwrap_or_default()
}

/// CPU seconds of the calling thread, to the nanosecond.
fn thread_cpu_precise() -> anyhow::Result<f64> {
    use nix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).context("thread CPU clock")?;
    Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// A file of `total` bytes of pattern in `dir`, written in 1 MiB pieces
/// (so its pages are in the cache).
fn warm_file(dir: &Path, total: u64) -> anyhow::Result<(tempfile::NamedTempFile, u64)> {
    let mut f = tempfile::Builder::new()
        .prefix("baseline-sendfile-")
        .tempfile_in(dir)?;
    let mut chunk = vec![0u8; 1 << 20];
    crate::XorShift::new(11).fill(&mut chunk);
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(chunk.get(..n).unwrap_or_default())?;
        left -= n as u64;
    }
    f.flush()?;
    Ok((f, total))
}

/// Reads `conn` until EOF into a 1 MiB buffer; returns the bytes read.
fn drain(mut conn: TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Loopback `sendfile` of `total` bytes from a warm file in `chunk`-byte
/// calls to a reader that discards.
pub fn sendfile_limit(dir: &Path, total: u64, chunk: usize) -> anyhow::Result<Limit> {
    let (file, total) = warm_file(dir, total)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<(u64, Instant)> {
        let (conn, _) = listener.accept()?;
        let n = drain(conn)?;
        Ok((n, Instant::now()))
    });
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    loopback_algorithm(&sock);
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut offset: i64 = 0;
    while (offset as u64) < total {
        let want = (total - offset as u64).min(chunk.max(1) as u64) as usize;
        let mut sent_in_call = 0usize;
        while sent_in_call < want {
            match nix::sys::sendfile::sendfile(
                &sock,
                file.as_file(),
                Some(&mut offset),
                want - sent_in_call,
            ) {
                Ok(0) => bail!("sendfile sent nothing at {offset}"),
                Ok(n) => sent_in_call += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("sendfile"),
            }
        }
    }
    let cpu = thread_cpu().since(cpu);
    drop(sock);
    let (read, done) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    if read != total {
        bail!("reader got {read} of {total} bytes");
    }
    Ok(Limit {
        bytes: total,
        seconds: done.duration_since(started).as_secs_f64(),
        cpu,
    })
}

/// Loopback receive of `total` bytes in `chunk`-byte pieces, each
/// `pwrite`n at the end of a new file in `dir` as soon as it is whole. The
/// file is removed when the pass ends, so the next pass's writes land in
/// page-cache pages this one just gave back (see [`recv_pwrite_into`]).
pub fn recv_pwrite_limit(dir: &Path, total: u64, chunk: usize) -> anyhow::Result<Limit> {
    let file = new_pwrite_file(dir)?;
    recv_pwrite_into(&file, total, chunk)
}

/// A new, empty file in `dir` for [`recv_pwrite_into`], removed when dropped.
pub fn new_pwrite_file(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    Ok(tempfile::Builder::new()
        .prefix("baseline-pwrite-")
        .tempfile_in(dir)?)
}

/// The receive-and-write pass of [`recv_pwrite_limit`] into `file` (from
/// offset 0; the caller decides when the file goes). Kept files make every
/// pass write into page-cache pages the kernel has to hand out anew, as a
/// log that keeps what it stores does; on a virtual machine whose free
/// memory goes back to the host, those can cost many times more to fill
/// than pages just freed by removing a file (see docs/benchmarks.md).
pub fn recv_pwrite_into(
    file: &tempfile::NamedTempFile,
    total: u64,
    chunk: usize,
) -> anyhow::Result<Limit> {
    let chunk = chunk.max(1);
    let out = file.reopen()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> std::io::Result<(u64, Instant, CpuTimes)> {
        let (mut conn, _) = listener.accept()?;
        loopback_algorithm(&conn);
        let cpu = thread_cpu();
        let mut buf = vec![0u8; chunk];
        let mut at = 0u64;
        let mut reserved = 0u64;
        loop {
            // One whole chunk (or what is left before EOF), then one pwrite.
            let mut filled = 0;
            while filled < buf.len() {
                match conn.read(buf.get_mut(filled..).unwrap_or_default()) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                return Ok((at, Instant::now(), thread_cpu().since(cpu)));
            }
            let end = at + filled as u64;
            if end > reserved {
                // As the broker's active segment does: blocks reserved ahead,
                // so the writes skip the file system's block allocation.
                let ahead = end.div_ceil(PREALLOCATE_BYTES) * PREALLOCATE_BYTES;
                let _ = nix::fcntl::fallocate(
                    out.as_raw_fd(),
                    nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                    i64::try_from(reserved).unwrap_or(i64::MAX),
                    i64::try_from(ahead - reserved).unwrap_or(i64::MAX),
                );
                reserved = ahead;
            }
            out.write_all_at(buf.get(..filled).unwrap_or_default(), at)?;
            at = end;
        }
    });
    let mut data = vec![0u8; chunk];
    crate::XorShift::new(12).fill(&mut data);
    let mut sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    loopback_algorithm(&sock);
    let started = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk as u64) as usize;
        sock.write_all(data.get(..n).unwrap_or_default())?;
        left -= n as u64;
    }
    drop(sock);
    let (written, done, cpu) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    if written != total {
        bail!("receiver wrote {written} of {total} bytes");
    }
    Ok(Limit {
        bytes: total,
        seconds: done.duration_since(started).as_secs_f64(),
        cpu,
    })
}

/// Sequential `O_DSYNC` writes of `chunk` bytes appending to a new file in
/// `dir`, until `total` bytes or [`DSYNC_LIMIT`].
pub fn dsync_limit(dir: &Path, total: u64, chunk: usize) -> anyhow::Result<Limit> {
    let chunk = chunk.max(1);
    let path = dir.join(format!("baseline-dsync-{}", std::process::id()));
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_DSYNC.bits())
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut data = vec![0u8; chunk];
    crate::XorShift::new(13).fill(&mut data);
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut written = 0u64;
    let outcome = (|| -> anyhow::Result<()> {
        while written < total && started.elapsed() < DSYNC_LIMIT {
            let n = (total - written).min(chunk as u64) as usize;
            f.write_all(data.get(..n).unwrap_or_default())?;
            written += n as u64;
        }
        Ok(())
    })();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = thread_cpu().since(cpu);
    drop(f);
    let _ = std::fs::remove_file(&path);
    outcome?;
    Ok(Limit {
        bytes: written,
        seconds,
        cpu,
    })
}

/// Variant of the CPU gap row.
pub const CPU_GAPS: &str = "cpu gaps";

fn row(variant: &str, limit: &Limit, chunk: usize, total: u64, dir: &Path) -> WorkloadResult {
    let moved = Moved {
        records: 0,
        value_bytes: limit.bytes,
        batch_bytes: limit.bytes,
    };
    let mut r = WorkloadResult::new(
        ID,
        variant,
        params(&[
            ("chunk_bytes", json!(chunk)),
            ("total_bytes", json!(total)),
            ("dir", json!(dir.display().to_string())),
            ("passes", json!(if variant == DSYNC { 1 } else { PASSES })),
        ]),
        moved,
        limit.seconds,
        CpuTimes::default(),
    );
    let gib = limit.bytes as f64 / f64::from(1u32 << 30);
    if gib > 0.0 {
        r.detail("thread_cpu_s_per_gib", limit.cpu.total() / gib);
    }
    r
}

/// Measures the three limits with the sizes of W1/W2/W5 (from the run's
/// options) in the directory holding the broker's data, and adds them as
/// `base` rows to the results.
pub fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let dir = dir(bench)?;
    let o = &bench.opts;
    let total = o.records.unwrap_or(1_000_000) * o.value_len.unwrap_or(1024) as u64;
    let (batch, fetch) = (o.batch_bytes.max(1), o.fetch_bytes.max(1) as usize);

    eprintln!("baseline: loopback sendfile");
    let s = best_of(|| sendfile_limit(&dir, total, fetch))?;
    eprintln!("baseline: socket -> pwrite");
    let w = best_of(|| recv_pwrite_limit(&dir, total, batch))?;
    eprintln!("baseline: O_DSYNC writes");
    let d = dsync_limit(&dir, total, batch)?;
    eprintln!("baseline: request/response round trips");
    let rate = o.rate;
    let size = o.value_len.unwrap_or(1024) + ROUND_TRIP_OVERHEAD;
    let rt = round_trip_limit(size, rate, o.duration.min(ROUND_TRIP_MAX_TIME))?;
    eprintln!("baseline: CPU gaps");
    let gaps = cpu_gaps(CPU_GAP_TIME)?;
    bench.results.push(row(SENDFILE, &s, fetch, total, &dir));
    bench.results.push(row(RECV_PWRITE, &w, batch, total, &dir));
    bench.results.push(row(DSYNC, &d, batch, total, &dir));
    bench.results.push(round_trip_row(&rt, rate));
    bench.results.push(cpu_gaps_row(&gaps));
    Ok(())
}

/// Where the baseline's files go: the directory holding the broker's data
/// directory (the same file system), else the temporary directory.
pub fn dir(bench: &Bench) -> anyhow::Result<PathBuf> {
    let dir = bench
        .data_dir()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The row of the receive-and-write passes run in turns with W1's paired
/// passes (their sum).
pub fn paired_row(limit: &Limit, chunk: usize, passes: u64, dir: &Path) -> WorkloadResult {
    let mut r = row(RECV_PWRITE_PAIRED, limit, chunk, limit.bytes, dir);
    r.parameters.insert("passes".into(), json!(passes));
    r.parameters.insert(
        "files".into(),
        json!("new per pass, kept until W1's paired passes end"),
    );
    r
}

/// The baselines a workload row is compared with, in order of preference
/// (the first one the run measured is used): W1's paired passes against
/// the receive-and-write passes run in turns with them, other W1 rows
/// against the best receive-and-write pass; W2 and W6 against sendfile (on
/// either fetch path: the copy path is judged against the same limit), W5
/// against synchronous writes.
pub fn limits_for(workload: &str, variant: &str) -> &'static [&'static str] {
    match workload {
        "W1" if variant == "plain (paired)" || variant == "idempotent produce" => {
            &[RECV_PWRITE_PAIRED, RECV_PWRITE]
        }
        "W1" => &[RECV_PWRITE],
        "W2" | "W6" => &[SENDFILE],
        "W5" => &[DSYNC],
        _ => &[],
    }
}

/// Batch bytes per second of a row, in MB/s.
pub fn batch_mb_per_sec(r: &WorkloadResult) -> f64 {
    if r.seconds > 0.0 {
        r.batch_bytes as f64 / 1e6 / r.seconds
    } else {
        0.0
    }
}

/// Records on every W1/W2/W5/W6 row its ratio to its limit (details
/// `baseline`, `baseline_mb_per_sec`, `of_baseline`), and on every W4 row
/// the CPU floor of its two exchanges per record (`round_trip_floor_cpu_us`,
/// twice the bare echo server's CPU per exchange), when the run measured
/// baselines.
pub fn attach_ratios(results: &mut [WorkloadResult]) {
    let limits: Vec<(String, f64)> = results
        .iter()
        .filter(|r| r.workload == ID)
        .map(|r| (r.variant.clone(), r.mb_per_sec))
        .collect();
    let round_trip = results
        .iter()
        .find(|r| r.workload == ID && r.variant == ROUND_TRIP)
        .map(|r| r.details.clone());
    let of_round_trip = |name: &str| round_trip.as_ref().and_then(|d| d.get(name)?.as_f64());
    let round_trip_cpu = of_round_trip("server_cpu_us_per_exchange");
    // One bare exchange from its scheduled time: what a W4 record's latency
    // cannot go below here (W4's own record takes two).
    let latency_floor: Vec<(&str, f64)> = ["p50", "p99", "p999"]
        .into_iter()
        .filter_map(|p| Some((p, of_round_trip(&format!("from_schedule_{p}_us"))?)))
        .collect();
    let longest_gap = results
        .iter()
        .find(|r| r.workload == ID && r.variant == CPU_GAPS)
        .and_then(|r| r.details.get("longest_gap_us")?.as_f64());
    for r in results.iter_mut() {
        if let (Some(us), true) = (round_trip_cpu, r.workload == "W4") {
            // A W4 record: the produce exchange and the fetch exchange.
            r.detail("round_trip_floor_cpu_us", 2.0 * us);
        }
        if r.workload == "W4" {
            for (p, us) in &latency_floor {
                r.detail(&format!("round_trip_floor_{p}_us"), *us);
            }
            if let Some(us) = longest_gap {
                r.detail("cpu_longest_gap_us", us);
            }
        }
        let Some((name, limit)) = limits_for(&r.workload, &r.variant)
            .iter()
            .find_map(|name| limits.iter().find(|(v, _)| v == name))
        else {
            continue;
        };
        if *limit <= 0.0 {
            continue;
        }
        let ratio = batch_mb_per_sec(r) / limit;
        r.detail("baseline", name.as_str());
        r.detail("baseline_mb_per_sec", *limit);
        r.detail("of_baseline", ratio);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly on purpose
mod tests;
