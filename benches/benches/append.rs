//! Benchmark group "append": `PartitionLog::append` of one batch against a raw
//! `pwrite(2)` of the same bytes at the end of a plain file on the same file system, plus
//! `validate` and `verify_crc` alone on that batch (the CPU part of an append).
//!
//! Both writers fill the page cache (no fsync: `FlushPolicy::Never`). To keep disk use
//! bounded, each starts over every [`ROUND_BYTES`]: the log directory (or the plain file)
//! is deleted and recreated, outside the timed part (`iter_custom`). At most one round's
//! data (about 1 GiB, plus the log's preallocated indexes) is on disk at any time.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice_bench::random_batch;
use sluice_broker::log::{LogConfig, PartitionLog};
use sluice_protocol::batch::{validate, verify_crc};

/// Bytes written to one log or file before it is deleted and recreated.
const ROUND_BYTES: u64 = 1 << 30;

/// Size of each record value.
const VALUE_LEN: usize = 1024;

/// Something the batch is written to, restarted every [`ROUND_BYTES`].
trait Sink {
    /// Deletes what was written and starts afresh (untimed).
    fn reset(&mut self);
    /// Writes the batch at the end (timed).
    fn write(&mut self, batch: &mut [u8]);
    /// Bytes written since the last reset.
    fn written(&self) -> u64;
}

/// A partition log with the default configuration (1 GiB segments, so a round never
/// rolls; `FlushPolicy::Never`).
struct LogSink {
    root: PathBuf,
    round: u64,
    log: Option<PartitionLog>,
    written: u64,
}

impl LogSink {
    fn new(root: &Path) -> Self {
        let mut sink = LogSink {
            root: root.to_owned(),
            round: 0,
            log: None,
            written: 0,
        };
        sink.reset();
        sink
    }

    fn dir(&self) -> PathBuf {
        self.root.join(format!("log-{}", self.round))
    }
}

impl Sink for LogSink {
    fn reset(&mut self) {
        if self.log.take().is_some() {
            std::fs::remove_dir_all(self.dir()).expect("remove log directory");
        }
        self.round += 1;
        let (log, _report) =
            PartitionLog::open(self.dir(), LogConfig::default()).expect("open partition log");
        self.log = Some(log);
        self.written = 0;
    }

    fn write(&mut self, batch: &mut [u8]) {
        let log = self.log.as_ref().expect("log is open");
        black_box(log.append(batch).expect("append"));
        self.written += batch.len() as u64;
    }

    fn written(&self) -> u64 {
        self.written
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if self.log.take().is_some() {
            // Best effort: the temporary directory goes away anyway.
            let _ = std::fs::remove_dir_all(self.dir());
        }
    }
}

/// A plain file written with `pwrite(2)` at its end.
struct RawSink {
    path: PathBuf,
    file: Option<File>,
    written: u64,
}

impl RawSink {
    fn new(root: &Path) -> Self {
        let mut sink = RawSink {
            path: root.join("raw.dat"),
            file: None,
            written: 0,
        };
        sink.reset();
        sink
    }
}

impl Drop for RawSink {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Best effort: the temporary directory goes away anyway.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Sink for RawSink {
    fn reset(&mut self) {
        if self.file.take().is_some() {
            std::fs::remove_file(&self.path).expect("remove raw file");
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&self.path)
            .expect("create raw file");
        self.file = Some(file);
        self.written = 0;
    }

    fn write(&mut self, batch: &mut [u8]) {
        let file = self.file.as_ref().expect("file is open");
        file.write_all_at(black_box(batch), self.written)
            .expect("pwrite");
        self.written += batch.len() as u64;
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// Writes `batch` `iters` times to `sink`, timing only the writes: whenever the next
/// write would pass [`ROUND_BYTES`], the clock stops while the sink restarts.
fn timed_writes(sink: &mut impl Sink, batch: &mut [u8], iters: u64) -> Duration {
    let len = batch.len() as u64;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        if sink.written() + len > ROUND_BYTES {
            sink.reset();
        }
        let room = ((ROUND_BYTES - sink.written()) / len).max(1);
        let n = room.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            sink.write(batch);
        }
        total += start.elapsed();
        done += n;
    }
    total
}

fn append(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, records) in [("64KiB", 64), ("1MiB", 1024)] {
        let batch = random_batch(records as u64, records, VALUE_LEN);
        group.throughput(Throughput::Bytes(batch.len() as u64));

        // `append` rewrites the base offsets in place; the batch stays valid, so the
        // same buffer is appended again and again.
        let mut buf = batch.to_vec();
        let dir = tmp.path().join(label);
        std::fs::create_dir_all(&dir).expect("create benchmark directory");
        let mut log = LogSink::new(&dir);
        group.bench_function(BenchmarkId::new("partition_log", label), |b| {
            b.iter_custom(|iters| timed_writes(&mut log, &mut buf, iters));
        });
        drop(log);

        let mut raw = RawSink::new(&dir);
        group.bench_function(BenchmarkId::new("raw_pwrite", label), |b| {
            b.iter_custom(|iters| timed_writes(&mut raw, &mut buf, iters));
        });
        drop(raw);

        group.bench_function(BenchmarkId::new("validate", label), |b| {
            b.iter(|| validate(black_box(&batch)).expect("valid batch"));
        });
        group.bench_function(BenchmarkId::new("verify_crc", label), |b| {
            b.iter(|| verify_crc(black_box(&batch)).expect("valid batch"));
        });
    }
    group.finish();
}

/// What `criterion_group!` and `criterion_main!` would generate, written out because the
/// macros define an undocumented `pub fn` (the workspace warns on `missing_docs`).
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    append(&mut criterion);
    criterion.final_summary();
}
