//! What a topic name may be, for the broker that refuses a name and the
//! client that tells its user why.
//!
//! A topic name is 1 to [`MAX_TOPIC_NAME_LEN`] characters from
//! `[A-Za-z0-9._-]` and is neither `.` nor `..`: so it can never escape a
//! broker's data directory, and a partition's directory
//! (`<topic>-<partition>`) fits the usual 255-byte file name limit.

/// The longest topic name accepted, as in Kafka.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

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
}
