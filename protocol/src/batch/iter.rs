//! [`BatchIter`]: walks concatenated batches in a buffer (a fetch response, a segment
//! read) without copying.

use super::{BatchError, BatchHeader, LOG_OVERHEAD, peek_offset_and_len};

/// Iterator over the whole batches at the start of a buffer of concatenated batches,
/// yielding each batch's parsed header and exact bytes.
///
/// Checks headers only (as [`BatchHeader::parse`]), not CRCs or records: run
/// [`verify_crc`](super::verify_crc) or [`validate`](super::validate) on the yielded bytes
/// as needed. Ends (`None`) at a trailing partial batch — fewer than 12 bytes, or fewer
/// than the batch's `total_len` — which is normal at the end of a fetch response or a torn
/// log tail. After an error it yields nothing more. Either way
/// [`position`](BatchIter::position) is where the unconsumed bytes begin.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// An iterator over the batches at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Bytes consumed: the end of the last batch yielded (0 before the first). Points at the
    /// partial or bad batch once iteration has ended.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet: `&buf[position()..]`.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.remaining();
        if rest.len() < LOG_OVERHEAD {
            return None;
        }
        let result =
            peek_offset_and_len(rest).and_then(|(_, total_len)| match rest.get(..total_len) {
                None => Ok(None),
                Some(batch) => BatchHeader::parse(batch).map(|h| Some((h, batch))),
            });
        match result {
            Ok(Some((header, batch))) => {
                self.pos += batch.len();
                Some(Ok((header, batch)))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, HEADER_LEN, NewRecord};

    fn batch(offset: i64, n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new().base_offset(offset);
        for i in 0..n {
            b.push(&NewRecord {
                timestamp: i as i64,
                key: None,
                value: Some(b"value"),
                headers: &[],
            });
        }
        b.finish().to_vec()
    }

    #[test]
    fn yields_whole_batches_and_stops_at_every_partial_tail() {
        let (a, b) = (batch(0, 1), batch(1, 3));
        let whole = [a.clone(), b.clone()].concat();
        let next = batch(4, 2);
        for cut in 0..next.len() {
            let mut buf = whole.clone();
            buf.extend_from_slice(&next[..cut]);
            let mut it = BatchIter::new(&buf);
            let (h, bytes) = it.next().unwrap().unwrap();
            assert_eq!((h.base_offset, bytes), (0, &a[..]));
            let (h, bytes) = it.next().unwrap().unwrap();
            assert_eq!((h.base_offset, bytes), (1, &b[..]));
            assert!(it.next().is_none(), "cut {cut}");
            assert_eq!(it.position(), whole.len());
            assert_eq!(it.remaining(), &next[..cut]);
        }
    }

    #[test]
    fn reports_a_bad_header_once_then_ends() {
        let mut buf = batch(0, 1);
        let good_len = buf.len();
        let mut bad = batch(1, 1);
        bad[16] = 0;
        buf.extend_from_slice(&bad);
        let mut it = BatchIter::new(&buf);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(BatchError::BadMagic(0))));
        assert_eq!(it.next(), None);
        assert_eq!(it.position(), good_len);
    }

    #[test]
    fn short_batch_length_is_an_error_not_a_tail() {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        let mut it = BatchIter::new(&buf);
        assert_eq!(it.next(), Some(Err(BatchError::BadBatchLength(-5))));
        assert_eq!(it.position(), 0);
    }

    #[test]
    fn empty_buffer_yields_nothing() {
        let mut it = BatchIter::new(&[]);
        assert_eq!(it.next(), None);
        assert_eq!(it.position(), 0);
    }
}
