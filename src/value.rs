//! [`AtomicValue<T>`]: a plain value of 1, 2, 4 or 8 bytes, updated atomically.

use crate::sync::{AtomicU64, Ordering};
use crate::words::{pack_u64, unpack_u64};
use bytemuck::Pod;
use core::marker::PhantomData;

/// A `T` read and written atomically, across threads and processes, without a lock.
///
/// `T` is any [`bytemuck::Pod`] type of 1, 2, 4 or 8 bytes (integers, floats, small `#[repr(C)]`
/// structs): sizes with a native lock-free atomic. The value is kept in the low bytes of one
/// `AtomicU64`. Other sizes are refused at compile time, because a lock-table fallback (as in the
/// `atomic` crate) lives in one process and is no lock across processes; use a
/// seqlock for larger types.
///
/// ```compile_fail
/// // 12 bytes: no native atomic, refused when monomorphized.
/// let v = shmkit::AtomicValue::new([0u32; 3]);
/// ```
///
/// `compare_exchange` compares bit patterns: for floats `0.0` and `-0.0` differ and a `NaN`
/// equals itself when its bits do.
///
/// ```
/// let v = shmkit::AtomicValue::new(1.5f64);
/// v.fetch_add(1.0);
/// assert_eq!(v.load(), 2.5);
/// assert_eq!(v.compare_exchange(2.5, 0.0), Ok(2.5));
/// assert_eq!(v.fetch_update(|x| Some(x - 1.0)), Ok(0.0));
/// assert_eq!(v.load(), -1.0);
/// ```
#[repr(C)]
pub struct AtomicValue<T> {
    bits: AtomicU64,
    _t: PhantomData<T>,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(AtomicValue<u8>, u64);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(AtomicValue<f64>, u64);

// SAFETY: the only field is an AtomicU64; T is Pod (Copy, no references), held only as bits.
unsafe impl<T: Pod> Sync for AtomicValue<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for AtomicValue<T> {}

impl<T: Pod> AtomicValue<T> {
    /// Refuses (at compile time) types without a native lock-free atomic of their size.
    const NATIVE: () = assert!(
        matches!(core::mem::size_of::<T>(), 1 | 2 | 4 | 8) && core::mem::align_of::<T>() <= 8,
        "AtomicValue<T> needs a T of 1, 2, 4 or 8 bytes (a native atomic size); use a SeqLock"
    );

    /// A value on the heap (for one process, tests and models).
    pub fn new(v: T) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NATIVE;
        AtomicValue {
            bits: AtomicU64::new(pack_u64(v)),
            _t: PhantomData,
        }
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> T {
        unpack_u64(self.bits.load(Ordering::Acquire))
    }

    /// Sets the value.
    #[inline]
    pub fn store(&self, v: T) {
        self.bits.store(pack_u64(v), Ordering::Release);
    }

    /// Sets the value and returns the previous one.
    #[inline]
    pub fn swap(&self, v: T) -> T {
        unpack_u64(self.bits.swap(pack_u64(v), Ordering::AcqRel))
    }

    /// Stores `new` if the value's bits equal `current`'s. Returns the value found: `Ok` when
    /// it was replaced.
    #[inline]
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        self.bits
            .compare_exchange(
                pack_u64(current),
                pack_u64(new),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(unpack_u64)
            .map_err(unpack_u64)
    }

    /// Applies `f` until its result is stored without interference (a CAS loop); `f` returning
    /// `None` stops with `Err(current)`. Returns the previous value.
    pub fn fetch_update(&self, mut f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        let mut cur = self.bits.load(Ordering::Acquire);
        loop {
            let Some(new) = f(unpack_u64(cur)) else {
                return Err(unpack_u64(cur));
            };
            match self.bits.compare_exchange_weak(
                cur,
                pack_u64(new),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(prev) => return Ok(unpack_u64(prev)),
                Err(now) => cur = now,
            }
        }
    }
}

impl<T: Arith> AtomicValue<T> {
    /// Adds `n` (wrapping for integers) and returns the previous value. Native `fetch_add` for
    /// 8-byte integers, a CAS loop otherwise.
    #[inline]
    pub fn fetch_add(&self, n: T) -> T {
        if T::NATIVE_U64 {
            return unpack_u64(self.bits.fetch_add(pack_u64(n), Ordering::AcqRel));
        }
        match self.fetch_update(|x| Some(x.add(n))) {
            Ok(v) | Err(v) => v,
        }
    }

    /// Subtracts `n` (wrapping for integers) and returns the previous value.
    #[inline]
    pub fn fetch_sub(&self, n: T) -> T {
        if T::NATIVE_U64 {
            return unpack_u64(self.bits.fetch_sub(pack_u64(n), Ordering::AcqRel));
        }
        match self.fetch_update(|x| Some(x.sub(n))) {
            Ok(v) | Err(v) => v,
        }
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for AtomicValue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("AtomicValue").field(&self.load()).finish()
    }
}

/// Numbers that [`AtomicValue::fetch_add`] and [`fetch_sub`](AtomicValue::fetch_sub) work on.
///
/// Implemented for the integer types of 1, 2, 4 and 8 bytes (wrapping, like the std atomics)
/// and for `f32` and `f64`; 8-byte integers use the native `fetch_add`, the others a
/// compare-exchange loop.
///
/// ```
/// use shmkit::AtomicValue;
///
/// let bytes = AtomicValue::new(250u8);
/// assert_eq!(bytes.fetch_add(10), 250);
/// assert_eq!(bytes.load(), 4); // wrapped
///
/// let level = AtomicValue::new(0.5f32);
/// level.fetch_sub(0.25);
/// assert_eq!(level.load(), 0.25);
/// ```
pub trait Arith: Pod {
    /// `true` when the type's addition is exactly `u64` wrapping addition of its bits (8-byte
    /// integers), so the native instruction can be used.
    const NATIVE_U64: bool;
    /// `self + n` (wrapping for integers).
    fn add(self, n: Self) -> Self;
    /// `self - n` (wrapping for integers).
    fn sub(self, n: Self) -> Self;
}

macro_rules! int_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const NATIVE_U64: bool = core::mem::size_of::<$t>() == 8;
            #[inline]
            fn add(self, n: Self) -> Self { self.wrapping_add(n) }
            #[inline]
            fn sub(self, n: Self) -> Self { self.wrapping_sub(n) }
        }
    )*};
}
int_arith!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

macro_rules! float_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const NATIVE_U64: bool = false;
            #[inline]
            fn add(self, n: Self) -> Self { self + n }
            #[inline]
            fn sub(self, n: Self) -> Self { self - n }
        }
    )*};
}
float_arith!(f32, f64);

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: AtomicValue<T> is #[repr(C)], one AtomicU64 (valid for any bits; any low bytes
    // are a valid T because T: Pod); fixed layout; no pointers, no Drop.
    unsafe impl<T: Pod + Send + Sync> Object for AtomicValue<T> {
        type Params = T;
        fn element() -> TypeTag {
            #[allow(clippy::let_unit_value)]
            let () = Self::NATIVE;
            TypeTag::of::<T>(Kind::VALUE)
        }
        fn tag(_: &T) -> TypeTag {
            Self::element()
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<AtomicValue<T>>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, init: T) {
            // SAFETY: per the trait contract ptr is aligned and sized for AtomicValue<T>.
            let v = unsafe { ptr.cast::<AtomicValue<T>>().as_ref() };
            v.store(init);
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Pod, bytemuck::Zeroable, PartialEq, Debug)]
    #[repr(C)]
    struct Pair {
        a: u16,
        b: u16,
    }

    #[test]
    fn ints_wrap_and_stay_in_width() {
        let v = AtomicValue::new(250u8);
        assert_eq!(v.fetch_add(10), 250);
        assert_eq!(v.load(), 4);
        assert_eq!(v.fetch_sub(5), 4);
        assert_eq!(v.load(), 255);
        let w = AtomicValue::new(i64::MAX);
        w.fetch_add(1);
        assert_eq!(w.load(), i64::MIN);
        let x = AtomicValue::new(-3i32);
        x.fetch_add(5);
        assert_eq!(x.load(), 2);
    }

    #[test]
    fn structs_and_floats() {
        let v = AtomicValue::new(Pair { a: 1, b: 2 });
        assert_eq!(v.swap(Pair { a: 3, b: 4 }), Pair { a: 1, b: 2 });
        assert_eq!(
            v.compare_exchange(Pair { a: 0, b: 0 }, Pair { a: 9, b: 9 }),
            Err(Pair { a: 3, b: 4 })
        );
        let f = AtomicValue::new(0.0f32);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        f.fetch_add(1.0);
                    }
                });
            }
        });
        assert_eq!(f.load(), 4000.0);
        assert_eq!(f.fetch_update(|_| None), Err(4000.0));
    }
}
