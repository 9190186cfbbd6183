//! Wait-free counters: [`Counter`] (one word) and [`ShardedCounter`] (one word per stripe).

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// A 64-bit counter that any number of threads and processes update at once, wait-free.
///
/// Every operation is a single atomic instruction (`lock xadd`, `xchg`…): no lock, no system
/// call, no retry loop. Arithmetic wraps at 2⁶⁴. The counter sits alone on its cache line (128
/// bytes on x86_64, where the prefetcher pulls lines in pairs), so it does not slow its neighbours.
///
/// Under heavy contention from many cores every add still fights for the one line; when adds
/// dominate and exact reads are rare, [`ShardedCounter`] scales better.
///
/// ```
/// let c = shmkit::Counter::new(0);
/// c.add(5);
/// c.inc();
/// assert_eq!(c.load(), 6);
/// assert_eq!(c.reset(), 6);
/// assert_eq!(c.load(), 0);
/// ```
#[repr(C)]
pub struct Counter {
    value: CachePadded<AtomicU64>,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Counter, CachePadded<u64>);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Counter, CachePadded<u64>);

impl Counter {
    /// A counter on the heap (for one process, tests and models), starting at `initial`.
    pub fn new(initial: u64) -> Self {
        Counter {
            value: CachePadded::new(AtomicU64::new(initial)),
        }
    }

    /// Adds `n` (wrapping).
    #[inline]
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` (wrapping).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.value.fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` and returns the value before (wrapping). Acquire-release: a process that sees
    /// the result also sees what the adder wrote before it.
    #[inline]
    pub fn fetch_add(&self, n: u64) -> u64 {
        self.value.fetch_add(n, Ordering::AcqRel)
    }

    /// Subtracts `n` and returns the value before (wrapping).
    #[inline]
    pub fn fetch_sub(&self, n: u64) -> u64 {
        self.value.fetch_sub(n, Ordering::AcqRel)
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value.
    #[inline]
    pub fn store(&self, v: u64) {
        self.value.store(v, Ordering::Release);
    }

    /// Sets the value and returns the previous one.
    #[inline]
    pub fn swap(&self, v: u64) -> u64 {
        self.value.swap(v, Ordering::AcqRel)
    }

    /// Sets the value to 0 and returns the previous one; no concurrent add is lost (each lands
    /// either in the returned total or in the counter).
    #[inline]
    pub fn reset(&self) -> u64 {
        self.swap(0)
    }

    /// Stores `new` if the value is `current`; returns the value found (`Ok` if it was stored).
    #[inline]
    pub fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.value
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }
}

impl core::fmt::Debug for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Counter").field(&self.load()).finish()
    }
}

/// Number of stripes of a [`ShardedCounter`].
pub const SHARDS: usize = 32;

/// A counter split into [`SHARDS`] cache-line-padded stripes: each thread adds to its own stripe,
/// so adds from many threads and processes do not fight over one cache line; [`sum`] reads them
/// all.
///
/// `sum` is exact whenever no add is in flight; while adds run it returns a value between the
/// totals before and after them (never a lost update). Each thread picks its stripe once (threads
/// of one process take consecutive stripes, processes start at a pid-scattered point); a stripe
/// shared by two writers is still correct, just slower.
///
/// [`sum`]: ShardedCounter::sum
///
/// ```
/// let c = shmkit::ShardedCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| for _ in 0..1000 { c.inc() });
///     }
/// });
/// assert_eq!(c.sum(), 4000);
/// ```
#[repr(C)]
pub struct ShardedCounter {
    shards: [CachePadded<AtomicU64>; SHARDS],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(ShardedCounter, [CachePadded<u64>; SHARDS]);

impl ShardedCounter {
    /// A sharded counter on the heap, at 0.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ShardedCounter {
            shards: core::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }

    #[inline]
    fn mine(&self) -> &AtomicU64 {
        &self.shards[crate::sync::thread_stripe() % SHARDS]
    }

    /// Adds `n` to this thread's stripe (wrapping).
    #[inline]
    pub fn add(&self, n: u64) {
        self.mine().fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` (wrapping; the sum stays right even if one stripe goes "below zero").
    #[inline]
    pub fn sub(&self, n: u64) {
        self.mine().fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` to stripe `stripe % SHARDS` (for callers that assign stripes themselves, e.g. a
    /// worker number).
    #[inline]
    pub fn add_to(&self, stripe: usize, n: u64) {
        self.shards[stripe % SHARDS].fetch_add(n, Ordering::Relaxed);
    }

    /// The total of all stripes (wrapping).
    pub fn sum(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.load(Ordering::Acquire)))
    }

    /// The value of each stripe, for tools.
    pub fn stripes(&self) -> [u64; SHARDS] {
        core::array::from_fn(|i| self.shards[i].load(Ordering::Acquire))
    }

    /// Sets every stripe to 0 and returns the total taken; no concurrent add is lost.
    pub fn reset(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.swap(0, Ordering::AcqRel)))
    }
}

impl core::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.sum()).finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Counter is #[repr(C)], a padded AtomicU64 (valid for any bits); cast keeps to its
    // fixed layout; no pointers, no Drop.
    unsafe impl Object for Counter {
        type Params = u64;
        fn element() -> TypeTag {
            TypeTag::plain(Kind::COUNTER)
        }
        fn tag(_: &u64) -> TypeTag {
            Self::element()
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Counter>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, initial: u64) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Counter, whose every
            // bit pattern is valid; we write through the atomic.
            let c = unsafe { ptr.cast::<Counter>().as_ref() };
            c.store(initial);
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }

    // SAFETY: ShardedCounter is #[repr(C)], an array of padded AtomicU64s (valid for any bits);
    // fixed layout; no pointers, no Drop.
    unsafe impl Object for ShardedCounter {
        type Params = ();
        fn element() -> TypeTag {
            TypeTag::plain(Kind::SHARDED_COUNTER).with_dims(SHARDS as u64, 0)
        }
        fn tag(_: &()) -> TypeTag {
            Self::element()
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            (tag.len == SHARDS as u64).then(Layout::new::<ShardedCounter>)
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, _: ()) {
            // SAFETY: as for Counter: aligned, sized, all atomics.
            let c = unsafe { ptr.cast::<ShardedCounter>().as_ref() };
            for s in &c.shards {
                s.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn counter_ops() {
        let c = Counter::new(10);
        c.add(5);
        c.sub(3);
        c.inc();
        assert_eq!(c.load(), 13);
        assert_eq!(c.fetch_add(2), 13);
        assert_eq!(c.fetch_sub(1), 15);
        assert_eq!(c.swap(100), 14);
        assert_eq!(c.compare_exchange(1, 2), Err(100));
        assert_eq!(c.compare_exchange(100, 7), Ok(100));
        assert_eq!(c.reset(), 7);
        assert_eq!(c.load(), 0);
        c.sub(1);
        assert_eq!(c.load(), u64::MAX, "wraps");
    }

    #[test]
    fn sharded_threads_exact() {
        let c = ShardedCounter::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.inc();
                    }
                    c.sub(10);
                });
            }
        });
        assert_eq!(c.sum(), 8 * 9_990);
        assert_eq!(c.stripes().iter().sum::<u64>(), 8 * 9_990);
        assert_eq!(c.reset(), 8 * 9_990);
        assert_eq!(c.sum(), 0);
    }
}
