//! A fetch of a large range that is not in the page cache must not stall
//! the broker's reactor: while one client reads 256 MiB of cold log, a
//! second client's requests keep being answered promptly.
//!
//! The broker runs with one runtime worker thread (`runtime_threads = 1`),
//! so a worker that waited for the disk inside `sendfile` (or a `pread`)
//! would hold up every other connection, and with `hot_tail_bytes = 0` so
//! that every range is checked for residency. The log is written, written
//! back (`fdatasync`) and dropped from the page cache with
//! `posix_fadvise(DONTNEED)`; then a cold reader fetches it from offset 0
//! to the end while a pinger on its own thread sends a Metadata request
//! every millisecond and records each round trip. Where it can (root, a
//! cgroup-v1 `blkio` hierarchy) the test slows the broker's disk reads down
//! to 64 MiB/s, so that a reactor waiting for them shows whatever the
//! machine's disk. The test asserts the
//! largest round trip seen while the cold reader ran stays below
//! [`MAX_PING`], that the reader got every record, and that the cold
//! responses were sent off the reactor (`offloaded_sends`).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_protocol::batch::BatchIter;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic};

/// Bytes of cold log.
const COLD_BYTES: usize = 256 << 20;
/// Records per produced batch, and their value size (1 MiB batches).
const PER_BATCH: usize = 1024;
const VALUE_LEN: usize = 1024;
/// Largest round trip of the pinger allowed while the cold read runs. A
/// reactor that waits for the disk stalls for the time it takes to read a
/// socket buffer's worth of cold pages per `sendfile`, many times over; an
/// unloaded Metadata round trip takes well under a millisecond.
const MAX_PING: Duration = Duration::from_millis(100);

/// Reads of the broker from the data disk are limited to this many bytes
/// per second where the test can (see [`SlowReads`]).
const SLOW_READ_BPS: u64 = 64 << 20;

/// The cgroup-v1 `blkio` hierarchy.
const BLKIO: &str = "/sys/fs/cgroup/blkio";

/// A slow device for one process: a cgroup-v1 `blkio` group that limits its
/// reads from the disk holding the data directory to [`SLOW_READ_BPS`].
/// Only where the test may create one (root, a v1 `blkio` hierarchy);
/// elsewhere the disk runs at its own speed, which on a VM whose host
/// caches the disk may be too fast for a stalled reactor to show. Dropping
/// it moves the process back and removes the group.
struct SlowReads {
    dir: std::path::PathBuf,
}

impl SlowReads {
    fn new(pid: u32, data_dir: &Path) -> Option<SlowReads> {
        let dev = nix::sys::stat::stat(data_dir).ok()?.st_dev;
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        let dir = Path::new(BLKIO).join(format!("sluice-cold-read-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let slow = SlowReads { dir };
        let limit = format!("{major}:{minor} {SLOW_READ_BPS}");
        std::fs::write(slow.dir.join("blkio.throttle.read_bps_device"), limit).ok()?;
        std::fs::write(slow.dir.join("cgroup.procs"), pid.to_string()).ok()?;
        Some(slow)
    }
}

impl Drop for SlowReads {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write(Path::new(BLKIO).join("cgroup.procs"), pid);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes back and drops from the page cache every segment of `dir`.
fn drop_from_cache(dir: &Path) -> u64 {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        file.sync_data().unwrap();
        nix::fcntl::posix_fadvise(
            file.as_raw_fd(),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .unwrap();
        bytes += file.metadata().unwrap().len();
    }
    bytes
}

/// Sends a Metadata request every millisecond until `stop`; returns the
/// round trips that started while `measuring` was set.
fn pinger(
    addr: std::net::SocketAddr,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut conn = sluice_client::Connection::connect(addr).await.unwrap();
        conn.metadata(Some(vec!["cold".into()])).await.unwrap();
        ready.send(()).unwrap();
        let mut rtts = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Acquire) {
            tick.tick().await;
            let counted = measuring.load(Ordering::Acquire);
            let sent = Instant::now();
            let m = conn.metadata(Some(vec!["cold".into()])).await.unwrap();
            let rtt = sent.elapsed();
            assert_eq!(m.topics.len(), 1);
            if counted {
                rtts.push(rtt);
            }
        }
        rtts
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_read_does_not_stall_other_clients() {
    let config = std::env::temp_dir().join(format!("sluice-cold-{}.toml", std::process::id()));
    std::fs::write(&config, "hot_tail_bytes = 0\nruntime_threads = 1\n").unwrap();
    let broker = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let _ = std::fs::remove_file(&config);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "cold", 1, TopicConfig::default()).await;
    let batch = batch_sized("c", PER_BATCH, VALUE_LEN);
    let batches = COLD_BYTES / batch.len();
    for _ in 0..batches {
        let r = conn
            .produce(Acks::Leader, 5000, &[("cold", 0, &batch)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    }
    let records = (batches * PER_BATCH) as u64;
    let dropped = drop_from_cache(&broker.data_dir.join("cold-0"));
    assert!(dropped >= (batches * batch.len()) as u64);

    let slow = SlowReads::new(broker.pid(), &broker.data_dir);
    if slow.is_none() {
        eprintln!("note: no blkio cgroup to slow the disk down; the cold read runs at disk speed");
    }

    let (measuring, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let ping = {
        let (addr, measuring, stop) = (broker.addr, Arc::clone(&measuring), Arc::clone(&stop));
        std::thread::spawn(move || pinger(addr, measuring, stop, ready_tx))
    };
    ready.recv().unwrap();

    // The cold reader: from offset 0 to the end, 64 MiB per fetch.
    let mut reader = broker.connect().await;
    measuring.store(true, Ordering::Release);
    let started = Instant::now();
    let mut next = 0u64;
    while next < records {
        let r = reader
            .fetch(
                0,
                1,
                64 << 20,
                vec![FetchPartition {
                    topic: "cold".into(),
                    partition: 0,
                    offset: next,
                    max_bytes: 64 << 20,
                }],
            )
            .await
            .unwrap();
        assert_eq!(r[0].error_code, ErrorCode::None);
        let before = next;
        for b in BatchIter::new(&r[0].records) {
            let (header, _) = b.unwrap();
            next = next.max(header.next_offset() as u64);
        }
        assert!(next > before, "no progress at offset {before}");
    }
    let read_for = started.elapsed();
    measuring.store(false, Ordering::Release);
    stop.store(true, Ordering::Release);
    let rtts = ping.join().unwrap();
    drop(slow);
    assert_eq!(next, records);
    // With the pinger's and the producer's connections open, the cold
    // responses were sent from a blocking thread, not the reactor.
    let stats = conn.stats().await.unwrap();
    let offloaded = stats
        .counters
        .iter()
        .find(|c| c.name == "offloaded_sends")
        .map_or(0, |c| c.value);
    assert!(
        offloaded >= 4,
        "{offloaded} offloaded sends for {} MiB",
        dropped >> 20
    );

    let max = rtts.iter().max().copied().unwrap_or_default();
    let mut sorted = rtts.clone();
    sorted.sort();
    let p99 = sorted
        .get(sorted.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default();
    eprintln!(
        "cold read of {} MiB took {read_for:?}; {} pings, p99 {p99:?}, max {max:?}",
        dropped >> 20,
        rtts.len()
    );
    assert!(
        rtts.len() >= 10,
        "too few pings during the cold read ({}; it took {read_for:?})",
        rtts.len()
    );
    assert!(
        max < MAX_PING,
        "a round trip took {max:?} during the cold read (p99 {p99:?}, {} pings)",
        rtts.len()
    );
}
