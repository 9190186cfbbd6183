//! The writer side of a [`SeqArray`]: taking its writer lock ([`SeqArray::writer`] and its
//! `_timeout`/`try_` forms, the takeover from a dead writer) and [`ArrayWriter`], the handle that
//! holds it for a series of writes.

use super::super::latch::copy_words;
use super::super::writer::{self, Acquired, Wait};
use super::SeqArray;
use crate::sync::AtomicU64;
use crate::words::{load_pod, store_pod};
use crate::{Error, Result};
use bytemuck::Pod;
use core::ops::Range;
use std::time::Duration;

impl<T: Pod> SeqArray<T> {
    /// Takes the writer lock until the returned handle is dropped (a single-writer handle),
    /// waiting as [`SeqLock::writer`](crate::SeqLock::writer) does.
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
