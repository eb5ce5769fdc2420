//! Topic names and partition directory names.
//!
//! A topic name is 1 to [`MAX_TOPIC_NAME_LEN`] characters from `[A-Za-z0-9._-]`
//! and is neither `.` nor `..`. Because `/`, `\`, NUL and every other
//! character outside that set are refused, a topic name can never escape the
//! data directory. A partition lives in the directory `<topic>-<partition>`.

use std::fmt;

/// The longest topic name accepted, as in Kafka (keeps `<topic>-<partition>`
/// and the file names inside it under the usual 255-byte name limit).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a topic name or partition directory name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("topic name is empty")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_NAME_LEN`].
    #[error("topic name is {len} characters long; the limit is {MAX_TOPIC_NAME_LEN}")]
    TooLong {
        /// Length of the refused name in bytes.
        len: usize,
    },
    /// The name is `.` or `..`.
    #[error("topic name {0:?} is reserved")]
    Reserved(String),
    /// The name holds a character outside `[A-Za-z0-9._-]`.
    #[error(
        "topic name {name:?} holds {ch:?}; allowed are ASCII letters, digits, '.', '_' and '-'"
    )]
    BadCharacter {
        /// The refused name.
        name: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// A directory name that is not `<topic>-<partition>`.
    #[error("{0:?} is not a partition directory name (<topic>-<partition>)")]
    NotPartitionDir(String),
}

/// Checks that `name` is a valid topic name (see the module documentation).
pub fn validate_topic_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved(name.to_owned()));
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::BadCharacter {
            name: name.to_owned(),
            ch,
        });
    }
    Ok(())
}

/// A topic and partition number, naming one partition log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    topic: String,
    partition: u32,
}

impl TopicPartition {
    /// A partition of a topic whose name is valid.
    pub fn new(topic: &str, partition: u32) -> Result<Self, NameError> {
        validate_topic_name(topic)?;
        Ok(TopicPartition {
            topic: topic.to_owned(),
            partition,
        })
    }

    /// Parses a directory name `<topic>-<partition>`; the partition is the
    /// part after the last `-`.
    pub fn from_dir_name(dir: &str) -> Result<Self, NameError> {
        let bad = || NameError::NotPartitionDir(dir.to_owned());
        let (topic, partition) = dir.rsplit_once('-').ok_or_else(bad)?;
        if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let partition = partition.parse().map_err(|_| bad())?;
        TopicPartition::new(topic, partition)
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The directory name of this partition: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "orders", "orders.v2", "my_topic-1", "A.B-C_d", "..."] {
            validate_topic_name(ok).unwrap();
        }
        validate_topic_name(&"x".repeat(MAX_TOPIC_NAME_LEN)).unwrap();
    }

    #[test]
    fn refuses_traversal_and_junk() {
        assert_eq!(validate_topic_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_topic_name("."),
            Err(NameError::Reserved(_))
        ));
        assert!(matches!(
            validate_topic_name(".."),
            Err(NameError::Reserved(_))
        ));
        for bad in ["../x", "a/b", "a\\b", "a b", "a\0b", "é", "x:y", "/etc"] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(NameError::BadCharacter { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_topic_name(&"x".repeat(MAX_TOPIC_NAME_LEN + 1)),
            Err(NameError::TooLong { len: 250 })
        );
    }

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic", 7).unwrap();
        assert_eq!(tp.dir_name(), "my-topic-7");
        assert_eq!(TopicPartition::from_dir_name("my-topic-7").unwrap(), tp);
        for bad in ["nodash", "t-", "t-x", "-1", "../x-1", "t-99999999999"] {
            assert!(TopicPartition::from_dir_name(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn valid_names_never_escape(name in "\\PC{0,260}") {
            if validate_topic_name(&name).is_ok() {
                prop_assert!(!name.contains('/') && !name.contains('\\'));
                prop_assert!(name != "." && name != "..");
                let tp = TopicPartition::new(&name, 3).unwrap();
                prop_assert_eq!(TopicPartition::from_dir_name(&tp.dir_name()).unwrap(), tp);
            }
        }
    }
}
