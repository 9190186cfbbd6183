//! [`Producer`] and [`Consumer`]: the two ends of an [`SpscRing`](super::SpscRing), each the only
//! handle of its side system-wide, each owning its ring.
use super::{SpscRing, TAIL_CHECK_EVERY};
use crate::ring::owned::Keep;
use crate::ring::wait::{block, notify, peer_gone, release, Look, Sleeper};
use crate::ring::{PopError, PushError};
use crate::sync::{Deadline, Ordering};
use crate::words::{load_pod, store_pod};
use bytemuck::Pod;
use core::ptr::NonNull;
use std::time::Duration;

/// The producer side of an [`SpscRing`]: the only handle, system-wide, that pushes. It owns its
/// ring (it keeps the heap ring or the segment mapping alive), so it is `Send + 'static`: move
/// it into a thread or a struct. Dropping it releases the side (it does not close the ring).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let ring = seg.spsc::<u64>("ticks", 8)?;
/// let mut tx = ring.producer()?;
/// // One producer at a time, across all processes.
/// assert!(matches!(ring.producer(), Err(shmkit::Error::RingSideTaken { .. })));
/// tx.push(1)?;
/// tx.push_slice(&[2, 3])?;
/// assert_eq!(tx.len(), 3);
/// drop(tx); // frees the side for the next producer
/// let _tx = ring.producer()?;
/// # Ok(()) }
/// ```
pub struct Producer<T: Pod> {
    pub(super) ring: NonNull<SpscRing<T>>,
    /// Our position: the only writer of `tail`, so the local copy is the truth.
    pub(super) tail: u64,
    pub(super) head_cache: u64,
    pub(super) cap: u64,
    /// Keeps `ring` alive; declared last, so it is dropped after everything that points in.
    pub(super) _keep: Keep,
}

/// The consumer side of an [`SpscRing`]: the only handle, system-wide, that pops. Like the
/// [`Producer`] it owns its ring and is `Send + 'static`. Dropping it releases the side (it does
/// not close the ring).
///
/// ```
/// use shmkit::PopError;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let (mut tx, mut rx) = seg.spsc::<[f32; 2]>("points", 16)?.split()?;
/// tx.push_slice(&[[0.0, 1.0], [2.0, 3.0]])?;
/// assert_eq!(rx.pop()?, [0.0, 1.0]);
/// let mut out = [[0.0; 2]; 4];
/// assert_eq!(rx.pop_into(&mut out)?, 1);
/// assert_eq!(out[0], [2.0, 3.0]);
/// assert_eq!(rx.try_pop(), Err(PopError::Empty));
/// # Ok(()) }
/// ```
pub struct Consumer<T: Pod> {
    pub(super) ring: NonNull<SpscRing<T>>,
    /// Our position: the only writer of `head`, so the local copy is the truth.
    pub(super) head: u64,
    pub(super) cap: u64,
    /// Consecutive polls that found no item (the shared `tail` is checked for corruption only
    /// every [`TAIL_CHECK_EVERY`] of them).
    pub(super) empty_polls: u32,
    /// Keeps `ring` alive; declared last, so it is dropped after everything that points in.
    pub(super) _keep: Keep,
}

// SAFETY: an end holds a shared pointer to a ring of atomics (Sync for T: Pod) and a keeper
// that is Send + Sync; it hands out only `&SpscRing<T>`.
unsafe impl<T: Pod> Send for Producer<T> {}
// SAFETY: as above; its `&self` methods only read the ring.
unsafe impl<T: Pod> Sync for Producer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Pod> Send for Consumer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Pod> Sync for Consumer<T> {}

impl<T: Pod> Producer<T> {
    /// The ring, for the duration of a call on this end (the lifetime is not tied to `self`,
    /// so that a method may update the end's positions while it holds the ring).
    #[inline]
    fn r<'x>(&self) -> &'x SpscRing<T> {
        // SAFETY: `_keep` keeps the ring alive at this address for as long as this end lives,
        // and every caller uses the reference only within one call on the end.
        unsafe { self.ring.as_ref() }
    }

    /// Pushes `value` if there is room, without waiting.
    ///
    /// # Errors
    /// `Full(value)`, `Closed(value)`, or `Corrupted(value)` when the shared head is impossible.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        let r = self.r();
        if r.h.ctl.closed.load(Ordering::Relaxed) != 0 {
            return Err(PushError::Closed(value));
        }
        if self.tail.wrapping_sub(self.head_cache) >= self.cap {
            let head = r.h.head.load(Ordering::Acquire);
            let used = self.tail.wrapping_sub(head);
            if used > self.cap {
                return Err(PushError::Corrupted(value));
            }
            self.head_cache = head;
            if used == self.cap {
                return Err(PushError::Full(value));
            }
        }
        let (stamp, item) = r.slot(self.tail, self.cap);
        store_pod(item, &value);
        self.tail = self.tail.wrapping_add(1);
        // `tail` before the stamp: the consumer takes an item only once `tail` covers it, so
        // observers never see `head` ahead of `tail`.
        r.h.tail.store(self.tail, Ordering::Release);
        stamp.store(self.tail, Ordering::Release);
        notify(&r.h.ctl.items_waiting, &r.h.ctl.items);
        Ok(())
    }

    /// Pushes as many items from the front of `items` as there is room for, without waiting,
    /// publishing them all at once; returns how many were pushed (0 when full).
    ///
    /// # Errors
    /// `Closed(())`, or `Corrupted(())` when the shared head is impossible.
    pub fn push_slice(&mut self, items: &[T]) -> Result<usize, PushError<()>> {
        let r = self.r();
        if r.h.ctl.closed.load(Ordering::Relaxed) != 0 {
            return Err(PushError::Closed(()));
        }
        let mut free = self.cap - self.tail.wrapping_sub(self.head_cache).min(self.cap);
        if free < items.len() as u64 {
            let head = r.h.head.load(Ordering::Acquire);
            let used = self.tail.wrapping_sub(head);
            if used > self.cap {
                return Err(PushError::Corrupted(()));
            }
            self.head_cache = head;
            free = self.cap - used;
        }
        let n = free.min(items.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        for (k, v) in items[..n].iter().enumerate() {
            store_pod(r.slot(self.tail.wrapping_add(k as u64), self.cap).1, v);
        }
        let first = self.tail;
        self.tail = self.tail.wrapping_add(n as u64);
        r.h.tail.store(self.tail, Ordering::Release);
        for k in 0..n as u64 {
            let pos = first.wrapping_add(k);
            r.slot(pos, self.cap)
                .0
                .store(pos.wrapping_add(1), Ordering::Release);
        }
        notify(&r.h.ctl.items_waiting, &r.h.ctl.items);
        Ok(n)
    }

    /// Pushes `value`, waiting as long as the ring is full.
    ///
    /// # Errors
    /// `Closed(value)` (at once, or when the ring is closed while waiting), `Corrupted(value)`.
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push_until(value, None)
    }

    /// Pushes `value`, waiting at most `timeout` while the ring is full.
    ///
    /// While it waits it rechecks, every few milliseconds, that the consumer side's holder is
    /// alive: a full ring whose consumer died holding its side fails with `Closed(value)`.
    ///
    /// # Errors
    /// `Timeout(value)`, `Closed(value)`, `Corrupted(value)`.
    pub fn push_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.push_until(value, Some(timeout))
    }

    /// [`push_timeout`](Self::push_timeout) with `None` for no limit.
    fn push_until(&mut self, value: T, timeout: Option<Duration>) -> Result<(), PushError<T>> {
        let deadline = Deadline::after(timeout);
        let ring = self.r();
        let c = &ring.h.ctl;
        let mut value = Some(value);
        let r = block(Sleeper::one(&c.space_waiting, &c.space), deadline, |due| {
            let v = value.take().expect("the value is put back on every wait");
            match self.try_push(v) {
                Err(PushError::Full(v)) if due && peer_gone(&c.consumer) => {
                    // The consumer died: nobody will make room (a new consumer may take the
                    // side over later, but this call does not wait for one).
                    Look::Ready(Err(PushError::Closed(v)))
                }
                Err(PushError::Full(v)) => {
                    value = Some(v);
                    Look::Wait
                }
                other => Look::Ready(other),
            }
        });
        r.unwrap_or_else(|| {
            Err(PushError::Timeout(
                value.take().expect("the value is put back on every wait"),
            ))
        })
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.r().len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.r().is_empty()
    }

    /// Whether the ring is full now (a pop in another process may change that at once).
    pub fn is_full(&self) -> bool {
        self.r().is_full()
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Closes the ring (see [`SpscRing::close`]).
    pub fn close(&self) {
        self.r().close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.r().is_closed()
    }

    /// The ring this handle pushes into.
    pub fn ring(&self) -> &SpscRing<T> {
        self.r()
    }
}

impl<T: Pod> Drop for Producer<T> {
    fn drop(&mut self) {
        release(&self.r().h.ctl.producer);
    }
}

impl<T: Pod> Consumer<T> {
    /// The ring, for the duration of a call on this end (see [`Producer`]'s twin).
    #[inline]
    fn r<'x>(&self) -> &'x SpscRing<T> {
        // SAFETY: `_keep` keeps the ring alive at this address for as long as this end lives,
        // and every caller uses the reference only within one call on the end.
        unsafe { self.ring.as_ref() }
    }

    /// Pops the oldest item if there is one, without waiting.
    ///
    /// # Errors
    /// `Empty`; `Closed` once the ring is closed and drained; `Corrupted` when the shared tail
    /// is impossible.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        let r = self.r();
        let (stamp, item) = r.slot(self.head, self.cap);
        if stamp.load(Ordering::Acquire) != self.head.wrapping_add(1) {
            if let Some(e) = self.nothing_at_head() {
                return Err(e);
            }
        }
        self.empty_polls = 0;
        let v = load_pod(item);
        self.head = self.head.wrapping_add(1);
        r.h.head.store(self.head, Ordering::Release);
        notify(&r.h.ctl.space_waiting, &r.h.ctl.space);
        Ok(v)
    }

    /// Why there is no item at `head`: `Empty`, `Closed` (closed, and the stamp still says no
    /// after the close was seen) or `Corrupted` (the shared tail is impossible); `None` if the
    /// item turned up meanwhile (a push that raced with close).
    ///
    /// `tail` is read on the first empty poll and then every [`TAIL_CHECK_EVERY`] polls, not on
    /// each: a consumer spinning on an empty ring would otherwise keep pulling the producer's
    /// line away from it and slow the very push it waits for.
    #[cold]
    fn nothing_at_head(&mut self) -> Option<PopError> {
        let r = self.r();
        if r.h.ctl.closed.load(Ordering::Acquire) != 0 {
            let (stamp, _) = r.slot(self.head, self.cap);
            if stamp.load(Ordering::Acquire) == self.head.wrapping_add(1) {
                return None;
            }
            let tail = r.h.tail.load(Ordering::Acquire);
            return Some(match tail.wrapping_sub(self.head) {
                0 => PopError::Closed,
                // `tail` covers an item whose stamp is not written yet: it comes next.
                d if d <= self.cap => PopError::Empty,
                _ => PopError::Corrupted,
            });
        }
        let polls = self.empty_polls;
        self.empty_polls = polls.wrapping_add(1);
        if polls % TAIL_CHECK_EVERY == 0 && self.tail_corrupted() {
            return Some(PopError::Corrupted);
        }
        Some(PopError::Empty)
    }

    /// Whether the shared `tail` is impossible for our `head` (a scribbling peer).
    fn tail_corrupted(&self) -> bool {
        let tail = self.r().h.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.head) > self.cap
    }

    /// Pops up to `out.len()` items into the front of `out` without waiting, releasing their
    /// slots at once; returns how many were popped (0 when empty and open).
    ///
    /// # Errors
    /// `Closed` once the ring is closed and drained; `Corrupted` when the shared tail is
    /// impossible.
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<usize, PopError> {
        if out.is_empty() {
            return Ok(0);
        }
        let r = self.r();
        let mut n = 0;
        for v in out.iter_mut() {
            let pos = self.head.wrapping_add(n as u64);
            let (stamp, item) = r.slot(pos, self.cap);
            if stamp.load(Ordering::Acquire) != pos.wrapping_add(1) {
                break;
            }
            *v = load_pod(item);
            n += 1;
        }
        if n == 0 {
            return match self.nothing_at_head() {
                // An item turned up, or none is there yet: the caller tries again.
                None | Some(PopError::Empty) => Ok(0),
                Some(e) => Err(e),
            };
        }
        self.head = self.head.wrapping_add(n as u64);
        r.h.head.store(self.head, Ordering::Release);
        notify(&r.h.ctl.space_waiting, &r.h.ctl.space);
        Ok(n)
    }

    /// Pops the oldest item, waiting as long as the ring is empty.
    ///
    /// # Errors
    /// `Closed` once the ring is closed and drained; `Corrupted`.
    pub fn pop(&mut self) -> Result<T, PopError> {
        self.pop_until(None)
    }

    /// Pops the oldest item, waiting at most `timeout` while the ring is empty.
    ///
    /// While it waits it rechecks, every few milliseconds, that the producer side's holder is
    /// alive: once a producer that died holding its side has nothing left in the ring, the pop
    /// fails with `Closed` (every item it pushed before dying is popped first).
    ///
    /// # Errors
    /// `Timeout`, `Closed` (closed and drained, or the producer died), `Corrupted`.
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopError> {
        self.pop_until(Some(timeout))
    }

    /// [`pop_timeout`](Self::pop_timeout) with `None` for no limit.
    fn pop_until(&mut self, timeout: Option<Duration>) -> Result<T, PopError> {
        let deadline = Deadline::after(timeout);
        let ring = self.r();
        let c = &ring.h.ctl;
        block(Sleeper::one(&c.items_waiting, &c.items), deadline, |due| {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                other => return Look::Ready(other),
            }
            if !due {
                return Look::Wait;
            }
            if self.tail_corrupted() {
                return Look::Ready(Err(PopError::Corrupted));
            }
            if peer_gone(&c.producer) {
                // Drain what it published before it died, then report it gone.
                return Look::Ready(match self.try_pop() {
                    Err(PopError::Empty) => Err(PopError::Closed),
                    other => other,
                });
            }
            Look::Wait
        })
        .unwrap_or(Err(PopError::Timeout))
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.r().len()
    }

    /// Whether the ring is empty now (a push in another process may change that at once).
    pub fn is_empty(&self) -> bool {
        self.r().is_empty()
    }

    /// Whether the ring is full now.
    pub fn is_full(&self) -> bool {
        self.r().is_full()
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Closes the ring (see [`SpscRing::close`]).
    pub fn close(&self) {
        self.r().close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.r().is_closed()
    }

    /// The ring this handle pops from.
    pub fn ring(&self) -> &SpscRing<T> {
        self.r()
    }
}

impl<T: Pod> Drop for Consumer<T> {
    fn drop(&mut self) {
        release(&self.r().h.ctl.consumer);
    }
}
