//! Sluice benchmarks.
