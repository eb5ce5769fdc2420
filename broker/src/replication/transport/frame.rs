//! Node-to-node frames: the byte layout of docs/replication.md
//! ("Node-to-node frames").
//!
//! ```text
//! u32 length        bytes after this field: 32 + body_len + payload_len
//! u8  version       1
//! u8  kind          0 request, 1 response, 2 error response
//! u8  rpc           which call (see `Rpc`)
//! u8  group         0 controller, 1 partition
//! u64 topic_id      0 for the controller
//! u32 partition     0 for the controller
//! u64 request_id    echoed by the response
//! u32 body_len      postcard body
//! u32 payload_len   raw payload after the body (record bytes, see `raw`)
//! ```
//!
//! All integers big-endian. Decoding is two steps, check then parse: an
//! incomplete frame is `Ok(None)`; a frame that breaks the layout or is
//! larger than [`MAX_FRAME`] is an error, and the connection is closed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Frame layout version.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header after the length field.
pub const HEADER_LEN: usize = 32;
/// Largest frame accepted (length field value).
pub const MAX_FRAME: usize = 64 << 20;

/// The Raft group a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupId {
    /// The controller group (cluster metadata).
    Controller,
    /// One partition's group. `topic_id` is given by the controller at
    /// creation and never reused.
    Partition {
        /// The topic's id.
        topic_id: u64,
        /// Partition index.
        partition: u32,
    },
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupId::Controller => f.write_str("controller"),
            GroupId::Partition {
                topic_id,
                partition,
            } => write!(f, "topic {topic_id} partition {partition}"),
        }
    }
}

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call.
    Request,
    /// The answer to a call (the handler's body).
    Response,
    /// The call failed on the receiving node (body: postcard `String`).
    Error,
}

/// Which call a request is (its response carries the same value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Rpc {
    /// Raft AppendEntries.
    AppendEntries = 1,
    /// Raft RequestVote.
    Vote = 2,
    /// Raft InstallSnapshot (one chunk).
    InstallSnapshot = 3,
    /// An admin command forwarded to the controller leader.
    Forward = 4,
    /// The first frame of every connection: who calls, for which cluster
    /// (see [`super::hello`]).
    Hello = 5,
    /// Would the callee vote for the caller (see
    /// [`crate::replication::election`])?
    PreVote = 6,
    /// Is the callee there? Answered at once with an empty body by a node
    /// at protocol version 2 or later, before any other call waiting
    /// ([`super::Transport::watch_peers`]).
    Ping = 7,
}

impl Rpc {
    /// The label of metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::AppendEntries => "append_entries",
            Rpc::Vote => "vote",
            Rpc::InstallSnapshot => "install_snapshot",
            Rpc::Forward => "forward",
            Rpc::Hello => "hello",
            Rpc::PreVote => "pre_vote",
            Rpc::Ping => "ping",
        }
    }

    fn from_u8(v: u8) -> Option<Rpc> {
        Some(match v {
            1 => Rpc::AppendEntries,
            2 => Rpc::Vote,
            3 => Rpc::InstallSnapshot,
            4 => Rpc::Forward,
            5 => Rpc::Hello,
            6 => Rpc::PreVote,
            7 => Rpc::Ping,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Request, response or error.
    pub kind: Kind,
    /// Which call.
    pub rpc: Rpc,
    /// Which group.
    pub group: GroupId,
    /// Matches a response to its request on one connection.
    pub request_id: u64,
    /// The postcard part.
    pub body: Bytes,
    /// The raw part after the body (owned: entries take slices of it and
    /// append them in place).
    pub payload: BytesMut,
}

/// A frame that breaks the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Length field above [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// Length field below the header size, or not the sum of the parts.
    #[error("frame length {length} does not match its header (body {body}, payload {payload})")]
    BadLength {
        /// The length field.
        length: usize,
        /// The body length field.
        body: usize,
        /// The payload length field.
        payload: usize,
    },
    /// A version this node does not speak.
    #[error("unknown frame version {0}")]
    Version(u8),
    /// Unknown kind, rpc or group tag.
    #[error("unknown {field} {value}")]
    Unknown {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u8,
    },
}

impl Frame {
    /// Appends the encoded frame to `out`. Panics if it would exceed
    /// [`MAX_FRAME`] (callers bound what they send).
    pub fn encode(&self, out: &mut BytesMut) {
        let length = HEADER_LEN + self.body.len() + self.payload.len();
        assert!(length <= MAX_FRAME, "frame of {length} bytes");
        out.reserve(4 + length);
        self.encode_head(self.payload.len(), out)
            .unwrap_or_else(|e| panic!("{e}"));
        out.put_slice(&self.payload);
    }

    /// Appends the frame's header and body to `out`, for a payload of
    /// `payload_len` bytes that the caller sends right after them (the
    /// frame's own `payload` is ignored). A frame above [`MAX_FRAME`] is
    /// refused and nothing is written.
    pub fn encode_head(&self, payload_len: usize, out: &mut BytesMut) -> Result<(), FrameError> {
        let length = HEADER_LEN as u64 + self.body.len() as u64 + payload_len as u64;
        if length > MAX_FRAME as u64 {
            return Err(FrameError::TooLarge(
                usize::try_from(length).unwrap_or(usize::MAX),
            ));
        }
        out.reserve(4 + HEADER_LEN + self.body.len());
        out.put_u32(length as u32);
        out.put_u8(VERSION);
        out.put_u8(match self.kind {
            Kind::Request => 0,
            Kind::Response => 1,
            Kind::Error => 2,
        });
        out.put_u8(self.rpc as u8);
        let (tag, topic_id, partition) = match self.group {
            GroupId::Controller => (0, 0, 0),
            GroupId::Partition {
                topic_id,
                partition,
            } => (1, topic_id, partition),
        };
        out.put_u8(tag);
        out.put_u64(topic_id);
        out.put_u32(partition);
        out.put_u64(self.request_id);
        out.put_u32(self.body.len() as u32);
        out.put_u32(payload_len as u32);
        out.put_slice(&self.body);
        Ok(())
    }

    /// Takes one whole frame off the front of `buf`: `Ok(None)` (and `buf`
    /// untouched) while it is incomplete. Allocates nothing beyond splitting
    /// `buf`: the length field is checked against [`MAX_FRAME`] before it is
    /// waited for.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if length > MAX_FRAME {
            return Err(FrameError::TooLarge(length));
        }
        if length < HEADER_LEN {
            return Err(FrameError::BadLength {
                length,
                body: 0,
                payload: 0,
            });
        }
        // Check the header as soon as it is in, not when the whole frame is.
        if buf.len() < 4 + HEADER_LEN {
            return Ok(None);
        }
        let mut h = &buf[4..4 + HEADER_LEN];
        let version = h.get_u8();
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = match h.get_u8() {
            0 => Kind::Request,
            1 => Kind::Response,
            2 => Kind::Error,
            value => {
                return Err(FrameError::Unknown {
                    field: "kind",
                    value,
                });
            }
        };
        let rpc_byte = h.get_u8();
        let rpc = Rpc::from_u8(rpc_byte).ok_or(FrameError::Unknown {
            field: "rpc",
            value: rpc_byte,
        })?;
        let tag = h.get_u8();
        let topic_id = h.get_u64();
        let partition = h.get_u32();
        let group = match tag {
            0 if topic_id == 0 && partition == 0 => GroupId::Controller,
            1 => GroupId::Partition {
                topic_id,
                partition,
            },
            value => {
                return Err(FrameError::Unknown {
                    field: "group",
                    value,
                });
            }
        };
        let request_id = h.get_u64();
        let body_len = h.get_u32() as usize;
        let payload_len = h.get_u32() as usize;
        if HEADER_LEN as u64 + body_len as u64 + payload_len as u64 != length as u64 {
            return Err(FrameError::BadLength {
                length,
                body: body_len,
                payload: payload_len,
            });
        }
        if buf.len() < 4 + length {
            return Ok(None);
        }
        let mut whole = buf.split_to(4 + length);
        whole.advance(4 + HEADER_LEN);
        let body = whole.split_to(body_len).freeze();
        let payload = whole;
        Ok(Some(Frame {
            kind,
            rpc,
            group,
            request_id,
            body,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn frame() -> Frame {
        Frame {
            kind: Kind::Request,
            rpc: Rpc::Vote,
            group: GroupId::Partition {
                topic_id: 7,
                partition: 2,
            },
            request_id: 0x0102,
            body: Bytes::from_static(b"ab"),
            payload: BytesMut::from(&b"xyz"[..]),
        }
    }

    /// The worked example of docs/replication.md.
    #[test]
    fn the_documented_bytes() {
        let mut out = BytesMut::new();
        frame().encode(&mut out);
        let expected: Vec<u8> = [
            &[0, 0, 0, 37][..],
            &[1, 0, 2, 1],
            &[0, 0, 0, 0, 0, 0, 0, 7],
            &[0, 0, 0, 2],
            &[0, 0, 0, 0, 0, 0, 1, 2],
            &[0, 0, 0, 2],
            &[0, 0, 0, 3],
            b"ab",
            b"xyz",
        ]
        .concat();
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(Frame::decode(&mut out).unwrap(), Some(frame()));
        assert!(out.is_empty());
    }

    #[test]
    fn incomplete_frames_wait_and_bad_ones_fail() {
        let mut whole = BytesMut::new();
        frame().encode(&mut whole);
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(Frame::decode(&mut part), Ok(None), "cut at {cut}");
            assert_eq!(part.len(), cut);
        }
        let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            Frame::decode(&mut huge),
            Err(FrameError::TooLarge(_))
        ));
        let mut bad = whole.clone();
        bad[4] = 9;
        assert_eq!(Frame::decode(&mut bad), Err(FrameError::Version(9)));
        let mut bad = whole.clone();
        bad[35] = 9; // body_len
        assert!(matches!(
            Frame::decode(&mut bad),
            Err(FrameError::BadLength { .. })
        ));
        let mut bad = whole.clone();
        bad[6] = 8; // rpc
        assert!(matches!(
            Frame::decode(&mut bad),
            Err(FrameError::Unknown { .. })
        ));
        let mut bad = whole.clone();
        bad[7] = 5; // group tag
        assert!(matches!(
            Frame::decode(&mut bad),
            Err(FrameError::Unknown { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(
            kind in 0u8..3, rpc in 1u8..8, controller: bool, topic_id: u64, partition: u32,
            request_id: u64, body in proptest::collection::vec(any::<u8>(), 0..64),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let f = Frame {
                kind: [Kind::Request, Kind::Response, Kind::Error][kind as usize],
                rpc: Rpc::from_u8(rpc).unwrap(),
                group: if controller { GroupId::Controller } else { GroupId::Partition { topic_id, partition } },
                request_id,
                body: body.into(),
                payload: BytesMut::from(&payload[..]),
            };
            let mut out = BytesMut::new();
            f.encode(&mut out);
            f.encode(&mut out);
            prop_assert_eq!(Frame::decode(&mut out).unwrap(), Some(f.clone()));
            prop_assert_eq!(Frame::decode(&mut out).unwrap(), Some(f));
            prop_assert!(out.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = Frame::decode(&mut buf) {}
        }
    }
}
