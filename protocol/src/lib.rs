//! Sluice protocol: pure codecs, no I/O, no async.
//!
//! # Layout
//!
//! - [`batch`] — Kafka RecordBatch v2, the unit of append, storage and transfer: header
//!   parsing, validation (CRC-32C and record walk), building, zero-copy iteration over
//!   records and over concatenated batches. Byte layout: `docs/record-batch.md`.
#![deny(unsafe_code)]

pub mod batch;
pub mod kafka;
pub mod wire;
