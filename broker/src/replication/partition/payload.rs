//! The application data of a partition group's Raft entries: record
//! batches, inline or as a range of a segment file.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::log::LogFile;
use crate::log::io::read_full_at;

/// A byte range of a segment file holding whole record batches. Holding it
/// keeps the file open even if the segment is deleted meanwhile.
#[derive(Clone)]
pub struct FileRange {
    /// The segment file.
    pub file: Arc<dyn LogFile>,
    /// First byte of the range.
    pub position: u64,
    /// Length of the range in bytes.
    pub len: u64,
}

impl fmt::Debug for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileRange({}+{})", self.position, self.len)
    }
}

/// The record batches of one data entry (Kafka RecordBatch v2, back to
/// back): inline bytes (a producer's request, or what a follower received)
/// or a file range of the leader's log (what a transport may send with
/// `sendfile`). Serializes as a byte string either way (a file range is
/// read then), and always deserializes inline.
#[derive(Clone, Debug)]
pub enum Records {
    /// Bytes in memory.
    Inline(Bytes),
    /// A range of a segment file.
    File(FileRange),
}

impl Records {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Records::Inline(b) => b.len() as u64,
            Records::File(r) => r.len,
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, reading a file range (blocking I/O for [`Records::File`]).
    /// A range the file no longer holds in full is an `UnexpectedEof` error.
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        match self {
            Records::Inline(b) => Ok(b.clone()),
            Records::File(r) => {
                let len = usize::try_from(r.len).map_err(io::Error::other)?;
                let mut buf = vec![0u8; len];
                let n = read_full_at(&*r.file, &mut buf, r.position)?;
                if n != len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment range shorter than its entry",
                    ));
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The same records inline (see [`Records::to_bytes`]).
    pub fn into_inline(self) -> io::Result<Records> {
        self.to_bytes().map(Records::Inline)
    }
}

impl Serialize for Records {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Records;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record batch bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Records, E> {
        Ok(Records::Inline(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Records, E> {
        Ok(Records::Inline(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Records::Inline(Bytes::from(v)))
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Records, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

/// Who waits for the leader's local append of an entry (an acks=leader
/// producer): the node that proposed it and a number unique on that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The proposing node.
    pub node: u64,
    /// The proposal's number on that node.
    pub seq: u64,
}

/// The application data of a data entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    /// The record batches. The leader's storage stamps `baseOffset` and
    /// `partitionLeaderEpoch` (= the entry's term) into them at append.
    pub records: Records,
    /// Set by an acks=leader proposal; `None` in entries read back.
    pub origin: Option<Origin>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "records({} bytes)", self.records.len())
    }
}

/// Where a committed data entry's records landed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The partition log refused the records (on every replica alike);
    /// the offsets mean nothing then.
    pub rejected: bool,
}
