//! The durable form of a group's metadata: the value of a key-type-2 record
//! in the offsets log (see [`crate::offsets`]). Layout, once, in
//! `docs/storage-format.md` ("Group metadata records").

use serde::{Deserialize, Serialize};

/// Version of the group metadata value layout (big-endian `u16` at the
/// start of the value): 2, the postcard [`GroupRecord`] followed by its
/// `written_ms` as `i64` BE. Version 1 (the postcard record alone) is still
/// read, with `written_ms` 0.
pub const GROUP_VALUE_VERSION: u16 = 2;

/// One member of a stored generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout, ms.
    pub session_timeout_ms: u32,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: u32,
    /// Metadata for the group's protocol.
    pub metadata: Vec<u8>,
    /// Assignment.
    pub assignment: Vec<u8>,
}

/// A group's metadata as stored when a generation becomes Stable (members
/// with their assignments) or the group becomes Empty (no members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Protocol type ("" when Empty).
    pub protocol_type: String,
    /// Generation.
    pub generation_id: i32,
    /// Chosen protocol (none when Empty).
    pub protocol: Option<String>,
    /// Leader's member id (none when Empty).
    pub leader: Option<String>,
    /// Members, in join order.
    pub members: Vec<MemberRecord>,
    /// When the record was written: milliseconds since the Unix epoch, 0
    /// if not known (a version 1 value). Encoded after the postcard part.
    #[serde(skip)]
    pub written_ms: i64,
}

impl GroupRecord {
    /// `u16` BE [`GROUP_VALUE_VERSION`], the postcard encoding, then
    /// `written_ms` as `i64` BE.
    pub fn encode(&self) -> Vec<u8> {
        let out = GROUP_VALUE_VERSION.to_be_bytes().to_vec();
        // Encoding plain data into a Vec cannot fail.
        let mut out = postcard::to_extend(self, out).unwrap_or_default();
        out.extend_from_slice(&self.written_ms.to_be_bytes());
        out
    }

    /// Decodes bytes written by [`GroupRecord::encode`]; anything else is
    /// an error saying why (never a panic).
    pub fn decode(buf: &[u8]) -> Result<GroupRecord, String> {
        let [v0, v1, rest @ ..] = buf else {
            return Err(format!("group metadata value of {} bytes", buf.len()));
        };
        let version = u16::from_be_bytes([*v0, *v1]);
        let written_len = match version {
            1 => 0,
            GROUP_VALUE_VERSION => 8,
            _ => return Err(format!("group metadata value version {version}")),
        };
        let (mut record, tail) = postcard::take_from_bytes::<GroupRecord>(rest)
            .map_err(|e| format!("group metadata value: {e}"))?;
        if tail.len() != written_len {
            return Err(format!(
                "{} bytes after the group metadata value",
                tail.len()
            ));
        }
        if let Ok(at) = <[u8; 8]>::try_from(tail) {
            record.written_ms = i64::from_be_bytes(at);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> GroupRecord {
        GroupRecord {
            protocol_type: "consumer".into(),
            generation_id: 3,
            protocol: Some("range".into()),
            leader: Some("c-1".into()),
            members: vec![MemberRecord {
                member_id: "c-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "10.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 300_000,
                metadata: vec![1, 2],
                assignment: vec![3],
            }],
            written_ms: 1_700_000_000_123,
        }
    }

    /// The layout of `docs/storage-format.md`, byte for byte.
    #[test]
    fn layout_matches_the_docs() {
        let empty = GroupRecord {
            protocol_type: String::new(),
            generation_id: 5,
            protocol: None,
            leader: None,
            members: vec![],
            written_ms: 0x0102_0304_0506_0708,
        };
        // version 2, "" , zigzag(5)=10, None, None, 0 members, written_ms
        assert_eq!(
            empty.encode(),
            [0, 2, 0, 10, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let bytes = sample().encode();
        assert_eq!(&bytes[..12], b"\x00\x02\x08consumer\x06");
        assert_eq!(GroupRecord::decode(&bytes), Ok(sample()));
        // Version 1, without the time, is still read (time unknown: 0).
        let v1 = GroupRecord::decode(&[0, 1, 0, 10, 0, 0, 0]).unwrap();
        assert_eq!((v1.generation_id, v1.written_ms), (5, 0));
    }

    #[test]
    fn truncations_and_trailing_bytes_and_versions_are_errors() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(GroupRecord::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(GroupRecord::decode(&longer).is_err());
        let mut v3 = bytes.clone();
        v3[1] = 3;
        assert_eq!(
            GroupRecord::decode(&v3),
            Err("group metadata value version 3".into())
        );
        // A version 1 value is the postcard record alone: the time's 8
        // bytes after it are too many.
        let mut v1 = bytes;
        v1[1] = 1;
        assert!(GroupRecord::decode(&v1).is_err());
    }

    fn member() -> impl Strategy<Value = MemberRecord> {
        (
            ".{0,8}",
            proptest::option::of(".{0,8}"),
            ".{0,8}",
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(
                |(member_id, group_instance_id, client_id, s, r, metadata, assignment)| {
                    MemberRecord {
                        member_id,
                        group_instance_id,
                        client_id,
                        client_host: "127.0.0.1".into(),
                        session_timeout_ms: s,
                        rebalance_timeout_ms: r,
                        metadata,
                        assignment,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            protocol_type in ".{0,10}",
            generation_id in any::<i32>(),
            protocol in proptest::option::of(".{0,10}"),
            leader in proptest::option::of(".{0,10}"),
            members in proptest::collection::vec(member(), 0..5),
            written_ms in any::<i64>(),
        ) {
            let r = GroupRecord { protocol_type, generation_id, protocol, leader, members, written_ms };
            prop_assert_eq!(GroupRecord::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = GroupRecord::decode(&bytes);
        }
    }
}
