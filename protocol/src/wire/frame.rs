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

impl RequestHeader {
    /// Encodes the length prefix and header of a request whose body is
    /// `body_len` bytes and whose tail is `tail_len` bytes.
    pub fn encode(&self, tail_len: usize) -> [u8; LEN_PREFIX + REQUEST_HEADER_LEN] {
        let frame_len = (REQUEST_HEADER_LEN + self.body_len as usize + tail_len) as u32;
        let mut out = [0u8; LEN_PREFIX + REQUEST_HEADER_LEN];
        out[0..4].copy_from_slice(&frame_len.to_be_bytes());
        out[4..6].copy_from_slice(&self.api_key.to_be_bytes());
        out[6..8].copy_from_slice(&self.api_version.to_be_bytes());
        out[8..12].copy_from_slice(&self.correlation_id.to_be_bytes());
        out[12..16].copy_from_slice(&self.body_len.to_be_bytes());
        out
    }

    /// Decodes the header of a whole request frame (length prefix included)
    /// and checks that the body fits in the frame. Returns the header and the
    /// tail's length.
    pub fn decode(frame: &[u8]) -> Result<(RequestHeader, usize), WireError> {
        let frame_len = be_u32(frame, 0)? as usize;
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
    /// Encodes the length prefix and header of a response.
    pub fn encode(&self, tail_len: usize) -> [u8; LEN_PREFIX + RESPONSE_HEADER_LEN] {
        let frame_len = (RESPONSE_HEADER_LEN + self.body_len as usize + tail_len) as u32;
        let mut out = [0u8; LEN_PREFIX + RESPONSE_HEADER_LEN];
        out[0..4].copy_from_slice(&frame_len.to_be_bytes());
        out[4..8].copy_from_slice(&self.correlation_id.to_be_bytes());
        out[8..10].copy_from_slice(&(self.error_code as u16).to_be_bytes());
        out[10..14].copy_from_slice(&self.body_len.to_be_bytes());
        out
    }

    /// Decodes the header of a whole response frame; returns it and the
    /// tail's length.
    pub fn decode(frame: &[u8]) -> Result<(ResponseHeader, usize), WireError> {
        let frame_len = be_u32(frame, 0)? as usize;
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
