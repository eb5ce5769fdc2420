//! [`Record`] and [`RecordHeaders`]: one record of a batch, borrowing the batch's buffer.

use bytes::Bytes;

use super::BatchError;
use super::records::Reader;

/// One record of a [`RecordBatch`](super::RecordBatch), with absolute offset and
/// timestamp. `key`, `value` and the headers are slices of the batch's buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: the batch's `base_offset` plus the record's offset delta.
    pub offset: i64,
    /// Absolute timestamp: `base_timestamp` plus the record's delta, or the batch's
    /// `max_timestamp` when the batch uses log append time.
    pub timestamp: i64,
    /// The key; `None` if stored as null.
    pub key: Option<Bytes>,
    /// The value; `None` if stored as null.
    pub value: Option<Bytes>,
    /// The encoded headers (after the header count), to the end of the record.
    pub(super) headers: Bytes,
    pub(super) header_count: i32,
    /// Index of the record in its batch, for error reports.
    pub(super) index: i32,
}

impl Record {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count.max(0) as usize
    }

    /// Iterates the headers in stored order, as `(key, value)`. The record came from a
    /// validated batch, so items are never `Err` in practice; the `Result` keeps decoding
    /// panic-free whatever the bytes.
    pub fn headers(&self) -> RecordHeaders<'_> {
        RecordHeaders {
            record: self,
            reader: Reader::new(&self.headers, 0, self.index),
            remaining: self.header_count,
        }
    }
}

/// Iterator over the headers of one [`Record`]; yields `(key, value)` where the key
/// borrows the record and the value is a slice of the batch buffer. Allocates nothing;
/// stops after the first error.
#[derive(Debug)]
pub struct RecordHeaders<'a> {
    record: &'a Record,
    reader: Reader<'a>,
    remaining: i32,
}

impl<'a> Iterator for RecordHeaders<'a> {
    type Item = Result<(&'a str, Option<Bytes>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        match self.reader.header() {
            Ok((key, value)) => {
                self.remaining -= 1;
                Some(Ok((key, value.map(|r| self.record.headers.slice(r)))))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining.max(0) as usize))
    }
}
