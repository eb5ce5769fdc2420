//! Benchmark group "batch": the record batch codec on batches of 1024 records with
//! random 1 KiB or 100-byte values (no keys, no headers).
//!
//! - `encode`: `BatchBuilder::new`, 1024 `push`es, `finish` (buffer grows as it goes).
//! - `encode_presized`: the same with `BatchBuilder::with_capacity(batch size)`.
//! - `validate`: header, CRC-32C and the record walk.
//! - `verify_crc`: header and CRC-32C only.
//! - `iterate`: `RecordBatch::records()` over an already validated batch, summing value
//!   lengths.
//!
//! Throughput is in bytes of encoded batch; divide the time by 1024 for per record.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice_bench::{XorShift, random_values};
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch, validate, verify_crc};

const RECORDS: usize = 1024;
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;

fn encode(builder: &mut BatchBuilder, values: &[Vec<u8>]) {
    for (i, value) in values.iter().enumerate() {
        builder.push(&NewRecord {
            timestamp: FIRST_TIMESTAMP + i as i64,
            key: None,
            value: Some(value),
            headers: &[],
        });
    }
}

fn batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, value_len) in [("1024x1KiB", 1024), ("1024x100B", 100)] {
        let mut rng = XorShift::new(value_len as u64);
        let values = random_values(&mut rng, RECORDS, value_len);
        let mut builder = BatchBuilder::new();
        encode(&mut builder, &values);
        let bytes = builder.finish();
        let len = bytes.len();
        group.throughput(Throughput::Bytes(len as u64));

        group.bench_function(BenchmarkId::new("encode", label), |b| {
            b.iter(|| {
                let mut builder = BatchBuilder::new();
                encode(&mut builder, black_box(&values));
                builder.finish()
            });
        });
        group.bench_function(BenchmarkId::new("encode_presized", label), |b| {
            b.iter(|| {
                let mut builder = BatchBuilder::with_capacity(len);
                encode(&mut builder, black_box(&values));
                builder.finish()
            });
        });
        group.bench_function(BenchmarkId::new("validate", label), |b| {
            b.iter(|| validate(black_box(&bytes)).expect("valid batch"));
        });
        group.bench_function(BenchmarkId::new("verify_crc", label), |b| {
            b.iter(|| verify_crc(black_box(&bytes)).expect("valid batch"));
        });
        let record_batch = RecordBatch::new(bytes.freeze()).expect("valid batch");
        group.bench_function(BenchmarkId::new("iterate", label), |b| {
            b.iter(|| {
                let mut sum = 0usize;
                for record in black_box(&record_batch).records() {
                    let record = record.expect("valid record");
                    sum += record.value.map_or(0, |v| v.len());
                }
                sum
            });
        });
    }
    group.finish();
}

/// What `criterion_group!` and `criterion_main!` would generate, written out because the
/// macros define an undocumented `pub fn` (the workspace warns on `missing_docs`).
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    batch(&mut criterion);
    criterion.final_summary();
}
