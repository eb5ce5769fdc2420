//! Sluice protocol: pure codecs, no I/O, no async.
//!
//! # Layout
//!
//! - [`batch`] — Kafka RecordBatch v2, the unit of append, storage and transfer: header
//!   parsing, validation (CRC-32C and record walk), building, zero-copy iteration over
//!   records and over concatenated batches. Byte layout: `docs/record-batch.md`.
//! - [`group`] — consumer-group payloads opaque to the broker: Kafka's ConsumerProtocol
//!   Subscription and Assignment. Byte layout: `docs/protocol.md`.
//! - [`kafka`] — Kafka's wire protocol for the Kafka listener: headers, flexible versions and
//!   the messages of the supported API set, bounds-checked before any allocation
//!   (`docs/kafka.md`).
//! - [`topic_name`] — what a topic name may be, checked by the broker and by clients.
#![deny(unsafe_code)]

pub mod batch;
pub mod group;
pub mod kafka;
pub mod topic_name;
pub mod wire;
