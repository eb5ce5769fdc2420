//! Topic names and partition directory names.
//!
//! A topic name is 1 to [`MAX_TOPIC_NAME_LEN`] characters from `[A-Za-z0-9._-]`
//! and is neither `.` nor `..`. Because `/`, `\`, NUL and every other
//! character outside that set are refused, a topic name can never escape the
//! data directory. A partition lives in the directory `<topic>-<partition>`.
//!
//! A partition directory set aside is renamed to
//! `<topic>-<partition>.<id>-delete` (a deletion in progress) or
//! `<topic>-<partition>.<id>-stray` (a directory with records that no
//! topic lists; kept for the operator). Besides those marked for deletion,
//! the broker removes only partition directories that no topic lists and
//! that hold no records (see `topics::dirs::holds_no_records`). `<id>` is 16
//! lowercase hex digits, unique per rename. Both names end in a letter, so
//! neither parses as a partition directory (which ends in a digit), and
//! neither can collide with one. When `<topic>-<partition>` is too long for
//! the 255-byte name limit with the suffix, it is cut short (the `<id>` keeps
//! the name unique).

use std::fmt;

pub use sluice_protocol::topic_name::MAX_TOPIC_NAME_LEN;

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

/// Checks that `name` is a valid topic name (see the module documentation;
/// the rules are [`sluice_protocol::topic_name::check_topic_name`]'s, which
/// clients check too).
pub fn validate_topic_name(name: &str) -> Result<(), NameError> {
    use sluice_protocol::topic_name::{TopicNameProblem, check_topic_name};
    check_topic_name(name).map_err(|p| match p {
        TopicNameProblem::Empty => NameError::Empty,
        TopicNameProblem::TooLong => NameError::TooLong { len: name.len() },
        TopicNameProblem::Reserved => NameError::Reserved(name.to_owned()),
        TopicNameProblem::BadCharacter(ch) => NameError::BadCharacter {
            name: name.to_owned(),
            ch,
        },
    })
}

/// The first of `existing` that `name` collides with: a different name
/// that reads the same once every '.' is taken for '_' (`a.b` and `a_b`).
/// Kafka refuses such a topic, since metric names cannot tell the two
/// apart; so does Sluice, so that a topic created here can be moved to
/// Kafka and back.
pub fn colliding_topic<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if !name.contains(['.', '_']) {
        return None;
    }
    let same = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .all(|(x, y)| x == y || (matches!(x, b'.' | b'_') && matches!(y, b'.' | b'_')))
    };
    existing.into_iter().find(|e| *e != name && same(name, e))
}

/// Names gathered one by one (a request's topics), each found again by
/// its collision key (every '.' read as '_'), so a new name is checked
/// against all of them with one lookup, not a comparison each.
#[derive(Debug, Default)]
pub struct CollisionIndex {
    by_key: std::collections::HashMap<String, String>,
}

impl CollisionIndex {
    /// The name held that collides with `name` ([`colliding_topic`]): a
    /// different name with the same key.
    pub fn colliding(&self, name: &str) -> Option<&str> {
        self.by_key
            .get(&name.replace('.', "_"))
            .map(String::as_str)
            .filter(|held| *held != name)
    }

    /// Holds `name`; false (nothing changed) if its key is held already,
    /// by this very name or one colliding with it.
    pub fn insert(&mut self, name: &str) -> bool {
        match self.by_key.entry(name.replace('.', "_")) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(name.to_owned());
                true
            }
        }
    }
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

/// Longest directory name written (the usual file-name limit).
const NAME_MAX: usize = 255;
/// Length of `.<16 hex digits>`.
const ID_LEN: usize = 17;
/// Suffix of a partition directory whose deletion is in progress.
pub const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory that no topic lists.
pub const STRAY_SUFFIX: &str = "-stray";

/// A name for a partition directory set aside: `<dir_name>.<id>` followed
/// by `suffix` ([`DELETE_SUFFIX`] or [`STRAY_SUFFIX`]), with `dir_name` cut
/// short if needed to stay within 255 bytes. Never a valid partition
/// directory name.
pub fn set_aside_dir_name(dir_name: &str, id: u64, suffix: &str) -> String {
    let room = NAME_MAX - ID_LEN - suffix.len();
    let mut cut = dir_name.len().min(room);
    while !dir_name.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = dir_name.get(..cut).unwrap_or_default();
    format!("{prefix}.{id:016x}{suffix}")
}

/// If `name` was made by [`set_aside_dir_name`] with `suffix`, the
/// (possibly cut-short) partition directory name it came from.
pub fn parse_set_aside_dir_name<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let rest = name.strip_suffix(suffix)?;
    let split = rest.len().checked_sub(ID_LEN)?;
    let (prefix, id) = (rest.get(..split)?, rest.get(split..)?);
    let hex = id.strip_prefix('.')?;
    (hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(prefix)
}

/// Like [`parse_set_aside_dir_name`], but only if the directory name it came
/// from was certainly not cut short: a cut prefix can read as another
/// topic's partition (`<t>-1` cut from `<t>-10-0`), so only a whole name may
/// say which topic a marker belongs to.
pub fn parse_whole_set_aside_dir_name<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let room = NAME_MAX - ID_LEN - suffix.len();
    parse_set_aside_dir_name(name, suffix).filter(|prefix| prefix.len() < room)
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
    fn names_differing_only_in_dots_and_underscores_collide() {
        let existing = ["a.b", "a-b", "ab", "x_y.z", "plain"];
        assert_eq!(colliding_topic("a_b", existing), Some("a.b"));
        assert_eq!(colliding_topic("x.y_z", existing), Some("x_y.z"));
        assert_eq!(colliding_topic("x.y.z", existing), Some("x_y.z"));
        // The same name is not a collision (it exists: another error).
        assert_eq!(colliding_topic("a.b", existing), None);
        // '-' is not '.' nor '_'; lengths differ; no '.' or '_' at all.
        for free in ["a-c", "a__b", "a.b.", "plain", "a", "ab"] {
            assert_eq!(colliding_topic(free, existing), None, "{free}");
        }
        assert_eq!(colliding_topic("a_b", ["a-b"]), None);
        // The index answers as the scan does.
        let mut index = CollisionIndex::default();
        for name in existing {
            assert!(index.insert(name), "{name}");
        }
        for name in [
            "a_b", "x.y_z", "x.y.z", "a.b", "a-c", "a__b", "a.b.", "plain", "a", "ab",
        ] {
            assert_eq!(
                index.colliding(name),
                colliding_topic(name, existing),
                "{name}"
            );
        }
        assert!(!index.insert("a.b") && !index.insert("a_b"));
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

    #[test]
    fn set_aside_names_never_parse_as_partition_dirs() {
        let tp = TopicPartition::new("orders", 3).unwrap();
        for suffix in [DELETE_SUFFIX, STRAY_SUFFIX] {
            let name = set_aside_dir_name(&tp.dir_name(), 0xabc, suffix);
            assert_eq!(name, format!("orders-3.0000000000000abc{suffix}"));
            assert!(TopicPartition::from_dir_name(&name).is_err());
            assert_eq!(parse_set_aside_dir_name(&name, suffix), Some("orders-3"));
        }
        assert_eq!(
            parse_set_aside_dir_name("orders-3-delete", DELETE_SUFFIX),
            None
        );
        assert_eq!(parse_set_aside_dir_name("orders-3", DELETE_SUFFIX), None);
        assert_eq!(
            parse_set_aside_dir_name("x.000000000000000G-delete", DELETE_SUFFIX),
            None
        );
        // The longest partition directory name still fits in 255 bytes.
        let long = TopicPartition::new(&"t".repeat(MAX_TOPIC_NAME_LEN), 4_000_000_000).unwrap();
        let name = set_aside_dir_name(&long.dir_name(), u64::MAX, DELETE_SUFFIX);
        assert_eq!(name.len(), 255);
        let prefix = parse_set_aside_dir_name(&name, DELETE_SUFFIX).unwrap();
        assert!(long.dir_name().starts_with(prefix));
    }

    proptest! {
        #[test]
        fn set_aside_names_are_never_partition_dirs(name in "[A-Za-z0-9._-]{1,249}", p in 0u32.., id in 0u64..) {
            prop_assume!(validate_topic_name(&name).is_ok());
            let tp = TopicPartition::new(&name, p).unwrap();
            for suffix in [DELETE_SUFFIX, STRAY_SUFFIX] {
                let aside = set_aside_dir_name(&tp.dir_name(), id, suffix);
                prop_assert!(aside.len() <= 255);
                prop_assert!(TopicPartition::from_dir_name(&aside).is_err());
                let prefix = parse_set_aside_dir_name(&aside, suffix).unwrap();
                prop_assert!(tp.dir_name().starts_with(prefix));
            }
        }

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

    #[test]
    fn only_whole_set_aside_names_name_their_partition() {
        let short = TopicPartition::new("orders", 3).unwrap().dir_name();
        let marked = set_aside_dir_name(&short, 7, DELETE_SUFFIX);
        assert_eq!(
            parse_whole_set_aside_dir_name(&marked, DELETE_SUFFIX),
            Some(&*short)
        );
        // `<t>-10` partition 0, cut short, reads as `<t>` partition 1.
        let t = "a".repeat(229);
        let long = TopicPartition::new(&format!("{t}-10"), 0)
            .unwrap()
            .dir_name();
        let marked = set_aside_dir_name(&long, 7, DELETE_SUFFIX);
        assert!(marked.len() <= 255);
        let cut = parse_set_aside_dir_name(&marked, DELETE_SUFFIX).unwrap();
        assert_eq!(TopicPartition::from_dir_name(cut).unwrap().topic(), t);
        assert_eq!(parse_whole_set_aside_dir_name(&marked, DELETE_SUFFIX), None);
    }
}
