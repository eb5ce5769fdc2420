//! Kafka RecordBatch v2 (magic 2), byte for byte: build, validate, iterate.
//!
//! The layout, the record encoding and the checks are written down once, in
//! `docs/record-batch.md`. In short: a 61-byte big-endian header whose CRC-32C covers
//! bytes 21 to the end, so `baseOffset` (0..8) and `partitionLeaderEpoch` (12..16) can be
//! rewritten in place ([`set_base_offset`], [`set_partition_leader_epoch`]); then the
//! records, each a varint-prefixed sequence of varint fields.
//!
//! - [`BatchHeader`] parses the header; [`peek_offset_and_len`] reads just 12 bytes.
//! - [`verify_crc`] checks header and CRC; [`validate_shallow`] also the header's
//!   record count; [`validate`] also walks every record.
//! - [`BatchBuilder`] encodes [`NewRecord`]s into one uncompressed batch.
//! - [`RecordBatch`] wraps a validated batch in a `Bytes`; [`RecordBatch::records`] yields
//!   [`Record`]s whose fields are slices of it.
//! - [`compression`] decompresses (bounded) and compresses records sections;
//!   [`validate_decompressing`] validates a compressed batch's records too.
//! - [`BatchIter`] walks concatenated batches in a buffer.
//!
//! Nothing here allocates per record, and no input makes anything here panic (indexing
//! and slicing are linted out of this module; reads go through `get`).
#![deny(clippy::indexing_slicing)]

mod attributes;
mod builder;
pub mod compression;
mod error;
mod header;
mod iter;
mod record;
mod records;
mod validate;
mod varint;
mod view;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;

pub use builder::{BatchBuilder, NewRecord};
pub use error::BatchError;
pub use header::{
    BatchHeader, Compression, TimestampType, peek_offset_and_len, set_base_offset, set_create_time,
    set_max_timestamp, set_partition_leader_epoch, set_producer,
};
pub use iter::BatchIter;
pub use record::{Record, RecordHeaders};
pub use validate::{
    Validated, validate, validate_decompressing, validate_measuring, validate_shallow,
    validate_structure, verify_crc,
};
pub use view::{RecordBatch, Records};

/// The `magic` (format version) of every batch this module reads or writes.
pub const MAGIC: i8 = 2;
/// Size of the batch header, up to and including `recordCount`; records start here.
pub const HEADER_LEN: usize = 61;
/// Bytes before `partitionLeaderEpoch`: `baseOffset` (8) and `batchLength` (4). A batch
/// is `LOG_OVERHEAD + batchLength` bytes long.
pub const LOG_OVERHEAD: usize = 12;
/// First byte covered by the CRC-32C (the `attributes` field); the CRC runs to the end of
/// the batch.
pub const CRC_START: usize = 21;
