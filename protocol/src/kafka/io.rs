//! One description per message, walked two ways: the [`Io`] trait is
//! implemented by a bounds-checked [`Reader`] (decode) and by a [`Writer`]
//! (encode). A message's `io` method lists its fields in wire order, each
//! gated on the versions that have it, so the layout is written once.
//!
//! Reading never sizes an allocation from the wire before checking it: an
//! array count or a string length is compared with the bytes that remain
//! first, and every decode holds an allocation budget (8 × the input plus
//! 1 MiB) that the elements and strings it creates are charged against. The
//! 1 MiB lets short lists of dense entries through (4,000 group names of 5
//! bytes, each an 80-byte value, in an OffsetFetch of 32 KB); past it only
//! the 8 × holds.
//! A reader may also be given a cap on the array elements of the whole
//! message ([`Reader::with_element_cap`]), which a server sets from its
//! per-request limits so that a request naming millions of entries is
//! refused before it is decoded into millions of values.

use std::ops::Range;

use super::KafkaError;

/// A record set inside a message: where its bytes are in the buffer that
/// was decoded (or, when encoding, in the caller's source buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Records {
    /// First byte.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Records {
    /// The byte range.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start.saturating_add(self.len)
    }
}

/// A walker over a message's fields: reads them into the values (decode)
/// or writes the values out (encode).
pub trait Io {
    /// Whether the message version is flexible (compact lengths, tagged fields).
    fn flexible(&self) -> bool;
    /// A signed byte.
    fn i8(&mut self, v: &mut i8) -> Result<(), KafkaError>;
    /// A big-endian i16.
    fn i16(&mut self, v: &mut i16) -> Result<(), KafkaError>;
    /// A big-endian i32.
    fn i32(&mut self, v: &mut i32) -> Result<(), KafkaError>;
    /// A big-endian i64.
    fn i64(&mut self, v: &mut i64) -> Result<(), KafkaError>;
    /// A boolean byte (non-zero is true).
    fn bool(&mut self, v: &mut bool) -> Result<(), KafkaError>;
    /// A 16-byte UUID.
    fn uuid(&mut self, v: &mut [u8; 16]) -> Result<(), KafkaError>;
    /// A string (compact when flexible).
    fn string(&mut self, v: &mut String) -> Result<(), KafkaError>;
    /// A nullable string (compact when flexible).
    fn nullable_string(&mut self, v: &mut Option<String>) -> Result<(), KafkaError>;
    /// A byte string (compact when flexible).
    fn bytes(&mut self, v: &mut Vec<u8>) -> Result<(), KafkaError>;
    /// A nullable record set (compact when flexible), by position.
    fn records(&mut self, v: &mut Option<Records>) -> Result<(), KafkaError>;
    /// An array whose elements `f` walks.
    fn array<T: Default>(
        &mut self,
        v: &mut Vec<T>,
        f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError>;
    /// A nullable array.
    fn nullable_array<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError>;
    /// The tagged-field section of a flexible structure (nothing otherwise):
    /// unknown tags are skipped when reading; none are written.
    fn tags(&mut self) -> Result<(), KafkaError>;
}

/// Decodes fields from a byte slice, every read bounds-checked.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
    budget: usize,
    elements_left: usize,
    element_cap: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
            budget: buf.len().saturating_mul(8).saturating_add(1 << 20),
            elements_left: usize::MAX,
            element_cap: usize::MAX,
        }
    }

    /// This reader, refusing with [`KafkaError::TooManyElements`] a message
    /// whose arrays hold more than `cap` elements in all (nested arrays'
    /// elements count too), before it decodes them.
    pub fn with_element_cap(mut self, cap: usize) -> Self {
        self.elements_left = cap;
        self.element_cap = cap;
        self
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], KafkaError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(KafkaError::UnexpectedEof {
                offset: self.pos,
                need: n,
                have: self.remaining(),
            }),
        }
    }

    fn array_of<const N: usize>(&mut self) -> Result<[u8; N], KafkaError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn charge(&mut self, bytes: usize) -> Result<(), KafkaError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(KafkaError::TooLarge { offset: self.pos }),
        }
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    pub fn uvarint(&mut self) -> Result<u32, KafkaError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let [b] = self.array_of::<1>()?;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 4 && b > 0x0f {
                    break;
                }
                return Ok(v);
            }
        }
        Err(KafkaError::Invalid {
            offset: self.pos,
            what: "varint longer than 32 bits",
        })
    }

    /// A length: compact (`uvarint - 1`) when flexible, else of `width`
    /// bytes. `None` is null (-1).
    fn length(&mut self, short: bool) -> Result<Option<usize>, KafkaError> {
        let at = self.pos;
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if short {
            i64::from(i16::from_be_bytes(self.array_of()?))
        } else {
            i64::from(i32::from_be_bytes(self.array_of()?))
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(KafkaError::Invalid {
                offset: at,
                what: "negative length",
            }),
            n => {
                let n = n as usize;
                // Every element or byte takes at least one byte of input.
                if n > self.remaining() {
                    return Err(KafkaError::UnexpectedEof {
                        offset: self.pos,
                        need: n,
                        have: self.remaining(),
                    });
                }
                Ok(Some(n))
            }
        }
    }

    /// A string of `n` bytes. Longer than `i16::MAX` is refused in every
    /// version, compact ones included, as Kafka's own decoders do: such a
    /// string could not be written back in a non-flexible version (an
    /// `i16` length), so storing it (a group's protocol type, a member's
    /// instance id) would break the answers other clients read.
    fn str_of(&mut self, n: usize) -> Result<String, KafkaError> {
        let at = self.pos;
        if n > i16::MAX as usize {
            return Err(KafkaError::Invalid {
                offset: at,
                what: "string longer than 32767 bytes",
            });
        }
        self.charge(n)?;
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| KafkaError::Invalid {
                offset: at,
                what: "string is not UTF-8",
            })
    }

    /// A nullable (non-compact) string whose bytes that are not UTF-8 are
    /// replaced with U+FFFD, as Kafka reads a request header's client id: a
    /// client id is only logged and reported, so Kafka takes any bytes.
    pub fn nullable_string_lossy(&mut self) -> Result<Option<String>, KafkaError> {
        let Some(n) = self.length(true)? else {
            return Ok(None);
        };
        self.charge(n.saturating_mul(3))?;
        let s = self.take(n)?;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }

    fn elements<T: Default>(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<Vec<T>, KafkaError> {
        self.elements_left = match self.elements_left.checked_sub(n) {
            Some(left) => left,
            None => {
                return Err(KafkaError::TooManyElements {
                    offset: self.pos,
                    cap: self.element_cap,
                });
            }
        };
        self.charge(n.saturating_mul(std::mem::size_of::<T>().max(1)))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut t = T::default();
            f(self, &mut t)?;
            out.push(t);
        }
        Ok(out)
    }
}

impl Io for Reader<'_> {
    fn flexible(&self) -> bool {
        self.flexible
    }
    fn i8(&mut self, v: &mut i8) -> Result<(), KafkaError> {
        *v = i8::from_be_bytes(self.array_of()?);
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> Result<(), KafkaError> {
        *v = i16::from_be_bytes(self.array_of()?);
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> Result<(), KafkaError> {
        *v = i32::from_be_bytes(self.array_of()?);
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> Result<(), KafkaError> {
        *v = i64::from_be_bytes(self.array_of()?);
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> Result<(), KafkaError> {
        let [b] = self.array_of::<1>()?;
        *v = b != 0;
        Ok(())
    }
    fn uuid(&mut self, v: &mut [u8; 16]) -> Result<(), KafkaError> {
        *v = self.array_of()?;
        Ok(())
    }
    fn string(&mut self, v: &mut String) -> Result<(), KafkaError> {
        let at = self.pos;
        match self.length(true)? {
            Some(n) => {
                *v = self.str_of(n)?;
                Ok(())
            }
            None => Err(KafkaError::Invalid {
                offset: at,
                what: "null string where one is required",
            }),
        }
    }
    fn nullable_string(&mut self, v: &mut Option<String>) -> Result<(), KafkaError> {
        *v = match self.length(true)? {
            Some(n) => Some(self.str_of(n)?),
            None => None,
        };
        Ok(())
    }
    fn bytes(&mut self, v: &mut Vec<u8>) -> Result<(), KafkaError> {
        let n = self.length(false)?.unwrap_or(0);
        self.charge(n)?;
        *v = self.take(n)?.to_vec();
        Ok(())
    }
    fn records(&mut self, v: &mut Option<Records>) -> Result<(), KafkaError> {
        *v = match self.length(false)? {
            Some(n) => {
                let start = self.pos;
                self.take(n)?;
                Some(Records { start, len: n })
            }
            None => None,
        };
        Ok(())
    }
    fn array<T: Default>(
        &mut self,
        v: &mut Vec<T>,
        f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        let n = self.length(false)?.unwrap_or(0);
        *v = self.elements(n, f)?;
        Ok(())
    }
    fn nullable_array<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        *v = match self.length(false)? {
            Some(n) => Some(self.elements(n, f)?),
            None => None,
        };
        Ok(())
    }
    fn tags(&mut self) -> Result<(), KafkaError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

/// Where a [`Writer`] takes record sets from.
#[derive(Debug)]
pub enum RecordsOut<'a> {
    /// Copies each record set's bytes from this buffer.
    Copy(&'a [u8]),
    /// Writes only each record set's length prefix and notes, per record
    /// set, the output position where its bytes belong and its `start`
    /// (an index of the caller's): the bytes are sent separately (fetch
    /// responses, by `sendfile`).
    Cut(Vec<(usize, usize)>),
}

/// Encodes fields into a `Vec<u8>`.
#[derive(Debug)]
pub struct Writer<'a> {
    /// The output.
    pub out: &'a mut Vec<u8>,
    flexible: bool,
    /// Where record sets come from.
    pub records: RecordsOut<'a>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>, flexible: bool, records: RecordsOut<'a>) -> Self {
        Writer {
            out,
            flexible,
            records,
        }
    }

    /// Writes an unsigned varint.
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn length(&mut self, n: Option<usize>, short: bool) -> Result<(), KafkaError> {
        let too_long = KafkaError::Invalid {
            offset: self.out.len(),
            what: "length does not fit its field",
        };
        if self.flexible {
            let v = match n {
                None => 0,
                Some(n) => u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or(too_long)?,
            };
            self.uvarint(v);
        } else if short {
            let v = match n {
                None => -1,
                Some(n) => i16::try_from(n).map_err(|_| too_long)?,
            };
            self.out.extend_from_slice(&v.to_be_bytes());
        } else {
            let v = match n {
                None => -1,
                Some(n) => i32::try_from(n).map_err(|_| too_long)?,
            };
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        Ok(())
    }
}

impl Io for Writer<'_> {
    fn flexible(&self) -> bool {
        self.flexible
    }
    fn i8(&mut self, v: &mut i8) -> Result<(), KafkaError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> Result<(), KafkaError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> Result<(), KafkaError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> Result<(), KafkaError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> Result<(), KafkaError> {
        self.out.push(u8::from(*v));
        Ok(())
    }
    fn uuid(&mut self, v: &mut [u8; 16]) -> Result<(), KafkaError> {
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn string(&mut self, v: &mut String) -> Result<(), KafkaError> {
        self.length(Some(v.len()), true)?;
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    /// Text longer than a string may be (`i16::MAX` bytes) is cut at the
    /// last character boundary within it. Decoded strings are never that
    /// long ([`Reader`] refuses them), so only text the broker composed
    /// (an error message quoting a client's value) is ever cut, rather
    /// than fail the whole answer.
    fn nullable_string(&mut self, v: &mut Option<String>) -> Result<(), KafkaError> {
        match v {
            Some(s) => {
                let mut end = s.len().min(i16::MAX as usize);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                let cut = &s[..end];
                self.length(Some(cut.len()), true)?;
                self.out.extend_from_slice(cut.as_bytes());
                Ok(())
            }
            None => self.length(None, true),
        }
    }
    fn bytes(&mut self, v: &mut Vec<u8>) -> Result<(), KafkaError> {
        self.length(Some(v.len()), false)?;
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn records(&mut self, v: &mut Option<Records>) -> Result<(), KafkaError> {
        let Some(r) = *v else {
            return self.length(None, false);
        };
        self.length(Some(r.len), false)?;
        match &mut self.records {
            // An empty record set copies nothing, wherever it points.
            RecordsOut::Copy(_) if r.len == 0 => {}
            RecordsOut::Copy(src) => {
                let bytes = src.get(r.range()).ok_or(KafkaError::Invalid {
                    offset: self.out.len(),
                    what: "record set outside its source",
                })?;
                self.out.extend_from_slice(bytes);
            }
            RecordsOut::Cut(cuts) => cuts.push((self.out.len(), r.start)),
        }
        Ok(())
    }
    fn array<T: Default>(
        &mut self,
        v: &mut Vec<T>,
        mut f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        self.length(Some(v.len()), false)?;
        for t in v.iter_mut() {
            f(self, t)?;
        }
        Ok(())
    }
    fn nullable_array<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        f: impl FnMut(&mut Self, &mut T) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        match v {
            Some(v) => self.array(v, f),
            None => self.length(None, false),
        }
    }
    fn tags(&mut self) -> Result<(), KafkaError> {
        if self.flexible {
            self.out.push(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            Writer::new(&mut out, true, RecordsOut::Copy(&[])).uvarint(v);
            assert_eq!(Reader::new(&out, true).uvarint(), Ok(v));
        }
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f], true)
                .uvarint()
                .is_err()
        );
        assert!(Reader::new(&[0x80; 6], true).uvarint().is_err());
        assert!(Reader::new(&[0x80], true).uvarint().is_err());
    }

    #[test]
    fn counts_larger_than_the_input_are_refused_before_allocating() {
        // An array claiming 2^31 - 1 elements in a 4-byte input.
        let mut v: Vec<i32> = Vec::new();
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff], false);
        let e = r.array(&mut v, |s, x| s.i32(x));
        assert!(matches!(e, Err(KafkaError::UnexpectedEof { .. })), "{e:?}");
        // A compact string claiming 2^32 - 2 bytes.
        let mut s = String::new();
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f], true);
        assert!(r.string(&mut s).is_err());
    }

    #[test]
    fn strings_longer_than_kafka_allows_are_refused_in_every_version() {
        for flexible in [false, true] {
            for n in [32_767usize, 32_768, 40_000] {
                let mut out = Vec::new();
                let mut w = Writer::new(&mut out, true, RecordsOut::Copy(&[]));
                w.uvarint(u32::try_from(n + 1).unwrap());
                if !flexible {
                    out.clear();
                    // An i16 length cannot say more than 32767: a longer
                    // one reads as negative, refused on its own.
                    let Ok(len) = i16::try_from(n) else { continue };
                    out.extend_from_slice(&len.to_be_bytes());
                }
                out.resize(out.len() + n, b'x');
                let (mut a, mut b) = (String::new(), None);
                let got = Reader::new(&out, flexible).string(&mut a);
                let got_nullable = Reader::new(&out, flexible).nullable_string(&mut b);
                if n <= 32_767 {
                    assert_eq!(got, Ok(()));
                    assert_eq!(a.len(), n);
                    assert_eq!(got_nullable, Ok(()));
                } else {
                    assert!(matches!(got, Err(KafkaError::Invalid { .. })), "{got:?}");
                    assert!(matches!(got_nullable, Err(KafkaError::Invalid { .. })));
                }
            }
        }
    }

    #[test]
    fn broker_text_longer_than_a_string_is_cut_at_a_character_boundary() {
        // 'é' is two bytes: 16,384 of them end past 32,767 mid-character.
        let long = "é".repeat(16_384);
        for flexible in [false, true] {
            let mut out = Vec::new();
            Writer::new(&mut out, flexible, RecordsOut::Copy(&[]))
                .nullable_string(&mut Some(long.clone()))
                .expect("written");
            let mut back = None;
            Reader::new(&out, flexible)
                .nullable_string(&mut back)
                .expect("read back");
            let back = back.expect("not null");
            assert_eq!(back.len(), 32_766);
            assert!(long.starts_with(&back));
        }
    }

    #[test]
    fn the_element_cap_counts_nested_arrays_and_refuses_before_decoding() {
        // Two arrays of 3 and 2 i8 elements: 5 in all.
        let input = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 2, 4, 5];
        let read = |cap: usize| {
            let mut r = Reader::new(&input, false).with_element_cap(cap);
            let (mut a, mut b): (Vec<i8>, Vec<i8>) = (Vec::new(), Vec::new());
            r.array(&mut a, |s, x| s.i8(x))?;
            r.array(&mut b, |s, x| s.i8(x))?;
            Ok::<_, KafkaError>((a, b, r.position()))
        };
        assert_eq!(read(5), Ok((vec![1, 2, 3], vec![4, 5], input.len())));
        // One short: refused at the second array's count, nothing of it read.
        assert_eq!(
            read(4),
            Err(KafkaError::TooManyElements { offset: 11, cap: 4 })
        );
        assert_eq!(
            read(2),
            Err(KafkaError::TooManyElements { offset: 4, cap: 2 })
        );
    }

    #[test]
    fn element_memory_is_charged_against_the_budget() {
        // 70,000 one-byte elements that each become a 1 KiB value: more
        // than 8 × the input + 1 MiB.
        struct Big([u64; 128]);
        impl Default for Big {
            fn default() -> Self {
                Big([0; 128])
            }
        }
        let mut buf = 70_000i32.to_be_bytes().to_vec();
        buf.resize(4 + 70_000, 0);
        let mut v: Vec<Big> = Vec::new();
        let mut r = Reader::new(&buf, false);
        let e = r.array(&mut v, |s, b| {
            let mut x = 0i8;
            s.i8(&mut x)?;
            b.0[0] = x as u64;
            Ok(())
        });
        assert!(matches!(e, Err(KafkaError::TooLarge { .. })), "{e:?}");
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        // Two tags: tag 0 with 3 bytes, tag 7 with 1 byte; then an i8.
        let buf = [2, 0, 3, 1, 2, 3, 7, 1, 9, 42];
        let mut r = Reader::new(&buf, true);
        r.tags().expect("tags");
        let mut x = 0i8;
        r.i8(&mut x).expect("i8");
        assert_eq!(x, 42);
        // A tag whose size runs past the end.
        assert!(Reader::new(&[1, 0, 9, 1], true).tags().is_err());
    }
}
