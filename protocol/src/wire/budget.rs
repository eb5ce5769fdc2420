//! Decoding a postcard body under a memory budget and an element cap.
//!
//! postcard writes a list as its count and its elements, so a list of
//! minimal elements costs one byte of input an element while each decoded
//! element takes its full in-memory size (a struct of strings: tens of
//! bytes). A 60 MiB body of such lists decodes to gigabytes. [`Meter`]
//! bounds that: a decode runs through a `serde` deserializer that wraps
//! postcard's and charges, before each value is built,
//! - every list or map element: its in-memory size against the memory
//!   budget, and one against the element cap (elements of one byte, the
//!   bytes of a `Vec<u8>`, are charged as memory only: they cost what they
//!   take of the input);
//! - every string or byte string: its length against the memory budget.
//!
//! Struct and tuple fields are not elements: they are part of the value
//! that holds them, already charged with it. A decode past the budget or
//! the cap stops with [`WireError::TooLarge`] at the first value over it,
//! so what it built is at most the budget (and the capacity a list
//! reserves ahead from its count, which `serde` bounds at 1 MiB a list).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use super::WireError;

/// The budget of one decode: memory bytes and list elements left.
#[derive(Debug)]
pub struct Meter {
    memory_left: Cell<usize>,
    elements_left: Cell<usize>,
    memory: usize,
    elements: usize,
    /// What ran out, once something did.
    over: Cell<Option<Over>>,
}

/// What a decode ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The memory budget.
    Memory,
    /// The element cap.
    Elements,
}

impl Meter {
    /// A meter allowing `memory` bytes of decoded values and `elements`
    /// list elements in all.
    pub fn new(memory: usize, elements: usize) -> Meter {
        Meter {
            memory_left: Cell::new(memory),
            elements_left: Cell::new(elements),
            memory,
            elements,
            over: Cell::new(None),
        }
    }

    /// The memory budget a body of `len` bytes decodes under: 16 times its
    /// size and 1 MiB more. A legitimate body stays under it: the densest
    /// list a client has reason to send, offsets committed at 0 under
    /// one-letter topic names, takes 13 bytes a byte of input, and any body
    /// of up to 1 MiB of values fits whatever its shape.
    pub fn memory_for(len: usize) -> usize {
        len.saturating_mul(16).saturating_add(1 << 20)
    }

    /// What ran out, if anything did.
    pub fn over(&self) -> Option<Over> {
        self.over.get()
    }

    /// The error for a decode this meter stopped.
    pub fn error(&self) -> Option<WireError> {
        self.over.get().map(|over| match over {
            Over::Memory => WireError::TooLarge(format!(
                "the body decodes to more than {} bytes of values",
                self.memory
            )),
            Over::Elements => WireError::TooLarge(format!(
                "the body's lists hold more than {} elements in all",
                self.elements
            )),
        })
    }

    fn charge_memory<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.memory_left.get().checked_sub(bytes) {
            Some(left) => {
                self.memory_left.set(left);
                Ok(())
            }
            None => Err(self.stop(Over::Memory)),
        }
    }

    fn charge_element<E: de::Error>(&self, size: usize) -> Result<(), E> {
        if size != 1 {
            match self.elements_left.get().checked_sub(1) {
                Some(left) => self.elements_left.set(left),
                None => return Err(self.stop(Over::Elements)),
            }
        }
        self.charge_memory(size)
    }

    fn stop<E: de::Error>(&self, over: Over) -> E {
        self.over.set(Some(over));
        E::custom("decode budget exceeded")
    }
}

/// A deserializer that charges what it builds to a [`Meter`].
pub struct Metered<'m, D> {
    inner: D,
    meter: &'m Meter,
}

impl<'m, D> Metered<'m, D> {
    /// Wraps `inner`.
    pub fn new(inner: D, meter: &'m Meter) -> Self {
        Metered { inner, meter }
    }
}

/// A visitor passed down: `elements` when the sequence it may visit is a
/// list (its elements charged), not a struct's or tuple's fields.
struct MeteredVisitor<'m, V> {
    inner: V,
    meter: &'m Meter,
    elements: bool,
}

/// A seed for one value: `element` when it is a list element or map entry
/// part, charged before it is built.
struct MeteredSeed<'m, S> {
    inner: S,
    meter: &'m Meter,
    element: bool,
}

struct MeteredSeq<'m, A> {
    inner: A,
    meter: &'m Meter,
    elements: bool,
}

struct MeteredMap<'m, A> {
    inner: A,
    meter: &'m Meter,
}

struct MeteredEnum<'m, A> {
    inner: A,
    meter: &'m Meter,
}

struct MeteredVariant<'m, A> {
    inner: A,
    meter: &'m Meter,
}

impl<'m, V> MeteredVisitor<'m, V> {
    fn new(inner: V, meter: &'m Meter, elements: bool) -> Self {
        MeteredVisitor {
            inner,
            meter,
            elements,
        }
    }
}

/// Forwards `deserialize_*` methods that take only a visitor.
macro_rules! forward_plain {
    ($($method:ident => $elements:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.inner.$method(MeteredVisitor::new(visitor, self.meter, $elements))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Metered<'_, D> {
    type Error = D::Error;

    forward_plain! {
        deserialize_any => true,
        deserialize_bool => false,
        deserialize_i8 => false,
        deserialize_i16 => false,
        deserialize_i32 => false,
        deserialize_i64 => false,
        deserialize_i128 => false,
        deserialize_u8 => false,
        deserialize_u16 => false,
        deserialize_u32 => false,
        deserialize_u64 => false,
        deserialize_u128 => false,
        deserialize_f32 => false,
        deserialize_f64 => false,
        deserialize_char => false,
        deserialize_str => false,
        deserialize_string => false,
        deserialize_bytes => false,
        deserialize_byte_buf => false,
        deserialize_option => false,
        deserialize_unit => false,
        deserialize_seq => true,
        deserialize_map => true,
        deserialize_identifier => false,
        deserialize_ignored_any => false,
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_unit_struct(name, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_newtype_struct(name, v)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_tuple(len, v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_tuple_struct(name, len, v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_struct(name, fields, v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.deserialize_enum(name, variants, v)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods of plain values.
macro_rules! forward_visit {
    ($($method:ident($t:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

/// Forwards `visit_*` methods of strings and byte strings, charging their
/// length (what the visitor's own copy takes) first.
macro_rules! forward_charged {
    ($($method:ident($t:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            self.meter.charge_memory(v.len())?;
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for MeteredVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char),
    }

    forward_charged! {
        visit_str(&str), visit_borrowed_str(&'de str), visit_string(String),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Metered::new(d, self.meter))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Metered::new(d, self.meter))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(MeteredSeq {
            inner: seq,
            meter: self.meter,
            elements: self.elements,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(MeteredMap {
            inner: map,
            meter: self.meter,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(MeteredEnum {
            inner: data,
            meter: self.meter,
        })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MeteredSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.element {
            self.meter.charge_element(std::mem::size_of::<S::Value>())?;
        }
        self.inner.deserialize(Metered::new(d, self.meter))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for MeteredSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.inner.next_element_seed(MeteredSeed {
            inner: seed,
            meter: self.meter,
            element: self.elements,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for MeteredMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.inner.next_key_seed(MeteredSeed {
            inner: seed,
            meter: self.meter,
            element: true,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        // The entry was counted with its key.
        self.meter.charge_memory(std::mem::size_of::<V::Value>())?;
        self.inner.next_value_seed(MeteredSeed {
            inner: seed,
            meter: self.meter,
            element: false,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'm, A: EnumAccess<'de>> EnumAccess<'de> for MeteredEnum<'m, A> {
    type Error = A::Error;
    type Variant = MeteredVariant<'m, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let meter = self.meter;
        let (value, variant) = self.inner.variant_seed(MeteredSeed {
            inner: seed,
            meter,
            element: false,
        })?;
        Ok((
            value,
            MeteredVariant {
                inner: variant,
                meter,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for MeteredVariant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.inner.newtype_variant_seed(MeteredSeed {
            inner: seed,
            meter: self.meter,
            element: false,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.tuple_variant(len, v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = MeteredVisitor::new(visitor, self.meter, false);
        self.inner.struct_variant(fields, v)
    }
}

/// Decodes a body that must span all of `buf`, under `meter`.
pub fn decode_metered<'a, T: de::Deserialize<'a>>(
    buf: &'a [u8],
    meter: &Meter,
) -> Result<T, WireError> {
    let mut de = postcard::Deserializer::from_bytes(buf);
    let value = match T::deserialize(Metered::new(&mut de, meter)) {
        Ok(v) => v,
        Err(e) => return Err(meter.error().unwrap_or(WireError::Body(e.to_string()))),
    };
    let rest = de.finalize().map_err(|e| WireError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::wire::offset_commit::{CommitPartition, OffsetCommitRequest};
    use crate::wire::{decode_body, decode_body_capped, encode_body};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        New(u64),
        Tuple(i32, String),
        Struct { a: Option<Vec<u16>>, b: Vec<u8> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Mixed {
        name: String,
        flag: bool,
        small: i8,
        wide: u128,
        real: f64,
        letter: char,
        maybe: Option<String>,
        pair: (u32, String),
        shapes: Vec<Shape>,
        nested: Vec<Vec<String>>,
        map: BTreeMap<String, u32>,
        bytes: Vec<u8>,
        unit: (),
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_body(value, &mut out);
        out
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Unit),
            any::<u64>().prop_map(Shape::New),
            (any::<i32>(), ".{0,8}").prop_map(|(n, s)| Shape::Tuple(n, s)),
            (
                proptest::option::of(proptest::collection::vec(any::<u16>(), 0..8)),
                proptest::collection::vec(any::<u8>(), 0..16)
            )
                .prop_map(|(a, b)| Shape::Struct { a, b }),
        ]
    }

    fn mixed() -> impl Strategy<Value = Mixed> {
        (
            (".{0,12}", any::<bool>(), any::<i8>(), any::<u128>()),
            (
                any::<f64>().prop_filter("comparable", |f| !f.is_nan()),
                any::<char>(),
            ),
            (proptest::option::of(".{0,8}"), (any::<u32>(), ".{0,4}")),
            proptest::collection::vec(shape(), 0..6),
            proptest::collection::vec(proptest::collection::vec(".{0,4}", 0..4), 0..4),
            proptest::collection::btree_map(".{0,6}", any::<u32>(), 0..5),
            proptest::collection::vec(any::<u8>(), 0..32),
        )
            .prop_map(
                |(
                    (name, flag, small, wide),
                    (real, letter),
                    (maybe, pair),
                    shapes,
                    nested,
                    map,
                    bytes,
                )| {
                    Mixed {
                        name,
                        flag,
                        small,
                        wide,
                        real,
                        letter,
                        maybe,
                        pair,
                        shapes,
                        nested,
                        map,
                        bytes,
                        unit: (),
                    }
                },
            )
    }

    /// The list elements (bytes of byte lists aside) and map entries of a
    /// value: what the element cap counts.
    fn elements(m: &Mixed) -> usize {
        let in_shapes: usize = m
            .shapes
            .iter()
            .map(|s| match s {
                Shape::Struct { a: Some(a), .. } => a.len(),
                _ => 0,
            })
            .sum();
        m.shapes.len()
            + in_shapes
            + m.nested.len()
            + m.nested.iter().map(Vec::len).sum::<usize>()
            + m.map.len()
    }

    proptest! {
        /// The meter changes nothing about what decodes: every value comes
        /// back as plain postcard decodes it, and at exactly its element
        /// count it still decodes, one fewer allowed refuses it.
        #[test]
        fn metered_decoding_is_plain_decoding(m in mixed()) {
            let bytes = encode(&m);
            let plain: Mixed = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&plain, &m);
            prop_assert_eq!(decode_body::<Mixed>(&bytes).unwrap(), m.clone());
            let n = elements(&m);
            prop_assert_eq!(decode_body_capped::<Mixed>(&bytes, n).unwrap(), m);
            if n > 0 {
                let refused = decode_body_capped::<Mixed>(&bytes, n - 1);
                prop_assert!(matches!(refused, Err(WireError::TooLarge(_))), "{:?}", refused);
            }
        }

        /// Arbitrary bytes give a value or an error, never a panic, under
        /// any cap.
        #[test]
        fn metered_decoding_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            cap in 0usize..8,
        ) {
            let _ = decode_body_capped::<Mixed>(&bytes, cap);
            let _ = decode_body::<Mixed>(&bytes);
        }
    }

    /// Bytes of a byte list cost what they take of the input: they are not
    /// elements.
    #[test]
    fn byte_lists_are_memory_not_elements() {
        let bytes = encode(&vec![7u8; 100_000]);
        assert_eq!(
            decode_body_capped::<Vec<u8>>(&bytes, 0).unwrap(),
            vec![7u8; 100_000]
        );
        let words = encode(&vec![7u16; 3]);
        assert!(matches!(
            decode_body_capped::<Vec<u16>>(&words, 2),
            Err(WireError::TooLarge(m)) if m.contains("3") || m.contains("2 elements")
        ));
    }

    /// A list of one-byte-per-entry pairs of strings takes 48 bytes of
    /// memory a byte of input: refused once past 16 × its size + 1 MiB,
    /// whatever the element cap.
    #[test]
    fn a_list_of_minimal_entries_runs_out_of_memory_budget() {
        let n = 1_000_000usize;
        // The list's count (a varint), then two empty strings an entry.
        let mut bytes = encode(&(n as u64));
        bytes.resize(bytes.len() + 2 * n, 0);
        let meter = Meter::new(Meter::memory_for(bytes.len()), usize::MAX);
        let r = decode_metered::<Vec<(String, String)>>(&bytes, &meter);
        assert!(
            matches!(r, Err(WireError::TooLarge(ref m)) if m.contains("bytes of values")),
            "{r:?}"
        );
        assert_eq!(meter.over(), Some(Over::Memory));
        // 20,000 of them (960,000 bytes of values) fit in the 1 MiB.
        let fewer = encode(&vec![(String::new(), String::new()); 20_000]);
        assert_eq!(
            decode_body::<Vec<(String, String)>>(&fewer).unwrap().len(),
            20_000
        );
    }

    /// The densest list a client has reason to send, offsets committed at
    /// 0 under one-letter topic names, decodes within the memory budget,
    /// however long.
    #[test]
    fn the_densest_legitimate_commit_fits_the_budget() {
        for n in [10_000u32, 300_000] {
            let req = OffsetCommitRequest {
                group: "g".into(),
                partitions: (0..n)
                    .map(|p| CommitPartition {
                        topic: "a".into(),
                        partition: p,
                        offset: 0,
                        metadata: String::new(),
                    })
                    .collect(),
            };
            let bytes = encode(&req);
            assert_eq!(decode_body::<OffsetCommitRequest>(&bytes).unwrap(), req);
        }
    }

    /// A list claiming more elements than the input holds fails at the end
    /// of the input, having built only what the input held.
    #[test]
    fn a_count_past_the_input_is_an_error_not_an_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2];
        assert!(matches!(
            decode_body::<Vec<String>>(&bytes),
            Err(WireError::Body(_))
        ));
    }
}
