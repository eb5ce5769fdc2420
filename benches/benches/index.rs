//! Benchmark group "offset lookup": resolving reads and timestamp lookups on a log of
//! about 64 MiB of small batches (16 records of 100 bytes, about 1.8 KB a batch) spread
//! over 16 MiB segments.
//!
//! - `read_random`: `PartitionLog::read(random offset, 1 MiB)`: segment choice, offset
//!   index binary search, then a short walk of batch headers (one `pread` each) to the
//!   batch holding the offset.
//! - `read_sequential`: the consumer path, each read starting at the previous slice's
//!   `next_offset` (an indexed batch boundary, so no header walk).
//! - `offset_for_timestamp`: a random timestamp within the log's range.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sluice_bench::{XorShift, build_batch, random_values};
use sluice_broker::log::{LogConfig, PartitionLog};

const RECORDS_PER_BATCH: usize = 16;
const VALUE_LEN: usize = 100;
const LOG_BYTES: u64 = 64 << 20;
const SEGMENT_BYTES: u64 = 16 << 20;
const MAX_READ: u64 = 1 << 20;
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;
/// Random inputs drawn up front and cycled through.
const SAMPLES: usize = 1 << 14;

/// Appends batches until the log holds [`LOG_BYTES`]. Record `n` has timestamp
/// `FIRST_TIMESTAMP + n`. Returns the log's next offset.
fn fill(log: &PartitionLog, rng: &mut XorShift) -> u64 {
    let pool = random_values(rng, 1024, VALUE_LEN);
    let mut at = 0;
    while log.size_in_bytes() < LOG_BYTES {
        let start = at % (pool.len() - RECORDS_PER_BATCH);
        let values = pool
            .get(start..start + RECORDS_PER_BATCH)
            .expect("pool slice");
        let next = log.next_offset();
        let mut batch = build_batch(values, FIRST_TIMESTAMP + next as i64);
        log.append(&mut batch).expect("append");
        at += RECORDS_PER_BATCH + 1;
    }
    log.next_offset()
}

fn offset_lookup(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    let (log, _report) = PartitionLog::open(tmp.path().join("log"), config).expect("open log");
    let mut rng = XorShift::new(42);
    let end = fill(&log, &mut rng);
    eprintln!(
        "offset lookup: {} records, {} bytes in {} segments",
        end,
        log.size_in_bytes(),
        log.segment_count()
    );

    let offsets: Vec<u64> = (0..SAMPLES).map(|_| rng.below(end)).collect();
    let timestamps: Vec<i64> = (0..SAMPLES)
        .map(|_| FIRST_TIMESTAMP + rng.below(end) as i64)
        .collect();

    let mut group = c.benchmark_group("offset lookup");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    let mut i = 0;
    group.bench_function("read_random", |b| {
        b.iter(|| {
            i = (i + 1) % SAMPLES;
            let offset = *offsets.get(i).expect("in range");
            black_box(log.read(black_box(offset), MAX_READ).expect("read"))
        });
    });

    let mut next = 0;
    group.bench_function("read_sequential", |b| {
        b.iter(|| {
            let slice = log.read(black_box(next), MAX_READ).expect("read");
            next = if slice.next_offset >= end {
                0
            } else {
                slice.next_offset
            };
            black_box(slice)
        });
    });

    let mut i = 0;
    group.bench_function("offset_for_timestamp", |b| {
        b.iter(|| {
            i = (i + 1) % SAMPLES;
            let ts = *timestamps.get(i).expect("in range");
            black_box(log.offset_for_timestamp(black_box(ts)).expect("lookup"))
        });
    });
    group.finish();
    // Dropped without `close`: no need to fsync 64 MiB of benchmark data.
    drop(log);
}

/// What `criterion_group!` and `criterion_main!` would generate, written out because the
/// macros define an undocumented `pub fn` (the workspace warns on `missing_docs`).
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    offset_lookup(&mut criterion);
    criterion.final_summary();
}
