//! [`PodMap<K, V>`]: a map of plain-data keys and values over the same shared layout as
//! [`ByteMap`] (keys and values stored as their bytes), without allocation on any path.

use super::map_bytes::ByteMap;
use super::MapOptions;
use crate::words::load_uninit;
use crate::Result;
use bytemuck::Pod;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use std::time::Duration;

/// A hash map of plain-data keys and values (`K, V: Pod`), shared between threads and processes;
/// the same algorithm as [`ByteMap`] (see the [module docs](crate::guide::maps)), with keys and values
/// stored as their bytes. Keys are equal when their bytes are (so `-0.0` and `0.0` keys differ).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 20)?;
/// let scores = seg.pod_map::<u32, f64>("scores", 1000)?;
/// scores.insert(&7, &2.5)?;
/// assert_eq!(scores.get(&7)?, Some(2.5));
/// assert_eq!(scores.update(&7, |v| v.map(|x| x * 2.0))?, Some(5.0));
/// assert_eq!(scores.compare_exchange(&7, Some(5.0), Some(6.0))?, Ok(()));
/// assert_eq!(scores.compare_exchange(&7, Some(5.0), None)?, Err(Some(6.0)));
/// assert_eq!(scores.get_or_insert(&8, &1.0)?, 1.0);
/// let mut all: Vec<(u32, f64)> = scores.iter().collect();
/// all.sort_by_key(|e| e.0);
/// assert_eq!(all, [(7, 6.0), (8, 1.0)]);
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct PodMap<K, V> {
    _kv: PhantomData<fn() -> (K, V)>,
    raw: ByteMap,
}

/// Reads a `T` from value words (the words hold at least `size_of::<T>()` bytes: the map was
/// created for `T`).
#[inline]
fn load<T: Pod>(words: &[crate::sync::AtomicU64]) -> T {
    *load_uninit(words, &mut MaybeUninit::uninit())
}

impl<K: Pod, V: Pod> PodMap<K, V> {
    /// The limits every map of this type has (key_max, value_max): known at compile time, so
    /// that each operation folds the offsets that depend on them ([`ByteMap`]'s `known`).
    const KNOWN: Option<(u64, u64)> = Some((
        core::mem::size_of::<K>() as u64,
        core::mem::size_of::<V>() as u64,
    ));

    /// The options of a map for `K` and `V`: `capacity` entries of `size_of::<K>()`-byte keys
    /// and `size_of::<V>()`-byte values.
    pub fn options(capacity: u64) -> MapOptions {
        MapOptions::new(capacity)
            .key_max(core::mem::size_of::<K>() as u64)
            .value_max(core::mem::size_of::<V>() as u64)
    }

    /// A map on the heap (for one process, tests and models).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity) for a capacity out of the
    /// limits, or a zero-sized `K`.
    pub fn new(capacity: u64) -> Result<Box<Self>> {
        let raw = ByteMap::new(Self::options(capacity))?;
        // SAFETY: PodMap is #[repr(transparent)] over ByteMap (a zero-sized marker beside it):
        // same layout and metadata.
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    /// The map of bytes underneath (keys and values as their bytes).
    pub fn as_bytes(&self) -> &ByteMap {
        &self.raw
    }

    /// The number of entries the map holds at most.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The number of entries (exact when no write is in progress).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The value of `key`, if present. Lock-free, allocation-free.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    #[inline]
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.raw
            .read_with(Self::KNOWN, bytemuck::bytes_of(key), |words, _| {
                load::<V>(words)
            })
    }

    /// Whether `key` is present. Lock-free.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.raw.contains_key(bytemuck::bytes_of(key))
    }

    /// Sets `key` to `value` and returns the value it had.
    ///
    /// # Errors
    /// [`Error::MapFull`](crate::Error::MapFull) when the key is new and no slot is free;
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    #[inline]
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>> {
        self.insert_opt(key, value, None)
    }

    /// [`insert`](Self::insert), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); [`Error::Timeout`](crate::Error::Timeout).
    pub fn insert_timeout(&self, key: &K, value: &V, timeout: Duration) -> Result<Option<V>> {
        self.insert_opt(key, value, Some(timeout))
    }

    #[inline]
    fn insert_opt(&self, key: &K, value: &V, timeout: Option<Duration>) -> Result<Option<V>> {
        self.raw.set_with(
            Self::KNOWN,
            bytemuck::bytes_of(key),
            bytemuck::bytes_of(value),
            timeout,
            |words, _| load::<V>(words),
        )
    }

    /// Removes `key` and returns its value, if it was present.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        self.remove_opt(key, None)
    }

    /// [`remove`](Self::remove), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`remove`](Self::remove); [`Error::Timeout`](crate::Error::Timeout).
    pub fn remove_timeout(&self, key: &K, timeout: Duration) -> Result<Option<V>> {
        self.remove_opt(key, Some(timeout))
    }

    fn remove_opt(&self, key: &K, timeout: Option<Duration>) -> Result<Option<V>> {
        self.raw
            .write_with(Self::KNOWN, bytemuck::bytes_of(key), timeout, |w| {
                let old = w.current_with(|words, _| load::<V>(words));
                w.delete()?;
                Ok(old)
            })
    }

    /// Atomically replaces the entry of `key` with `f(current value)` (`None` removes it) and
    /// returns the new value; writers of `key` wait meanwhile (see [`ByteMap::update`]).
    ///
    /// # Errors
    /// As [`insert`](Self::insert); the map is unchanged on error.
    pub fn update(&self, key: &K, f: impl FnOnce(Option<V>) -> Option<V>) -> Result<Option<V>> {
        self.update_opt(key, None, f)
    }

    /// [`update`](Self::update), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`update`](Self::update); [`Error::Timeout`](crate::Error::Timeout).
    pub fn update_timeout(
        &self,
        key: &K,
        timeout: Duration,
        f: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<Option<V>> {
        self.update_opt(key, Some(timeout), f)
    }

    fn update_opt(
        &self,
        key: &K,
        timeout: Option<Duration>,
        f: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<Option<V>> {
        self.raw
            .write_with(Self::KNOWN, bytemuck::bytes_of(key), timeout, |w| {
                let old = w.current_with(|words, _| load::<V>(words));
                let new = f(old);
                match &new {
                    Some(v) => w.put(bytemuck::bytes_of(v))?,
                    None => w.delete()?,
                }
                Ok(new)
            })
    }

    /// Sets `key` to `new` only if its value is `current` (compared as bytes; `None`: absent;
    /// a `new` of `None` removes it). `Ok(())` when it did, `Err(actual)` when it did not.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn compare_exchange(
        &self,
        key: &K,
        current: Option<V>,
        new: Option<V>,
    ) -> Result<core::result::Result<(), Option<V>>> {
        self.raw
            .write_with(Self::KNOWN, bytemuck::bytes_of(key), None, |w| {
                let old = w.current_with(|words, _| load::<V>(words));
                let same = match (&old, &current) {
                    (None, None) => true,
                    (Some(a), Some(b)) => bytemuck::bytes_of(a) == bytemuck::bytes_of(b),
                    _ => false,
                };
                if !same {
                    return Ok(Err(old));
                }
                match &new {
                    Some(v) => w.put(bytemuck::bytes_of(v))?,
                    None => w.delete()?,
                }
                Ok(Ok(()))
            })
    }

    /// The value of `key`, inserting `value` first if it is absent (atomically).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn get_or_insert(&self, key: &K, value: &V) -> Result<V> {
        if let Some(v) = self.get(key)? {
            return Ok(v);
        }
        self.raw
            .write_with(Self::KNOWN, bytemuck::bytes_of(key), None, |w| {
                match w.current_with(|words, _| load::<V>(words)) {
                    Some(v) => Ok(v),
                    None => {
                        w.put(bytemuck::bytes_of(value))?;
                        Ok(*value)
                    }
                }
            })
    }

    /// Removes every entry, stripe by stripe (see [`ByteMap::clear`]).
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn clear(&self) -> Result<()> {
        self.raw.clear()
    }

    /// The entries, each read whole (see the [module docs](crate::guide::maps#iteration)).
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        self.raw.iter().map(|(k, v)| (pod_from(&k), pod_from(&v)))
    }
}

/// A `T` from stored bytes: copied when the length is right, zero padded or cut otherwise (only a
/// scribbled map stores other lengths).
fn pod_from<T: Pod>(b: &[u8]) -> T {
    let mut v = T::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut v);
    let n = dst.len().min(b.len());
    dst[..n].copy_from_slice(&b[..n]);
    v
}

impl<K: Pod + core::fmt::Debug, V: Pod + core::fmt::Debug> core::fmt::Debug for PodMap<K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::map::geometry::Geometry;
    use crate::map::map_object::{map_cast, map_init, map_layout};
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: PodMap is #[repr(transparent)] over ByteMap (a slice of AtomicU64, valid for every
    // bit pattern), its length from the local tag, covered by `layout`; no pointers, no Drop.
    unsafe impl<K: Pod, V: Pod> Object for PodMap<K, V> {
        /// The capacity (entries).
        type Params = u64;
        fn element() -> TypeTag {
            TypeTag::of::<(K, V)>(Kind::MAP)
        }
        fn tag(capacity: &u64) -> TypeTag {
            let o = PodMap::<K, V>::options(*capacity);
            Self::element().with_dims(o.capacity, Geometry::extra(o.key_max, o.value_max))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            let (k, v) = Geometry::limits_of_extra(tag.extra)?;
            let o = PodMap::<K, V>::options(tag.len);
            // Another K or V of the same type name cannot fit: the limits are their sizes.
            (k == o.key_max && v == o.value_max).then(|| map_layout(tag))?
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: forwarded contract.
            unsafe { map_init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            map_cast(ptr, tag, |p| p as *mut PodMap<K, V>)
        }
    }
}
