//! Encoding `serde` values as byte messages (feature `serde`), shared by every byte queue.
//!
//! The format is [postcard](https://docs.rs/postcard)'s: compact (varint integers, no field
//! names), documented and stable since 1.0, `no_std`-friendly and actively maintained. A value is
//! one message; decoding rejects bytes left over after the value.

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

/// Decodes one `T` from all of `bytes`.
///
/// # Errors
/// [`Error::Decode`] if the bytes are not a `T`, or hold more than one.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| Error::Decode {
        reason: format!(
            "{e} ({} bytes, as {})",
            bytes.len(),
            core::any::type_name::<T>()
        ),
    })?;
    if !rest.is_empty() {
        return Err(Error::Decode {
            reason: format!(
                "{} bytes left over after a {} of {} bytes",
                rest.len(),
                core::any::type_name::<T>(),
                bytes.len() - rest.len()
            ),
        });
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
}
