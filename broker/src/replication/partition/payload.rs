//! The application data of a partition group's Raft entries: record
//! batches, inline or as a range of a segment file.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::de::{self, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::log::LogFile;
use crate::log::io::read_full_at;
use crate::replication::transport::raw::{self, RawRange};

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

impl FileRange {
    /// Appends the range's bytes to `out` (blocking I/O). A range the file
    /// no longer holds in full is an `UnexpectedEof` error.
    fn read_into(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        let at = out.len();
        out.resize(at + len, 0);
        let n = read_full_at(
            &*self.file,
            out.get_mut(at..).unwrap_or_default(),
            self.position,
        )?;
        if n != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment range shorter than its entry",
            ));
        }
        Ok(())
    }

    fn raw(&self) -> RawRange {
        RawRange {
            file: Arc::clone(&self.file),
            position: self.position,
            len: self.len,
        }
    }
}

impl fmt::Debug for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileRange({}+{})", self.position, self.len)
    }
}

/// The record batches of one data entry (Kafka RecordBatch v2, back to
/// back): inline bytes (a producer's request), bytes this node owns alone
/// (a follower's slice of a received frame), or a file range of the
/// leader's log (what the transport sends with `sendfile`).
///
/// Serialized as a postcard enum: variant 0 carries the bytes (a file range
/// is read then), variant 1 only a length, the bytes being the next ones of
/// the frame's raw payload section. Variant 1 is written for a file range
/// inside [`raw::collect`], and read inside [`raw::with_payload`] (as
/// [`Records::Owned`], a view of the receive buffer).
#[derive(Clone, Debug)]
pub enum Records {
    /// Bytes in memory.
    Inline(Bytes),
    /// Bytes in memory that no other value shares (appended in place).
    Owned(BytesMut),
    /// A range of a segment file.
    File(FileRange),
    /// Ranges of consecutive segment files, back to back: an entry whose
    /// parts the leader's log rolled between. Serialized as one record
    /// byte string, like [`Records::File`].
    Files(Vec<FileRange>),
}

impl Records {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Records::Inline(b) => b.len() as u64,
            Records::Owned(b) => b.len() as u64,
            Records::File(r) => r.len,
            Records::Files(rs) => rs.iter().map(|r| r.len).sum(),
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
            Records::Owned(b) => Ok(Bytes::copy_from_slice(b)),
            Records::File(r) => {
                let mut buf = Vec::new();
                r.read_into(&mut buf)?;
                Ok(Bytes::from(buf))
            }
            Records::Files(rs) => {
                let len = usize::try_from(self.len()).map_err(io::Error::other)?;
                let mut buf = Vec::with_capacity(len);
                for r in rs {
                    r.read_into(&mut buf)?;
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The bytes as a buffer this caller owns: without a copy for
    /// [`Records::Owned`] and for unshared [`Records::Inline`] bytes.
    pub fn into_mut(self) -> io::Result<BytesMut> {
        match self {
            Records::Owned(b) => Ok(b),
            Records::Inline(b) => Ok(b.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]))),
            file @ (Records::File(_) | Records::Files(_)) => {
                file.to_bytes().map(|b| BytesMut::from(&b[..]))
            }
        }
    }

    /// The same records inline (see [`Records::to_bytes`]).
    pub fn into_inline(self) -> io::Result<Records> {
        self.to_bytes().map(Records::Inline)
    }
}

/// Bytes serialized as a postcard byte string.
struct ByteStr<'a>(&'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

const VARIANTS: &[&str] = &["Bytes", "Payload"];

impl Serialize for Records {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Records::File(r) => {
                if raw::push(&r.raw()) {
                    return s.serialize_newtype_variant("Records", 1, "Payload", &r.len);
                }
                let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
                s.serialize_newtype_variant("Records", 0, "Bytes", &ByteStr(&bytes))
            }
            Records::Files(rs) => {
                // Inside a collector every push succeeds, outside none does.
                let mut pushed = rs.iter().map(|r| raw::push(&r.raw()));
                if pushed.next().unwrap_or(true) && pushed.all(|p| p) {
                    return s.serialize_newtype_variant("Records", 1, "Payload", &self.len());
                }
                let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
                s.serialize_newtype_variant("Records", 0, "Bytes", &ByteStr(&bytes))
            }
            Records::Inline(b) => s.serialize_newtype_variant("Records", 0, "Bytes", &ByteStr(b)),
            Records::Owned(b) => s.serialize_newtype_variant("Records", 0, "Bytes", &ByteStr(b)),
        }
    }
}

/// The bytes of variant 0.
struct InlineBytes(Bytes);

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = InlineBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record batch bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<InlineBytes, E> {
        Ok(InlineBytes(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<InlineBytes, E> {
        Ok(InlineBytes(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InlineBytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(InlineBytes(Bytes::from(v)))
    }
}

impl<'de> Deserialize<'de> for InlineBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<InlineBytes, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct RecordsVisitor;

impl<'de> Visitor<'de> for RecordsVisitor {
    type Value = Records;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("records: bytes or a payload length")
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Records, A::Error> {
        let (tag, variant) = data.variant::<u32>()?;
        match tag {
            0 => {
                let InlineBytes(b) = variant.newtype_variant()?;
                Ok(Records::Inline(b))
            }
            1 => {
                let len: u64 = variant.newtype_variant()?;
                raw::take(len)
                    .map(Records::Owned)
                    .map_err(de::Error::custom)
            }
            other => Err(de::Error::custom(format!(
                "unknown records variant {other}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Records, D::Error> {
        d.deserialize_enum("Records", VARIANTS, RecordsVisitor)
    }
}

/// Who waits for the leader's local append of a part (its producer): the
/// node that proposed it and a number unique on that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The proposing node.
    pub node: u64,
    /// The proposal's number on that node.
    pub seq: u64,
}

/// One append unit of a data entry: `len` bytes of the entry's records,
/// following the previous part's. On the leader a part is one produce
/// request (group commit merges several into one entry); in an entry read
/// back from the segments, a part is what one segment file holds of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Length in bytes.
    pub len: u64,
    /// Who waits for the leader's local append of this part (`None` in
    /// entries read back).
    pub origin: Option<Origin>,
}

/// The application data of a data entry: record batches and the parts
/// they are appended in, each on its own (docs/replication.md, "Group
/// commit"): a part the log refuses refuses only itself.
///
/// Serialized (postcard) as `records`, then `parts` as a sequence of
/// `(len, origin)`. An empty `parts` means one part of every byte, with no
/// origin: its encoding, a single `0x00`, is the one of the earlier
/// single-part entry `(records, origin: None)`, so entries read back from
/// the segments encode as before. Decoding refuses parts whose lengths do
/// not add up to the records' length.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RequestFields")]
pub struct Request {
    /// The record batches. The leader's storage stamps `baseOffset` and
    /// `partitionLeaderEpoch` (= the entry's term) into them at append.
    pub records: Records,
    /// The parts, in order; empty for one part without an origin.
    pub parts: Vec<Part>,
}

impl Request {
    /// Checks an entry of log term `term` that a follower received, before
    /// it reaches the log. An entry without parts was read back from the
    /// leader's segment files, where the leader stamped every batch with the
    /// entry's term as `partitionLeaderEpoch` and with consecutive offsets.
    /// The leader sends those file ranges some time after reading where they
    /// are; had it stepped down and had its log truncated and rewritten
    /// in between, the bytes would carry another term (or not be batches at
    /// all), and are refused here instead of being stored under this
    /// entry's log id. Entries with parts (a proposal, not yet stamped) and
    /// records not held in memory pass.
    pub fn check_received(&self, term: u64) -> Result<(), String> {
        if !self.parts.is_empty() {
            return Ok(());
        }
        let bytes: &[u8] = match &self.records {
            Records::Inline(b) => b,
            Records::Owned(b) => b,
            Records::File(_) | Records::Files(_) => return Ok(()),
        };
        let epoch = i32::try_from(term).unwrap_or(i32::MAX);
        let mut at = 0usize;
        let mut next: Option<i64> = None;
        while at < bytes.len() {
            let rest = bytes.get(at..).unwrap_or_default();
            let bad = |e: sluice_protocol::batch::BatchError| format!("batch at byte {at}: {e}");
            let (_, len) = sluice_protocol::batch::peek_offset_and_len(rest).map_err(bad)?;
            let h = sluice_protocol::batch::BatchHeader::parse(rest).map_err(bad)?;
            if h.partition_leader_epoch != epoch {
                return Err(format!(
                    "batch at byte {at} has leader epoch {}, not the entry's term {term}: the leader's log changed under the range it sent",
                    h.partition_leader_epoch
                ));
            }
            if next.is_some_and(|n| n != h.base_offset) {
                return Err(format!(
                    "batch at byte {at} has base offset {}, not {} after the batch before it",
                    h.base_offset,
                    next.unwrap_or_default()
                ));
            }
            next = Some(
                h.base_offset
                    .saturating_add(i64::from(h.last_offset_delta))
                    .saturating_add(1),
            );
            at += len;
        }
        Ok(())
    }
}

/// [`Request`] as decoded, before its parts are checked.
#[derive(Deserialize)]
struct RequestFields {
    records: Records,
    parts: Vec<Part>,
}

impl TryFrom<RequestFields> for Request {
    type Error = String;

    fn try_from(r: RequestFields) -> Result<Request, String> {
        let request = Request {
            records: r.records,
            parts: r.parts,
        };
        if request.parts_match() {
            Ok(request)
        } else {
            Err(format!(
                "parts of {} bytes in an entry of {}",
                request
                    .parts
                    .iter()
                    .fold(0u64, |a, p| a.saturating_add(p.len)),
                request.records.len()
            ))
        }
    }
}

impl Request {
    /// A single-part entry without an origin.
    pub fn whole(records: Records) -> Request {
        Request {
            records,
            parts: Vec::new(),
        }
    }

    /// Whether the parts cover the records exactly (or there are none).
    pub fn parts_match(&self) -> bool {
        self.parts.is_empty()
            || self
                .parts
                .iter()
                .try_fold(0u64, |a, p| a.checked_add(p.len))
                == Some(self.records.len())
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records({} bytes, {} parts)",
            self.records.len(),
            self.parts.len().max(1)
        )
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;
    use crate::log::io::StdFile;
    use crate::replication::transport::raw;

    /// Two batches of `n` records each, stamped as a leader's log holds
    /// them: offsets from `base`, leader epoch `epoch`.
    fn stamped(base: i64, epoch: i32, n: usize) -> BytesMut {
        use sluice_protocol::batch::{BatchBuilder, NewRecord};
        let mut out = BytesMut::new();
        for k in 0..2 {
            let mut b = BatchBuilder::new()
                .base_offset(base + (k * n) as i64)
                .partition_leader_epoch(epoch);
            for _ in 0..n {
                b.push(&NewRecord {
                    timestamp: 1_700_000_000_000,
                    key: None,
                    value: Some(b"v"),
                    headers: &[],
                });
            }
            b.finish_into(&mut out);
        }
        out
    }

    fn read_back(records: BytesMut) -> Request {
        Request {
            records: Records::Owned(records),
            parts: Vec::new(),
        }
    }

    #[test]
    fn a_received_entry_must_hold_batches_of_its_own_term() {
        // As the leader stamped them: taken.
        assert_eq!(read_back(stamped(40, 7, 3)).check_received(7), Ok(()));
        // Rewritten by a later term under the range the leader sent.
        let e = read_back(stamped(40, 8, 3)).check_received(7).unwrap_err();
        assert!(e.contains("leader epoch 8"), "{e}");
        // Batches that do not follow each other.
        let mut gap = stamped(40, 7, 3);
        gap.extend_from_slice(&stamped(100, 7, 1));
        let e = read_back(gap).check_received(7).unwrap_err();
        assert!(e.contains("base offset 100"), "{e}");
        // Not batches at all.
        let e = read_back(BytesMut::from(&[0xAB; 80][..]))
            .check_received(7)
            .unwrap_err();
        assert!(e.contains("byte 0"), "{e}");
        // A proposal (with parts) is not stamped yet: not checked.
        let proposal = Request {
            records: Records::Owned(stamped(0, -1, 1)),
            parts: vec![Part {
                len: stamped(0, -1, 1).len() as u64,
                origin: None,
            }],
        };
        assert_eq!(proposal.check_received(7), Ok(()));
        // Empty records (an entry the log refused): nothing to check.
        assert_eq!(read_back(BytesMut::new()).check_received(7), Ok(()));
    }

    fn file_with(bytes: &[u8]) -> Arc<dyn LogFile> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Arc::new(StdFile::new(f))
    }

    fn entries(file: &Arc<dyn LogFile>) -> Vec<Request> {
        let range = |position, len| FileRange {
            file: Arc::clone(file),
            position,
            len,
        };
        vec![
            Request::whole(Records::File(range(2, 5))),
            Request {
                records: Records::Inline(Bytes::from_static(b"inline")),
                parts: vec![
                    Part {
                        len: 2,
                        origin: Some(Origin { node: 3, seq: 9 }),
                    },
                    Part {
                        len: 4,
                        origin: Some(Origin { node: 3, seq: 10 }),
                    },
                ],
            },
            Request::whole(Records::File(range(7, 3))),
            // An entry across two segment files: one length in the body.
            Request {
                records: Records::Files(vec![range(0, 1), range(1, 1)]),
                parts: vec![
                    Part {
                        len: 1,
                        origin: None,
                    },
                    Part {
                        len: 1,
                        origin: None,
                    },
                ],
            },
        ]
    }

    /// The bytes a transport's payload section would carry for `ranges`.
    fn payload_of(ranges: &[RawRange]) -> BytesMut {
        let mut out = BytesMut::new();
        for r in ranges {
            let mut buf = vec![0u8; r.len as usize];
            read_full_at(&*r.file, &mut buf, r.position).unwrap();
            out.extend_from_slice(&buf);
        }
        out
    }

    fn contents(reqs: &[Request]) -> Vec<Vec<u8>> {
        reqs.iter()
            .map(|r| r.records.to_bytes().unwrap().to_vec())
            .collect()
    }

    #[test]
    fn file_ranges_travel_in_the_payload_and_come_back_as_owned_slices() {
        let file = file_with(b"0123456789");
        let sent = entries(&file);
        let (body, ranges) = raw::collect(|| postcard::to_allocvec(&sent).unwrap());
        // Only lengths in the body: no record byte of a file range in it.
        assert!(!body.windows(5).any(|w| w == b"23456"), "{body:?}");
        assert_eq!(ranges.len(), 4);
        assert_eq!(raw::total_len(&ranges), 10);
        let payload = payload_of(&ranges);
        let got: Vec<Request> = raw::with_payload(payload, || {
            postcard::from_bytes(&body).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(contents(&got), contents(&sent));
        assert!(matches!(got[0].records, Records::Owned(_)));
        assert!(matches!(got[1].records, Records::Inline(_)));
        assert_eq!(got[1].parts, sent[1].parts);
        assert_eq!(got[3].parts, sent[3].parts);
        assert!(matches!(got[3].records, Records::Owned(_)));
        // Owned slices are appended in place: no copy to get them mutable.
        let first = got[0].records.clone();
        let ptr = match &first {
            Records::Owned(b) => b.as_ptr(),
            _ => unreachable!(),
        };
        assert_eq!(first.into_mut().unwrap().as_ptr(), ptr);
    }

    #[test]
    fn without_a_collector_file_ranges_are_read_inline() {
        let file = file_with(b"0123456789");
        let sent = entries(&file);
        let body = postcard::to_allocvec(&sent).unwrap();
        let got: Vec<Request> = postcard::from_bytes(&body).unwrap();
        assert_eq!(contents(&got), contents(&sent));
        // And the body alone decodes with an empty payload section.
        let got: Vec<Request> = raw::with_payload(BytesMut::new(), || {
            postcard::from_bytes(&body).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(contents(&got), contents(&sent));
    }

    #[test]
    fn a_payload_that_does_not_match_its_entries_is_an_error() {
        let file = file_with(b"0123456789");
        let sent = entries(&file);
        let (body, ranges) = raw::collect(|| postcard::to_allocvec(&sent).unwrap());
        let decode = |payload: BytesMut| {
            raw::with_payload(payload, || {
                postcard::from_bytes::<Vec<Request>>(&body).map_err(|e| e.to_string())
            })
        };
        let full = payload_of(&ranges);
        let short = BytesMut::from(&full[..9]);
        let e = decode(short).unwrap_err();
        assert!(e.contains("overruns the payload"), "{e}");
        let mut long = full.clone();
        long.extend_from_slice(b"!");
        let e = decode(long).unwrap_err();
        assert!(e.contains("1 bytes more"), "{e}");
        assert!(decode(BytesMut::new()).is_err());
        // Outside a receive (no payload section at all) too.
        assert!(postcard::from_bytes::<Vec<Request>>(&body).is_err());
        assert_eq!(decode(full).map(|r| contents(&r)), Ok(contents(&sent)));
        // A huge length never allocates: it is checked against the payload.
        let mut huge = Vec::new();
        postcard::to_io(&(1u32, 1u32, u64::MAX), &mut huge).unwrap();
        assert!(
            raw::with_payload(full_clone(), || postcard::from_bytes::<Vec<Records>>(&huge)
                .map_err(|e| e.to_string()))
            .is_err()
        );
    }

    fn full_clone() -> BytesMut {
        BytesMut::from(&b"abc"[..])
    }

    #[test]
    fn adjacent_ranges_of_one_file_merge_for_one_sendfile() {
        let file = file_with(b"0123456789");
        let other = file_with(b"0123456789");
        let r = |f: &Arc<dyn LogFile>, position, len| RawRange {
            file: Arc::clone(f),
            position,
            len,
        };
        let merged = raw::merge(vec![
            r(&file, 0, 3),
            r(&file, 3, 4),
            r(&file, 9, 0),
            r(&other, 7, 1),
            r(&file, 8, 2),
        ]);
        let shape: Vec<(u64, u64)> = merged.iter().map(|m| (m.position, m.len)).collect();
        assert_eq!(shape, vec![(0, 7), (7, 1), (8, 2)]);
        assert_eq!(payload_of(&merged)[..], b"0123456789"[..]);
    }
    /// The former single-part entry: `(records, origin: Option<Origin>)`.
    #[derive(Serialize)]
    struct SinglePart<'a> {
        records: &'a Records,
        origin: Option<Origin>,
    }

    /// The layout of docs/replication.md ("Group commit"), byte for byte.
    #[test]
    fn the_documented_entry_bytes() {
        let r = Request {
            records: Records::Inline(Bytes::from_static(b"abc")),
            parts: vec![
                Part {
                    len: 1,
                    origin: Some(Origin { node: 2, seq: 300 }),
                },
                Part {
                    len: 2,
                    origin: None,
                },
            ],
        };
        let bytes = postcard::to_allocvec(&r).unwrap();
        assert_eq!(
            bytes,
            [
                0x00, 0x03, b'a', b'b', b'c', 0x02, 0x01, 0x01, 0x02, 0xac, 0x02, 0x02, 0x00
            ]
        );
        let back: Request = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.parts, r.parts);
        assert_eq!(contents(&[back]), contents(&[r]));
    }

    #[test]
    fn a_single_part_entry_encodes_as_before_parts_existed() {
        let records = Records::Inline(Bytes::from_static(b"xyz"));
        let old = postcard::to_allocvec(&SinglePart {
            records: &records,
            origin: None,
        })
        .unwrap();
        let new = postcard::to_allocvec(&Request::whole(records)).unwrap();
        assert_eq!(old, new);
        let back: Request = postcard::from_bytes(&old).unwrap();
        assert!(back.parts.is_empty());
        assert_eq!(back.records.to_bytes().unwrap(), &b"xyz"[..]);
    }

    #[test]
    fn parts_that_do_not_cover_the_records_are_refused() {
        for lens in [vec![1u64], vec![2, 2], vec![u64::MAX, 4]] {
            let r = Request {
                records: Records::Inline(Bytes::from_static(b"abc")),
                parts: lens.iter().map(|&len| Part { len, origin: None }).collect(),
            };
            assert!(!r.parts_match());
            let bytes = postcard::to_allocvec(&r).unwrap();
            assert!(postcard::from_bytes::<Request>(&bytes).is_err(), "{lens:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn entries_with_parts_round_trip(
            lens in proptest::collection::vec(0u64..50, 0..6),
            origins in proptest::collection::vec(proptest::option::of((0u64..1 << 40, proptest::prelude::any::<u64>())), 6),
        ) {
            let total: u64 = lens.iter().sum();
            let records = Records::Inline(Bytes::from((0..total).map(|i| i as u8).collect::<Vec<u8>>()));
            let parts: Vec<Part> = lens
                .iter()
                .zip(&origins)
                .map(|(&len, o)| Part { len, origin: o.map(|(node, seq)| Origin { node, seq }) })
                .collect();
            let r = Request { records, parts };
            let bytes = postcard::to_allocvec(&r).unwrap();
            let back: Request = postcard::from_bytes(&bytes).unwrap();
            proptest::prop_assert_eq!(&back.parts, &r.parts);
            proptest::prop_assert_eq!(back.records.to_bytes().unwrap(), r.records.to_bytes().unwrap());
            // And through a transport's payload section.
            let (body, ranges) = raw::collect(|| postcard::to_allocvec(&r).unwrap());
            proptest::prop_assert!(ranges.is_empty());
            let back: Request = raw::with_payload(BytesMut::new(), || {
                postcard::from_bytes(&body).map_err(|e| e.to_string())
            })
            .unwrap();
            proptest::prop_assert_eq!(back.parts, r.parts);
        }
    }
}
