//! Sluice benchmarks.
//!
//! The micro-benchmarks live in `benches/*.rs` (run with `cargo bench -p sluice-bench`);
//! this library holds what they share: a deterministic random number generator and
//! record batch fixtures.

pub mod harness;

use bytes::BytesMut;
use sluice_protocol::batch::{BatchBuilder, NewRecord};

/// A tiny deterministic xorshift64* generator, so runs are reproducible without a
/// dependency on `rand`.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound` (`bound > 0`; the slight modulo bias does not matter here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
    }
}

/// `count` random values of `value_len` bytes each.
pub fn random_values(rng: &mut XorShift, count: usize, value_len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let mut v = vec![0u8; value_len];
            rng.fill(&mut v);
            v
        })
        .collect()
}

/// `count` JSON-like text values of exactly `value_len` bytes each: objects with an
/// id, a user name drawn from a small set, an event type, a price and a timestamp,
/// repeated to fill the value. Compresses the way event data does (about 3-6x with
/// the usual codecs), unlike [`random_values`], which do not compress at all.
pub fn text_values(rng: &mut XorShift, count: usize, value_len: usize) -> Vec<Vec<u8>> {
    const USERS: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const EVENTS: [&str; 5] = ["view", "click", "add_to_cart", "checkout", "refund"];
    (0..count)
        .map(|_| {
            let mut v = Vec::with_capacity(value_len + 160);
            while v.len() < value_len {
                let user = USERS[rng.below(USERS.len() as u64) as usize];
                let event = EVENTS[rng.below(EVENTS.len() as u64) as usize];
                let line = format!(
                    "{{\"id\":{},\"user\":\"{user}\",\"event\":\"{event}\",\"price\":{}.{:02},\"ts\":{}}}\n",
                    rng.below(1_000_000),
                    rng.below(500),
                    rng.below(100),
                    1_700_000_000_000 + rng.below(86_400_000)
                );
                v.extend_from_slice(line.as_bytes());
            }
            v.truncate(value_len);
            v
        })
        .collect()
}

/// Encodes `values` as one uncompressed batch of keyless, headerless records whose
/// timestamps are `first_timestamp`, `first_timestamp + 1`, ...
pub fn build_batch(values: &[Vec<u8>], first_timestamp: i64) -> BytesMut {
    let mut builder = BatchBuilder::new();
    for (i, value) in values.iter().enumerate() {
        builder.push(&NewRecord {
            timestamp: first_timestamp + i as i64,
            key: None,
            value: Some(value),
            headers: &[],
        });
    }
    builder.finish()
}

/// One batch of `records` random `value_len`-byte values (seeded by `seed`).
pub fn random_batch(seed: u64, records: usize, value_len: usize) -> BytesMut {
    let mut rng = XorShift::new(seed);
    build_batch(
        &random_values(&mut rng, records, value_len),
        1_700_000_000_000,
    )
}
