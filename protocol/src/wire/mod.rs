//! The native wire protocol: frames, API keys, error codes and the request
//! and response bodies of every API. Byte layout: `docs/protocol.md`.
//!
//! Control-plane bodies are `serde` types encoded with `postcard`. Record
//! batches never go through serde: they travel in a frame's raw tail, with
//! their lengths given in the body ([`produce`], [`fetch`]).

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
mod error_code;
pub mod fetch;
pub mod frame;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod produce;
pub mod stats;
pub mod topic_config;

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
}

impl ApiKey {
    /// Every API, in key order.
    pub const ALL: [ApiKey; 10] = [
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
    ];

    /// The API for a key number, if known.
    pub fn from_u16(key: u16) -> Option<ApiKey> {
        ApiKey::ALL.into_iter().find(|k| *k as u16 == key)
    }

    /// The body versions this build speaks: `(min, max)`.
    pub fn versions(self) -> (u16, u16) {
        (0, 0)
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
}

/// Encodes a body with postcard, appending to `out`. Returns its length.
pub fn encode_body<T: Serialize>(body: &T, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    // Serializing plain data structs into a Vec cannot fail.
    if let Ok(bytes) = postcard::to_stdvec(body) {
        out.extend_from_slice(&bytes);
    }
    out.len() - before
}

/// Decodes a body that must span all of `buf`.
pub fn decode_body<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<T, WireError> {
    let (value, rest) =
        postcard::take_from_bytes(buf).map_err(|e| WireError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    Ok(value)
}
