//! Copying plain data in and out of shared memory, word by word, through atomics.
//!
//! Another process may write shared memory at any moment, so a plain (non-atomic) read of it is a
//! data race and undefined behaviour in Rust, even if the value read is later thrown away (the
//! classic seqlock mistake). Payloads therefore live in `AtomicU64` words and are copied with
//! relaxed atomic loads and stores; the primitive that owns the words orders them with its own
//! acquire/release protocol (fences for seqlocks, sequence numbers for rings).
//!
//! `T: bytemuck::Pod` guarantees that every bit pattern is a valid `T`, so whatever bytes another
//! process left behind, the value read back is a valid (if possibly wrong) `T`.

use crate::sync::{AtomicU64, Ordering};
use bytemuck::Pod;
use core::mem::MaybeUninit;

/// Number of 8-byte words needed to hold `bytes` bytes.
#[inline]
pub const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// Number of 8-byte words needed to hold one `T`.
#[inline]
pub const fn words_for_type<T>() -> usize {
    words_for(core::mem::size_of::<T>())
}

/// Copies `src` into `dst` with relaxed atomic stores. The last word is zero-padded.
///
/// # Panics
/// If `dst` has fewer than `words_for(src.len())` words (a local bug: callers size `dst` from
/// validated local lengths).
#[inline]
pub fn store_bytes(dst: &[AtomicU64], src: &[u8]) {
    let n = words_for(src.len());
    assert!(dst.len() >= n, "store_bytes: destination too small");
    // Whole 8-byte chunks as arrays: one plain 8-byte move each (a slice `copy_from_slice` per
    // word made the loop about twice as slow).
    let mut chunks = src.chunks_exact(8);
    for (w, c) in dst.iter().zip(&mut chunks) {
        let c: [u8; 8] = c.try_into().expect("chunks of 8");
        w.store(u64::from_ne_bytes(c), Ordering::Relaxed);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        dst[n - 1].store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
}

/// Copies words of `src` into `dst` with relaxed atomic loads (the inverse of [`store_bytes`]).
///
/// # Panics
/// If `src` has fewer than `words_for(dst.len())` words.
#[inline]
pub fn load_bytes(src: &[AtomicU64], dst: &mut [u8]) {
    let n = words_for(dst.len());
    assert!(src.len() >= n, "load_bytes: source too small");
    let mut chunks = dst.chunks_exact_mut(8);
    for (c, w) in (&mut chunks).zip(src) {
        let c: &mut [u8; 8] = c.try_into().expect("chunks of 8");
        *c = w.load(Ordering::Relaxed).to_ne_bytes();
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let len = rest.len();
        rest.copy_from_slice(&src[n - 1].load(Ordering::Relaxed).to_ne_bytes()[..len]);
    }
}

/// Loads one plain value from `src` into `dst` without zeroing it first, and returns it
/// initialized. For large values: a `T::zeroed()` then [`load_bytes`] costs a memset of the whole
/// value on top of the copy, and returning it by value often a memcpy more.
///
/// Calling it again on the same `dst` (a retried read) simply overwrites it.
///
/// # Panics
/// If `src` has fewer than `words_for_type::<T>()` words.
#[inline]
pub fn load_uninit<'a, T: Pod>(src: &[AtomicU64], dst: &'a mut MaybeUninit<T>) -> &'a mut T {
    let len = core::mem::size_of::<T>();
    let (full, rest) = (len / 8, len % 8);
    assert!(src.len() >= words_for(len), "load_uninit: source too small");
    let p = dst.as_mut_ptr().cast::<u8>();
    for (i, w) in src[..full].iter().enumerate() {
        // SAFETY: `i·8 + 8 ≤ full·8 ≤ len`: the 8 bytes lie inside `dst`; `[u8; 8]` has
        // alignment 1, so the write needs no alignment.
        unsafe {
            p.add(i * 8)
                .cast::<[u8; 8]>()
                .write(w.load(Ordering::Relaxed).to_ne_bytes())
        };
    }
    if rest != 0 {
        let last = src[full].load(Ordering::Relaxed).to_ne_bytes();
        // SAFETY: the last `rest` bytes of `dst` (`full·8 + rest = len`), from a local array of 8.
        unsafe { core::ptr::copy_nonoverlapping(last.as_ptr(), p.add(full * 8), rest) };
    }
    // SAFETY: every one of the `len` bytes of `dst` was written above, and `T: Pod` is valid for
    // every bit pattern.
    unsafe { dst.assume_init_mut() }
}

/// Stores one plain value into `dst` (at least `words_for_type::<T>()` words).
#[inline]
pub fn store_pod<T: Pod>(dst: &[AtomicU64], value: &T) {
    store_bytes(dst, bytemuck::bytes_of(value));
}

/// Loads one plain value from `src` (at least `words_for_type::<T>()` words).
#[inline]
pub fn load_pod<T: Pod>(src: &[AtomicU64]) -> T {
    *load_uninit(src, &mut MaybeUninit::uninit())
}

/// Packs a value of 1, 2, 4 or 8 bytes into the low bytes of a `u64` (the rest zero).
#[inline]
pub fn pack_u64<T: Pod>(value: T) -> u64 {
    let mut b = [0u8; 8];
    let src = bytemuck::bytes_of(&value);
    b[..src.len()].copy_from_slice(src);
    u64::from_ne_bytes(b)
}

/// The inverse of [`pack_u64`]: the low `size_of::<T>()` bytes of `bits` as a `T`.
#[inline]
pub fn unpack_u64<T: Pod>(bits: u64) -> T {
    let mut v = T::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut v);
    let len = dst.len();
    dst.copy_from_slice(&bits.to_ne_bytes()[..len]);
    v
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_odd_sizes() {
        for len in 0..40usize {
            let src: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
            let words: Vec<AtomicU64> = (0..words_for(len)).map(|_| AtomicU64::new(!0)).collect();
            store_bytes(&words, &src);
            let mut back = vec![0u8; len];
            load_bytes(&words, &mut back);
            assert_eq!(back, src, "len {len}");
        }
    }

    #[test]
    fn load_uninit_matches_load_bytes() {
        let words: Vec<AtomicU64> = (0..3)
            .map(|i| AtomicU64::new(0x0102_0304_0506_0708 * (i + 1)))
            .collect();
        // The reference: `load_bytes` into a zeroed value (`load_pod` itself uses `load_uninit`).
        fn reference<T: Pod>(words: &[AtomicU64]) -> T {
            let mut v = T::zeroed();
            load_bytes(words, bytemuck::bytes_of_mut(&mut v));
            v
        }
        let mut a = MaybeUninit::<[u8; 19]>::uninit();
        assert_eq!(*load_uninit(&words, &mut a), reference::<[u8; 19]>(&words));
        let mut b = MaybeUninit::<[u64; 3]>::uninit();
        assert_eq!(*load_uninit(&words, &mut b), reference::<[u64; 3]>(&words));
        assert_eq!(load_pod::<[u16; 5]>(&words), reference::<[u16; 5]>(&words));
        let mut z = MaybeUninit::<()>::uninit();
        load_uninit(&words[..0], &mut z);
    }

    #[test]
    fn pod_and_pack() {
        let words: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        store_pod(&words, &[1u32, 2, 3]);
        assert_eq!(load_pod::<[u32; 3]>(&words), [1, 2, 3]);
        assert_eq!(unpack_u64::<i16>(pack_u64(-5i16)), -5);
        assert_eq!(pack_u64(1u8), 1);
        assert_eq!(unpack_u64::<f64>(pack_u64(2.5f64)), 2.5);
    }
}
