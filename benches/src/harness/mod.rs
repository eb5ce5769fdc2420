//! The workload harness behind the `sluice-bench` binary.
//!
//! # Layout
//!
//! - `broker_proc`: starts a broker process and reads its CPU time.
//! - `cluster`: a loopback cluster of broker processes (`--cluster N`), and
//!   `failover`: leader SIGKILLs on it (`--workload failover`).
//! - `bench`: [`bench::Bench`], the state one run carries between workloads.
//! - `options`: command-line settings and each workload's defaults.
//! - `workloads`: the raw produce and fetch loops the throughput workloads
//!   are built from.
//! - `meter`: bytes moved, sampled every 100 ms, and the progress bar.
//! - One module per workload family: `w1_produce` (W1, W5), `w2_fetch`
//!   (W2, W6, sendfile versus copy), `w3_small` (W3), `w4_latency` (W4),
//!   `w7_cold` (W7), `w8_partitions` (W8).
//! - `baseline`: `--baseline`, the machine's own limits (loopback sendfile,
//!   socket to `pwrite`, `O_DSYNC` writes) that throughput rows are set
//!   against.
//! - `goals`: the goals of `WORKLOADS.md` judged against a run.
//! - `report`: results as tables and JSON; `plot` and `svg`: pictures.

pub mod baseline;
pub mod bench;
pub mod broker_proc;
pub mod cluster;
pub mod failover;
pub mod goals;
pub mod kafka_bench;
pub mod meter;
pub mod options;
pub mod plot;
pub mod report;
pub mod svg;
pub mod w1_produce;
pub mod w2_fetch;
pub mod w3_small;
pub mod w4_latency;
pub mod w7_cold;
pub mod w8_partitions;
pub mod workloads;
