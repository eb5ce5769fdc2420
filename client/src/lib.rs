//! Sluice client library.
//!
//! # Layout
//!
//! - [`producer`]: [`Producer`] — batching, partitioning, acks, retries,
//!   backpressure; delivery futures with partition and offset.
//! - [`consumer`]: [`Consumer`] — assigned partitions or a group's committed
//!   offsets, zero-copy records, seek, commit, pipelined fetches.
//! - [`admin`]: [`Admin`] — create, delete, list, describe topics.
//! - [`group`]: consumer groups — partition assignors and membership.
//! - [`bootstrap`]: [`Bootstrap`] — the broker address list, which
//!   address answered last, and connecting to the first that answers.
//! - [`metadata`]: [`MetadataCache`] — partition leaders and broker
//!   addresses from Metadata, refreshed on errors and by age.
//! - [`connection`]: one TCP connection with typed calls for every API.
//! - [`fetch_stream`]: [`FetchStream`] — one request, then a frame each
//!   time records arrive (the FetchStream API).
//! - [`group_rpc`]: the group APIs' calls on a [`Connection`] (join, sync,
//!   heartbeat, leave, describe, list, delete, commit in a generation).
//! - `pool`: where a partition's requests go (leader or bootstrap list),
//!   connecting there, the quick backoff while a leader moves.
//! - [`partitioner`]: key hashing (Kafka's murmur2).
//! - [`tcp`]: the TCP congestion control of connections to a broker on
//!   this host (`cubic` unless [`tcp::set_loopback_tcp_congestion`] or
//!   `SLUICE_LOOPBACK_TCP_CONGESTION` say otherwise).
//! - [`error`]: [`ClientError`], which says what failed and whether a retry
//!   can help.

pub mod admin;
pub mod bootstrap;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod fetch_stream;
pub mod group;
pub mod group_rpc;
pub mod metadata;
pub mod partitioner;
mod pool;
pub mod producer;
pub mod tcp;

pub use admin::{Admin, ConfigField, FlushMode, TopicCompression, TopicConfig};
pub use bootstrap::Bootstrap;
pub use connection::{Connection, FetchedPartition};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, SeekTo};
pub use error::ClientError;
pub use fetch_stream::{FetchStream, StreamFrame};
pub use metadata::MetadataCache;
pub use producer::{
    Acks, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
