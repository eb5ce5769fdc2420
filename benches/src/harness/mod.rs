//! The workload harness behind the `sluice-bench` binary.
//!
//! - `broker_proc`: starts a broker process and reads its CPU time.
//! - `workloads`: the standard workloads of `WORKLOADS.md`.
//! - `report`: results as a table and as JSON.

pub mod broker_proc;
pub mod report;
pub mod workloads;
