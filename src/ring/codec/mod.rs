//! Encoding `serde` values as byte messages (feature `serde`), shared by every byte queue.
//!
//! The format is [postcard](https://docs.rs/postcard)'s: compact (varint integers, no field
//! names), documented and stable since 1.0, `no_std`-friendly and actively maintained. A value is
//! one message; decoding rejects bytes left over after the value, and values that nest deeper
//! than [`MAX_DEPTH`] levels (postcard itself has no limit: a recursive type nested one level
//! per byte would overflow the receiver's stack; see the `depth` module).

mod depth;

pub(crate) use depth::MAX_DEPTH;

use crate::error::{Error, Result};

/// Encodes `value` into `buf`, replacing its contents (its allocation is reused).
///
/// # Errors
/// [`Error::Encode`] if serde refuses the value (e.g. a map of unknown length).
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    let mut v = core::mem::take(buf);
    v.clear();
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

/// Decodes one `T` from all of `bytes`, nesting at most [`MAX_DEPTH`] levels deep.
///
/// # Errors
/// [`Error::Decode`] if the bytes are not a `T`, hold more than one, or nest too deep.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let fail = |what: String| Error::Decode {
        reason: format!(
            "{what} ({} bytes, as {})",
            bytes.len(),
            core::any::type_name::<T>()
        ),
    };
    let mut de = postcard::Deserializer::from_bytes(bytes);
    depth::reset();
    let v = T::deserialize(depth::Depth::new(&mut de)).map_err(|e| {
        if depth::tripped() {
            fail(format!(
                "the value nests deeper than {MAX_DEPTH} levels (sequences, maps, enums, options)"
            ))
        } else {
            fail(e.to_string())
        }
    })?;
    let rest = de.finalize().map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail(format!(
            "{} bytes left over after the value",
            rest.len()
        )));
    }
    Ok(v)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_reuses_the_buffer() {
        let mut buf = Vec::with_capacity(64);
        let v = (42i32, None::<u8>, "hello".to_string(), vec![1.5f64, -2.0]);
        encode(&v, &mut buf).unwrap();
        let cap = buf.capacity();
        let back: (i32, Option<u8>, String, Vec<f64>) = decode(&buf).unwrap();
        assert_eq!(back, v);
        encode(&7u8, &mut buf).unwrap();
        assert_eq!(buf, [7]);
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        // A string whose length prefix runs past the end.
        assert!(matches!(
            decode::<String>(&[200, 1, b'a']),
            Err(Error::Decode { .. })
        ));
        // Invalid UTF-8.
        assert!(matches!(
            decode::<String>(&[1, 0xff]),
            Err(Error::Decode { .. })
        ));
        // Trailing bytes.
        assert!(matches!(decode::<u8>(&[1, 2]), Err(Error::Decode { .. })));
        // An Option tag other than 0 or 1.
        assert!(matches!(
            decode::<Option<u8>>(&[7, 1]),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(decode::<u64>(&[]), Err(Error::Decode { .. })));
    }

    /// A recursive type: one level (one enum) per byte on the wire.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![1u8; depth]; // Node(
        bytes.push(0); // Leaf
        bytes
    }

    #[test]
    fn hostile_deep_nesting_is_an_error_not_a_stack_overflow() {
        // Within the limit: decodes as postcard alone would.
        let ok = nested(MAX_DEPTH as usize - 1);
        let mut t = decode::<Tree>(&ok).unwrap();
        let mut levels = 0;
        while let Tree::Node(inner) = t {
            t = *inner;
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH as usize - 1);
        // One level more: refused.
        let e = decode::<Tree>(&nested(MAX_DEPTH as usize)).unwrap_err();
        assert!(e.to_string().contains("nests deeper"), "{e}");
        // A hostile message that nests ten million levels (postcard alone would overflow the
        // stack, an abort): refused after MAX_DEPTH levels.
        let e = decode::<Tree>(&nested(10_000_000)).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        // Nested sequences and options count too.
        type Deep = Vec<Vec<Vec<Option<Vec<u8>>>>>;
        let v: Deep = vec![vec![vec![Some(vec![1, 2]), None]]];
        let mut buf = Vec::new();
        encode(&v, &mut buf).unwrap();
        assert_eq!(decode::<Deep>(&buf).unwrap(), v);
    }
}
