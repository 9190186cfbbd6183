//! [`Handle`]: a typed reference into a segment that keeps the mapping alive.

use super::Segment;
use core::ops::Deref;
use core::ptr::NonNull;

/// A shared object in a segment. Derefs to the primitive; clones share the mapping, which stays
/// mapped until the last handle and the last [`Segment`] are dropped. `Send + Sync`, so it can be
/// handed to threads.
///
/// Every typed constructor of [`Segment`] (`seg.counter`, `seg.value`, `seg.mpmc`, `seg.mutex` …)
/// returns one.
///
/// ```
/// use shmkit::{Counter, Handle, Segment};
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let hits: Handle<Counter> = seg.counter("hits")?;
/// drop(seg); // the handle keeps the mapping alive
///
/// // A clone is another reference to the same object, and can move to another thread.
/// let other = hits.clone();
/// std::thread::spawn(move || other.add(10)).join().unwrap();
/// hits.inc(); // a method of Counter, through Deref
/// assert_eq!(hits.load(), 11);
/// assert_eq!(hits.segment().entries()?.len(), 1);
/// # Ok(()) }
/// ```
pub struct Handle<T: ?Sized> {
    segment: Segment,
    ptr: NonNull<T>,
    index: u32,
}

// SAFETY: a Handle gives out only `&T`; T is an Object (all atomics, Sync) and the mapping it
// points into is owned by the Arc inside `segment`, which is Send + Sync.
unsafe impl<T: ?Sized + Sync> Send for Handle<T> {}
// SAFETY: as above; shared access from many threads is what T's atomics are for.
unsafe impl<T: ?Sized + Sync> Sync for Handle<T> {}

impl<T: ?Sized> Handle<T> {
    /// # Safety
    /// `ptr` points to an initialized `T` inside `segment`'s mapping, valid for shared access
    /// for as long as the mapping lives.
    pub(crate) unsafe fn new(segment: Segment, ptr: NonNull<T>, index: u32) -> Self {
        Handle {
            segment,
            ptr,
            index,
        }
    }

    /// The segment this object lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The object's position in the segment's directory.
    pub fn directory_index(&self) -> u32 {
        self.index
    }
}

impl<T: ?Sized> Deref for Handle<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new`'s contract: ptr points to an initialized T in the mapping, and
        // `self.segment` keeps the mapping alive for at least as long as this borrow.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            segment: self.segment.clone(),
            ptr: self.ptr,
            index: self.index,
        }
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}
