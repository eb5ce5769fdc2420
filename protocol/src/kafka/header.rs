//! Kafka framing and headers: a frame is an i32 length then the bytes;
//! request header v1 (api key, version, correlation id, nullable client
//! id — always a non-compact string) and v2 (v1 plus tagged fields);
//! response header v0 (correlation id) and v1 (plus tagged fields).

use super::io::{Io, Reader};
use super::{ApiKey, KafkaError};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// The fixed part of a request header: api key, version, correlation id.
pub const REQUEST_HEADER_MIN: usize = 8;

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// Kafka API key (maybe one not served).
    pub api_key: i16,
    /// API version (maybe one not served).
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's id, if sent.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Decodes the header at the start of `buf` (the frame without its
    /// length prefix) and returns it with the position of the body. The
    /// header version follows from the API and version; for APIs not served
    /// it is read as v1, and for versions not served as v2 if its tagged
    /// fields read, else as v1.
    pub fn decode(buf: &[u8]) -> Result<(RequestHeader, usize), KafkaError> {
        let mut r = Reader::new(buf, false);
        let mut h = RequestHeader {
            api_key: 0,
            api_version: 0,
            correlation_id: 0,
            client_id: None,
        };
        r.i16(&mut h.api_key)?;
        r.i16(&mut h.api_version)?;
        r.i32(&mut h.correlation_id)?;
        h.client_id = r.nullable_string_lossy()?;
        let api = ApiKey::from_i16(h.api_key);
        if api.is_some_and(|k| k.request_header_version(h.api_version) == 2) {
            let mut tags = Reader::new(buf.get(r.position()..).unwrap_or_default(), true);
            match tags.tags() {
                Ok(()) => return Ok((h, r.position() + tags.position())),
                // A version not served is answered from the fixed fields
                // alone, whatever header version the client chose for it.
                Err(_) if !api.is_some_and(|k| k.supports(h.api_version)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((h, r.position()))
    }

    /// Encodes the header (v1 or v2 as the API and version require) onto `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.api_key.to_be_bytes());
        out.extend_from_slice(&self.api_version.to_be_bytes());
        out.extend_from_slice(&self.correlation_id.to_be_bytes());
        match &self.client_id {
            Some(c) => {
                // Client ids longer than an i16 length are cut.
                let c = c
                    .as_bytes()
                    .get(..c.len().min(i16::MAX as usize))
                    .unwrap_or_default();
                out.extend_from_slice(&(c.len() as i16).to_be_bytes());
                out.extend_from_slice(c);
            }
            None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        let v2 = ApiKey::from_i16(self.api_key)
            .is_some_and(|k| k.request_header_version(self.api_version) == 2);
        if v2 {
            out.push(0);
        }
    }
}

/// Starts a response frame on `out`: a length prefix to fill in with
/// [`finish_frame`], the correlation id, and (header v1) an empty tagged
/// field section. Returns the frame's start.
pub fn start_response(out: &mut Vec<u8>, correlation_id: i32, header_version: i16) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    out.extend_from_slice(&correlation_id.to_be_bytes());
    if header_version >= 1 {
        out.push(0);
    }
    start
}

/// Fills in the length prefix of the frame started at `start`, whose
/// bytes after `out` are `tail_len` more (record sets sent separately).
pub fn finish_frame(out: &mut [u8], start: usize, tail_len: u64) -> Result<(), KafkaError> {
    let len = (out.len() - start - LEN_PREFIX) as u64 + tail_len;
    let len = i32::try_from(len).map_err(|_| KafkaError::Invalid {
        offset: start,
        what: "frame longer than an i32 length",
    })?;
    match out.get_mut(start..start + LEN_PREFIX) {
        Some(p) => {
            p.copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        None => Err(KafkaError::Invalid {
            offset: start,
            what: "frame start outside the buffer",
        }),
    }
}

/// Reads a response header of `version` at the start of `buf`: the
/// correlation id and the body's position.
pub fn decode_response_header(buf: &[u8], version: i16) -> Result<(i32, usize), KafkaError> {
    let mut r = Reader::new(buf, version >= 1);
    let mut id = 0;
    r.i32(&mut id)?;
    r.tags()?;
    Ok((id, r.position()))
}
