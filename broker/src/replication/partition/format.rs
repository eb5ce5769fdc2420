//! Byte layouts of the Raft files in a partition directory (`raft/`),
//! specified in `docs/storage-format.md` ("Raft index"): the fixed-size
//! index record and the CRC frame of the small side files.

/// Length of one Raft index record.
pub const RECORD_LEN: usize = 40;

/// Length of a side-file frame header (`u32` length, `u32` CRC-32).
pub const FRAME_HEADER_LEN: usize = 8;

/// The largest payload a side-file frame may declare (16 MiB): a decoder
/// never allocates more for one frame.
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// What a Raft log entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Record batches: the Kafka offsets `base..next` of the partition log.
    Data = 1,
    /// A leader's blank entry (no Kafka offsets).
    Blank = 2,
    /// A membership change (no Kafka offsets; payload in the side file).
    Membership = 3,
    /// A data entry the partition log refused (invalid batch, producer
    /// sequence error...): the same refusal on every replica, no offsets.
    Rejected = 4,
}

impl EntryKind {
    fn from_u8(b: u8) -> Option<EntryKind> {
        match b {
            1 => Some(EntryKind::Data),
            2 => Some(EntryKind::Blank),
            3 => Some(EntryKind::Membership),
            4 => Some(EntryKind::Rejected),
            _ => None,
        }
    }
}

/// One Raft log entry as the index file records it. For every kind,
/// `base..next` is the Kafka offset range the entry occupies (empty,
/// `base == next` = the log end at that point, for blank and membership
/// entries), so the log end after any entry is its `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRecord {
    /// The Raft term of the entry.
    pub term: u64,
    /// The node that led that term (with `term`, the entry's leader id).
    pub leader: u64,
    /// What the entry holds.
    pub kind: EntryKind,
    /// First Kafka offset of the entry.
    pub base: u64,
    /// The Kafka offset just after the entry.
    pub next: u64,
}

impl IndexRecord {
    /// Encodes the record: `term u64 | leader u64 | base u64 | next u64 |
    /// kind u8 | 3 zero bytes | crc32 u32` (big-endian, CRC-32/IEEE over
    /// bytes 0..36).
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..8].copy_from_slice(&self.term.to_be_bytes());
        b[8..16].copy_from_slice(&self.leader.to_be_bytes());
        b[16..24].copy_from_slice(&self.base.to_be_bytes());
        b[24..32].copy_from_slice(&self.next.to_be_bytes());
        b[32] = self.kind as u8;
        let crc = crc32fast::hash(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes one record; `None` if `b` is short, its CRC does not match,
    /// its kind is unknown or `next < base` (a torn or damaged record).
    pub fn decode(b: &[u8]) -> Option<IndexRecord> {
        let b = b.get(..RECORD_LEN)?;
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let crc = u32::from_be_bytes(b.get(36..40)?.try_into().ok()?);
        if crc32fast::hash(b.get(..36)?) != crc || b.get(33..36)? != [0, 0, 0] {
            return None;
        }
        let rec = IndexRecord {
            term: u64_at(0)?,
            leader: u64_at(8)?,
            base: u64_at(16)?,
            next: u64_at(24)?,
            kind: EntryKind::from_u8(*b.get(32)?)?,
        };
        (rec.next >= rec.base).then_some(rec)
    }
}

/// Frames `payload` for a side file: `len u32 | crc32 u32 | payload`
/// (big-endian, CRC-32/IEEE of the payload).
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits a side file into its frames' payloads, stopping at the first
/// short, oversized or corrupt frame (a torn tail). Returns the payloads and
/// the length of the valid prefix.
pub fn decode_frames(mut buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut valid = 0;
    while let Some(head) = buf.get(..FRAME_HEADER_LEN) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_FRAME_LEN {
            break;
        }
        let Some(payload) = buf.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.push(payload);
        valid += FRAME_HEADER_LEN + len;
        buf = buf.get(FRAME_HEADER_LEN + len..).unwrap_or_default();
    }
    (out, valid)
}

/// The name of the index file whose first record is Raft index `first`.
pub fn index_file_name(first: u64) -> String {
    format!("{first:020}.ridx")
}

/// The first Raft index of an index file name, if it is one.
pub fn parse_index_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".ridx")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = EntryKind> {
        prop_oneof![
            Just(EntryKind::Data),
            Just(EntryKind::Blank),
            Just(EntryKind::Membership),
            Just(EntryKind::Rejected)
        ]
    }

    proptest! {
        #[test]
        fn record_round_trips(term: u64, leader: u64, base: u64, len in 0u64..1 << 32, kind in kind()) {
            let next = base.saturating_add(len);
            let rec = IndexRecord { term, leader, kind, base, next };
            prop_assert_eq!(IndexRecord::decode(&rec.encode()), Some(rec));
        }

        #[test]
        fn any_flipped_bit_is_refused(term: u64, base in 0u64..1 << 40, bit in 0usize..RECORD_LEN * 8) {
            let rec = IndexRecord { term, leader: 2, kind: EntryKind::Data, base, next: base + 5 };
            let mut b = rec.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(IndexRecord::decode(&b), None);
        }

        #[test]
        fn frames_round_trip_and_stop_at_a_torn_tail(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            cut in 0usize..1000,
        ) {
            let mut buf = Vec::new();
            for p in &payloads {
                encode_frame(p, &mut buf);
            }
            let (got, valid) = decode_frames(&buf);
            prop_assert_eq!(valid, buf.len());
            prop_assert_eq!(got.iter().map(|p| p.to_vec()).collect::<Vec<_>>(), payloads.clone());
            let cut = cut.min(buf.len());
            let (got, valid) = decode_frames(&buf[..cut]);
            prop_assert!(valid <= cut);
            prop_assert!(got.len() <= payloads.len());
        }
    }

    /// The example of `docs/storage-format.md`, byte for byte.
    #[test]
    fn documented_record_bytes() {
        let rec = IndexRecord {
            term: 3,
            leader: 2,
            kind: EntryKind::Data,
            base: 100,
            next: 105,
        };
        let b = rec.encode();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let crc = crc32fast::hash(&b[..36]);
        assert_eq!(
            hex,
            format!(
                "0000000000000003{}{}{}01000000{crc:08x}",
                "0000000000000002", "0000000000000064", "0000000000000069"
            )
        );
        assert_eq!(IndexRecord::decode(&b), Some(rec));
        assert_eq!(parse_index_file_name(&index_file_name(42)), Some(42));
        assert_eq!(index_file_name(42), "00000000000000000042.ridx");
    }
}
