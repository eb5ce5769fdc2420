//! Kafka's signed varints: zigzag-encoded, then 7 bits per byte, least significant group
//! first, high bit set on every byte but the last (protobuf `sint32`/`sint64`).

use bytes::BufMut;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ended while the high bit still asked for another byte.
    Truncated,
    /// More than 5 (varint) or 10 (varlong) bytes, or bits beyond 32/64 set in the last.
    Overflow,
}

/// Decodes a zigzag varint (32-bit) from the start of `buf`: `(value, bytes used)`.
///
/// Accepts at most 5 bytes; a fifth byte with any of its upper 4 bits set overflows.
#[inline]
pub(crate) fn read_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    // Fast path: most lengths and deltas fit in one byte.
    if let Some(&b) = buf.first() {
        if b & 0x80 == 0 {
            return Ok((unzigzag32(u32::from(b)), 1));
        }
    }
    let mut raw: u32 = 0;
    for (i, &b) in buf.iter().take(5).enumerate() {
        if i == 4 && b & 0xf0 != 0 {
            return Err(VarintError::Overflow);
        }
        raw |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((unzigzag32(raw), i + 1));
        }
    }
    if buf.len() >= 5 {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Decodes a zigzag varlong (64-bit) from the start of `buf`: `(value, bytes used)`.
///
/// Accepts at most 10 bytes; a tenth byte other than 0 or 1 overflows.
#[inline]
pub(crate) fn read_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    if let Some(&b) = buf.first() {
        if b & 0x80 == 0 {
            return Ok((unzigzag64(u64::from(b)), 1));
        }
    }
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().take(10).enumerate() {
        if i == 9 && b & 0xfe != 0 {
            return Err(VarintError::Overflow);
        }
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((unzigzag64(raw), i + 1));
        }
    }
    if buf.len() >= 10 {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Appends the zigzag varint encoding of `v` (1-5 bytes).
#[inline]
pub(crate) fn put_varint(out: &mut impl BufMut, v: i32) {
    put_raw(out, u64::from(zigzag32(v)));
}

/// Appends the zigzag varlong encoding of `v` (1-10 bytes).
#[inline]
pub(crate) fn put_varlong(out: &mut impl BufMut, v: i64) {
    put_raw(out, zigzag64(v));
}

/// Bytes [`put_varint`] writes for `v`.
#[inline]
pub(crate) fn varint_len(v: i32) -> usize {
    raw_len(u64::from(zigzag32(v)))
}

/// Bytes [`put_varlong`] writes for `v`.
#[inline]
pub(crate) fn varlong_len(v: i64) -> usize {
    raw_len(zigzag64(v))
}

fn put_raw(out: &mut impl BufMut, mut raw: u64) {
    while raw >= 0x80 {
        out.put_u8((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

fn raw_len(raw: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least 1.
    let bits = 64 - (raw | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

fn unzigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Pairs from the zigzag/protobuf definition, as Kafka's ByteUtils tests use.
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (8191, &[0xfe, 0x7f]),
            (-8192, &[0xff, 0x7f]),
            (8192, &[0x80, 0x80, 0x01]),
            (i32::MAX as i64, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN as i64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, enc) in cases {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out, enc, "varlong {v}");
            assert_eq!(read_varlong(enc), Ok((v, enc.len())));
            let v32 = i32::try_from(v).unwrap();
            let mut out = Vec::new();
            put_varint(&mut out, v32);
            assert_eq!(out, enc, "varint {v}");
            assert_eq!(varint_len(v32), enc.len());
            assert_eq!(read_varint(enc), Ok((v32, enc.len())));
        }
        let mut max = Vec::new();
        put_varlong(&mut max, i64::MIN);
        assert_eq!(
            max,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn overflow_and_truncation() {
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::Overflow)
        );
        assert_eq!(read_varlong(&[0x80; 9]), Err(VarintError::Truncated));
        assert_eq!(read_varlong(&[0x80; 11]), Err(VarintError::Overflow));
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert_eq!(read_varlong(&ten), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in any::<i32>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let n = out.len();
            out.extend_from_slice(&tail);
            prop_assert_eq!(read_varint(&out), Ok((v, n)));
        }

        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            prop_assert_eq!(read_varlong(&out), Ok((v, out.len())));
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = read_varint(&bytes);
            let _ = read_varlong(&bytes);
        }
    }
}
