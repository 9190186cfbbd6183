//! Holding a core lock guard across Python calls (`acquire()` … `release()`).
//!
//! The core's guards borrow the lock they hold and are not `Send` (a lock belongs to a thread).
//! A Python lock object keeps them between calls, so the borrow is extended to `'static` and
//! the guard wrapped to satisfy `#[pyclass]`'s `Send` bound; the invariants that make both
//! sound are stated at each use.

use std::thread::ThreadId;

/// A guard (or a lock result carrying one) that is moved between Python calls of one object.
///
/// Sound to send because a guard is only ever *used* (dropped, marked consistent) by the
/// process that took it; dropping it on another thread of that process runs the core's unlock,
/// a compare-exchange of the owner word recorded in the guard, which any thread may do.
pub struct Carry<T>(pub T);

// SAFETY: see the type's docs: the core's unlock and mark_consistent act on the owner recorded
// in the guard, not on the calling thread's identity; a guard inherited by a fork child is inert.
unsafe impl<T> Send for Carry<T> {}

/// A held guard and the thread that took it.
pub struct Held<G> {
    pub thread: ThreadId,
    pub guard: Carry<G>,
}

impl<G> Held<G> {
    pub fn new(guard: G) -> Self {
        Held {
            thread: std::thread::current().id(),
            guard: Carry(guard),
        }
    }

    pub fn mine(&self) -> bool {
        self.thread == std::thread::current().id()
    }
}

/// The guard `g` of a lock inside a `Handle`, with its borrow extended to `'static`.
///
/// # Safety
/// The caller stores the result in the same object as the `Handle` the lock lives in, in a
/// field declared *before* the handle (fields drop in declaration order), and never moves the
/// guard out of that object except to drop it while the handle is alive. The handle keeps the
/// mapping (and so the lock's address) valid for as long as it lives.
pub unsafe fn extend<G: Unextended>(g: G) -> G::Static {
    // SAFETY: per the contract, the borrowed lock outlives the returned guard.
    unsafe { g.extend() }
}

/// Guards whose lifetime can be extended (the two kinds the lock objects hold).
pub trait Unextended {
    type Static;
    /// # Safety
    /// As [`extend`].
    unsafe fn extend(self) -> Self::Static;
}

impl<'a> Unextended for shmkit::MutexGuard<'a, ()> {
    type Static = shmkit::MutexGuard<'static, ()>;
    unsafe fn extend(self) -> Self::Static {
        // SAFETY: same type up to the lifetime; the caller upholds `extend`'s contract.
        unsafe { std::mem::transmute::<shmkit::MutexGuard<'a, ()>, Self::Static>(self) }
    }
}

impl<'a> Unextended for shmkit::ReentrantGuard<'a> {
    type Static = shmkit::ReentrantGuard<'static>;
    unsafe fn extend(self) -> Self::Static {
        // SAFETY: as above.
        unsafe { std::mem::transmute::<shmkit::ReentrantGuard<'a>, Self::Static>(self) }
    }
}
