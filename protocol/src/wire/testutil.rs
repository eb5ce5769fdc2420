//! Helpers shared by the codec tests of every API module.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{WireError, decode_body, encode_body};

/// Encodes `value`, checks that it decodes back equal, and returns the bytes.
pub(crate) fn round_trip<T>(value: &T) -> Vec<u8>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut buf = vec![0xAA; 3];
    let n = encode_body(value, &mut buf);
    assert_eq!(
        n,
        buf.len() - 3,
        "encode_body must return the bytes it appended"
    );
    let bytes = buf.split_off(3);
    let back: T = decode_body(&bytes).unwrap();
    assert_eq!(&back, value);
    bytes
}

/// Checks that every strict prefix of `bytes` (a whole encoding of a `T`)
/// fails to decode with an error, and that a trailing byte is rejected.
pub(crate) fn assert_truncations_fail<T>(bytes: &[u8])
where
    T: DeserializeOwned + Debug,
{
    for cut in 0..bytes.len() {
        match decode_body::<T>(&bytes[..cut]) {
            Err(WireError::Body(_)) => {}
            other => panic!("prefix of {cut}/{} bytes gave {other:?}", bytes.len()),
        }
    }
    for extra in [&[0u8][..], &[1, 2, 3][..]] {
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(extra);
        match decode_body::<T>(&longer) {
            Err(WireError::TrailingBytes(n)) => assert_eq!(n, extra.len()),
            other => panic!("{} trailing bytes gave {other:?}", extra.len()),
        }
    }
}

/// [`round_trip`] then [`assert_truncations_fail`] for each value.
pub(crate) fn check_all<T>(values: &[T])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    for value in values {
        let bytes = round_trip(value);
        assert_truncations_fail::<T>(&bytes);
    }
}

/// Encodes `value` into a fresh vector.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_body(value, &mut out);
    out
}
