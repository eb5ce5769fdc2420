//! [`BatchBuilder`]: encodes records straight into one uncompressed batch.

use bytes::{BufMut, BytesMut};

use super::attributes::{TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT};
use super::header::crc_of;
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD, MAGIC};

/// Byte position of the CRC field.
const CRC_POS: usize = 17;

/// One record to append with [`BatchBuilder::push`]; borrowed, nothing is copied until it
/// is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// Milliseconds since the epoch (any `i64`, negatives included).
    pub timestamp: i64,
    /// The key; `None` is stored as null (length -1), distinct from an empty key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is stored as null (length -1), distinct from an empty value.
    pub value: Option<&'a [u8]>,
    /// Headers in order: a UTF-8 key and a nullable value each; keys may repeat.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

/// Builds one uncompressed RecordBatch v2, encoding each pushed record directly into the
/// output buffer; [`finish`](BatchBuilder::finish) fills in the header and CRC.
///
/// Defaults: base offset 0, partition leader epoch -1, producer id -1, producer epoch -1,
/// base sequence -1, create-time timestamps, not transactional. Record `i` gets offset
/// delta `i`; the first record's timestamp becomes `base_timestamp`, and `max_timestamp`
/// is the largest record timestamp (-1 for both when there are no records).
///
/// # Panics
///
/// `push` panics if the batch would exceed `i32::MAX` bytes or records, the limits of
/// the format (brokers cap batches far below).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: BytesMut,
    header: BatchHeader,
    /// Timestamps of the first record and the largest one, once there is a record.
    timestamps: Option<(i64, i64)>,
}

impl Default for BatchBuilder {
    /// Same as [`BatchBuilder::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder with the defaults listed on [`BatchBuilder`].
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder whose buffer has room for at least `bytes` bytes of batch (header
    /// included) before it reallocates.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(bytes.max(HEADER_LEN));
        buf.put_bytes(0, HEADER_LEN);
        BatchBuilder {
            buf,
            header: BatchHeader {
                base_offset: 0,
                batch_length: 0,
                partition_leader_epoch: -1,
                magic: MAGIC,
                crc: 0,
                attributes: 0,
                last_offset_delta: 0,
                base_timestamp: -1,
                max_timestamp: -1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: 0,
            },
            timestamps: None,
        }
    }

    /// Sets `baseOffset` (a broker overwrites it on append anyway).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.header.base_offset = base_offset;
        self
    }

    /// Sets `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.header.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer fields: `producerId`, `producerEpoch`, `baseSequence`.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.header.producer_id = producer_id;
        self.header.producer_epoch = producer_epoch;
        self.header.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction (attributes bit 4).
    pub fn transactional(mut self) -> Self {
        self.header.attributes |= TRANSACTIONAL_BIT;
        self
    }

    /// Marks the batch's timestamps as log append time (attributes bit 3); the record
    /// timestamps are still encoded as pushed, and readers report `max_timestamp` for all.
    pub fn log_append_time(mut self) -> Self {
        self.header.attributes |= TIMESTAMP_TYPE_BIT;
        self
    }

    /// Appends `record` with the next offset delta. See the panics on [`BatchBuilder`].
    pub fn push(&mut self, record: &NewRecord<'_>) {
        let offset_delta = self.header.record_count;
        let (base_ts, max_ts) = match self.timestamps {
            Some((base, max)) => (base, max.max(record.timestamp)),
            None => (record.timestamp, record.timestamp),
        };
        let timestamp_delta = record.timestamp.wrapping_sub(base_ts);
        let body_len = body_len(record, timestamp_delta, offset_delta);
        let body_len = i32::try_from(body_len).expect("record larger than i32::MAX bytes");
        let total = self.buf.len() + varint_len(body_len) + body_len as usize;
        assert!(
            total - LOG_OVERHEAD <= i32::MAX as usize && offset_delta < i32::MAX,
            "record batch larger than i32::MAX bytes or records"
        );
        self.buf.reserve(total - self.buf.len());
        let out = &mut self.buf;
        put_varint(out, body_len);
        out.put_u8(0); // record attributes: unused
        put_varlong(out, timestamp_delta);
        put_varint(out, offset_delta);
        put_nullable(out, record.key);
        put_nullable(out, record.value);
        put_varint(out, len_i32(record.headers.len()));
        for (key, value) in record.headers {
            put_varint(out, len_i32(key.len()));
            out.put_slice(key.as_bytes());
            put_nullable(out, *value);
        }
        debug_assert_eq!(self.buf.len(), total);
        self.timestamps = Some((base_ts, max_ts));
        self.header.record_count += 1;
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.header.record_count as usize
    }

    /// True if no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.header.record_count == 0
    }

    /// Exact size in bytes of the batch [`finish`](BatchBuilder::finish) would return now.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Completes the batch: header fields, length and CRC-32C filled in. The result passes
    /// [`validate`](super::validate). An empty builder yields a valid batch with
    /// `record_count` 0 and `last_offset_delta` 0.
    pub fn finish(mut self) -> BytesMut {
        let h = &mut self.header;
        h.batch_length = (self.buf.len() - LOG_OVERHEAD) as i32;
        h.last_offset_delta = (h.record_count - 1).max(0);
        if let Some((base, max)) = self.timestamps {
            h.base_timestamp = base;
            h.max_timestamp = max;
        }
        let encoded = h.encode();
        if let Some(dst) = self.buf.get_mut(..HEADER_LEN) {
            dst.copy_from_slice(&encoded);
        }
        let crc = crc_of(&self.buf);
        if let Some(dst) = self.buf.get_mut(CRC_POS..CRC_START) {
            dst.copy_from_slice(&crc.to_be_bytes());
        }
        self.buf
    }

    /// Completes the batch like [`finish`](BatchBuilder::finish) and appends it to `out`
    /// (without copying when `out` is empty or ends where the batch's buffer begins).
    pub fn finish_into(self, out: &mut BytesMut) {
        out.unsplit(self.finish());
    }
}

/// Encoded size of a record after its length varint.
fn body_len(record: &NewRecord<'_>, timestamp_delta: i64, offset_delta: i32) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| varint_len(len_i32(k.len())) + k.len() + nullable_len(*v))
        .sum();
    1 + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(record.key)
        + nullable_len(record.value)
        + varint_len(len_i32(record.headers.len()))
        + headers
}

fn nullable_len(field: Option<&[u8]>) -> usize {
    match field {
        None => 1,
        Some(b) => varint_len(len_i32(b.len())) + b.len(),
    }
}

fn put_nullable(out: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, len_i32(b.len()));
            out.put_slice(b);
        }
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("record field larger than i32::MAX bytes")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::batch::testutil::{RefRecord, encode_batch};
    use crate::batch::{RecordBatch, validate};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A batch written by a Kafka 0.11 broker (as captured in kafka-python's test suite):
    /// base offset 0, leader epoch 1, one record, null key, value "123".
    const KAFKA_ONE_RECORD: &str = "
        0000000000000000 0000003b 00000001 02 0318a270
        0000 00000000 0000015dff7b063c 0000015dff7b063c
        ffffffffffffffff ffff ffffffff 00000001
        12 00 00 00 01 06 313233 00";

    /// A Kafka 0.11 broker batch: base offset 1, leader epoch 2, two records with null
    /// keys and empty values, the second 168 ms after the first.
    const KAFKA_TWO_RECORDS: &str = "
        0000000000000001 00000040 00000002 02 c85cbd23
        0000 00000001 0000015dff7cdd6c 0000015dff7cde14
        ffffffffffffffff ffff ffffffff 00000002
        0c 00 00 00 01 00 00
        0e 00 d002 02 01 00 00";

    /// A batch with one header (kafka-python's suite): value "hdr", header hkey=hval.
    const ONE_HEADER: &str = "
        0000000000000000 00000045 00000000 02 5cd8ef52
        0000 00000000 0000016585b6f3c1 0000016585b6f3c1
        ffffffffffffffff ffff ffffffff 00000001
        26 00 00 00 01 06 686472 02 08 686b6579 08 6876616c";

    #[test]
    fn builder_reproduces_kafka_bytes_exactly() {
        let mut b = BatchBuilder::new().partition_leader_epoch(1);
        b.push(&NewRecord {
            timestamp: 1_503_229_838_908,
            key: None,
            value: Some(b"123"),
            headers: &[],
        });
        assert_eq!(b.size_in_bytes(), 71);
        assert_eq!(&b.finish()[..], &hex(KAFKA_ONE_RECORD)[..]);

        let mut b = BatchBuilder::new().base_offset(1).partition_leader_epoch(2);
        for ts in [1_503_229_959_532, 1_503_229_959_700] {
            b.push(&NewRecord {
                timestamp: ts,
                key: None,
                value: Some(b""),
                headers: &[],
            });
        }
        assert_eq!(&b.finish()[..], &hex(KAFKA_TWO_RECORDS)[..]);

        let mut b = BatchBuilder::new().partition_leader_epoch(0);
        b.push(&NewRecord {
            timestamp: 0x0165_85b6_f3c1,
            key: None,
            value: Some(b"hdr"),
            headers: &[("hkey", Some(b"hval"))],
        });
        assert_eq!(&b.finish()[..], &hex(ONE_HEADER)[..]);
    }

    #[test]
    fn kafka_bytes_validate_and_iterate() {
        let batch = RecordBatch::new(hex(KAFKA_TWO_RECORDS).into()).unwrap();
        let h = batch.header();
        assert_eq!((h.base_offset, h.record_count, h.next_offset()), (1, 2, 3));
        let recs: Vec<_> = batch.records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].offset, recs[0].timestamp), (1, 1_503_229_959_532));
        assert_eq!((recs[1].offset, recs[1].timestamp), (2, 1_503_229_959_700));
        assert!(
            recs.iter()
                .all(|r| r.key.is_none() && r.value.as_deref() == Some(&b""[..]))
        );

        let batch = RecordBatch::new(hex(ONE_HEADER).into()).unwrap();
        let rec = batch.records().next().unwrap().unwrap();
        let headers: Vec<_> = rec.headers().map(Result::unwrap).collect();
        assert_eq!(
            headers,
            [("hkey", Some(bytes::Bytes::from_static(b"hval")))]
        );
    }

    #[test]
    fn builder_matches_reference_encoder() {
        let records = vec![
            RefRecord {
                timestamp: 50,
                key: Some(b"k".to_vec()),
                value: None,
                headers: vec![("a".into(), None), ("a".into(), Some(vec![1, 2]))],
            },
            RefRecord {
                timestamp: -3_000_000_000_000,
                key: Some(vec![]),
                value: Some(vec![7; 300]),
                headers: vec![],
            },
            RefRecord {
                timestamp: i64::MAX,
                key: None,
                value: Some(vec![]),
                headers: vec![("ünï".into(), Some(vec![]))],
            },
        ];
        let mut b = BatchBuilder::with_capacity(1024).base_offset(99);
        for r in &records {
            let headers: Vec<(&str, Option<&[u8]>)> = r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            b.push(&NewRecord {
                timestamp: r.timestamp,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
            });
        }
        assert_eq!(b.len(), 3);
        let size = b.size_in_bytes();
        let out = b.finish();
        assert_eq!(out.len(), size);
        assert_eq!(&out[..], &encode_batch(99, &records)[..]);
    }

    #[test]
    fn empty_builder_yields_a_valid_empty_batch() {
        let b = BatchBuilder::default();
        assert!(b.is_empty());
        assert_eq!(b.size_in_bytes(), 61);
        let out = b.finish();
        let h = validate(&out).unwrap();
        assert_eq!(
            (
                h.record_count,
                h.last_offset_delta,
                h.base_timestamp,
                h.max_timestamp
            ),
            (0, 0, -1, -1)
        );
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (-1, -1, -1)
        );
        assert_eq!(h.partition_leader_epoch, -1);
    }

    #[test]
    fn options_land_in_the_header() {
        let mut b = BatchBuilder::new()
            .producer(7, 2, 40)
            .transactional()
            .log_append_time();
        b.push(&NewRecord {
            timestamp: 5,
            key: None,
            value: None,
            headers: &[],
        });
        let h = validate(&b.finish()).unwrap();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 2, 40)
        );
        assert!(h.is_transactional() && !h.is_control());
        assert_eq!(
            h.timestamp_type(),
            crate::batch::TimestampType::LogAppendTime
        );
    }

    #[test]
    fn finish_into_appends() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let mut b = BatchBuilder::new();
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(b"x"),
            headers: &[],
        });
        let expected = b.clone().finish();
        b.finish_into(&mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(&out[6..], &expected[..]);
        let mut empty = BytesMut::new();
        BatchBuilder::new().finish_into(&mut empty);
        assert_eq!(empty.len(), 61);
    }
}
