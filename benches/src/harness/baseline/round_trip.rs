//! The `round trip` row: a bare request/response server at W4's rate.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::{ID, ROUND_TRIP, loopback_algorithm, thread_cpu_precise};
use crate::harness::broker_proc::CpuTimes;
use crate::harness::report::{Latency, Moved, WorkloadResult, params};

/// How long the request/response measurement runs (after its warm-up).
pub const ROUND_TRIP_MAX_TIME: Duration = Duration::from_secs(10);
/// Exchanges sent before the request/response measurement starts recording.
const ROUND_TRIP_WARMUP: u64 = 1_000;
/// Bytes a round-trip request carries beyond one record value: about what
/// a W4 produce request adds around its record (frame, request and batch
/// headers).
pub const ROUND_TRIP_OVERHEAD: usize = 128;

/// What the request/response measurement saw.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    /// Exchanges recorded (after the warm-up).
    pub exchanges: u64,
    /// Bytes of each request (and of each response).
    pub size: usize,
    /// Seconds the recorded exchanges took.
    pub seconds: f64,
    /// Round-trip times, from each request's write to its whole response.
    pub latency: Latency,
    /// Times from each request's scheduled send time (the pacing's, as W4
    /// counts) to its whole response.
    pub from_schedule: Latency,
    /// CPU seconds of the echo server's thread over the recorded
    /// exchanges (`CLOCK_THREAD_CPUTIME_ID`, not 10 ms ticks).
    pub server_cpu_s: f64,
}

impl RoundTrip {
    /// The echo server's CPU per exchange, in µs.
    pub fn server_cpu_us_per_exchange(&self) -> f64 {
        if self.exchanges == 0 {
            return 0.0;
        }
        self.server_cpu_s * 1e6 / self.exchanges as f64
    }
}

/// Request/response round trips of `size` bytes each way over loopback, at
/// `rate` per second for `time` (after [`ROUND_TRIP_WARMUP`] unrecorded
/// ones), against an echo server on a tokio current-thread runtime of its
/// own thread.
pub fn round_trip_limit(size: usize, rate: u64, time: Duration) -> anyhow::Result<RoundTrip> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let size = size.max(1);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let recorded = ((time.as_secs_f64() * rate.max(1) as f64) as u64).max(1);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    // The server's thread CPU is read when the client says the recorded
    // part starts (one byte on a channel) and when the connection ends.
    let (start_tx, start_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || -> anyhow::Result<f64> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let (mut conn, _) = listener.accept().await?;
            conn.set_nodelay(true)?;
            loopback_algorithm(&conn);
            let mut buf = vec![0u8; size];
            let mut cpu = None;
            loop {
                match conn.read_exact(&mut buf).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e.into()),
                }
                if cpu.is_none() && start_rx.try_recv().is_ok() {
                    cpu = Some(thread_cpu_precise()?);
                }
                conn.write_all(&buf).await?;
            }
            let end = thread_cpu_precise()?;
            Ok(end - cpu.unwrap_or(end))
        })
    });
    let mut sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    loopback_algorithm(&sock);
    let mut request = vec![0u8; size];
    crate::XorShift::new(13).fill(&mut request);
    let mut response = vec![0u8; size];
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut from_schedule = hist.clone();
    // Sleep to the microsecond, as W4's sender does, rather than the
    // default 50 µs timer slack (the caller's slack is put back after).
    let slack = nix::sys::prctl::get_timerslack().ok();
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut started = Instant::now();
    let mut next = Instant::now();
    for i in 0..ROUND_TRIP_WARMUP + recorded {
        if i == ROUND_TRIP_WARMUP {
            // Before this request is written: the server reads the signal
            // after reading it, so its CPU counts exactly the recorded ones.
            let _ = start_tx.send(());
            started = Instant::now();
        }
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        sock.write_all(&request)?;
        sock.read_exact(&mut response)?;
        if i >= ROUND_TRIP_WARMUP {
            hist.saturating_record(sent.elapsed().as_nanos().max(1) as u64);
            from_schedule.saturating_record(next.elapsed().as_nanos().max(1) as u64);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(slack) = slack.and_then(|s| u64::try_from(s).ok()) {
        let _ = nix::sys::prctl::set_timerslack(slack);
    }
    drop(sock);
    let server_cpu_s = server
        .join()
        .map_err(|_| anyhow::anyhow!("echo server panicked"))??;
    if response != request {
        bail!("the echo server answered other bytes than were sent");
    }
    Ok(RoundTrip {
        exchanges: recorded,
        size,
        seconds,
        latency: Latency::from_histogram(&hist),
        from_schedule: Latency::from_histogram(&from_schedule),
        server_cpu_s,
    })
}

pub(super) fn round_trip_row(rt: &RoundTrip, rate: u64) -> WorkloadResult {
    let moved = Moved {
        records: rt.exchanges,
        value_bytes: rt.exchanges * rt.size as u64,
        batch_bytes: rt.exchanges * rt.size as u64,
    };
    let mut r = WorkloadResult::new(
        ID,
        ROUND_TRIP,
        params(&[
            ("request_bytes", json!(rt.size)),
            ("response_bytes", json!(rt.size)),
            ("rate", json!(rate)),
            ("server", json!("echo, tokio current-thread runtime")),
        ]),
        moved,
        rt.seconds,
        CpuTimes::default(),
    );
    r.latency = Some(rt.latency.clone());
    r.detail(
        "server_cpu_us_per_exchange",
        rt.server_cpu_us_per_exchange(),
    );
    let l = &rt.from_schedule;
    r.detail("from_schedule_p50_us", l.p50_us);
    r.detail("from_schedule_p99_us", l.p99_us);
    r.detail("from_schedule_p999_us", l.p999_us);
    r.detail("from_schedule_max_us", l.max_us);
    r
}
