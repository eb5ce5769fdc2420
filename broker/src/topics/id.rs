//! Topic ids: the 16-byte identity Kafka clients see (Metadata v10+,
//! CreateTopics v7, DeleteTopics v6, Fetch v13+), unique to one incarnation
//! of a topic, so a client can tell a topic deleted and created again under
//! the same name from the one it knew.

use std::fmt;

/// A topic's id: a UUID, never all zero (Kafka's "no id") nor Kafka's
/// reserved `0…01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// A fresh random id (a version 4 UUID), for a topic created without
    /// `--cluster`. Kept in `topics.meta`.
    pub fn random(name: &str) -> TopicId {
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            // No entropy source: the clock and the process make it unique
            // to this creation all the same.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let salt = now ^ (u64::from(std::process::id()) << 32);
            b = Self::derived(name, salt).0;
        }
        Self::with_version(b, 4)
    }

    /// The id of incarnation `incarnation` of topic `name`: the same on
    /// every node that computes it (a version 8 UUID over both). A
    /// cluster's topics take the controller's topic number as the
    /// incarnation; topics listed by a `topics.meta` older than version 4
    /// take 0.
    pub fn derived(name: &str, incarnation: u64) -> TopicId {
        let hi = fnv1a(0xcbf2_9ce4_8422_2325, name.as_bytes(), incarnation);
        let lo = fnv1a(0x6c62_272e_07bb_0142, name.as_bytes(), incarnation);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        Self::with_version(b, 8)
    }

    /// Sets the UUID version nibble and the RFC 9562 variant bits, which
    /// also keeps the id off Kafka's two reserved values.
    fn with_version(mut b: [u8; 16], version: u8) -> TopicId {
        b[6] = (b[6] & 0x0f) | (version << 4);
        b[8] = (b[8] & 0x3f) | 0x80;
        TopicId(b)
    }
}

/// FNV-1a (64-bit) over `bytes`, a 0 separator and `n`, from `basis`.
fn fnv1a(basis: u64, bytes: &[u8], n: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .chain(&[0])
        .chain(&n.to_be_bytes())
        .fold(basis, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The usual UUID text, `8-4-4-4-12` hex digits.
impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_differ_by_name_and_incarnation() {
        let a1 = TopicId::derived("a", 1);
        assert_eq!(a1, TopicId::derived("a", 1));
        assert_ne!(a1, TopicId::derived("a", 2));
        assert_ne!(a1, TopicId::derived("b", 1));
        // The name ends where the incarnation starts.
        assert_ne!(
            TopicId::derived("a\u{1}", 0),
            TopicId::derived("a", 1 << 56)
        );
        // Pinned: every node of a cluster, of any build, must compute it.
        assert_eq!(a1.to_string(), "65d20839-07ab-8817-b36d-ea954e69f748");
    }

    #[test]
    fn random_ids_are_version_4_and_never_reserved() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = TopicId::random("t");
            assert_eq!(id.0[6] >> 4, 4);
            assert_eq!(id.0[8] >> 6, 0b10);
            assert_ne!(id.0, [0; 16]);
            assert!(seen.insert(id));
        }
        let one = {
            let mut b = [0; 16];
            b[15] = 1;
            b
        };
        assert_ne!(TopicId::derived("", 0).0, one);
        assert_ne!(TopicId::derived("", 0).0, [0; 16]);
    }
}
