//! Test-only reference encoder, written independently of the production code (its own
//! varints, its own bitwise CRC-32C), for cross-checking and for crafting bad batches.
#![allow(clippy::indexing_slicing)]

/// Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
pub(crate) fn crc32c_ref(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Zigzag varint of any width, LEB128 groups.
pub(crate) fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let group = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

fn bytes_field(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => varint(out, -1),
        Some(b) => {
            varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// A record as a test expects to read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The body of one record (everything after its length varint).
pub(crate) fn record_body(
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> Vec<u8> {
    let mut out = vec![0u8];
    varint(&mut out, timestamp_delta);
    varint(&mut out, offset_delta);
    bytes_field(&mut out, key);
    bytes_field(&mut out, value);
    varint(&mut out, headers.len() as i64);
    for (k, v) in headers {
        bytes_field(&mut out, Some(k.as_bytes()));
        bytes_field(&mut out, *v);
    }
    out
}

/// A body prefixed with its length.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

/// Header fields a test may vary; lengths and CRC are computed by [`assemble`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefHeader {
    pub(crate) base_offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) record_count: i32,
}

impl Default for RefHeader {
    fn default() -> Self {
        RefHeader {
            base_offset: 0,
            leader_epoch: -1,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            record_count: 0,
        }
    }
}

/// A whole batch: header (producer fields -1), then `records` verbatim, correct length
/// and CRC.
pub(crate) fn assemble(h: RefHeader, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    out.extend_from_slice(&h.leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&h.max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&h.record_count.to_be_bytes());
    out.extend_from_slice(records);
    fix_crc(&mut out);
    out
}

/// Recomputes the CRC after a test edited bytes 21.. of a batch.
pub(crate) fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c_ref(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A well-formed uncompressed batch of `records`, the reference way.
pub(crate) fn encode_batch(base_offset: i64, records: &[RefRecord]) -> Vec<u8> {
    let base_ts = records.first().map_or(-1, |r| r.timestamp);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let mut body = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        body.extend(framed(&record_body(
            r.timestamp.wrapping_sub(base_ts),
            i as i64,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        )));
    }
    let n = records.len() as i32;
    assemble(
        RefHeader {
            base_offset,
            last_offset_delta: (n - 1).max(0),
            base_timestamp: base_ts,
            max_timestamp: max_ts,
            record_count: n,
            ..RefHeader::default()
        },
        &body,
    )
}

#[test]
fn reference_crc_matches_the_standard_check_value() {
    // CRC-32C check value from the CRC catalogue.
    assert_eq!(crc32c_ref(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}
