//! What a topic name may be, for the broker that refuses a name and the
//! client that tells its user why.
//!
//! A topic name is 1 to [`MAX_TOPIC_NAME_LEN`] characters from
//! `[A-Za-z0-9._-]` and is neither `.` nor `..`: so it can never escape a
//! broker's data directory, and a partition's directory
//! (`<topic>-<partition>`) fits the usual 255-byte file name limit.

/// The longest topic name accepted, as in Kafka.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Names of topics kept by the broker (Kafka's internal topics, and those
/// starting with [`BROKER_PREFIX`]): clients cannot create, delete or
/// produce to them. Other names starting with `__` (Debezium's
/// `__debezium-heartbeat.<prefix>`, say) are ordinary topics, as in Kafka.
pub const KAFKA_INTERNAL_TOPICS: [&str; 4] = [
    "__consumer_offsets",
    "__transaction_state",
    "__cluster_metadata",
    "__share_group_state",
];

/// Prefix of the topics the broker creates for itself
/// (`__sluice_group_state`).
pub const BROKER_PREFIX: &str = "__sluice";

/// Whether `name` is a topic the broker keeps for itself (see
/// [`KAFKA_INTERNAL_TOPICS`]): one of Kafka's internal topics, or a name
/// equal to one of them once `.` is read as `_` (Kafka refuses such a
/// colliding name), or a name starting with [`BROKER_PREFIX`].
pub fn is_reserved(name: &str) -> bool {
    let same = |internal: &str| {
        name.len() == internal.len()
            && name
                .bytes()
                .zip(internal.bytes())
                .all(|(a, b)| a == b || (a == b'.' && b == b'_'))
    };
    name.starts_with(BROKER_PREFIX) || KAFKA_INTERNAL_TOPICS.iter().any(|t| same(t))
}

/// What makes a name not a topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicNameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_TOPIC_NAME_LEN`] bytes.
    TooLong,
    /// The name is `.` or `..`.
    Reserved,
    /// The name holds this character, outside `[A-Za-z0-9._-]` (the first
    /// such).
    BadCharacter(char),
}

/// Checks `name` against the rules above.
pub fn check_topic_name(name: &str) -> Result<(), TopicNameProblem> {
    if name.is_empty() {
        return Err(TopicNameProblem::Empty);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameProblem::TooLong);
    }
    if name == "." || name == ".." {
        return Err(TopicNameProblem::Reserved);
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(ch) => Err(TopicNameProblem::BadCharacter(ch)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules() {
        assert_eq!(check_topic_name("orders.v2_eu-1"), Ok(()));
        assert_eq!(check_topic_name(&"a".repeat(249)), Ok(()));
        assert_eq!(check_topic_name(""), Err(TopicNameProblem::Empty));
        assert_eq!(
            check_topic_name(&"a".repeat(250)),
            Err(TopicNameProblem::TooLong)
        );
        assert_eq!(check_topic_name("."), Err(TopicNameProblem::Reserved));
        assert_eq!(check_topic_name(".."), Err(TopicNameProblem::Reserved));
        assert_eq!(check_topic_name("..."), Ok(()));
        assert_eq!(
            check_topic_name("a/b"),
            Err(TopicNameProblem::BadCharacter('/'))
        );
        assert_eq!(
            check_topic_name("é"),
            Err(TopicNameProblem::BadCharacter('é'))
        );
    }

    #[test]
    fn reserved_names() {
        for name in [
            "__consumer_offsets",
            "__consumer.offsets",
            "__transaction_state",
            "__cluster_metadata",
            "__share_group_state",
            "__sluice_group_state",
            "__sluice",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        for name in [
            "__debezium-heartbeat.inventory",
            "__consumer_offsets2",
            "__consumer_offset",
            "_consumer_offsets",
            "__",
            "orders",
            "__Sluice",
        ] {
            assert!(!is_reserved(name), "{name}");
        }
    }
}
