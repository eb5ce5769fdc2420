//! Frame layout: the fixed-size headers around every request and response.
//!
//! ```text
//! request  = u32 frame_len | u16 api_key | u16 api_version | u32 correlation_id
//!            | u32 body_len | body (postcard) | tail (raw bytes)
//! response = u32 frame_len | u32 correlation_id | u16 error_code
//!            | u32 body_len | body (postcard) | tail (raw bytes)
//! ```
//!
//! All integers big-endian. `frame_len` counts the bytes after itself. The
//! tail is `frame_len - header - body_len` bytes: record batches of a produce
//! request, or the fetched segment ranges of a fetch response. Framing is two
//! steps: [`check_frame`] says whether a whole frame is buffered (an
//! incomplete frame is a normal outcome, not an error), then the header
//! decoders parse it.

use super::WireError;
use super::error_code::ErrorCode;

/// Size of the `frame_len` prefix.
pub const LEN_PREFIX: usize = 4;
/// Size of a request header after the length prefix.
pub const REQUEST_HEADER_LEN: usize = 12;
/// Size of a response header after the length prefix.
pub const RESPONSE_HEADER_LEN: usize = 10;

/// The fixed header of a request frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Which API (see [`super::ApiKey`]).
    pub api_key: u16,
    /// Version of that API's body layout.
    pub api_version: u16,
    /// Echoed in the response; chosen by the client.
    pub correlation_id: u32,
    /// Length of the postcard-encoded body.
    pub body_len: u32,
}

/// The fixed header of a response frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: u32,
    /// [`ErrorCode::None`] when the body is the API's response; otherwise the
    /// request could not be served at all and the body is an
    /// [`super::ErrorBody`].
    pub error_code: ErrorCode,
    /// Length of the postcard-encoded body.
    pub body_len: u32,
}

fn be_u32(buf: &[u8], at: usize) -> Result<u32, WireError> {
    let bytes = buf.get(at..at + 4).ok_or(WireError::Truncated {
        offset: at,
        need: 4,
        have: buf.len().saturating_sub(at),
    })?;
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    Ok(u32::from_be_bytes(b))
}

fn be_u16(buf: &[u8], at: usize) -> Result<u16, WireError> {
    let bytes = buf.get(at..at + 2).ok_or(WireError::Truncated {
        offset: at,
        need: 2,
        have: buf.len().saturating_sub(at),
    })?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// The declared `frame_len` of `frame`, after checking that `frame` holds
/// the whole header and all the bytes the prefix declares, so a caller may
/// slice the body and tail out of it.
fn whole_frame_len(frame: &[u8], header_len: usize) -> Result<usize, WireError> {
    let frame_len = be_u32(frame, 0)? as usize;
    let need = LEN_PREFIX + frame_len.max(header_len);
    if frame.len() < need {
        return Err(WireError::Truncated {
            offset: 0,
            need,
            have: frame.len(),
        });
    }
    Ok(frame_len)
}

/// Whether `buf` starts with a whole frame: `Ok(Some(total_len))` (prefix
/// included) when it does, `Ok(None)` when more bytes are needed, and
/// [`WireError::FrameTooLarge`] as soon as the prefix declares more than
/// `max_frame_len` bytes — before anything is allocated for it — or
/// [`WireError::FrameTooShort`] when it declares less than `min_len`.
pub fn check_frame(
    buf: &[u8],
    max_frame_len: u32,
    min_len: usize,
) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Ok(None);
    };
    let len = be_u32(prefix, 0)?;
    if len > max_frame_len {
        return Err(WireError::FrameTooLarge {
            len,
            max: max_frame_len,
        });
    }
    if (len as usize) < min_len {
        return Err(WireError::FrameTooShort {
            len,
            min: min_len as u32,
        });
    }
    let total = LEN_PREFIX + len as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// `header_len + body_len + tail_len` as a `frame_len`, checked: a frame
/// whose length does not fit in the u32 prefix is an error, never a
/// silently wrapped length.
pub fn frame_len(header_len: usize, body_len: u32, tail_len: usize) -> Result<u32, WireError> {
    let len = (header_len as u64)
        .saturating_add(u64::from(body_len))
        .saturating_add(tail_len as u64);
    u32::try_from(len).map_err(|_| WireError::FrameLengthOverflow { len })
}

impl RequestHeader {
    /// Encodes the length prefix and header of a request whose body is
    /// `body_len` bytes and whose tail is `tail_len` bytes, or
    /// [`WireError::FrameLengthOverflow`] if the frame would not fit the u32
    /// length prefix.
    pub fn encode(
        &self,
        tail_len: usize,
    ) -> Result<[u8; LEN_PREFIX + REQUEST_HEADER_LEN], WireError> {
        let frame_len = frame_len(REQUEST_HEADER_LEN, self.body_len, tail_len)?;
        let mut out = [0u8; LEN_PREFIX + REQUEST_HEADER_LEN];
        out[0..4].copy_from_slice(&frame_len.to_be_bytes());
        out[4..6].copy_from_slice(&self.api_key.to_be_bytes());
        out[6..8].copy_from_slice(&self.api_version.to_be_bytes());
        out[8..12].copy_from_slice(&self.correlation_id.to_be_bytes());
        out[12..16].copy_from_slice(&self.body_len.to_be_bytes());
        Ok(out)
    }

    /// Decodes the header of a whole request frame (length prefix included)
    /// and checks that the body fits in the frame. Returns the header and the
    /// tail's length. Bytes after the declared frame are ignored; a buffer
    /// shorter than the header or the declared frame is
    /// [`WireError::Truncated`], so on success the body
    /// (`frame[16..16 + body_len]`) and the tail after it are in bounds.
    pub fn decode(frame: &[u8]) -> Result<(RequestHeader, usize), WireError> {
        let frame_len = whole_frame_len(frame, REQUEST_HEADER_LEN)?;
        let header = RequestHeader {
            api_key: be_u16(frame, 4)?,
            api_version: be_u16(frame, 6)?,
            correlation_id: be_u32(frame, 8)?,
            body_len: be_u32(frame, 12)?,
        };
        let tail = frame_len
            .checked_sub(REQUEST_HEADER_LEN + header.body_len as usize)
            .ok_or(WireError::BodyTooLong {
                body_len: header.body_len,
                frame_len: frame_len as u32,
            })?;
        Ok((header, tail))
    }
}

impl ResponseHeader {
    /// Encodes the length prefix and header of a response with a tail of
    /// `tail_len` bytes, or [`WireError::FrameLengthOverflow`] if the frame
    /// would not fit the u32 length prefix.
    pub fn encode(
        &self,
        tail_len: usize,
    ) -> Result<[u8; LEN_PREFIX + RESPONSE_HEADER_LEN], WireError> {
        let frame_len = frame_len(RESPONSE_HEADER_LEN, self.body_len, tail_len)?;
        let mut out = [0u8; LEN_PREFIX + RESPONSE_HEADER_LEN];
        out[0..4].copy_from_slice(&frame_len.to_be_bytes());
        out[4..8].copy_from_slice(&self.correlation_id.to_be_bytes());
        out[8..10].copy_from_slice(&(self.error_code as u16).to_be_bytes());
        out[10..14].copy_from_slice(&self.body_len.to_be_bytes());
        Ok(out)
    }

    /// Decodes the header of a whole response frame; returns it and the
    /// tail's length. Same guarantees as [`RequestHeader::decode`] (the body
    /// is `frame[14..14 + body_len]`); an unknown error code decodes as
    /// [`ErrorCode::Unknown`].
    pub fn decode(frame: &[u8]) -> Result<(ResponseHeader, usize), WireError> {
        let frame_len = whole_frame_len(frame, RESPONSE_HEADER_LEN)?;
        let header = ResponseHeader {
            correlation_id: be_u32(frame, 4)?,
            error_code: ErrorCode::from_u16(be_u16(frame, 8)?),
            body_len: be_u32(frame, 10)?,
        };
        let tail = frame_len
            .checked_sub(RESPONSE_HEADER_LEN + header.body_len as usize)
            .ok_or(WireError::BodyTooLong {
                body_len: header.body_len,
                frame_len: frame_len as u32,
            })?;
        Ok((header, tail))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX: u32 = 1024;

    #[test]
    fn request_header_byte_layout() {
        let header = RequestHeader {
            api_key: 0x0105,
            api_version: 0x0203,
            correlation_id: 0x0A0B_0C0D,
            body_len: 5,
        };
        let bytes = header.encode(7).unwrap();
        assert_eq!(
            bytes,
            [
                0x00, 0x00, 0x00, 0x18, // frame_len = 12 + 5 + 7
                0x01, 0x05, // api_key
                0x02, 0x03, // api_version
                0x0A, 0x0B, 0x0C, 0x0D, // correlation_id
                0x00, 0x00, 0x00, 0x05, // body_len
            ]
        );
        let mut frame = bytes.to_vec();
        frame.extend_from_slice(&[0xEE; 12]);
        assert_eq!(check_frame(&frame, MAX, REQUEST_HEADER_LEN), Ok(Some(28)));
        assert_eq!(RequestHeader::decode(&frame), Ok((header, 7)));
    }

    #[test]
    fn response_header_byte_layout() {
        let header = ResponseHeader {
            correlation_id: 0x0102_0304,
            error_code: ErrorCode::InvalidRequest,
            body_len: 3,
        };
        let bytes = header.encode(0).unwrap();
        assert_eq!(
            bytes,
            [
                0x00, 0x00, 0x00, 0x0D, // frame_len = 10 + 3 + 0
                0x01, 0x02, 0x03, 0x04, // correlation_id
                0x00, 0x0A, // error_code 10
                0x00, 0x00, 0x00, 0x03, // body_len
            ]
        );
        let mut frame = bytes.to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert_eq!(check_frame(&frame, MAX, RESPONSE_HEADER_LEN), Ok(Some(17)));
        assert_eq!(ResponseHeader::decode(&frame), Ok((header, 0)));
    }

    #[test]
    fn frame_length_past_u32_is_an_error_not_a_wrap() {
        let response = ResponseHeader {
            correlation_id: 1,
            error_code: ErrorCode::None,
            body_len: 100,
        };
        // The largest tail that still fits.
        let fits = u32::MAX as usize - RESPONSE_HEADER_LEN - 100;
        let bytes = response.encode(fits).unwrap();
        assert_eq!(bytes[0..4], [0xFF; 4]);
        assert_eq!(
            response.encode(fits + 1),
            Err(WireError::FrameLengthOverflow {
                len: u64::from(u32::MAX) + 1
            })
        );
        // 4 GiB + 14: would have wrapped to a 14-byte frame.
        assert!(response.encode(1 << 32).is_err());
        let request = RequestHeader {
            api_key: 0,
            api_version: 0,
            correlation_id: 1,
            body_len: u32::MAX,
        };
        assert!(matches!(
            request.encode(0),
            Err(WireError::FrameLengthOverflow { .. })
        ));
    }

    #[test]
    fn response_header_with_unknown_code_decodes_as_unknown() {
        let frame = [0, 0, 0, 10, 0, 0, 0, 9, 0x03, 0xE7, 0, 0, 0, 0];
        let (header, tail) = ResponseHeader::decode(&frame).unwrap();
        assert_eq!(header.error_code, ErrorCode::Unknown);
        assert_eq!(header.correlation_id, 9);
        assert_eq!(tail, 0);
    }

    #[test]
    fn response_header_with_tail() {
        let header = ResponseHeader {
            correlation_id: 1,
            error_code: ErrorCode::None,
            body_len: 2,
        };
        let mut frame = header.encode(5).unwrap().to_vec();
        assert_eq!(frame[..4], [0, 0, 0, 17]);
        frame.extend_from_slice(&[0; 7]);
        assert_eq!(ResponseHeader::decode(&frame), Ok((header, 5)));
    }

    #[test]
    fn check_frame_incomplete_is_none() {
        let header = RequestHeader {
            api_key: 1,
            api_version: 0,
            correlation_id: 1,
            body_len: 4,
        };
        let mut frame = header.encode(0).unwrap().to_vec();
        frame.extend_from_slice(&[1, 2, 3, 4]);
        for cut in 0..frame.len() {
            assert_eq!(
                check_frame(&frame[..cut], MAX, REQUEST_HEADER_LEN),
                Ok(None),
                "{cut} bytes"
            );
        }
        assert_eq!(check_frame(&frame, MAX, REQUEST_HEADER_LEN), Ok(Some(20)));
        // Bytes of the next frame after it do not matter.
        frame.extend_from_slice(&[0, 0]);
        assert_eq!(check_frame(&frame, MAX, REQUEST_HEADER_LEN), Ok(Some(20)));
    }

    #[test]
    fn check_frame_too_large_before_the_rest_arrives() {
        let err = Err(WireError::FrameTooLarge {
            len: MAX + 1,
            max: MAX,
        });
        // The prefix alone is enough to refuse.
        assert_eq!(check_frame(&(MAX + 1).to_be_bytes(), MAX, 12), err);
        assert_eq!(check_frame(&[0, 0, 4, 1, 0, 1], MAX, 12), err);
        assert_eq!(
            check_frame(&[0xFF; 4], MAX, 12),
            Err(WireError::FrameTooLarge {
                len: u32::MAX,
                max: MAX
            })
        );
        // Exactly the maximum is allowed (and incomplete here).
        assert_eq!(check_frame(&MAX.to_be_bytes(), MAX, 12), Ok(None));
    }

    #[test]
    fn check_frame_too_short() {
        for len in 0..REQUEST_HEADER_LEN as u32 {
            assert_eq!(
                check_frame(&len.to_be_bytes(), MAX, REQUEST_HEADER_LEN),
                Err(WireError::FrameTooShort { len, min: 12 })
            );
        }
        assert_eq!(
            check_frame(&9u32.to_be_bytes(), MAX, RESPONSE_HEADER_LEN),
            Err(WireError::FrameTooShort { len: 9, min: 10 })
        );
        // A header-only frame is complete once its 12 bytes are there.
        let mut frame = 12u32.to_be_bytes().to_vec();
        assert_eq!(check_frame(&frame, MAX, REQUEST_HEADER_LEN), Ok(None));
        frame.extend_from_slice(&[0; 12]);
        assert_eq!(check_frame(&frame, MAX, REQUEST_HEADER_LEN), Ok(Some(16)));
    }

    #[test]
    fn body_past_the_frame_is_body_too_long() {
        // frame_len 14 leaves room for a 2-byte body; it declares 3.
        let frame = [0, 0, 0, 14, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0];
        assert_eq!(
            RequestHeader::decode(&frame),
            Err(WireError::BodyTooLong {
                body_len: 3,
                frame_len: 14
            })
        );
        let frame = [0, 0, 0, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0];
        assert_eq!(
            ResponseHeader::decode(&frame),
            Err(WireError::BodyTooLong {
                body_len: 2,
                frame_len: 11
            })
        );
        // A huge body_len cannot overflow the check.
        let frame = [0, 0, 0, 12, 0, 1, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            RequestHeader::decode(&frame),
            Err(WireError::BodyTooLong { .. })
        ));
    }

    #[test]
    fn decode_of_a_partial_frame_is_truncated() {
        let header = RequestHeader {
            api_key: 4,
            api_version: 0,
            correlation_id: 3,
            body_len: 2,
        };
        let mut frame = header.encode(3).unwrap().to_vec();
        frame.extend_from_slice(&[0; 5]);
        for cut in 0..frame.len() {
            assert!(
                matches!(
                    RequestHeader::decode(&frame[..cut]),
                    Err(WireError::Truncated { .. })
                ),
                "{cut} bytes"
            );
        }
        assert_eq!(
            RequestHeader::decode(&frame[..4]),
            Err(WireError::Truncated {
                offset: 0,
                need: 21,
                have: 4
            })
        );
        assert_eq!(RequestHeader::decode(&frame), Ok((header, 3)));
        let response = ResponseHeader {
            correlation_id: 3,
            error_code: ErrorCode::None,
            body_len: 1,
        };
        let mut frame = response.encode(0).unwrap().to_vec();
        frame.push(0);
        for cut in 0..frame.len() {
            assert!(matches!(
                ResponseHeader::decode(&frame[..cut]),
                Err(WireError::Truncated { .. })
            ));
        }
    }

    /// What a caller may rely on after `check_frame` and a header decode
    /// succeed: the body and tail are inside the frame.
    fn check_request_invariants(buf: &[u8], max: u32) {
        match check_frame(buf, max, REQUEST_HEADER_LEN) {
            Ok(Some(total)) => {
                assert!(total <= buf.len());
                assert!(total >= LEN_PREFIX + REQUEST_HEADER_LEN);
                assert!(total - LEN_PREFIX <= max as usize);
                let frame = &buf[..total];
                if let Ok((header, tail)) = RequestHeader::decode(frame) {
                    let body_end = LEN_PREFIX + REQUEST_HEADER_LEN + header.body_len as usize;
                    assert_eq!(body_end + tail, total);
                }
            }
            Ok(None) => {
                if let Some(prefix) = buf.get(..4) {
                    let len = u32::from_be_bytes(prefix.try_into().unwrap());
                    assert!(buf.len() < LEN_PREFIX + len as usize);
                }
            }
            Err(_) => assert!(buf.len() >= LEN_PREFIX),
        }
        if let Ok((header, tail)) = RequestHeader::decode(buf) {
            let body_end = LEN_PREFIX + REQUEST_HEADER_LEN + header.body_len as usize;
            assert!(body_end + tail <= buf.len());
        }
    }

    fn check_response_invariants(buf: &[u8], max: u32) {
        if let Ok(Some(total)) = check_frame(buf, max, RESPONSE_HEADER_LEN) {
            let frame = &buf[..total];
            if let Ok((header, tail)) = ResponseHeader::decode(frame) {
                let body_end = LEN_PREFIX + RESPONSE_HEADER_LEN + header.body_len as usize;
                assert_eq!(body_end + tail, total);
            }
        }
        if let Ok((header, tail)) = ResponseHeader::decode(buf) {
            let body_end = LEN_PREFIX + RESPONSE_HEADER_LEN + header.body_len as usize;
            assert!(body_end + tail <= buf.len());
        }
    }

    /// Arbitrary bytes, biased towards small length prefixes so that whole
    /// frames come up often.
    fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            (0u32..48, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(len, rest)| {
                let mut buf = len.to_be_bytes().to_vec();
                buf.extend(rest);
                buf
            }),
        ]
    }

    proptest! {
        #[test]
        fn request_framing_never_panics(buf in frame_bytes(), max in prop_oneof![Just(32u32), Just(u32::MAX), any::<u32>()]) {
            check_request_invariants(&buf, max);
        }

        #[test]
        fn response_framing_never_panics(buf in frame_bytes(), max in prop_oneof![Just(32u32), Just(u32::MAX), any::<u32>()]) {
            check_response_invariants(&buf, max);
        }

        #[test]
        fn request_header_round_trips(
            api_key: u16,
            api_version: u16,
            correlation_id: u32,
            body_len in 0u32..256,
            tail_len in 0usize..256,
        ) {
            let header = RequestHeader { api_key, api_version, correlation_id, body_len };
            let mut frame = header.encode(tail_len).unwrap().to_vec();
            frame.resize(frame.len() + body_len as usize + tail_len, 0x5A);
            prop_assert_eq!(check_frame(&frame, u32::MAX, REQUEST_HEADER_LEN), Ok(Some(frame.len())));
            prop_assert_eq!(RequestHeader::decode(&frame), Ok((header, tail_len)));
        }

        #[test]
        fn response_header_round_trips(
            correlation_id: u32,
            code: u16,
            body_len in 0u32..256,
            tail_len in 0usize..256,
        ) {
            let header = ResponseHeader {
                correlation_id,
                error_code: ErrorCode::from_u16(code),
                body_len,
            };
            let mut frame = header.encode(tail_len).unwrap().to_vec();
            frame.resize(frame.len() + body_len as usize + tail_len, 0xA5);
            prop_assert_eq!(check_frame(&frame, u32::MAX, RESPONSE_HEADER_LEN), Ok(Some(frame.len())));
            prop_assert_eq!(ResponseHeader::decode(&frame), Ok((header, tail_len)));
        }
    }
}
