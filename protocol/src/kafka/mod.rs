//! The Kafka wire protocol: a pure codec for the API set the broker's Kafka
//! listener serves. Byte layouts are Kafka's own (its message definitions,
//! linked from `docs/kafka.md`); this module writes none of its own.
//!
//! # Layout
//!
//! - [`io`] — the [`Io`](io::Io) walker: one field list per message, read by
//!   a bounds-checked [`Reader`](io::Reader) and written by a
//!   [`Writer`](io::Writer); compact strings, arrays and bytes, unsigned
//!   varints and tagged fields for flexible versions.
//! - [`header`] — request header v1/v2, response header v0/v1, framing.
//! - [`error_code`] — Kafka's error codes and the one table mapping Sluice's
//!   codes onto them.
//! - one file per API group: [`api_versions`], [`metadata`], [`produce`],
//!   [`fetch`], [`list_offsets`], [`offsets`] (FindCoordinator,
//!   OffsetCommit, OffsetFetch), [`admin`] (CreateTopics, DeleteTopics,
//!   DescribeConfigs, InitProducerId), [`alter_configs`] (AlterConfigs,
//!   IncrementalAlterConfigs), [`create_partitions`], [`delete_records`], [`describe_log_dirs`], [`offset_delete`], [`groups`] (JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups),
//!   [`consumer_group`] (ConsumerGroupHeartbeat, ConsumerGroupDescribe).
//!
//! Why not the `kafka-protocol` crate: its decoders size allocations from
//! wire counts before checking them against the input, and they copy a fetch
//! response's records; this codec does neither, and its record sets are
//! positions in the frame (produce) or file ranges sent by `sendfile`
//! (fetch).

pub mod acls;
pub mod admin;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group;
pub mod create_partitions;
pub mod delete_records;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod elect_leaders;
pub mod error_code;
pub mod fetch;
pub mod groups;
pub mod header;
pub mod io;
pub mod list_offsets;
pub mod metadata;
pub mod offset_delete;
pub mod offset_for_leader_epoch;
pub mod offsets;
pub mod produce;

#[cfg(test)]
mod tests;

use io::{Io, Reader, RecordsOut, Writer};

/// Why bytes could not be decoded (or a value not encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaError {
    /// The input ended inside a field.
    #[error("unexpected end of input at byte {offset}: need {need}, have {have}")]
    UnexpectedEof {
        /// Where the field starts.
        offset: usize,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A field holds a value that is not allowed.
    #[error("invalid field at byte {offset}: {what}")]
    Invalid {
        /// Where the field starts.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The decoded message would take more memory than its size allows.
    #[error("message decodes to too many elements (at byte {offset})")]
    TooLarge {
        /// Where decoding stopped.
        offset: usize,
    },
    /// The message's arrays hold more elements than the reader's cap
    /// ([`io::Reader::with_element_cap`]).
    #[error("message holds more than {cap} array elements in all (at byte {offset})")]
    TooManyElements {
        /// Where decoding stopped.
        offset: usize,
        /// The cap.
        cap: usize,
    },
}

/// The APIs this codec knows, by Kafka API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ApiKey {
    /// Produce (0).
    Produce = 0,
    /// Fetch (1).
    Fetch = 1,
    /// ListOffsets (2).
    ListOffsets = 2,
    /// Metadata (3).
    Metadata = 3,
    /// OffsetCommit (8).
    OffsetCommit = 8,
    /// OffsetFetch (9).
    OffsetFetch = 9,
    /// FindCoordinator (10).
    FindCoordinator = 10,
    /// JoinGroup (11).
    JoinGroup = 11,
    /// Heartbeat (12).
    Heartbeat = 12,
    /// LeaveGroup (13).
    LeaveGroup = 13,
    /// SyncGroup (14).
    SyncGroup = 14,
    /// DescribeGroups (15).
    DescribeGroups = 15,
    /// ListGroups (16).
    ListGroups = 16,
    /// ApiVersions (18).
    ApiVersions = 18,
    /// CreateTopics (19).
    CreateTopics = 19,
    /// DeleteTopics (20).
    DeleteTopics = 20,
    /// DeleteRecords (21).
    DeleteRecords = 21,
    /// InitProducerId (22).
    InitProducerId = 22,
    /// OffsetForLeaderEpoch (23).
    OffsetForLeaderEpoch = 23,
    /// DescribeAcls (29).
    DescribeAcls = 29,
    /// CreateAcls (30).
    CreateAcls = 30,
    /// DeleteAcls (31).
    DeleteAcls = 31,
    /// DescribeConfigs (32).
    DescribeConfigs = 32,
    /// AlterConfigs (33).
    AlterConfigs = 33,
    /// DescribeLogDirs (35).
    DescribeLogDirs = 35,
    /// CreatePartitions (37).
    CreatePartitions = 37,
    /// DeleteGroups (42).
    DeleteGroups = 42,
    /// ElectLeaders (43).
    ElectLeaders = 43,
    /// IncrementalAlterConfigs (44).
    IncrementalAlterConfigs = 44,
    /// OffsetDelete (47).
    OffsetDelete = 47,
    /// DescribeProducers (61).
    DescribeProducers = 61,
    /// ConsumerGroupHeartbeat (68).
    ConsumerGroupHeartbeat = 68,
    /// ConsumerGroupDescribe (69).
    ConsumerGroupDescribe = 69,
}

impl ApiKey {
    /// Every API served, in key order.
    pub const ALL: [ApiKey; 33] = [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::SyncGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DeleteRecords,
        ApiKey::InitProducerId,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::DescribeAcls,
        ApiKey::CreateAcls,
        ApiKey::DeleteAcls,
        ApiKey::DescribeConfigs,
        ApiKey::AlterConfigs,
        ApiKey::DescribeLogDirs,
        ApiKey::CreatePartitions,
        ApiKey::DeleteGroups,
        ApiKey::ElectLeaders,
        ApiKey::IncrementalAlterConfigs,
        ApiKey::OffsetDelete,
        ApiKey::DescribeProducers,
        ApiKey::ConsumerGroupHeartbeat,
        ApiKey::ConsumerGroupDescribe,
    ];

    /// The API of a key, if served.
    pub fn from_i16(key: i16) -> Option<ApiKey> {
        ApiKey::ALL.into_iter().find(|k| *k as i16 == key)
    }

    /// Versions served: (min, max).
    pub fn versions(self) -> (i16, i16) {
        match self {
            ApiKey::Produce => (3, 9),
            ApiKey::Fetch => (4, 17),
            ApiKey::ListOffsets => (1, 7),
            ApiKey::Metadata => (0, 12),
            ApiKey::OffsetCommit => (0, 9),
            ApiKey::OffsetFetch => (1, 9),
            ApiKey::FindCoordinator => (0, 4),
            ApiKey::ApiVersions => (0, 3),
            ApiKey::CreateTopics => (2, 7),
            ApiKey::DeleteTopics => (1, 6),
            ApiKey::InitProducerId => (0, 4),
            ApiKey::OffsetForLeaderEpoch => (0, 4),
            ApiKey::DescribeAcls | ApiKey::CreateAcls | ApiKey::DeleteAcls => (0, 3),
            ApiKey::DescribeConfigs => (0, 4),
            ApiKey::AlterConfigs => (0, 2),
            ApiKey::IncrementalAlterConfigs => (0, 1),
            ApiKey::CreatePartitions => (0, 3),
            ApiKey::DeleteRecords => (0, 2),
            ApiKey::OffsetDelete => (0, 0),
            ApiKey::DescribeLogDirs => (0, 4),
            ApiKey::JoinGroup => (0, 7),
            ApiKey::Heartbeat => (0, 4),
            ApiKey::LeaveGroup => (0, 4),
            ApiKey::SyncGroup => (0, 5),
            ApiKey::DescribeGroups => (0, 5),
            ApiKey::ListGroups => (0, 5),
            ApiKey::DeleteGroups => (0, 2),
            ApiKey::ElectLeaders => (0, 2),
            ApiKey::DescribeProducers => (0, 0),
            ApiKey::ConsumerGroupHeartbeat => (0, 1),
            ApiKey::ConsumerGroupDescribe => (0, 1),
        }
    }

    /// Whether `version` is served.
    pub fn supports(self, version: i16) -> bool {
        let (min, max) = self.versions();
        (min..=max).contains(&version)
    }

    /// The first flexible version of the API (Kafka's `flexibleVersions`).
    pub fn first_flexible(self) -> i16 {
        match self {
            ApiKey::Produce => 9,
            ApiKey::Fetch => 12,
            ApiKey::ListOffsets => 6,
            ApiKey::Metadata => 9,
            ApiKey::OffsetCommit => 8,
            ApiKey::OffsetFetch => 6,
            ApiKey::FindCoordinator => 3,
            ApiKey::ApiVersions => 3,
            ApiKey::CreateTopics => 5,
            ApiKey::DeleteTopics => 4,
            ApiKey::InitProducerId => 2,
            ApiKey::OffsetForLeaderEpoch => 4,
            ApiKey::DescribeAcls | ApiKey::CreateAcls | ApiKey::DeleteAcls => 2,
            ApiKey::DescribeConfigs => 4,
            ApiKey::AlterConfigs => 2,
            ApiKey::IncrementalAlterConfigs => 1,
            ApiKey::CreatePartitions => 2,
            ApiKey::DeleteRecords => 2,
            ApiKey::DescribeLogDirs => 2,
            // Never flexible.
            ApiKey::OffsetDelete => i16::MAX,
            ApiKey::JoinGroup => 6,
            ApiKey::Heartbeat => 4,
            ApiKey::LeaveGroup => 4,
            ApiKey::SyncGroup => 4,
            ApiKey::DescribeGroups => 5,
            ApiKey::ListGroups => 3,
            ApiKey::DeleteGroups => 2,
            ApiKey::ElectLeaders => 2,
            ApiKey::DescribeProducers
            | ApiKey::ConsumerGroupHeartbeat
            | ApiKey::ConsumerGroupDescribe => 0,
        }
    }

    /// Whether `version` is flexible (compact types, tagged fields).
    pub fn flexible(self, version: i16) -> bool {
        version >= self.first_flexible()
    }

    /// The request header version for `version`: 2 if flexible, else 1.
    pub fn request_header_version(self, version: i16) -> i16 {
        if self.flexible(version) { 2 } else { 1 }
    }

    /// The response header version for `version`: 1 if flexible, else 0 —
    /// except ApiVersions, always 0 (so a client can read an answer to a
    /// version the broker does not know).
    pub fn response_header_version(self, version: i16) -> i16 {
        if self != ApiKey::ApiVersions && self.flexible(version) {
            1
        } else {
            0
        }
    }
}

/// A request or response body: its fields in wire order, gated on version.
pub trait Message: Default {
    /// The API it belongs to.
    const API: ApiKey;
    /// Walks the fields of `version` (see [`io`]).
    fn io<S: Io>(&mut self, s: &mut S, version: i16) -> Result<(), KafkaError>;
}

/// Decodes a body of `version`. Record sets are positions in `buf`.
/// Bytes after the body are ignored, as Kafka does.
pub fn decode<M: Message>(buf: &[u8], version: i16) -> Result<M, KafkaError> {
    decode_capped(buf, version, usize::MAX)
}

/// [`decode`], refusing a body whose arrays hold more than `cap` elements
/// in all with [`KafkaError::TooManyElements`] before decoding them.
pub fn decode_capped<M: Message>(buf: &[u8], version: i16, cap: usize) -> Result<M, KafkaError> {
    let mut r = Reader::new(buf, M::API.flexible(version)).with_element_cap(cap);
    let mut m = M::default();
    m.io(&mut r, version)?;
    Ok(m)
}

/// Encodes a body of `version` onto `out`, record sets copied from
/// `records` (positions in it).
pub fn encode<M: Message>(
    m: &mut M,
    version: i16,
    out: &mut Vec<u8>,
    records: &[u8],
) -> Result<(), KafkaError> {
    let mut w = Writer::new(out, M::API.flexible(version), RecordsOut::Copy(records));
    m.io(&mut w, version)
}

/// Encodes a body of `version` onto `out` without its record sets' bytes:
/// returns, per record set, the position in `out` where its bytes belong
/// and its [`Records::start`](io::Records).
pub fn encode_cut<M: Message>(
    m: &mut M,
    version: i16,
    out: &mut Vec<u8>,
) -> Result<Vec<(usize, usize)>, KafkaError> {
    let mut w = Writer::new(out, M::API.flexible(version), RecordsOut::Cut(Vec::new()));
    m.io(&mut w, version)?;
    match w.records {
        RecordsOut::Cut(cuts) => Ok(cuts),
        RecordsOut::Copy(_) => Ok(Vec::new()),
    }
}

/// Walks an array of `i32`.
pub(crate) fn i32s<S: Io>(s: &mut S, v: &mut Vec<i32>) -> Result<(), KafkaError> {
    s.array(v, |s, x| s.i32(x))
}
