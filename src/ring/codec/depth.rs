//! A nesting limit for decoding (feature `serde`): a [`Deserializer`] wrapper that counts how
//! deep the value being decoded nests and fails past [`MAX_DEPTH`].
//!
//! postcard has no recursion limit: a recursive type (`enum Tree { Leaf, Node(Box<Tree>) }`)
//! decodes one level per byte, so a hostile message of a few hundred kilobytes would overflow the
//! receiver's stack (an abort, not an error). Each sequence, map, enum, `Some` and newtype entered
//! takes one level here; the primitives take none. The wrapper forwards everything else to the
//! inner deserializer unchanged, so a value within the limit decodes exactly as without it.

use core::fmt;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// The deepest nesting `recv_value` accepts (serde_json's default limit too).
pub(crate) const MAX_DEPTH: u32 = 128;

/// `inner`, allowed `left` more levels of nesting.
pub(super) struct Depth<D> {
    inner: D,
    left: u32,
}

impl<D> Depth<D> {
    /// `inner` at the top level: [`MAX_DEPTH`] levels allowed.
    pub(super) fn new(inner: D) -> Self {
        Depth {
            inner,
            left: MAX_DEPTH,
        }
    }
}

std::thread_local! {
    /// Set when a decode on this thread ran out of levels: postcard keeps no text of a custom
    /// error, so [`super::decode`] asks here why it failed.
    static TRIPPED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Clears the "ran out of levels" mark of this thread (before a decode).
pub(super) fn reset() {
    TRIPPED.with(|t| t.set(false));
}

/// Whether the last decode on this thread ran out of levels.
pub(super) fn tripped() -> bool {
    TRIPPED.with(|t| t.get())
}

/// One level deeper than `left`, or the error once no level is left.
fn deeper<E: de::Error>(left: u32) -> Result<u32, E> {
    left.checked_sub(1).ok_or_else(|| {
        TRIPPED.with(|t| t.set(true));
        E::custom(format_args!(
            "the value nests deeper than {MAX_DEPTH} levels"
        ))
    })
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* Guard { inner: visitor, left: self.left })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Depth<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_seq(); deserialize_map(); deserialize_identifier();
        deserialize_ignored_any();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested accesses take one level.
struct Guard<V> {
    inner: V,
    left: u32,
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Guard<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char); visit_str(&str);
        visit_borrowed_str(&'de str); visit_string(String); visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let left = deeper(self.left)?;
        self.inner.visit_some(Depth { inner: d, left })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let left = deeper(self.left)?;
        self.inner.visit_newtype_struct(Depth { inner: d, left })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let left = deeper(self.left)?;
        self.inner.visit_seq(Guard { inner: seq, left })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let left = deeper(self.left)?;
        self.inner.visit_map(Guard { inner: map, left })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let left = deeper(self.left)?;
        self.inner.visit_enum(Guard { inner: data, left })
    }
}

/// A seed whose value is decoded with `left` levels.
struct Seed<S> {
    inner: S,
    left: u32,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.deserialize(Depth {
            inner: d,
            left: self.left,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Guard<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let left = self.left;
        self.inner.next_element_seed(Seed { inner: seed, left })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Guard<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let left = self.left;
        self.inner.next_key_seed(Seed { inner: seed, left })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let left = self.left;
        self.inner.next_value_seed(Seed { inner: seed, left })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Guard<A> {
    type Error = A::Error;
    type Variant = Guard<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let left = self.left;
        let (v, variant) = self.inner.variant_seed(Seed { inner: seed, left })?;
        Ok((
            v,
            Guard {
                inner: variant,
                left,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Guard<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let left = self.left;
        self.inner.newtype_variant_seed(Seed { inner: seed, left })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let left = self.left;
        self.inner.tuple_variant(
            len,
            Guard {
                inner: visitor,
                left,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let left = self.left;
        self.inner.struct_variant(
            fields,
            Guard {
                inner: visitor,
                left,
            },
        )
    }
}
