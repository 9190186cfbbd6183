//! [`SeqArray<T>`]: a fixed-length array of plain values, striped into independently versioned
//! latch blocks. This file holds the array, its layout and its readers; `block` one block's
//! latch and copy-forward, `writer` the writer lock's side and [`ArrayWriter`].

mod block;
mod writer;

pub use writer::ArrayWriter;

use super::latch::Rotation;
use super::writer::WriterLock;
use super::{alloc_region, round_up, LINE};
use crate::sync::AtomicU64;
use crate::words::{load_pod, words_for_type};
use crate::{Error, Result};
use block::{Block, BLOCK_WORDS, H, N};
use bytemuck::Pod;
use core::marker::PhantomData;
use core::ops::Range;
use std::time::Duration;

/// A fixed-length array of `T` shared between threads and processes: every element is read and
/// written without tearing, readers never block writers and writers never wait for readers.
///
/// Each element takes a whole number of 8-byte words (a `u8` takes 8 bytes, an `f32` 8, an
/// `f64` 8, a `[f32; 3]` 16), kept in 2 rotating copies (see the
/// [guide](crate::guide::seqlocks)). The array is cut into blocks of about 512 bytes, each with its
/// own version: a reader of one element or a small range retries only when *its* block is
/// published again during the read, so a writer hammering one end of a large array does not
/// starve readers of the other end. Operations spanning several blocks
/// ([`snapshot`](Self::snapshot), [`write_from`](Self::write_from), …) are atomic block by
/// block, not as a whole.
///
/// Indices are checked against the length this process computed when it opened the array;
/// out-of-range indices are [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds), never an out-of-bounds access.
///
/// ```
/// let a = shmkit::SeqArray::<f32>::new(1000);
/// a.set(3, 1.5)?;
/// a.update_range(0..10, |xs| xs.iter_mut().for_each(|x| *x += 1.0))?;
/// assert_eq!(a.get(3)?, 2.5);
/// assert_eq!(a.snapshot()[..4], [1.0, 1.0, 1.0, 2.5]);
/// assert!(a.get(1000).is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct SeqArray<T> {
    _t: PhantomData<fn() -> T>,
    lock: WriterLock,
    /// The blocks, one after the other, each (offsets in words, from local lengths):
    ///
    /// | words                | what                                                          |
    /// | -------------------- | ------------------------------------------------------------- |
    /// | `0`                  | `published`: the block's version                              |
    /// | `1 + c`, `c < N`     | `changed[c]`: words the version in copy `c` changed (`start << 32 \| end`) |
    /// | `H + c·S ..`         | copy `c`: the block's elements (`S` = data words rounded up to a line; exact for a short last block) |
    words: [AtomicU64],
}

impl<T: Pod> SeqArray<T> {
    /// Words per element.
    const E: usize = words_for_type::<T>();
    /// Elements per full block.
    const B: usize = if Self::E == 0 || Self::E >= BLOCK_WORDS {
        1
    } else {
        BLOCK_WORDS / Self::E
    };
    /// Words from one copy of a full block to the next.
    const S: usize = round_up(Self::B * Self::E, LINE);
    /// Words of a full block.
    const BW: usize = H + N * Self::S;

    /// Words after the lock for `len` elements (`None` on overflow). Strictly increasing in
    /// `len`, so [`len`](Self::len) can recover the length from the local word count.
    fn words_for_len(len: usize) -> Option<usize> {
        let full = (len / Self::B).checked_mul(Self::BW)?;
        let rem = len % Self::B;
        if rem == 0 {
            Some(full)
        } else {
            full.checked_add(H + N * rem * Self::E)
        }
    }

    /// An array of `len` zeroed elements on the heap (for one process, tests and models).
    ///
    /// # Panics
    /// If the size overflows `usize`.
    pub fn new(len: usize) -> Box<Self> {
        let n = Self::words_for_len(len).expect("SeqArray length overflows");
        let raw = alloc_region(n) as *mut Self;
        // SAFETY: `alloc_region` returned a heap allocation of `region_layout(n)`, the layout of
        // `Self` with n words (repr(C): a zero-sized marker, the lock, the words), initialized
        // to a free lock and zero words (every block at version 0, copies equal, nothing
        // changed), from the global allocator: what `Box` owns and frees.
        unsafe { Box::from_raw(raw) }
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        let n = self.words.len();
        let full = n / Self::BW;
        let rest = n % Self::BW;
        let rem = if rest == 0 || Self::E == 0 {
            0
        } else {
            (rest - H) / (N * Self::E)
        };
        full * Self::B + rem
    }

    /// Whether the array has no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Block `k` (its first element is `k·B`); `k` must be below the block count.
    #[inline]
    fn block(&self, k: usize, len: usize) -> Block<'_> {
        let elems = (len - k * Self::B).min(Self::B);
        let width = elems * Self::E;
        let stride = if elems == Self::B { Self::S } else { width };
        let at = k * Self::BW;
        let words = &self.words[at..at + H + N * stride];
        Block {
            latch: Rotation::new(&words[0], &words[H..], N, stride, width),
            changed: &words[1..1 + N],
            width,
        }
    }

    /// The words of element `j` within a block's copy.
    #[inline]
    fn elem(copy: &[AtomicU64], j: usize) -> &[AtomicU64] {
        &copy[j * Self::E..(j + 1) * Self::E]
    }

    fn check_index(&self, index: usize) -> Result<usize> {
        let len = self.len();
        if index >= len {
            return Err(Error::IndexOutOfBounds { index, len });
        }
        Ok(len)
    }

    fn check_range(&self, start: usize, count: usize) -> Result<usize> {
        let len = self.len();
        match start.checked_add(count) {
            Some(end) if end <= len => Ok(len),
            end => Err(Error::IndexOutOfBounds {
                index: end.unwrap_or(usize::MAX),
                len,
            }),
        }
    }

    /// Element `index`, never torn.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    #[inline]
    pub fn get(&self, index: usize) -> Result<T> {
        let len = self.check_index(index)?;
        let j = index % Self::B;
        Ok(self
            .block(index / Self::B, len)
            .latch
            .read(|c| load_pod::<T>(Self::elem(c, j)))
            .0)
    }

    /// One attempt at reading element `index`: `Ok(None)` when a write to its block overlapped
    /// the read (contention), instead of retrying. Errors: [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    #[inline]
    pub fn try_get(&self, index: usize) -> Result<Option<T>> {
        let len = self.check_index(index)?;
        let j = index % Self::B;
        Ok(self
            .block(index / Self::B, len)
            .latch
            .try_read(|c| load_pod::<T>(Self::elem(c, j)))
            .map(|r| r.0))
    }

    /// Copies `out.len()` elements starting at `start` into `out`; each block's part is a
    /// consistent snapshot of that block.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds) when the range passes the end.
    pub fn read_range(&self, start: usize, out: &mut [T]) -> Result<()> {
        let len = self.check_range(start, out.len())?;
        let mut i = start;
        for chunk in self.chunks(start, out.len()) {
            let j0 = i % Self::B;
            let dst = &mut out[i - start..i - start + chunk];
            self.block(i / Self::B, len).latch.read(|c| {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = load_pod(Self::elem(c, j0 + j));
                }
            });
            i += chunk;
        }
        Ok(())
    }

    /// Sizes of the per-block pieces of the range `start..start + count`.
    fn chunks(&self, start: usize, count: usize) -> impl Iterator<Item = usize> {
        let end = start + count;
        let mut i = start;
        core::iter::from_fn(move || {
            if i >= end {
                return None;
            }
            let n = (Self::B - i % Self::B).min(end - i);
            i += n;
            Some(n)
        })
    }

    /// Copies the whole array into `out` (block by block).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) when `out.len() != self.len()`.
    pub fn read_into(&self, out: &mut [T]) -> Result<()> {
        let len = self.len();
        if out.len() != len {
            return Err(Error::LengthMismatch {
                expected: len,
                found: out.len(),
            });
        }
        self.read_range(0, out)
    }

    /// A copy of the whole array (block by block).
    pub fn snapshot(&self) -> Vec<T> {
        let mut v = vec![T::zeroed(); self.len()];
        let _ = self.read_range(0, &mut v); // our own length: in bounds
        v
    }

    /// Sets element `index`. Takes the writer lock for this one write, waiting as
    /// [`SeqLock::write`](super::SeqLock::write) does.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds);
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread holds the writer
    /// lock already.
    pub fn set(&self, index: usize, v: T) -> Result<()> {
        self.check_index(index)?;
        self.writer()?.set(index, v)
    }

    /// Like [`set`](Self::set), waiting at most `timeout` for the writer lock.
    ///
    /// # Errors
    /// As [`set`](Self::set); [`Error::Timeout`](crate::Error::Timeout) when a live writer kept
    /// the lock for all of `timeout`.
    pub fn set_timeout(&self, index: usize, v: T, timeout: Duration) -> Result<()> {
        self.check_index(index)?;
        self.writer_timeout(timeout)?.set(index, v)
    }

    /// Replaces the whole array with `src` (block by block).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) when `src.len() != self.len()`.
    pub fn write_from(&self, src: &[T]) -> Result<()> {
        // Errors are checked before the lock is taken: a failed call has no effect.
        let len = self.len();
        if src.len() != len {
            return Err(Error::LengthMismatch {
                expected: len,
                found: src.len(),
            });
        }
        self.writer()?.write_from(src)
    }

    /// Applies `f` to the elements of `range` and writes them back, atomically with respect to
    /// other writers (readers see each block's part change at once).
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds) when the range passes the end or is reversed.
    pub fn update_range(&self, range: Range<usize>, f: impl FnOnce(&mut [T])) -> Result<()> {
        Self::range_count(&range, self.len())
            .and_then(|count| self.check_range(range.start, count))?;
        self.writer()?.update_range(range, f)
    }

    /// The number of elements of `range`, or the error for a reversed one.
    fn range_count(range: &Range<usize>, len: usize) -> Result<usize> {
        range
            .end
            .checked_sub(range.start)
            .ok_or(Error::IndexOutOfBounds {
                index: range.start,
                len,
            })
    }

    /// `Err(WriterDied)` when the writer lock is held by a process that no longer runs; one
    /// `/proc` read when the lock is held. Readers are not blocked by a dead writer: each block
    /// keeps its last complete contents.
    pub fn check_writer(&self) -> Result<()> {
        self.lock.check()
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for SeqArray<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use crate::seqlock::{fat, region_layout, LAYOUT_VERSION};
    use crate::sync::Ordering;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    impl<T: Pod> SeqArray<T> {
        fn words_for_tag(tag: &TypeTag) -> Option<usize> {
            if tag.elem_size as usize != core::mem::size_of::<T>() || tag.extra != LAYOUT_VERSION {
                return None;
            }
            Self::words_for_len(usize::try_from(tag.len).ok()?)
        }
    }

    // SAFETY: SeqArray<T> is #[repr(C)]: a zero-sized marker, a padded AtomicU64 and AtomicU64
    // words, valid for every bit pattern; the word count comes from the local tag (validated by
    // `layout`, which covers it); no pointers, no Drop.
    unsafe impl<T: Pod> Object for SeqArray<T> {
        type Params = usize;
        fn element() -> TypeTag {
            TypeTag::of::<T>(Kind::SEQ_ARRAY)
        }
        /// `extra` holds the latch layout version: an object of another layout (another shmkit
        /// build) is a type mismatch, never misread.
        fn tag(len: &usize) -> TypeTag {
            Self::element().with_dims(*len as u64, LAYOUT_VERSION)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            region_layout(Self::words_for_tag(tag)?)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: usize) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag), which
            // holds Self with words_for_tag(tag) words; every bit pattern is valid.
            let a = unsafe { Self::cast(ptr, tag).as_ref() };
            a.lock.init_free();
            // All zero: every block at version 0 with equal, zeroed copies and nothing recorded
            // as changed.
            for w in &a.words {
                w.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            // `layout` accepted this tag before any cast (the trait's contract).
            let n = Self::words_for_tag(tag).unwrap_or(0);
            fat(ptr, n, |p| p as *mut Self)
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
