//! The typed faces of [`RawList`]: [`List<T>`] of plain data, [`ByteList`] of byte strings and,
//! with the feature `serde`, `SerdeList<T>` of any serde type.

use super::list::{Ctl, RawList};
use crate::words::load_uninit;
use crate::Result;
use bytemuck::Pod;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use std::time::Duration;

/// A fixed-capacity list of plain values (`T: Pod`) shared between threads and processes:
/// Python's `Manager().list()` for numbers and plain structs.
///
/// - [`push`](Self::push) is lock-free between pushers (one CAS reserves an index, one claims
///   the slot); [`get`](Self::get), [`len`](Self::len) and iteration are lock-free and never see
///   a torn element; [`set`](Self::set), [`pop`](Self::pop) and [`clear`](Self::clear) take the
///   list's lock (and `pop`/`clear` wait for pushes in flight).
/// - The length is the published prefix: an element is visible once every element pushed
///   before it is written.
/// - A process killed in the middle of a push leaves a *hole* at its index (counted by `len`,
///   returned as `None` by `get`, skipped by iteration, filled by `set`, removed by `pop` and
///   `clear`); a process killed in a pop or clear is finished for it by the next one. See the
///   [module docs](crate::guide::maps) and `RawList`'s for the protocol.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 20)?;
/// let l = seg.list::<u64>("results", 100)?;
/// for i in 0..4 {
///     l.push(i * i)?;
/// }
/// assert_eq!(l.len(), 4);
/// assert_eq!(l.get(3), Some(9));
/// l.set(0, 100)?;
/// assert_eq!(l.pop()?, Some(9));
/// assert_eq!(l.iter().collect::<Vec<_>>(), [100, 1, 4]);
/// l.clear()?;
/// assert!(l.is_empty());
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct List<T> {
    _t: PhantomData<fn() -> T>,
    raw: RawList,
}

/// A fixed-capacity list of byte strings of at most `elem_max` bytes, shared between threads
/// and processes (the same protocol as [`List`]).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 20)?;
/// let l = seg.byte_list("names", 10, 32)?;
/// l.push(b"ada")?;
/// l.push(b"grace")?;
/// assert_eq!(l.get(1)?, Some(b"grace".to_vec()));
/// assert!(l.push(&[0; 33]).is_err());
/// # Ok(()) }
/// ```
#[repr(transparent)]
pub struct ByteList {
    pub(crate) raw: RawList,
}

macro_rules! common_list_api {
    () => {
        /// The number of elements it holds at most (0 when its header is corrupted).
        pub fn capacity(&self) -> usize {
            self.raw.view().map_or(0, |v| v.cap)
        }

        /// The published length (holes included), after advancing it over finished pushes.
        pub fn len(&self) -> usize {
            self.raw.view().map_or(0, |v| v.advance())
        }

        /// Whether the list is empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Number of holes (indices whose push was lost with its process) below the length.
        pub fn holes(&self) -> usize {
            self.raw.view().map_or(0, |v| v.holes())
        }

        /// Removes every element (waits for pushes in flight).
        ///
        /// # Errors
        /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
        pub fn clear(&self) -> Result<()> {
            self.raw.view()?.clear(None, Ctl::me())
        }

        /// [`clear`](Self::clear), waiting at most `timeout` for the lock and pushes in flight.
        ///
        /// # Errors
        /// [`Error::Timeout`](crate::Error::Timeout) (nothing was removed).
        pub fn clear_timeout(&self, timeout: Duration) -> Result<()> {
            self.raw.view()?.clear(Some(timeout), Ctl::me())
        }

        /// Test hook for the crash models: a push of `elem` (its bytes) in the name of the
        /// (dead) owner word `owner` that stops at test point `point` as if that process had
        /// died there. Returns whether it stopped there.
        ///
        /// # Errors
        /// As the push.
        #[doc(hidden)]
        pub fn __abandon_push(&self, elem: &[u8], owner: u64, point: &'static str) -> Result<bool> {
            let ctl = Ctl {
                me: owner,
                abandon_at: Some(point),
            };
            abandoned(self.raw.view()?.push(elem, None, ctl).map(|_| ()))
        }

        /// Test hook for the crash models: a pop (or a clear) in the name of `owner` that
        /// stops at `point`, leaving the lock held by `owner`. Returns whether it stopped there.
        ///
        /// # Errors
        /// As the pop.
        #[doc(hidden)]
        pub fn __abandon_pop(&self, clear: bool, owner: u64, point: &'static str) -> Result<bool> {
            let ctl = Ctl {
                me: owner,
                abandon_at: Some(point),
            };
            let v = self.raw.view()?;
            abandoned(if clear {
                v.clear(None, ctl)
            } else {
                v.pop(None, ctl, |_, _| ()).map(|_| ())
            })
        }

        /// `(reserved, published)` as stored, for tools.
        #[doc(hidden)]
        pub fn positions(&self) -> (u64, u64) {
            self.raw.view().map_or((0, 0), |v| v.positions())
        }
    };
}

/// `Ok(true)` for an operation abandoned at its test point, `Ok(false)` for one that completed.
fn abandoned(r: Result<()>) -> Result<bool> {
    match r {
        Err(crate::Error::WouldBlock { what }) if what == super::stripe::ABANDONED => Ok(true),
        r => r.map(|()| false),
    }
}

impl<T: Pod> List<T> {
    /// A list of `capacity` elements on the heap (for one process, tests and models).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity) for 0 or more than
    /// [`LIST_CAPACITY_LIMIT`](super::LIST_CAPACITY_LIMIT).
    pub fn new(capacity: u64) -> Result<Box<Self>> {
        let raw = RawList::new_boxed(capacity, core::mem::size_of::<T>() as u64)?;
        // SAFETY: List<T> is #[repr(transparent)] over RawList (and a zero-sized marker).
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    common_list_api!();

    /// Appends `value` and returns its index. Lock-free between pushers.
    ///
    /// # Errors
    /// [`Error::ListFull`](crate::Error::ListFull); [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn push(&self, value: T) -> Result<usize> {
        self.raw
            .view()?
            .push(bytemuck::bytes_of(&value), None, Ctl::me())
    }

    /// [`push`](Self::push), waiting at most `timeout` for a pop or clear in progress.
    ///
    /// # Errors
    /// As [`push`](Self::push); [`Error::Timeout`](crate::Error::Timeout).
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<usize> {
        self.raw
            .view()?
            .push(bytemuck::bytes_of(&value), Some(timeout), Ctl::me())
    }

    /// Element `index`: `None` past the length, for a hole, or for a corrupted list.
    /// Lock-free, never torn.
    pub fn get(&self, index: usize) -> Option<T> {
        self.raw
            .view()
            .ok()?
            .read(index, |w, _| {
                *load_uninit(w, &mut MaybeUninit::<T>::uninit())
            })
            .ok()
            .flatten()
    }

    /// Replaces element `index` (fills a hole).
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.raw
            .view()?
            .set(index, bytemuck::bytes_of(&value), None)
    }

    /// [`set`](Self::set), waiting at most `timeout` for the list's lock.
    ///
    /// # Errors
    /// As [`set`](Self::set); [`Error::Timeout`](crate::Error::Timeout).
    pub fn set_timeout(&self, index: usize, value: T, timeout: Duration) -> Result<()> {
        self.raw
            .view()?
            .set(index, bytemuck::bytes_of(&value), Some(timeout))
    }

    /// Removes and returns the last element (holes after it go too); `None` when empty.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn pop(&self) -> Result<Option<T>> {
        self.pop_opt(None)
    }

    /// [`pop`](Self::pop), waiting at most `timeout` for the lock and pushes in flight.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) (nothing was removed).
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        self.pop_opt(Some(timeout))
    }

    fn pop_opt(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        self.raw.view()?.pop(timeout, Ctl::me(), |w, _| {
            *load_uninit(w, &mut MaybeUninit::<T>::uninit())
        })
    }

    /// The elements (holes skipped), each read whole; the length is taken once at the start.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let n = self.len();
        (0..n).filter_map(move |i| self.get(i))
    }

    /// A copy of the elements (holes skipped).
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }
}

impl ByteList {
    /// A list of `capacity` byte strings of at most `elem_max` bytes on the heap.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity).
    pub fn new(capacity: u64, elem_max: u64) -> Result<Box<Self>> {
        let raw = RawList::new_boxed(capacity, elem_max)?;
        // SAFETY: ByteList is #[repr(transparent)] over RawList.
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    common_list_api!();

    /// The longest element, in bytes.
    pub fn elem_max(&self) -> usize {
        self.raw.view().map_or(0, |v| v.elem_max)
    }

    /// Appends `elem` and returns its index. Lock-free between pushers.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge); [`Error::ListFull`](crate::Error::ListFull).
    pub fn push(&self, elem: &[u8]) -> Result<usize> {
        self.raw.view()?.push(elem, None, Ctl::me())
    }

    /// [`push`](Self::push), waiting at most `timeout` for a pop or clear in progress.
    ///
    /// # Errors
    /// As [`push`](Self::push); [`Error::Timeout`](crate::Error::Timeout).
    pub fn push_timeout(&self, elem: &[u8], timeout: Duration) -> Result<usize> {
        self.raw.view()?.push(elem, Some(timeout), Ctl::me())
    }

    /// Element `index`: `None` past the length or for a hole. Lock-free, never torn.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn get(&self, index: usize) -> Result<Option<Vec<u8>>> {
        self.raw.view()?.read(index, |w, n| {
            let mut v = vec![0u8; n];
            crate::words::load_bytes(w, &mut v);
            v
        })
    }

    /// Replaces element `index` (fills a hole).
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge); [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    pub fn set(&self, index: usize, elem: &[u8]) -> Result<()> {
        self.raw.view()?.set(index, elem, None)
    }

    /// [`set`](Self::set), waiting at most `timeout` for the list's lock.
    ///
    /// # Errors
    /// As [`set`](Self::set); [`Error::Timeout`](crate::Error::Timeout).
    pub fn set_timeout(&self, index: usize, elem: &[u8], timeout: Duration) -> Result<()> {
        self.raw.view()?.set(index, elem, Some(timeout))
    }

    /// [`pop`](Self::pop), waiting at most `timeout` for the lock and pushes in flight.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) (nothing was removed).
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.raw.view()?.pop(Some(timeout), Ctl::me(), |w, n| {
            let mut v = vec![0u8; n];
            crate::words::load_bytes(w, &mut v);
            v
        })
    }

    /// Removes and returns the last element (holes after it go too).
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn pop(&self) -> Result<Option<Vec<u8>>> {
        self.raw.view()?.pop(None, Ctl::me(), |w, n| {
            let mut v = vec![0u8; n];
            crate::words::load_bytes(w, &mut v);
            v
        })
    }

    /// The elements (holes skipped); the length is taken once at the start.
    pub fn iter(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        let n = self.len();
        (0..n).filter_map(move |i| self.get(i).ok().flatten())
    }
}

/// A fixed-capacity list of serde values (feature `serde`), each encoded with postcard into at
/// most `elem_max` bytes; the same protocol as [`List`].
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 20)?;
/// let l = seg.serde_list::<(String, f64)>("log", 10, 64)?;
/// l.push(&("done".to_string(), 3.2))?;
/// assert_eq!(l.get(0)?, Some(("done".to_string(), 3.2)));
/// # Ok(()) }
/// ```
#[cfg(feature = "serde")]
#[repr(transparent)]
pub struct SerdeList<T> {
    _t: PhantomData<fn() -> T>,
    raw: ByteList,
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SerdeList<T> {
    /// A list on the heap.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`](crate::Error::InvalidCapacity).
    pub fn new(capacity: u64, elem_max: u64) -> Result<Box<Self>> {
        let raw = ByteList::new(capacity, elem_max)?;
        // SAFETY: SerdeList<T> is #[repr(transparent)] over ByteList.
        Ok(unsafe { Box::from_raw(Box::into_raw(raw) as *mut Self) })
    }

    /// The list of encoded elements underneath.
    pub fn as_bytes(&self) -> &ByteList {
        &self.raw
    }

    /// The number of elements it holds at most.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The published length (holes included).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Appends `value` (encoded) and returns its index.
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode); [`Error::TooLarge`](crate::Error::TooLarge)
    /// for an encoding longer than `elem_max`; [`Error::ListFull`](crate::Error::ListFull).
    pub fn push(&self, value: &T) -> Result<usize> {
        let mut buf = Vec::new();
        super::serde_depth::encode(value, &mut buf)?;
        self.raw.push(&buf)
    }

    /// Element `index`, decoded: `None` past the length or for a hole.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode).
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        self.raw
            .get(index)?
            .map(|b| super::serde_depth::decode(&b))
            .transpose()
    }

    /// Replaces element `index`.
    ///
    /// # Errors
    /// As [`push`](Self::push); [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    pub fn set(&self, index: usize, value: &T) -> Result<()> {
        let mut buf = Vec::new();
        super::serde_depth::encode(value, &mut buf)?;
        self.raw.set(index, &buf)
    }

    /// Removes and returns the last element, decoded.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) (the element is removed all the same).
    pub fn pop(&self) -> Result<Option<T>> {
        self.raw
            .pop()?
            .map(|b| super::serde_depth::decode(&b))
            .transpose()
    }

    /// Removes every element.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted).
    pub fn clear(&self) -> Result<()> {
        self.raw.clear()
    }

    /// The elements that decode (holes and undecodable elements skipped).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.raw
            .iter()
            .filter_map(|b| super::serde_depth::decode(&b).ok())
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for List<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::map::list::object::{cast, extra, init, layout};
    use crate::object::{fnv1a, Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: List<T> is #[repr(transparent)] over RawList (a slice of AtomicU64, valid for
    // every bit pattern), its length from the local tag and covered by `layout`; no pointers.
    unsafe impl<T: Pod> Object for List<T> {
        /// The capacity.
        type Params = u64;
        fn element() -> TypeTag {
            TypeTag::of::<T>(Kind::LIST)
        }
        fn tag(cap: &u64) -> TypeTag {
            Self::element().with_dims(*cap, extra(core::mem::size_of::<T>() as u64))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            (tag.extra & 0xffff_ffff == core::mem::size_of::<T>() as u64).then(|| layout(tag))?
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: forwarded contract.
            unsafe { init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            cast(ptr, tag, |p| p as *mut Self)
        }
    }

    fn bytes_tag(name: &str) -> TypeTag {
        TypeTag {
            kind: Kind::LIST,
            type_name: name.to_string(),
            type_hash: fnv1a(name.as_bytes()),
            elem_size: 0,
            elem_align: 0,
            len: 0,
            extra: 0,
        }
    }

    // SAFETY: as for List<T>.
    unsafe impl Object for ByteList {
        /// (capacity, elem_max).
        type Params = (u64, u64);
        fn element() -> TypeTag {
            bytes_tag("bytes")
        }
        fn tag(&(cap, max): &(u64, u64)) -> TypeTag {
            Self::element().with_dims(cap, extra(max))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            layout(tag)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: (u64, u64)) {
            // SAFETY: forwarded contract.
            unsafe { init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            cast(ptr, tag, |p| p as *mut Self)
        }
    }

    // SAFETY: as for List<T> (SerdeList is transparent over ByteList over RawList).
    #[cfg(feature = "serde")]
    unsafe impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Object for SerdeList<T> {
        /// (capacity, elem_max).
        type Params = (u64, u64);
        fn element() -> TypeTag {
            TypeTag::of::<crate::map::serde_depth::Serde<T>>(Kind::LIST)
        }
        fn tag(&(cap, max): &(u64, u64)) -> TypeTag {
            Self::element().with_dims(cap, extra(max))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            layout(tag)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: (u64, u64)) {
            // SAFETY: forwarded contract.
            unsafe { init(ptr, tag) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            cast(ptr, tag, |p| p as *mut Self)
        }
    }
}
