//! [`SerdeMap<K, V>`] (any serde keys and values, postcard-encoded) and [`Namespace`] (named
//! attributes of any serde type), over the same shared layout as [`ByteMap`]. Feature `serde`.

use super::map_bytes::ByteMap;
use super::serde_depth::{decode, encode};
use super::MapOptions;
use crate::Result;
use core::marker::PhantomData;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// A hash map of serde keys and values shared between processes: Python's `Manager().dict()`.
/// Keys and values are encoded with postcard (keys must encode canonically: equal keys, equal
/// bytes, which holds for numbers, strings, tuples, structs and enums of them) into at most
/// `key_max` and `value_max` bytes. Decoding is bounded in depth
/// ([`SERDE_MAX_DEPTH`](crate::map::SERDE_MAX_DEPTH) containers). The algorithm is [`ByteMap`]'s (see the
/// [module docs](crate::guide::maps)).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::{MapOptions, Segment};
/// let seg = Segment::anonymous(1 << 20)?;
/// let jobs = seg.serde_map::<String, (String, f64)>("jobs", MapOptions::new(100))?;
/// jobs.insert(&"job-17".to_string(), &("done".to_string(), 3.2))?;
/// assert_eq!(jobs.get(&"job-17".to_string())?, Some(("done".to_string(), 3.2)));
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct SerdeMap<K, V> {
    _kv: PhantomData<fn() -> (K, V)>,
    raw: ByteMap,
}

fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode(v, &mut buf)?;
    Ok(buf)
}

/// Values up to this many bytes are read into a buffer on the stack, without an allocation.
const STACK_VALUE: usize = 256;

/// The decoded value of `key` in `raw`: read into a stack buffer when it fits, else (a second,
/// ordinary lookup) into a `Vec`.
fn get_decoded<T: DeserializeOwned>(raw: &ByteMap, key: &[u8]) -> Result<Option<T>> {
    let mut buf = [0u8; STACK_VALUE];
    let read = raw.read_with(None, key, |words, len| {
        let fits = len <= STACK_VALUE;
        if fits {
            crate::words::load_bytes(words, &mut buf[..len]);
        }
        fits.then_some(len)
    })?;
    match read {
        None => Ok(None),
        Some(Some(len)) => decode(&buf[..len]).map(Some),
        Some(None) => raw.get(key)?.map(|b| decode(&b)).transpose(),
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> SerdeMap<K, V> {
    /// A map on the heap (for one process, tests and models).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity).
    pub fn new(opts: MapOptions) -> Result<Box<Self>> {
        let raw = ByteMap::new(opts)?;
        // SAFETY: SerdeMap is #[repr(transparent)] over ByteMap.
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    /// The map of encoded keys and values underneath.
    pub fn as_bytes(&self) -> &ByteMap {
        &self.raw
    }

    /// The number of entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The value of `key`, decoded. Lock-free.
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode), [`Error::Decode`](crate::Error::Decode),
    /// [`Error::TooLarge`](crate::Error::TooLarge) for a key that encodes longer than `key_max`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        get_decoded(&self.raw, &enc(key)?)
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.raw.contains_key(&enc(key)?)
    }

    /// Sets `key` to `value` and returns the previous value.
    ///
    /// # Errors
    /// As [`ByteMap::insert`], and encoding or decoding errors.
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>> {
        let old = self.raw.insert(&enc(key)?, &enc(value)?)?;
        old.map(|b| decode(&b)).transpose()
    }

    /// [`insert`](Self::insert), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); [`Error::Timeout`](crate::Error::Timeout).
    pub fn insert_timeout(&self, key: &K, value: &V, timeout: Duration) -> Result<Option<V>> {
        let old = self.raw.insert_timeout(&enc(key)?, &enc(value)?, timeout)?;
        old.map(|b| decode(&b)).transpose()
    }

    /// Removes `key` and returns its value.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        self.raw.remove(&enc(key)?)?.map(|b| decode(&b)).transpose()
    }

    /// Atomically replaces the entry of `key` with `f(current)` (`None` removes it); returns
    /// the new value. A stored value that does not decode is passed as `None`.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn update(&self, key: &K, f: impl FnOnce(Option<V>) -> Option<V>) -> Result<Option<V>> {
        let k = enc(key)?;
        self.raw.write_with(None, &k, None, |w| {
            let old = w.current().and_then(|b| decode::<V>(&b).ok());
            let new = f(old);
            match &new {
                Some(v) => w.put(&enc(v)?)?,
                None => w.delete()?,
            }
            Ok(new)
        })
    }

    /// The value of `key`, inserting `value` first if it is absent (atomically).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn get_or_insert(&self, key: &K, value: &V) -> Result<V> {
        decode(&self.raw.get_or_insert(&enc(key)?, &enc(value)?)?)
    }

    /// Removes every entry, stripe by stripe.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn clear(&self) -> Result<()> {
        self.raw.clear()
    }

    /// The entries that decode, each read whole (see the [module docs](crate::guide::maps#iteration)).
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        self.raw
            .iter()
            .filter_map(|(k, v)| Some((decode(&k).ok()?, decode(&v).ok()?)))
    }
}

/// Python's `Manager().Namespace()`: named attributes of any serde type, shared between
/// processes, in a map found by name in a segment's directory. Each attribute keeps its own
/// type: [`set`](Self::set) any `T`, [`get`](Self::get) it back as the same `T`.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::{MapOptions, Segment};
/// let seg = Segment::anonymous(1 << 20)?;
/// // Process A: `ns = manager.Namespace(); ns.x = 10; ns.y = "hello"`
/// let ns = seg.namespace("ns", MapOptions::new(32))?;
/// ns.set("x", &10)?;
/// ns.set("y", &"hello")?;
/// // Process B (the same segment, opened by name): `print(ns.x, ns.y)`
/// let ns = seg.namespace("ns", MapOptions::new(32))?;
/// assert_eq!(ns.get::<i32>("x")?, Some(10));
/// assert_eq!(ns.get::<String>("y")?.as_deref(), Some("hello"));
/// assert_eq!(ns.names(), ["x", "y"]);
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct Namespace {
    raw: ByteMap,
}

impl Namespace {
    /// A namespace on the heap (for one process and tests).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity).
    pub fn new(opts: MapOptions) -> Result<Box<Self>> {
        let raw = ByteMap::new(opts)?;
        // SAFETY: Namespace is #[repr(transparent)] over ByteMap.
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    /// The map underneath (attribute names as bytes, values postcard-encoded).
    pub fn as_bytes(&self) -> &ByteMap {
        &self.raw
    }

    /// Sets attribute `name` to `value`.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge) for a name or encoding past the limits;
    /// [`Error::MapFull`](crate::Error::MapFull); [`Error::Encode`](crate::Error::Encode).
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        self.raw.insert(name.as_bytes(), &enc(value)?).map(|_| ())
    }

    /// Attribute `name` decoded as a `T` (`None` if unset).
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) when it was set as another type.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        get_decoded(&self.raw, name.as_bytes())
    }

    /// Removes attribute `name`; returns whether it was set.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge) for a name past `key_max`.
    pub fn remove(&self, name: &str) -> Result<bool> {
        Ok(self.raw.remove(name.as_bytes())?.is_some())
    }

    /// Atomically replaces attribute `name` with `f(current)`, as [`ByteMap::update`].
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn update<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        f: impl FnOnce(Option<T>) -> Option<T>,
    ) -> Result<Option<T>> {
        self.raw.write_with(None, name.as_bytes(), None, |w| {
            let old = w.current().and_then(|b| decode::<T>(&b).ok());
            let new = f(old);
            match &new {
                Some(v) => w.put(&enc(v)?)?,
                None => w.delete()?,
            }
            Ok(new)
        })
    }

    /// The names of the attributes set, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .raw
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect();
        v.sort();
        v
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::map::geometry::Geometry;
    use crate::map::map_object::{map_cast, map_init, map_layout};
    use crate::map::serde_depth::Serde;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: SerdeMap is #[repr(transparent)] over ByteMap (a slice of AtomicU64, valid for
    // every bit pattern), its length from the local tag and covered by `layout`.
    unsafe impl<K, V> Object for SerdeMap<K, V>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        type Params = MapOptions;
        fn element() -> TypeTag {
            TypeTag::of::<Serde<(K, V)>>(Kind::MAP)
        }
        fn tag(o: &MapOptions) -> TypeTag {
            Self::element().with_dims(o.capacity, Geometry::extra(o.key_max, o.value_max))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            map_layout(tag)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: MapOptions) {
            // SAFETY: forwarded contract.
            unsafe { map_init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            map_cast(ptr, tag, |p| p as *mut Self)
        }
    }

    /// The namespace marker type for tags.
    struct Attributes;

    // SAFETY: as for SerdeMap.
    unsafe impl Object for Namespace {
        type Params = MapOptions;
        fn element() -> TypeTag {
            TypeTag::of::<Serde<Attributes>>(Kind::MAP)
        }
        fn tag(o: &MapOptions) -> TypeTag {
            Self::element().with_dims(o.capacity, Geometry::extra(o.key_max, o.value_max))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            map_layout(tag)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: MapOptions) {
            // SAFETY: forwarded contract.
            unsafe { map_init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            map_cast(ptr, tag, |p| p as *mut Self)
        }
    }
}
