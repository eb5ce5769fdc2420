//! The native wire protocol: frames, API keys, error codes and the request
//! and response bodies of every API. Byte layout: `docs/protocol.md`.
//!
//! Control-plane bodies are `serde` types encoded with `postcard`. Record
//! batches never go through serde: they travel in a frame's raw tail, with
//! their lengths given in the body ([`produce`], [`fetch`]).

pub mod alter_topics;
pub mod api_versions;
pub mod broker_status;
pub mod budget;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_groups;
mod error_code;
pub mod fetch;
pub mod fetch_stream;
pub mod find_coordinator;
pub mod frame;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod partition_status;
pub mod produce;
pub mod stats;
pub mod sync_group;
pub mod topic_config;

#[cfg(test)]
mod testutil;

use serde::{Deserialize, Serialize};

pub use error_code::ErrorCode;
pub use frame::{RequestHeader, ResponseHeader, check_frame};

/// Which API a request frame calls. Numbers are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    /// [`api_versions`]
    ApiVersions = 0,
    /// [`metadata`]
    Metadata = 1,
    /// [`create_topics`]
    CreateTopics = 2,
    /// [`delete_topics`]
    DeleteTopics = 3,
    /// [`produce`]
    Produce = 4,
    /// [`fetch`]
    Fetch = 5,
    /// [`list_offsets`]
    ListOffsets = 6,
    /// [`offset_commit`]
    OffsetCommit = 7,
    /// [`offset_fetch`]
    OffsetFetch = 8,
    /// [`stats`]
    Stats = 9,
    /// [`init_producer_id`]
    InitProducerId = 10,
    /// [`partition_status`]
    PartitionStatus = 11,
    /// [`broker_status`]
    BrokerStatus = 12,
    /// [`join_group`]
    JoinGroup = 13,
    /// [`sync_group`]
    SyncGroup = 14,
    /// [`heartbeat`]
    Heartbeat = 15,
    /// [`leave_group`]
    LeaveGroup = 16,
    /// [`describe_groups`]
    DescribeGroups = 17,
    /// [`list_groups`]
    ListGroups = 18,
    /// [`delete_groups`]
    DeleteGroups = 19,
    /// [`find_coordinator`]
    FindCoordinator = 20,
    /// [`fetch_stream`]
    FetchStream = 21,
    /// [`alter_topics`]
    CreatePartitions = 22,
    /// [`alter_topics`]
    AlterTopicConfig = 23,
    /// [`delete_records`]
    DeleteRecords = 24,
}

impl ApiKey {
    /// Every API, in key order.
    pub const ALL: [ApiKey; 25] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::Stats,
        ApiKey::InitProducerId,
        ApiKey::PartitionStatus,
        ApiKey::BrokerStatus,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::DeleteGroups,
        ApiKey::FindCoordinator,
        ApiKey::FetchStream,
        ApiKey::CreatePartitions,
        ApiKey::AlterTopicConfig,
        ApiKey::DeleteRecords,
    ];

    /// The API for a key number, if known.
    pub fn from_u16(key: u16) -> Option<ApiKey> {
        ApiKey::ALL.into_iter().find(|k| *k as u16 == key)
    }

    /// The body versions this build speaks: `(min, max)`. Version 1 of
    /// Metadata and CreateTopics adds a topic's `compression` setting
    /// (see [`topic_config`]); version 2 of Metadata adds the brokers and
    /// each partition's leader, epoch, replicas and in-sync replicas, and
    /// version 2 of CreateTopics a replication factor; version 3 of Metadata
    /// adds to the request whether topics may be created on first use
    /// ([`metadata::MetadataRequestV3`]); version 1 of OffsetCommit adds the member's generation and ids (see
    /// [`offset_commit`]); version 1 of BrokerStatus adds the Kafka
    /// listener and the node id to the answer ([`broker_status`]); every
    /// other API has version 0 only.
    pub fn versions(self) -> (u16, u16) {
        match self {
            ApiKey::Metadata => (0, 3),
            ApiKey::CreateTopics => (0, 2),
            ApiKey::OffsetCommit | ApiKey::BrokerStatus => (0, 1),
            _ => (0, 0),
        }
    }
}

/// The body of a response whose header carries an error code: the request
/// could not be served at all (unknown API, unsupported version, undecodable
/// body, broker shutting down).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable detail.
    pub message: String,
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than a field needs.
    #[error("truncated input: need {need} bytes at offset {offset}, have {have}")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes available from `offset`.
        have: usize,
    },
    /// A frame declares more bytes than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Declared length.
        len: u32,
        /// Configured maximum.
        max: u32,
    },
    /// A frame declares fewer bytes than its header needs.
    #[error("frame of {len} bytes is shorter than its {min}-byte header")]
    FrameTooShort {
        /// Declared length.
        len: u32,
        /// Header size.
        min: u32,
    },
    /// The body length runs past the end of the frame.
    #[error("body of {body_len} bytes does not fit in a frame of {frame_len} bytes")]
    BodyTooLong {
        /// Declared body length.
        body_len: u32,
        /// Declared frame length.
        frame_len: u32,
    },
    /// The postcard body is malformed.
    #[error("malformed body: {0}")]
    Body(String),
    /// The body would decode to more values than its size allows (see
    /// [`budget`]).
    #[error("body too large to decode: {0}")]
    TooLarge(String),
    /// Bytes left over after a body.
    #[error("{0} unexpected bytes after the body")]
    TrailingBytes(usize),
    /// The lengths of raw record sets listed in a body disagree with the
    /// frame's tail.
    #[error("record sets total {listed} bytes but the frame carries {tail}")]
    TailMismatch {
        /// Sum of the lengths listed in the body.
        listed: u64,
        /// Length of the tail.
        tail: u64,
    },
    /// A frame to be encoded is longer than the u32 length prefix can say.
    #[error("frame of {len} bytes does not fit a u32 length")]
    FrameLengthOverflow {
        /// The frame's length after the prefix.
        len: u64,
    },
}

/// Checks that the raw record lengths a body lists add up to the frame's
/// tail (shared by Produce requests and Fetch responses).
pub fn check_tail_lengths(
    lengths: impl Iterator<Item = u32>,
    tail_len: usize,
) -> Result<(), WireError> {
    let listed: u64 = lengths.map(u64::from).sum();
    if listed != tail_len as u64 {
        return Err(WireError::TailMismatch {
            listed,
            tail: tail_len as u64,
        });
    }
    Ok(())
}

/// Encodes a body with postcard, appending to `out` in place (no buffer of
/// its own). Returns its length.
pub fn encode_body<T: Serialize>(body: &T, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    // Serializing plain data structs into a Vec cannot fail; if it did, the
    // partial body is cut off again.
    if postcard::to_extend(body, Append(out)).is_err() {
        out.truncate(before);
    }
    out.len() - before
}

/// Lets postcard append to a borrowed `Vec`.
struct Append<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Decodes a body that must span all of `buf`, its values taking at most
/// [`budget::Meter::memory_for`] its size.
pub fn decode_body<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<T, WireError> {
    decode_body_capped(buf, usize::MAX)
}

/// [`decode_body`], refusing with [`WireError::TooLarge`] a body whose
/// lists hold more than `elements` elements in all (bytes of a byte list
/// aside), before it builds them.
pub fn decode_body_capped<'a, T: Deserialize<'a>>(
    buf: &'a [u8],
    elements: usize,
) -> Result<T, WireError> {
    let meter = budget::Meter::new(budget::Meter::memory_for(buf.len()), elements);
    budget::decode_metered(buf, &meter)
}

/// The element count of the list a body starts with (a `Vec`, or with
/// `optional` an `Option<Vec>`: `None` reads as 0), read without decoding
/// the list, so that a server can refuse a request naming millions of
/// entries before it builds them. `None` when the body does not start so.
pub fn leading_list_len(buf: &[u8], optional: bool) -> Option<u64> {
    let mut at = 0;
    if optional {
        match buf.first()? {
            0 => return Some(0),
            1 => at = 1,
            _ => return None,
        }
    }
    // postcard's varint: 7 bits a byte, low first, at most 10 bytes.
    let mut n: u64 = 0;
    for (i, &b) in buf.get(at..)?.iter().take(10).enumerate() {
        n |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::api_versions::{ApiVersionRange, ApiVersionsRequest, ApiVersionsResponse};
    use super::metadata::MetadataRequest;
    use super::produce::{Acks, ProducePartition, ProduceRequest};
    use super::testutil::{check_all, encode};
    use super::*;

    /// Key numbers are part of the protocol: a change must fail here.
    #[test]
    fn api_key_numbers_are_pinned() {
        let pinned: [(ApiKey, u16); 25] = [
            (ApiKey::ApiVersions, 0),
            (ApiKey::Metadata, 1),
            (ApiKey::CreateTopics, 2),
            (ApiKey::DeleteTopics, 3),
            (ApiKey::Produce, 4),
            (ApiKey::Fetch, 5),
            (ApiKey::ListOffsets, 6),
            (ApiKey::OffsetCommit, 7),
            (ApiKey::OffsetFetch, 8),
            (ApiKey::Stats, 9),
            (ApiKey::InitProducerId, 10),
            (ApiKey::PartitionStatus, 11),
            (ApiKey::BrokerStatus, 12),
            (ApiKey::JoinGroup, 13),
            (ApiKey::SyncGroup, 14),
            (ApiKey::Heartbeat, 15),
            (ApiKey::LeaveGroup, 16),
            (ApiKey::DescribeGroups, 17),
            (ApiKey::ListGroups, 18),
            (ApiKey::DeleteGroups, 19),
            (ApiKey::FindCoordinator, 20),
            (ApiKey::FetchStream, 21),
            (ApiKey::CreatePartitions, 22),
            (ApiKey::AlterTopicConfig, 23),
            (ApiKey::DeleteRecords, 24),
        ];
        assert_eq!(ApiKey::ALL.len(), pinned.len());
        for (i, (key, number)) in pinned.into_iter().enumerate() {
            assert_eq!(ApiKey::ALL[i], key, "ALL is in key order");
            assert_eq!(key as u16, number);
            assert_eq!(ApiKey::from_u16(number), Some(key));
            let max = match key {
                ApiKey::Metadata => 3,
                ApiKey::CreateTopics => 2,
                ApiKey::OffsetCommit | ApiKey::BrokerStatus => 1,
                _ => 0,
            };
            assert_eq!(key.versions(), (0, max));
        }
        for unknown in [25, 100, u16::MAX] {
            assert_eq!(ApiKey::from_u16(unknown), None);
        }
    }

    #[test]
    fn error_body_round_trips_and_rejects_truncation() {
        check_all(&[
            ErrorBody {
                message: String::new(),
            },
            ErrorBody {
                message: "unknown API key 42 — ünïcode".to_owned(),
            },
        ]);
    }

    #[test]
    fn encode_body_appends_and_returns_its_length() {
        let mut out = vec![9, 9];
        let n = encode_body(
            &ErrorBody {
                message: "ab".into(),
            },
            &mut out,
        );
        assert_eq!(n, 3);
        assert_eq!(out, [9, 9, 0x02, b'a', b'b']);
    }

    #[test]
    fn encode_body_that_fails_halfway_leaves_the_buffer_as_it_was() {
        struct FailsAfterOneByte;
        impl Serialize for FailsAfterOneByte {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeTuple};
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&7u8)?;
                Err(S::Error::custom("refused"))
            }
        }
        let mut out = vec![9, 9];
        assert_eq!(encode_body(&FailsAfterOneByte, &mut out), 0);
        assert_eq!(out, [9, 9]);
    }

    #[test]
    fn decode_body_reports_malformed_and_trailing_bytes() {
        // A string length pointing past the end.
        assert!(matches!(
            decode_body::<ErrorBody>(&[0x05, b'a']),
            Err(WireError::Body(_))
        ));
        // Invalid UTF-8.
        assert!(matches!(
            decode_body::<ErrorBody>(&[0x01, 0xFF]),
            Err(WireError::Body(_))
        ));
        // An Option tag other than 0 or 1.
        assert!(matches!(
            decode_body::<MetadataRequest>(&[0x02]),
            Err(WireError::Body(_))
        ));
        // An empty body followed by a byte.
        assert_eq!(
            decode_body::<ApiVersionsRequest>(&[0x00]),
            Err(WireError::TrailingBytes(1))
        );
        // A varint longer than its type allows (u32 takes at most 5 bytes).
        assert!(matches!(
            decode_body::<u32>(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(WireError::Body(_))
        ));
    }

    /// Parses the hex dumps used in `docs/protocol.md` (whitespace ignored).
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// Builds a whole request frame the way the client does.
    fn request_frame<T: Serialize>(api: ApiKey, correlation_id: u32, body: &T) -> Vec<u8> {
        let body = encode(body);
        let header = RequestHeader {
            api_key: api as u16,
            api_version: 0,
            correlation_id,
            body_len: body.len() as u32,
        }
        .encode(0)
        .unwrap();
        [&header[..], &body].concat()
    }

    /// The worked examples of `docs/protocol.md`, byte for byte: if this
    /// test changes, the document must change with it.
    #[test]
    fn doc_worked_examples_match_the_bytes() {
        // ApiVersions request, correlation id 1, empty body.
        let api_versions = request_frame(ApiKey::ApiVersions, 1, &ApiVersionsRequest {});
        assert_eq!(api_versions, hex("0000000c 0000 0000 00000001 00000000"));

        // Metadata request for the topic "orders", correlation id 7.
        let metadata = MetadataRequest {
            topics: Some(vec!["orders".to_owned()]),
        };
        let frame = request_frame(ApiKey::Metadata, 7, &metadata);
        assert_eq!(
            frame,
            hex("00000015 0001 0000 00000007 00000009  01 01 06 6f7264657273")
        );
        // Metadata request for every topic: the body is the single byte 00.
        let all = request_frame(ApiKey::Metadata, 8, &MetadataRequest { topics: None });
        assert_eq!(all, hex("0000000d 0001 0000 00000008 00000001 00"));

        // ApiVersions response to correlation id 1: twenty-five APIs, versions
        // 0..=0 except Metadata (0..=3), CreateTopics (0..=2),
        // OffsetCommit and BrokerStatus (0..=1).
        let apis = ApiKey::ALL
            .iter()
            .map(|k| ApiVersionRange {
                api_key: *k as u16,
                min_version: k.versions().0,
                max_version: k.versions().1,
            })
            .collect();
        let body = encode(&ApiVersionsResponse { apis });
        let header = ResponseHeader {
            correlation_id: 1,
            error_code: ErrorCode::None,
            body_len: body.len() as u32,
        }
        .encode(0)
        .unwrap();
        assert_eq!(
            [&header[..], &body].concat(),
            hex("00000056 00000001 0000 0000004c  19
                 000000 010003 020002 030000 040000 050000 060000 070001 080000 090000
                 0a0000 0b0000 0c0001 0d0000 0e0000 0f0000 100000 110000 120000 130000
                 140000 150000 160000 170000 180000")
        );

        // Produce request body: acks=leader, timeout 5000 ms, one partition
        // ("t", 0) with a 70-byte record set in the tail.
        let produce = ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 5000,
            partitions: vec![ProducePartition {
                topic: "t".to_owned(),
                partition: 0,
                records_len: 70,
            }],
        };
        assert_eq!(encode(&produce), hex("01 8827 01 01 74 00 46"));
        let header = RequestHeader {
            api_key: ApiKey::Produce as u16,
            api_version: 0,
            correlation_id: 2,
            body_len: 7,
        }
        .encode(70)
        .unwrap();
        assert_eq!(header, hex("00000059 0004 0000 00000002 00000007")[..]);
    }

    /// The leading list's count is read as postcard wrote it.
    #[test]
    fn the_leading_list_length_is_read_without_decoding() {
        use super::delete_topics::DeleteTopicsRequest;
        for n in [0usize, 1, 127, 128, 300, 20_000] {
            let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            let mut out = Vec::new();
            encode_body(
                &DeleteTopicsRequest {
                    names: names.clone(),
                },
                &mut out,
            );
            assert_eq!(leading_list_len(&out, false), Some(n as u64));
            let mut out = Vec::new();
            encode_body(
                &MetadataRequest {
                    topics: Some(names),
                },
                &mut out,
            );
            assert_eq!(leading_list_len(&out, true), Some(n as u64));
        }
        let mut out = Vec::new();
        encode_body(&MetadataRequest { topics: None }, &mut out);
        assert_eq!(leading_list_len(&out, true), Some(0));
        assert_eq!(leading_list_len(&[], false), None);
        assert_eq!(leading_list_len(&[2], true), None);
        assert_eq!(leading_list_len(&[0x80; 11], false), None);
    }
}
