//! Encoding serde values for maps and lists (feature `serde`), with a bound on nesting depth
//! when decoding.
//!
//! The format is postcard's, as for the byte queues. Stored bytes are untrusted: a recursive type
//! (`serde_json::Value`, a tree enum) decoded from `n` hostile bytes could nest `n` levels deep
//! and overflow the stack, so decoding goes through [`Limited`], a deserializer wrapper that
//! counts nested containers (sequences, maps, enums, options, newtypes) and fails past
//! [`MAX_DEPTH`].

use crate::{Error, Result};
use core::fmt;
use core::marker::PhantomData;
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Deepest nesting of containers a decoded value may have.
pub const MAX_DEPTH: usize = 128;

/// Marks serde-encoded elements in type tags (`Serde<T>`), so that a serde map or list of `T`
/// is never opened as a plain-data one.
pub struct Serde<T>(PhantomData<T>);

/// Encodes `value` into `buf` (replacing its contents).
///
/// # Errors
/// [`Error::Encode`] if serde refuses the value.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    let v = core::mem::take(buf);
    match postcard::to_extend(value, v) {
        Ok(v) => {
            *buf = v;
            Ok(())
        }
        Err(e) => Err(Error::Encode {
            reason: e.to_string(),
        }),
    }
}

/// Decodes one `T` from all of `bytes`, nesting at most [`MAX_DEPTH`] containers deep.
///
/// # Errors
/// [`Error::Decode`] for bytes that are not one `T`, or nest too deep.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let fail = |e: &dyn fmt::Display| Error::Decode {
        reason: format!(
            "{e} ({} bytes, as {})",
            bytes.len(),
            core::any::type_name::<T>()
        ),
    };
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let v = T::deserialize(Limited {
        de: &mut de,
        depth: MAX_DEPTH,
    })
    .map_err(|e| fail(&e))?;
    match de.finalize() {
        Ok([]) => Ok(v),
        Ok(rest) => Err(fail(&format_args!("{} bytes left over", rest.len()))),
        Err(e) => Err(fail(&e)),
    }
}

/// A deserializer that fails when containers nest more than `depth` levels deeper.
pub(crate) struct Limited<D> {
    de: D,
    depth: usize,
}

/// A visitor that passes the remaining depth to what it visits.
struct Wrap<V> {
    v: V,
    depth: usize,
}

/// A seed, sequence, map or enum access passing the remaining depth on.
struct Nested<A> {
    a: A,
    depth: usize,
}

fn deeper<E: de::Error>(depth: usize) -> core::result::Result<usize, E> {
    depth
        .checked_sub(1)
        .ok_or_else(|| E::custom(format_args!("nested more than {MAX_DEPTH} levels deep")))
}

macro_rules! forward_de {
    ($($name:ident),*) => {$(
        fn $name<V: Visitor<'de>>(self, v: V) -> core::result::Result<V::Value, Self::Error> {
            self.de.$name(Wrap { v, depth: self.depth })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<D> {
    type Error = D::Error;

    forward_de!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_unit_struct(
            name,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_newtype_struct(
            name,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_tuple(
            len,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_tuple_struct(
            name,
            len,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_struct(
            name,
            fields,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> core::result::Result<V::Value, Self::Error> {
        self.de.deserialize_enum(
            name,
            variants,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E: de::Error>(self, x: $t) -> core::result::Result<Self::Value, E> {
            self.v.$name(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.expecting(f)
    }

    forward_visit!(
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64,
        visit_i128: i128, visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64,
        visit_u128: u128, visit_f32: f32, visit_f64: f64, visit_char: char, visit_str: &str,
        visit_borrowed_str: &'de str, visit_string: String, visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>
    );

    fn visit_none<E: de::Error>(self) -> core::result::Result<Self::Value, E> {
        self.v.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> core::result::Result<Self::Value, E> {
        self.v.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> core::result::Result<Self::Value, D::Error> {
        let depth = deeper(self.depth)?;
        self.v.visit_some(Limited { de: d, depth })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> core::result::Result<Self::Value, D::Error> {
        let depth = deeper(self.depth)?;
        self.v.visit_newtype_struct(Limited { de: d, depth })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> core::result::Result<Self::Value, A::Error> {
        let depth = deeper(self.depth)?;
        self.v.visit_seq(Nested { a, depth })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> core::result::Result<Self::Value, A::Error> {
        let depth = deeper(self.depth)?;
        self.v.visit_map(Nested { a, depth })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(
        self,
        a: A,
    ) -> core::result::Result<Self::Value, A::Error> {
        let depth = deeper(self.depth)?;
        self.v.visit_enum(Nested { a, depth })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> core::result::Result<S::Value, D::Error> {
        self.a.deserialize(Limited {
            de: d,
            depth: self.depth,
        })
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Nested<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> core::result::Result<Option<T::Value>, A::Error> {
        self.a.next_element_seed(Nested {
            a: seed,
            depth: self.depth,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.a.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Nested<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> core::result::Result<Option<K::Value>, A::Error> {
        self.a.next_key_seed(Nested {
            a: seed,
            depth: self.depth,
        })
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> core::result::Result<V::Value, A::Error> {
        self.a.next_value_seed(Nested {
            a: seed,
            depth: self.depth,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.a.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Nested<A> {
    type Error = A::Error;
    type Variant = Nested<A::Variant>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> core::result::Result<(V::Value, Self::Variant), A::Error> {
        let depth = self.depth;
        let (v, variant) = self.a.variant_seed(Nested { a: seed, depth })?;
        Ok((v, Nested { a: variant, depth }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Nested<A> {
    type Error = A::Error;
    fn unit_variant(self) -> core::result::Result<(), A::Error> {
        self.a.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> core::result::Result<T::Value, A::Error> {
        self.a.newtype_variant_seed(Nested {
            a: seed,
            depth: self.depth,
        })
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        v: V,
    ) -> core::result::Result<V::Value, A::Error> {
        self.a.tuple_variant(
            len,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> core::result::Result<V::Value, A::Error> {
        self.a.struct_variant(
            fields,
            Wrap {
                v,
                depth: self.depth,
            },
        )
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// `Some(Some(…None…))` of any depth: counts the `Some`s.
    #[derive(Debug, PartialEq)]
    struct Deep(usize);

    impl<'de> serde::Deserialize<'de> for Deep {
        fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Deep, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Deep;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("nested options")
                }
                fn visit_none<E: de::Error>(self) -> core::result::Result<Deep, E> {
                    Ok(Deep(0))
                }
                fn visit_some<D: Deserializer<'de>>(
                    self,
                    d: D,
                ) -> core::result::Result<Deep, D::Error> {
                    Ok(Deep(<Deep as serde::Deserialize>::deserialize(d)?.0 + 1))
                }
            }
            d.deserialize_option(V)
        }
    }

    #[test]
    fn round_trip_and_depth_bound() {
        let mut buf = Vec::new();
        let v = (1u8, "x".to_string(), Some(vec![2.5f64]), [(3u16, 'c')]);
        encode(&v, &mut buf).unwrap();
        assert_eq!(
            decode::<(u8, String, Option<Vec<f64>>, [(u16, char); 1])>(&buf).unwrap(),
            v
        );
        // 100,000 nested `Some`s would overflow the stack without the bound.
        let mut deep = vec![1u8; 100_000];
        deep.push(0);
        assert!(matches!(decode::<Deep>(&deep), Err(Error::Decode { .. })));
        let mut ok = vec![1u8; MAX_DEPTH];
        ok.push(0);
        assert_eq!(decode::<Deep>(&ok).unwrap(), Deep(MAX_DEPTH));
        assert!(decode::<u8>(&[1, 2]).is_err(), "left-over bytes");
    }
}
