//! Authorized operations (KIP-430) in Metadata and DescribeGroups answers,
//! as Kafka gives them without an authorizer: every operation of the
//! resource type when the client asks for them (Sluice has no ACLs, so
//! every client may do all of them), the "not asked for" value otherwise.
//! Some clients (kafka-python 2.x) decode the field whenever they asked and
//! fail on the "not asked for" value.

/// "Not asked for" (`-2147483648`).
pub(super) const NOT_ASKED: i32 = i32::MIN;

/// Kafka's ACL operation codes: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER
/// 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
/// IDEMPOTENT_WRITE 12; a set of them is the sum of `1 << code`.
const fn set(codes: &[u32]) -> i32 {
    let mut bits = 0;
    let mut i = 0;
    while i < codes.len() {
        bits |= 1 << codes[i];
        i += 1;
    }
    bits
}

/// A topic's: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS (3576).
pub(super) const TOPIC: i32 = set(&[3, 4, 5, 6, 7, 8, 10, 11]);
/// A group's: READ, DELETE, DESCRIBE (328).
pub(super) const GROUP: i32 = set(&[3, 6, 8]);
/// The cluster's: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (8096).
pub(super) const CLUSTER: i32 = set(&[5, 7, 8, 9, 10, 11, 12]);

/// `all` if the client asked for the operations, else [`NOT_ASKED`].
pub(super) fn answer(asked: bool, all: i32) -> i32 {
    if asked { all } else { NOT_ASKED }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_are_kafkas() {
        assert_eq!((TOPIC, GROUP, CLUSTER), (3576, 328, 8096));
        assert_eq!(answer(false, TOPIC), i32::MIN);
        assert_eq!(answer(true, GROUP), 328);
    }
}
