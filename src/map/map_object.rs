//! Where a map is placed in a segment: its [`Object`] implementation (layout, initialization,
//! fat pointer from the local tag), shared by every map face.

use super::geometry::Geometry;
use super::{ByteMap, MapOptions};
use crate::object::{fnv1a, Kind, Object, TypeTag};
use crate::sync::AtomicU64;
use core::alloc::Layout;
use core::ptr::NonNull;

/// The words a map with tag `tag` takes (`None` for impossible dimensions).
pub(crate) fn map_words(tag: &TypeTag) -> Option<usize> {
    let (k, v) = Geometry::limits_of_extra(tag.extra)?;
    Some(Geometry::new(tag.len, k, v)?.total as usize)
}

pub(crate) fn map_layout(tag: &TypeTag) -> Option<Layout> {
    Layout::array::<AtomicU64>(map_words(tag)?)
        .ok()?
        .align_to(128)
        .ok()
}

/// Initializes the map at `ptr` for `tag` (see [`Object::init`]).
///
/// # Safety
/// As [`Object::init`]: `ptr` holds `map_layout(tag)` writable bytes.
pub(crate) unsafe fn map_init(ptr: NonNull<u8>, tag: &TypeTag) {
    let n = map_words(tag).unwrap_or(0);
    // SAFETY: the caller's contract: `n` words at `ptr`, aligned; AtomicU64 is valid for
    // every bit pattern.
    let words = unsafe { core::slice::from_raw_parts(ptr.as_ptr().cast::<AtomicU64>(), n) };
    if let Some((k, v)) = Geometry::limits_of_extra(tag.extra) {
        if let Some(g) = Geometry::new(tag.len, k, v) {
            g.init(words, super::geometry::new_seed());
        }
    }
}

/// The fat pointer of a map-shaped object at `ptr` (its word count from the local tag).
pub(crate) fn map_cast<S: ?Sized>(
    ptr: NonNull<u8>,
    tag: &TypeTag,
    cast: fn(*mut [AtomicU64]) -> *mut S,
) -> NonNull<S> {
    let n = map_words(tag).unwrap_or(0);
    let raw = cast(core::ptr::slice_from_raw_parts_mut(
        ptr.as_ptr().cast::<AtomicU64>(),
        n,
    ));
    // SAFETY: `raw` has the address of `ptr`, which is non-null.
    unsafe { NonNull::new_unchecked(raw) }
}

// SAFETY: ByteMap is #[repr(C)], a slice of AtomicU64 (valid for every bit pattern) whose
// length comes from the local tag and is covered by `layout`; no pointers, no Drop.
unsafe impl Object for ByteMap {
    type Params = MapOptions;
    fn element() -> TypeTag {
        TypeTag {
            kind: Kind::MAP,
            type_name: "bytes".to_string(),
            type_hash: fnv1a(b"bytes"),
            elem_size: 0,
            elem_align: 0,
            len: 0,
            extra: 0,
        }
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
        map_cast(ptr, tag, |p| p as *mut ByteMap)
    }
}
