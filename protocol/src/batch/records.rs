//! Decoding of one record (and its headers) inside an uncompressed batch, shared by
//! validation and iteration. Allocation-free: results are byte ranges into the batch.

use std::ops::Range;

use super::BatchError;
use super::varint::{VarintError, read_varint, read_varlong};

/// Reasons reported in [`BatchError::BadRecord`].
pub(crate) mod reason {
    pub(crate) const LENGTH_PAST_BATCH: &str = "record length varint runs past the batch end";
    pub(crate) const LENGTH_OVERFLOW: &str = "record length varint overflows 32 bits";
    pub(crate) const NEGATIVE_LENGTH: &str = "negative record length";
    pub(crate) const RECORD_PAST_BATCH: &str = "record length runs past the batch end";
    pub(crate) const FIELD_PAST_RECORD: &str = "record fields run past the record length";
    pub(crate) const VARINT_OVERFLOW: &str = "varint inside the record overflows";
    pub(crate) const NEGATIVE_KEY_LENGTH: &str = "key length below -1";
    pub(crate) const NEGATIVE_VALUE_LENGTH: &str = "value length below -1";
    pub(crate) const NEGATIVE_HEADER_COUNT: &str = "negative header count";
    pub(crate) const NEGATIVE_HEADER_KEY_LENGTH: &str = "negative header key length";
    pub(crate) const NEGATIVE_HEADER_VALUE_LENGTH: &str = "header value length below -1";
    pub(crate) const HEADER_KEY_NOT_UTF8: &str = "header key is not valid UTF-8";
    pub(crate) const LENGTH_DISAGREES: &str = "record length disagrees with its fields";
}

/// One decoded record: fields as stored, byte fields as ranges into the batch buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key: Option<Range<usize>>,
    pub(crate) value: Option<Range<usize>>,
    /// The encoded headers (after the header count) up to the end of the record.
    pub(crate) headers: Range<usize>,
    pub(crate) header_count: i32,
}

/// A bounds-checked cursor over `buf[..end]` that reports errors for record `index`.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    index: i32,
}

impl<'a> Reader<'a> {
    /// A cursor at `pos` in `buf`; `buf` ends where reading must stop.
    pub(crate) fn new(buf: &'a [u8], pos: usize, index: i32) -> Self {
        Reader { buf, pos, index }
    }

    /// Current position in `buf`.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// True once the cursor reached the end of `buf`.
    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[cold]
    fn bad(&self, reason: &'static str) -> BatchError {
        BatchError::BadRecord {
            index: self.index,
            reason,
        }
    }

    #[inline]
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    #[cold]
    fn varint_err(&self, e: VarintError) -> BatchError {
        match e {
            VarintError::Truncated => self.bad(reason::FIELD_PAST_RECORD),
            VarintError::Overflow => self.bad(reason::VARINT_OVERFLOW),
        }
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, BatchError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.bad(reason::FIELD_PAST_RECORD))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, BatchError> {
        let (v, n) = read_varint(self.rest()).map_err(|e| self.varint_err(e))?;
        self.pos += n;
        Ok(v)
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, n) = read_varlong(self.rest()).map_err(|e| self.varint_err(e))?;
        self.pos += n;
        Ok(v)
    }

    /// Skips `len` bytes and returns their range.
    #[inline]
    fn take(&mut self, len: usize) -> Result<Range<usize>, BatchError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.bad(reason::FIELD_PAST_RECORD))?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    /// Reads a varint length followed by that many bytes; -1 means null.
    #[inline]
    fn nullable(&mut self, negative: &'static str) -> Result<Option<Range<usize>>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(self.bad(negative)),
            len => self.take(len as usize).map(Some),
        }
    }

    /// Reads one header: a UTF-8 key (never null) and a nullable value.
    pub(crate) fn header(&mut self) -> Result<(&'a str, Option<Range<usize>>), BatchError> {
        let key_len = self.varint()?;
        if key_len < 0 {
            return Err(self.bad(reason::NEGATIVE_HEADER_KEY_LENGTH));
        }
        let key = self.take(key_len as usize)?;
        let key = self
            .buf
            .get(key)
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| self.bad(reason::HEADER_KEY_NOT_UTF8))?;
        let value = self.nullable(reason::NEGATIVE_HEADER_VALUE_LENGTH)?;
        Ok((key, value))
    }
}

/// Decodes the record that starts at `*pos` in `batch` (which ends where the batch ends),
/// checking its structure, and moves `*pos` past it. On error `*pos` is unspecified.
pub(crate) fn decode_record(
    batch: &[u8],
    pos: &mut usize,
    index: i32,
) -> Result<RawRecord, BatchError> {
    let bad = |reason| BatchError::BadRecord { index, reason };
    let rest = batch.get(*pos..).unwrap_or_default();
    let (len, n) = read_varint(rest).map_err(|e| match e {
        VarintError::Truncated => bad(reason::LENGTH_PAST_BATCH),
        VarintError::Overflow => bad(reason::LENGTH_OVERFLOW),
    })?;
    if len < 0 {
        return Err(bad(reason::NEGATIVE_LENGTH));
    }
    let start = *pos + n;
    let end = start
        .checked_add(len as usize)
        .filter(|&end| end <= batch.len())
        .ok_or_else(|| bad(reason::RECORD_PAST_BATCH))?;
    let body = batch.get(..end).unwrap_or_default();
    let mut r = Reader::new(body, start, index);
    let _attributes = r.u8()?;
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let key = r.nullable(reason::NEGATIVE_KEY_LENGTH)?;
    let value = r.nullable(reason::NEGATIVE_VALUE_LENGTH)?;
    let header_count = r.varint()?;
    if header_count < 0 {
        return Err(bad(reason::NEGATIVE_HEADER_COUNT));
    }
    let headers_start = r.pos();
    // Each header takes at least 2 bytes, so a hostile count ends at the record's end.
    for _ in 0..header_count {
        r.header()?;
    }
    if !r.at_end() {
        return Err(bad(reason::LENGTH_DISAGREES));
    }
    *pos = end;
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers: headers_start..end,
        header_count,
    })
}
