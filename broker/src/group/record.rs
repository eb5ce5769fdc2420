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
        encode_value(GROUP_VALUE_VERSION, self, self.written_ms)
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

/// A group metadata value: `version` as `u16` BE, the postcard encoding
/// of `record`, then `written_ms` as `i64` BE.
fn encode_value<T: Serialize>(version: u16, record: &T, written_ms: i64) -> Vec<u8> {
    let out = version.to_be_bytes().to_vec();
    // Encoding plain data into a Vec cannot fail.
    let mut out = postcard::to_extend(record, out).unwrap_or_default();
    out.extend_from_slice(&written_ms.to_be_bytes());
    out
}

/// Version of a consumer-protocol (KIP-848) group's value: 3, the postcard
/// [`ConsumerGroupRecord`] followed by its `written_ms` as `i64` BE. Shares
/// key type 2 with [`GroupRecord`]: a group name is one kind or the other.
pub const CONSUMER_GROUP_VALUE_VERSION: u16 = 3;

/// Partitions by topic id (a topic's 16-byte id, then its partitions in
/// ascending order).
pub type PartitionsRecord = Vec<([u8; 16], Vec<u32>)>;

/// One member of a consumer-protocol group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMemberRecord {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Its epoch.
    pub epoch: i32,
    /// Its epoch before the last raise (a member that missed that answer
    /// may go on with it).
    pub previous_epoch: i32,
    /// 0 stable, 1 giving up partitions, 2 waiting for partitions others
    /// give up.
    pub state: u8,
    /// What it holds.
    pub assigned: PartitionsRecord,
    /// What it is giving up.
    pub revoking: PartitionsRecord,
    /// (topic id, partition, member epoch at which it was given it), for
    /// every partition it holds or is giving up.
    pub held_since: Vec<([u8; 16], u32, i32)>,
    /// Subscribed names, sorted.
    pub topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub topic_regex: Option<String>,
    /// Assignor asked for.
    pub assignor: Option<String>,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: u32,
    /// A static member away after a temporary leave.
    pub parked: bool,
}

/// A consumer-protocol group as stored each time its membership, a member's
/// epoch or holdings, or its target assignment changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupRecord {
    /// Group epoch.
    pub epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// The subscribed topics the target was computed from: (name, id,
    /// partition count), sorted by name.
    pub topics: Vec<(String, [u8; 16], u32)>,
    /// Each member's target assignment, by member id.
    pub targets: Vec<(String, PartitionsRecord)>,
    /// Members, by member id.
    pub members: Vec<ConsumerMemberRecord>,
    /// When the record was written: milliseconds since the Unix epoch.
    /// Encoded after the postcard part.
    #[serde(skip)]
    pub written_ms: i64,
}

impl ConsumerGroupRecord {
    /// `u16` BE [`CONSUMER_GROUP_VALUE_VERSION`], the postcard encoding,
    /// then `written_ms` as `i64` BE.
    pub fn encode(&self) -> Vec<u8> {
        encode_value(CONSUMER_GROUP_VALUE_VERSION, self, self.written_ms)
    }

    /// Decodes bytes written by [`ConsumerGroupRecord::encode`]; anything
    /// else is an error saying why (never a panic).
    pub fn decode(buf: &[u8]) -> Result<ConsumerGroupRecord, String> {
        let [v0, v1, rest @ ..] = buf else {
            return Err(format!("group metadata value of {} bytes", buf.len()));
        };
        let version = u16::from_be_bytes([*v0, *v1]);
        if version != CONSUMER_GROUP_VALUE_VERSION {
            return Err(format!("consumer group value version {version}"));
        }
        let (mut record, tail) = postcard::take_from_bytes::<ConsumerGroupRecord>(rest)
            .map_err(|e| format!("consumer group value: {e}"))?;
        let at = <[u8; 8]>::try_from(tail)
            .map_err(|_| format!("{} bytes after the consumer group value", tail.len()))?;
        record.written_ms = i64::from_be_bytes(at);
        Ok(record)
    }
}

/// A stored group metadata value of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredGroup {
    /// A classic group's generation (versions 1 and 2).
    Classic(GroupRecord),
    /// A consumer-protocol group (version 3).
    Consumer(ConsumerGroupRecord),
}

impl StoredGroup {
    /// Decodes a group metadata value by its version; an error says why.
    pub fn decode(buf: &[u8]) -> Result<StoredGroup, String> {
        match buf {
            [v0, v1, ..] if u16::from_be_bytes([*v0, *v1]) == CONSUMER_GROUP_VALUE_VERSION => {
                ConsumerGroupRecord::decode(buf).map(StoredGroup::Consumer)
            }
            _ => GroupRecord::decode(buf).map(StoredGroup::Classic),
        }
    }

    /// When it was written (0 if not known).
    pub fn written_ms(&self) -> i64 {
        match self {
            StoredGroup::Classic(r) => r.written_ms,
            StoredGroup::Consumer(r) => r.written_ms,
        }
    }

    /// Whether it names members.
    pub fn has_members(&self) -> bool {
        match self {
            StoredGroup::Classic(r) => !r.members.is_empty(),
            StoredGroup::Consumer(r) => !r.members.is_empty(),
        }
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
        let mut v4 = bytes.clone();
        v4[1] = 4;
        assert_eq!(
            GroupRecord::decode(&v4),
            Err("group metadata value version 4".into())
        );
        assert!(StoredGroup::decode(&v4).is_err());
        // A version 1 value is the postcard record alone: the time's 8
        // bytes after it are too many.
        let mut v1 = bytes;
        v1[1] = 1;
        assert!(GroupRecord::decode(&v1).is_err());
    }

    fn consumer_sample() -> ConsumerGroupRecord {
        ConsumerGroupRecord {
            epoch: 7,
            assignment_epoch: 7,
            topics: vec![("t".into(), [1; 16], 2)],
            targets: vec![("m".into(), vec![([1; 16], vec![0, 1])])],
            members: vec![ConsumerMemberRecord {
                member_id: "m".into(),
                instance_id: None,
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                epoch: 7,
                previous_epoch: 6,
                state: 0,
                assigned: vec![([1; 16], vec![0, 1])],
                revoking: vec![],
                held_since: vec![([1; 16], 0, 6), ([1; 16], 1, 7)],
                topic_names: vec!["t".into()],
                topic_regex: None,
                assignor: Some("uniform".into()),
                rebalance_timeout_ms: 300_000,
                parked: false,
            }],
            written_ms: 1_700_000_000_123,
        }
    }

    /// The consumer-protocol layout of `docs/storage-format.md`.
    #[test]
    fn consumer_layout_matches_the_docs() {
        let empty = ConsumerGroupRecord {
            epoch: 5,
            assignment_epoch: 4,
            topics: vec![],
            targets: vec![],
            members: vec![],
            written_ms: 0x0102_0304_0506_0708,
        };
        // version 3, zigzag(5)=10, zigzag(4)=8, no topics, targets, members.
        assert_eq!(
            empty.encode(),
            [0, 3, 10, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let bytes = consumer_sample().encode();
        // epoch 7, 7; one topic "t", its id, 2 partitions.
        assert_eq!(&bytes[..7], b"\x00\x03\x0e\x0e\x01\x01t");
        assert_eq!(&bytes[7..23], [1; 16]);
        assert_eq!(bytes[23], 2);
        assert_eq!(ConsumerGroupRecord::decode(&bytes), Ok(consumer_sample()));
        assert_eq!(
            StoredGroup::decode(&bytes),
            Ok(StoredGroup::Consumer(consumer_sample()))
        );
        assert_eq!(
            StoredGroup::decode(&sample().encode()),
            Ok(StoredGroup::Classic(sample()))
        );
        let s = StoredGroup::decode(&bytes).unwrap();
        assert!(s.has_members());
        assert_eq!(s.written_ms(), 1_700_000_000_123);
        for cut in 0..bytes.len() {
            assert!(
                ConsumerGroupRecord::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ConsumerGroupRecord::decode(&longer).is_err());
        // A classic value is not a consumer group's.
        assert!(ConsumerGroupRecord::decode(&sample().encode()).is_err());
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
        fn any_consumer_record_round_trips(
            epoch in any::<i32>(),
            assignment_epoch in any::<i32>(),
            names in proptest::collection::vec(".{0,6}", 0..4),
            ids in proptest::collection::vec(any::<[u8; 16]>(), 0..4),
            partitions in proptest::collection::vec(proptest::collection::vec(any::<u32>(), 0..5), 0..4),
            member_epochs in proptest::collection::vec((any::<i32>(), any::<i32>(), 0u8..3, any::<bool>()), 0..4),
            written_ms in any::<i64>(),
        ) {
            let parts: PartitionsRecord = ids.iter().copied().zip(partitions.iter().cloned()).collect();
            let r = ConsumerGroupRecord {
                epoch,
                assignment_epoch,
                topics: names.iter().zip(&ids).map(|(n, id)| (n.clone(), *id, 3)).collect(),
                targets: names.iter().map(|n| (n.clone(), parts.clone())).collect(),
                members: member_epochs
                    .iter()
                    .zip(names.iter().chain(std::iter::repeat(&String::new())))
                    .map(|((e, pe, state, parked), n)| ConsumerMemberRecord {
                        member_id: n.clone(),
                        instance_id: parked.then(|| n.clone()),
                        rack_id: None,
                        client_id: n.clone(),
                        client_host: "/127.0.0.1".into(),
                        epoch: *e,
                        previous_epoch: *pe,
                        state: *state,
                        assigned: parts.clone(),
                        revoking: parts.iter().take(1).cloned().collect(),
                        held_since: ids.iter().map(|id| (*id, 1, *e)).collect(),
                        topic_names: names.clone(),
                        topic_regex: parked.then(|| "t.*".into()),
                        assignor: None,
                        rebalance_timeout_ms: 1000,
                        parked: *parked,
                    })
                    .collect(),
                written_ms,
            };
            prop_assert_eq!(ConsumerGroupRecord::decode(&r.encode()), Ok(r.clone()));
            prop_assert_eq!(StoredGroup::decode(&r.encode()), Ok(StoredGroup::Consumer(r)));
        }

        #[test]
        fn any_bytes_decode_as_either_kind_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StoredGroup::decode(&bytes);
            let mut v3 = vec![0, 3];
            v3.extend_from_slice(&bytes);
            let _ = StoredGroup::decode(&v3);
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = GroupRecord::decode(&bytes);
        }
    }
}
