//! [`Event`]: a process-shared flag that threads wait on (Python's `multiprocessing.Event`).

use crate::sync::{futex_wait, futex_wake, AtomicU32, Deadline, Ordering};
use std::time::Duration;

/// A flag that is set or clear; waiters sleep until it is set. Like Python's `Event`: `set`
/// wakes every waiter and the flag stays set until [`clear`](Event::clear).
///
/// `set` makes a system call only when a waiter announced itself. A waiter whose process died
/// leaves the announcement behind, which costs a spare `FUTEX_WAKE`, nothing more.
///
/// ```
/// let e = shmkit::Event::new();
/// assert!(!e.try_wait());
/// std::thread::scope(|s| {
///     s.spawn(|| e.set());
///     e.wait();
/// });
/// assert!(e.is_set());
/// e.clear();
/// assert!(!e.wait_timeout(std::time::Duration::from_millis(1)));
/// ```
#[repr(C)]
pub struct Event {
    /// The futex word:
    ///
    /// | bits  | meaning                                                        |
    /// | ----- | -------------------------------------------------------------- |
    /// | 0     | the flag (1: set)                                              |
    /// | 31..1 | threads waiting or about to (a hint; counts dead waiters too)  |
    ///
    /// Flag and waiter count share one word, so `set` and a waiter's announcement are ordered
    /// by the word itself: `set` sees the waiter (and wakes), or the waiter sees the flag.
    state: AtomicU32,
}

const SET: u32 = 1;
const ONE_WAITER: u32 = 2;

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Event, u32);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Event, u32);

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    /// A clear event on the heap (for one process, tests and models).
    pub fn new() -> Self {
        Event {
            state: AtomicU32::new(0),
        }
    }

    /// Sets the flag and wakes every waiter (of any process).
    pub fn set(&self) {
        let old = self.state.fetch_or(SET, Ordering::AcqRel);
        if old & SET == 0 && old >= ONE_WAITER {
            futex_wake(&self.state, u32::MAX);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::AcqRel);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// The non-blocking twin of [`wait`](Event::wait): whether the flag is set.
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Sleeps until the flag is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_until(Deadline::after(None));
    }

    /// Sleeps until the flag is set, at most `timeout`. Returns whether it is set (Python's
    /// `Event.wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Deadline::after(Some(timeout)))
    }

    /// Threads waiting now (a hint).
    pub fn waiters(&self) -> u32 {
        self.state.load(Ordering::Relaxed) >> 1
    }

    fn wait_until(&self, deadline: Deadline) -> bool {
        // Announce (one CAS on the word), unless the flag is already set.
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & SET != 0 {
                return true;
            }
            if deadline.expired() {
                return false;
            }
            match self.state.compare_exchange(
                cur,
                cur.wrapping_add(ONE_WAITER),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        let mut seen = cur.wrapping_add(ONE_WAITER);
        let set = loop {
            futex_wait(&self.state, seen, deadline.remaining());
            seen = self.state.load(Ordering::Acquire);
            if seen & SET != 0 {
                break true;
            }
            if deadline.expired() {
                break false;
            }
        };
        // Adding or removing 2 never touches the flag bit.
        self.state.fetch_sub(ONE_WAITER, Ordering::AcqRel);
        set
    }
}

impl core::fmt::Debug for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.waiters())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Event is #[repr(C)], one AtomicU32 (valid for any bits); fixed layout; no
    // pointers, no Drop.
    unsafe impl Object for Event {
        type Params = ();
        fn element() -> TypeTag {
            TypeTag::plain(Kind::EVENT)
        }
        fn tag(_: &()) -> TypeTag {
            Self::element()
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Event>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, _: ()) {
            // SAFETY: per the trait contract ptr is aligned and sized for an Event.
            unsafe { ptr.cast::<Event>().as_ptr().write(Event::new()) }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}
