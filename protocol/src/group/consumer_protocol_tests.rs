use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions {
        topic: topic.into(),
        partitions: partitions.to_vec(),
    }
}

// Bytes written by kafka-python 2.0.2's `ConsumerProtocolMemberMetadata` /
// `ConsumerProtocolMemberAssignment` schemas (version 0), e.g.
// `ConsumerProtocolMemberMetadata.SCHEMA.encode((0, ['orders','audit'], b'ud')).hex()`.
const KAFKA_PYTHON_SUBSCRIPTION: &str = "00000000000200066f726465727300056175646974000000027564";
const KAFKA_PYTHON_SUBSCRIPTION_NULL_USER_DATA: &str = "000000000001000174ffffffff";
const KAFKA_PYTHON_ASSIGNMENT: &str = "00000000000200066f72646572730000000300000000000000020000000400056175646974000000010000000100000000";

#[test]
fn decodes_kafka_python_subscription_v0() {
    let s = Subscription::decode(&hex(KAFKA_PYTHON_SUBSCRIPTION)).expect("decode");
    assert_eq!(s.version, 0);
    assert_eq!(s.topics, vec!["orders".to_string(), "audit".to_string()]);
    assert_eq!(s.user_data.as_deref(), Some(&b"ud"[..]));
    assert!(s.owned_partitions.is_empty());
    assert_eq!(s.generation_id, -1);
    assert_eq!(s.rack_id, None);
    assert_eq!(s.encode(), hex(KAFKA_PYTHON_SUBSCRIPTION));

    let s = Subscription::decode(&hex(KAFKA_PYTHON_SUBSCRIPTION_NULL_USER_DATA)).expect("decode");
    assert_eq!(s.topics, vec!["t".to_string()]);
    assert_eq!(s.user_data, None);
    assert_eq!(s.encode(), hex(KAFKA_PYTHON_SUBSCRIPTION_NULL_USER_DATA));
}

#[test]
fn decodes_kafka_python_assignment_v0() {
    let a = Assignment::decode(&hex(KAFKA_PYTHON_ASSIGNMENT)).expect("decode");
    assert_eq!(a.version, 0);
    assert_eq!(
        a.partitions,
        vec![tp("orders", &[0, 2, 4]), tp("audit", &[1])]
    );
    assert_eq!(a.user_data.as_deref(), Some(&b""[..]));
    assert_eq!(a.encode(), hex(KAFKA_PYTHON_ASSIGNMENT));
}

/// Version 3 laid out field by field from Kafka's
/// `ConsumerProtocolSubscription.json`.
#[test]
fn subscription_v3_layout() {
    let s = Subscription {
        version: 3,
        topics: vec!["t".into()],
        user_data: None,
        owned_partitions: vec![tp("t", &[0, 5])],
        generation_id: 7,
        rack_id: Some("r1".into()),
    };
    let mut want = Vec::new();
    want.extend_from_slice(&[0, 3]); // version
    want.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't']); // topics
    want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user_data: null
    want.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
    want.extend_from_slice(&[0, 0, 0, 7]); // generation_id
    want.extend_from_slice(&[0, 2, b'r', b'1']); // rack_id
    assert_eq!(s.encode(), want);
    assert_eq!(Subscription::decode(&want).expect("decode"), s);
}

#[test]
fn older_versions_drop_newer_fields() {
    let s = Subscription {
        version: 1,
        topics: vec!["a".into()],
        user_data: Some(vec![1]),
        owned_partitions: vec![tp("a", &[3])],
        generation_id: 9,
        rack_id: Some("x".into()),
    };
    let back = Subscription::decode(&s.encode()).expect("decode");
    assert_eq!(back.owned_partitions, s.owned_partitions);
    assert_eq!(back.generation_id, -1);
    assert_eq!(back.rack_id, None);
}

#[test]
fn newer_versions_read_as_the_newest_known_ignoring_trailing_bytes() {
    let mut b = Subscription {
        topics: vec!["a".into()],
        ..Subscription::default()
    }
    .encode();
    b[1] = 9; // version 9
    b.extend_from_slice(b"future fields");
    let s = Subscription::decode(&b).expect("decode");
    assert_eq!(s.version, MAX_VERSION);
    assert_eq!(s.topics, vec!["a".to_string()]);

    let mut b = Assignment::default().encode();
    b[1] = 42;
    b.extend_from_slice(&[1, 2, 3]);
    assert_eq!(Assignment::decode(&b).expect("decode").version, MAX_VERSION);
}

#[test]
fn bad_input_is_an_error_not_an_allocation() {
    assert_eq!(
        Subscription::decode(&[0xff, 0xff]),
        Err(ConsumerProtocolError::UnsupportedVersion(-1))
    );
    // A topic count of 2^31-1 with no bytes behind it: refused up front.
    let r = Subscription::decode(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
    assert!(
        matches!(r, Err(ConsumerProtocolError::Truncated { position: 6, .. })),
        "{r:?}"
    );
    let r = Assignment::decode(&[0, 0, 0, 0, 0, 1, 0, 1, b'a', 0x7f, 0xff, 0xff, 0xff]);
    assert!(
        matches!(r, Err(ConsumerProtocolError::Truncated { .. })),
        "{r:?}"
    );
    // Non-nullable topic name written as null.
    let r = Subscription::decode(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(
        matches!(
            r,
            Err(ConsumerProtocolError::NegativeLength { position: 6, .. })
        ),
        "{r:?}"
    );
    let r = Subscription::decode(&[0, 0, 0xff, 0xff, 0xff, 0xfe]);
    assert!(
        matches!(r, Err(ConsumerProtocolError::NegativeLength { .. })),
        "{r:?}"
    );
    let r = Subscription::decode(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff]);
    assert_eq!(r, Err(ConsumerProtocolError::InvalidUtf8(8)));
}

#[test]
fn every_truncation_of_a_valid_encoding_is_an_error() {
    let s = Subscription {
        version: 3,
        topics: vec!["orders".into(), "b".into()],
        user_data: Some(vec![1, 2, 3]),
        owned_partitions: vec![tp("orders", &[1, 2])],
        generation_id: 3,
        rack_id: Some("rack".into()),
    }
    .encode();
    for n in 0..s.len() {
        assert!(Subscription::decode(&s[..n]).is_err(), "prefix {n}");
    }
    let a = Assignment {
        version: 1,
        partitions: vec![tp("orders", &[1, 2]), tp("x", &[])],
        user_data: None,
    }
    .encode();
    for n in 0..a.len() {
        assert!(Assignment::decode(&a[..n]).is_err(), "prefix {n}");
    }
}

fn topic_partitions() -> impl Strategy<Value = Vec<TopicPartitions>> {
    prop::collection::vec(
        (
            "[a-z0-9._-]{1,20}",
            prop::collection::vec(any::<i32>(), 0..8),
        )
            .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions }),
        0..5,
    )
}

proptest! {
    #[test]
    fn subscription_round_trips(
        version in 0i16..=3,
        topics in prop::collection::vec("\\PC{0,12}", 0..5),
        user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        owned in topic_partitions(),
        generation_id in any::<i32>(),
        rack_id in prop::option::of("\\PC{0,8}"),
    ) {
        let mut s = Subscription { version, topics, user_data, owned_partitions: owned, generation_id, rack_id };
        if version < 1 { s.owned_partitions.clear(); }
        if version < 2 { s.generation_id = -1; }
        if version < 3 { s.rack_id = None; }
        prop_assert_eq!(Subscription::decode(&s.encode()).expect("decode"), s);
    }

    #[test]
    fn assignment_round_trips(
        version in 0i16..=3,
        partitions in topic_partitions(),
        user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
    ) {
        let a = Assignment { version, partitions, user_data };
        prop_assert_eq!(Assignment::decode(&a.encode()).expect("decode"), a);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Subscription::decode(&b);
        let _ = Assignment::decode(&b);
    }
}
