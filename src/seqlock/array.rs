//! [`SeqArray<T>`]: a fixed-length array of plain values, striped into independently versioned
//! latch blocks.

use super::latch::{copy_words, Rotation};
use super::writer::{self, Acquired, Wait, WriterLock};
use super::{alloc_region, round_up, LINE};
use crate::sync::{AtomicU64, Ordering};
use crate::words::{load_pod, store_pod, words_for_type};
use crate::{Error, Result};
use bytemuck::Pod;
use core::marker::PhantomData;
use core::ops::Range;
use std::time::Duration;

/// Target number of data words in one block (512 bytes).
#[cfg(not(feature = "loom"))]
const BLOCK_WORDS: usize = 64;
/// Under loom: tiny blocks, so that models with a few elements span several blocks.
#[cfg(feature = "loom")]
const BLOCK_WORDS: usize = 2;

/// Number of rotating copies of each block of a [`SeqArray`] (see the
/// [module docs](crate::seqlock#memory) for the choice).
pub const ARRAY_COPIES: usize = 2;

/// Copies per block (a power of two).
const N: usize = ARRAY_COPIES;
/// Header words of a block: its `published` version and one "changed range" word per copy,
/// padded to a cache line.
const H: usize = round_up(1 + N, LINE);

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

/// One block: its latch and the writer's record of what each copy's version changed.
#[derive(Clone, Copy)]
struct Block<'a> {
    latch: Rotation<'a>,
    changed: &'a [AtomicU64],
    width: usize,
}

impl<'a> Block<'a> {
    /// The range a `changed` word names, clamped to the block (the word is shared memory).
    fn range(&self, c: usize) -> (usize, usize) {
        let w = self.changed[c].load(Ordering::Relaxed);
        let end = ((w & 0xffff_ffff) as usize).min(self.width);
        let start = ((w >> 32) as usize).min(end);
        (start, end)
    }

    /// Writes the next version of the block: the words `a..b` come from `f`, the others from the
    /// current version. The next copy holds the version before the current one, so only the
    /// words that the current version changed are copied over (besides `a..b`).
    #[inline]
    fn write(&self, a: usize, b: usize, f: impl FnOnce(&[AtomicU64])) {
        self.latch.write(|u, cur, next| {
            self.fill(u, cur, next, a, b, f);
        });
    }

    /// Brings `next` (the copy of version `u`) up to the current version outside `a..b`, lets
    /// `f` store `a..b` and records `a..b` as what version `u` changed.
    #[inline]
    fn fill(
        &self,
        u: u64,
        cur: &[AtomicU64],
        next: &[AtomicU64],
        a: usize,
        b: usize,
        f: impl FnOnce(&[AtomicU64]),
    ) {
        let me = u as usize % N;
        // The versions between the one `next` holds (u − N) and the current one (u − 1) are
        // recorded in the other copies' `changed` words.
        let (mut lo, mut hi) = (self.width, 0);
        for c in (0..N).filter(|&c| c != me) {
            let (s, e) = self.range(c);
            if s < e {
                lo = lo.min(s);
                hi = hi.max(e);
            }
        }
        let cut = a.clamp(lo, hi.max(lo));
        copy_words(&next[lo.min(cut)..cut], &cur[lo.min(cut)..cut]);
        let from = b.clamp(lo, hi.max(lo));
        if from < hi {
            copy_words(&next[from..hi], &cur[from..hi]);
        }
        f(next);
        self.changed[me].store((a as u64) << 32 | b as u64, Ordering::Relaxed);
    }

    /// After a takeover from a dead writer: resynchronizes the version and makes the next copy
    /// (which the dead writer may have half written, outside any recorded range) equal to the
    /// current one again. Readers are not disturbed: they read the current copy, and a reader
    /// of the next copy's old version is lapped and retries.
    fn recover(&self) {
        self.latch.resync();
        let (_, cur, next) = self.latch.begin();
        copy_words(next, cur);
    }
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

    /// Takes the writer lock until the returned handle is dropped (a single-writer handle),
    /// waiting as [`SeqLock::writer`](super::SeqLock::writer) does.
    ///
    /// # Errors
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread holds the writer
    /// lock already.
    pub fn writer(&self) -> Result<ArrayWriter<'_, T>> {
        self.writer_waiting(Wait::For(None))
    }

    /// Like [`writer`](Self::writer), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout), [`Error::WouldDeadlock`](crate::Error::WouldDeadlock).
    pub fn writer_timeout(&self, timeout: Duration) -> Result<ArrayWriter<'_, T>> {
        self.writer_waiting(Wait::For(Some(timeout)))
    }

    /// Like [`writer`](Self::writer), without waiting.
    ///
    /// # Errors
    /// [`Error::WriterBusy`](crate::Error::WriterBusy) when another live writer holds the lock;
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread does.
    pub fn try_writer(&self) -> Result<ArrayWriter<'_, T>> {
        self.writer_waiting(Wait::Try)
    }

    fn writer_waiting(&self, wait: Wait) -> Result<ArrayWriter<'_, T>> {
        match self.lock.acquire(wait) {
            Ok(a) => Ok(self.wrap(a)),
            Err(f) => Err(f.into_error(wait)),
        }
    }

    fn wrap(&self, a: Acquired) -> ArrayWriter<'_, T> {
        let len = self.len();
        if a.took_over_from.is_some() {
            for k in 0..len.div_ceil(Self::B) {
                self.block(k, len).recover();
            }
        }
        ArrayWriter {
            array: self,
            len,
            took_over_from: a.took_over_from,
            generation: writer::generation(),
        }
    }

    /// Test hook: takes the writer lock in the name of process `owner_pid` and abandons a write
    /// of `v` to element `index` before it is published, with the block's next copy brought up
    /// to date and half of the element's words written, as a writer killed there would. The lock
    /// stays held.
    ///
    /// # Errors
    /// [`Error::WriterBusy`](crate::Error::WriterBusy), [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    #[doc(hidden)]
    pub fn __abandon_set(&self, index: usize, v: T, owner_pid: u32) -> Result<()> {
        let len = self.check_index(index)?;
        let id = if owner_pid == crate::process::pid() {
            writer::me()
        } else {
            writer::pack(owner_pid, 0)
        };
        let a = (self.lock.acquire_as(id, 0, Wait::Try)).map_err(|f| f.into_error(Wait::Try))?;
        let w = self.wrap(a);
        core::mem::forget(w);
        let b = self.block(index / Self::B, len);
        let j = index % Self::B;
        let scratch: Vec<AtomicU64> = (0..Self::E).map(|_| AtomicU64::new(0)).collect();
        store_pod(&scratch, &v);
        let half = Self::E.div_ceil(2);
        let (u, cur, next) = b.latch.begin();
        b.fill(u, cur, next, j * Self::E, (j + 1) * Self::E, |c| {
            copy_words(&Self::elem(c, j)[..half], &scratch[..half]);
        });
        Ok(())
    }
}

/// Holds a [`SeqArray`]'s writer lock (from [`SeqArray::writer`]); released on drop.
///
/// A copy inherited by a `fork()`ed child is inert there: its writes return
/// [`Error::InheritedGuard`](crate::Error::InheritedGuard) and change nothing, and dropping it
/// leaves the parent's lock held.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let temps = seg.array::<f32>("temps", 8)?;
/// let mut w = temps.writer()?; // one lock for a series of writes
/// w.set(0, 20.5)?;
/// w.update_range(1..4, |t| t.fill(19.0))?;
/// assert_eq!(w.get(2)?, 19.0);
/// drop(w);
/// assert_eq!(temps.get(3)?, 19.0);
/// # Ok(()) }
/// ```
pub struct ArrayWriter<'a, T: Pod> {
    array: &'a SeqArray<T>,
    len: usize,
    took_over_from: Option<u32>,
    /// The fork generation the lock was taken in (the guard is inert in another).
    generation: u64,
}

impl<T: Pod> ArrayWriter<'_, T> {
    /// `Err(InheritedGuard)` in a `fork()`ed child, for a writer its parent took.
    #[inline]
    fn check_current(&self) -> Result<()> {
        if self.generation != writer::generation() {
            return Err(writer::inherited());
        }
        Ok(())
    }

    /// Element `index` as this writer last left it (no retry: nobody else writes).
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds).
    pub fn get(&self, index: usize) -> Result<T> {
        self.array.check_index(index)?;
        let b = self.array.block(index / SeqArray::<T>::B, self.len);
        Ok(load_pod(SeqArray::<T>::elem(
            b.latch.current(),
            index % SeqArray::<T>::B,
        )))
    }

    /// Sets element `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds);
    /// [`Error::InheritedGuard`](crate::Error::InheritedGuard) in a `fork()`ed child, for a
    /// writer its parent took (nothing is written).
    pub fn set(&mut self, index: usize, v: T) -> Result<()> {
        self.check_current()?;
        self.array.check_index(index)?;
        let (j, e) = (index % SeqArray::<T>::B, SeqArray::<T>::E);
        self.array
            .block(index / SeqArray::<T>::B, self.len)
            .write(j * e, (j + 1) * e, |c| {
                store_pod(SeqArray::<T>::elem(c, j), &v)
            });
        Ok(())
    }

    /// Writes `src` at `start`, block by block.
    fn put(&mut self, start: usize, src: &[T]) {
        let mut i = start;
        for chunk in self.array.chunks(start, src.len()) {
            let j0 = i % SeqArray::<T>::B;
            let part = &src[i - start..i - start + chunk];
            let e = SeqArray::<T>::E;
            let block = self.array.block(i / SeqArray::<T>::B, self.len);
            block.write(j0 * e, (j0 + chunk) * e, |c| {
                for (j, v) in part.iter().enumerate() {
                    store_pod(SeqArray::<T>::elem(c, j0 + j), v);
                }
            });
            i += chunk;
        }
    }

    /// Replaces the whole array with `src`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) when `src.len() != len`;
    /// [`Error::InheritedGuard`](crate::Error::InheritedGuard), as [`set`](Self::set).
    pub fn write_from(&mut self, src: &[T]) -> Result<()> {
        self.check_current()?;
        if src.len() != self.len {
            return Err(Error::LengthMismatch {
                expected: self.len,
                found: src.len(),
            });
        }
        self.put(0, src);
        Ok(())
    }

    /// Applies `f` to the elements of `range` and writes them back.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds) when the range passes the end or is reversed;
    /// [`Error::InheritedGuard`](crate::Error::InheritedGuard), as [`set`](Self::set).
    pub fn update_range(&mut self, range: Range<usize>, f: impl FnOnce(&mut [T])) -> Result<()> {
        self.check_current()?;
        let count = SeqArray::<T>::range_count(&range, self.len)?;
        self.array.check_range(range.start, count)?;
        let mut vals: Vec<T> = (range.clone())
            .map(|i| {
                let b = self.array.block(i / SeqArray::<T>::B, self.len);
                load_pod(SeqArray::<T>::elem(b.latch.current(), i % SeqArray::<T>::B))
            })
            .collect();
        f(&mut vals);
        self.put(range.start, &vals);
        Ok(())
    }

    /// The pid of a dead writer whose lock this writer took over (its unpublished write was
    /// discarded), like `EOWNERDEAD`.
    pub fn took_over_from(&self) -> Option<u32> {
        self.took_over_from
    }
}

impl<T: Pod> Drop for ArrayWriter<'_, T> {
    fn drop(&mut self) {
        // Frees the lock only if this process holds it (not in a forked child).
        self.array.lock.release(writer::me());
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
#[path = "array_tests.rs"]
mod tests;
