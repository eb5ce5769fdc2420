//! Benchmark group "wire": decoding native request bodies, with the decode
//! budget (`decode_body`: memory and element charges, see
//! `sluice_protocol::wire::budget`) and without (`postcard::from_bytes`).
//!
//! - `produce_1`, `produce_16`: a Produce body of 1 or 16 partitions (what
//!   every produce request decodes).
//! - `commit_1000`: an OffsetCommit body of 1,000 partitions.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::offset_commit::{CommitPartition, OffsetCommitRequest};
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest};
use sluice_protocol::wire::{decode_body, encode_body};

fn bytes_of<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_body(value, &mut out);
    out
}

fn pair<T: DeserializeOwned>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    bytes: &[u8],
) {
    c.bench_function(BenchmarkId::new("budgeted", label), |b| {
        b.iter(|| decode_body::<T>(black_box(bytes)).expect("decodes"));
    });
    c.bench_function(BenchmarkId::new("plain", label), |b| {
        b.iter(|| postcard::from_bytes::<T>(black_box(bytes)).expect("decodes"));
    });
}

fn produce(partitions: u32) -> ProduceRequest {
    ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 30_000,
        partitions: (0..partitions)
            .map(|p| ProducePartition {
                topic: "bench-topic".into(),
                partition: p,
                records_len: 1 << 20,
            })
            .collect(),
    }
}

fn wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    pair::<ProduceRequest>(&mut group, "produce_1", &bytes_of(&produce(1)));
    pair::<ProduceRequest>(&mut group, "produce_16", &bytes_of(&produce(16)));
    let commit = OffsetCommitRequest {
        group: "bench-group".into(),
        partitions: (0..1000)
            .map(|p| CommitPartition {
                topic: "bench-topic".into(),
                partition: p,
                offset: 1_000_000 + u64::from(p),
                metadata: String::new(),
            })
            .collect(),
    };
    pair::<OffsetCommitRequest>(&mut group, "commit_1000", &bytes_of(&commit));
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    wire(&mut criterion);
    criterion.final_summary();
}
