//! Benchmark group "compression": each codec on the same records section, the one of a
//! batch of 1024 records with 1 KiB values, JSON-like text (`text_values`) or random
//! bytes.
//!
//! - `compress/<codec>/<kind>`: `compression::compress` at the codec's default level.
//! - `decompress/<codec>/<kind>`: `compression::decompress` into a reused buffer.
//! - `validate/<codec>/<kind>`: `validate_decompressing` of the whole compressed batch
//!   (CRC, decompression, record walk): what the broker does per produced batch.
//!
//! - `large/<codec>/zeros-64MiB`: `compression::decompress` of 64 MiB of zeros (a
//!   records section that compresses to almost nothing, the largest kind of batch a
//!   producer can send under the 128 MiB decompressed limit), fresh buffer and reused.
//!   The cost must grow linearly with the size whatever the codec's block size.
//!
//! Throughput is in bytes of *uncompressed* records section. The compressed size of
//! each codec and kind is printed once on standard error (`ratio` lines).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice_bench::{XorShift, build_batch, random_values, text_values};
use sluice_protocol::batch::compression::{Codec, compress, compress_batch, decompress};
use sluice_protocol::batch::{Compression, HEADER_LEN, validate_decompressing};

const RECORDS: usize = 1024;
const VALUE_LEN: usize = 1024;
const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn compression(c: &mut Criterion) {
    let mut group = c.benchmark_group("compression");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for kind in ["text", "random"] {
        let mut rng = XorShift::new(7);
        let values = match kind {
            "text" => text_values(&mut rng, RECORDS, VALUE_LEN),
            _ => random_values(&mut rng, RECORDS, VALUE_LEN),
        };
        let batch = build_batch(&values, 1_700_000_000_000);
        let records = batch.get(HEADER_LEN..).unwrap_or_default();
        group.throughput(Throughput::Bytes(records.len() as u64));
        for codec in CODECS {
            let codec_at = Codec::new(codec);
            let mut packed = Vec::new();
            compress(codec_at, records, &mut packed).expect("default level");
            eprintln!(
                "ratio {codec}/{kind}: {} -> {} bytes ({:.2}x)",
                records.len(),
                packed.len(),
                records.len() as f64 / packed.len() as f64
            );
            let id = format!("{codec}/{kind}");
            group.bench_function(BenchmarkId::new("compress", &id), |b| {
                let mut out = Vec::with_capacity(records.len() + 1024);
                b.iter(|| {
                    out.clear();
                    compress(codec_at, black_box(records), &mut out).expect("level");
                    out.len()
                })
            });
            group.bench_function(BenchmarkId::new("decompress", &id), |b| {
                let mut out = Vec::new();
                b.iter(|| {
                    decompress(codec, black_box(&packed), 4 << 20, &mut out).expect("valid");
                    out.len()
                })
            });
            let whole = compress_batch(&batch, codec_at).expect("level");
            group.bench_function(BenchmarkId::new("validate", &id), |b| {
                let mut scratch = Vec::new();
                b.iter(|| validate_decompressing(black_box(&whole), 4 << 20, &mut scratch))
            });
        }
    }
    group.finish();
}

fn large(c: &mut Criterion) {
    const SIZE: usize = 64 << 20;
    const LIMIT: usize = 128 << 20;
    let mut group = c.benchmark_group("large");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(SIZE as u64));
    let zeros = vec![0u8; SIZE];
    for codec in CODECS {
        let mut packed = Vec::new();
        compress(Codec::new(codec), &zeros, &mut packed).expect("default level");
        let id = format!("{codec}/zeros-64MiB");
        group.bench_function(BenchmarkId::new("fresh", &id), |b| {
            b.iter(|| {
                let mut out = Vec::new();
                decompress(codec, black_box(&packed), LIMIT, &mut out).expect("valid");
                out.len()
            })
        });
        group.bench_function(BenchmarkId::new("reused", &id), |b| {
            let mut out = Vec::with_capacity(LIMIT);
            b.iter(|| {
                decompress(codec, black_box(&packed), LIMIT, &mut out).expect("valid");
                out.len()
            })
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    compression(&mut criterion);
    large(&mut criterion);
    criterion.final_summary();
}
