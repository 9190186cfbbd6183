//! [`SeqLock<T>`]: one plain value of any size, read tear-free without blocking the writer.

use super::latch::Rotation;
use super::writer::{self, Acquired, Wait, WriterLock};
use super::{alloc_region, round_up, SLOT, STALL};
use crate::sync::{AtomicU64, Deadline, Ordering, Spin};
use crate::words::{load_pod, load_uninit, store_pod, words_for_type};
use crate::Result;
use bytemuck::Pod;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use std::time::Duration;

/// A `T` of any size shared between threads and processes: readers take consistent snapshots
/// without writing shared memory, writers never wait for readers.
///
/// `T` is any [`bytemuck::Pod`] type (`[f64; 512]`, a `#[repr(C)]` struct of prices…). The value
/// is kept in [`copies_for`]`(size_of::<T>())` rotating copies (see the
/// [guide](crate::guide::seqlocks)): a reader is disturbed only when the writer laps it, a writer
/// killed in the middle of a write leaves the previous value readable, and the next writer
/// simply writes again. Writers from any number of threads and processes are serialized by a
/// writer lock that detects a dead holder.
///
/// A `SeqLock` is a dynamically sized type (its data words follow the lock), so on the heap it
/// lives in a `Box`; in a segment use [`Segment::seqlock`](crate::Segment::seqlock).
///
/// Writes wait for another live writer (sleeping on a futex, rechecking that writer's liveness
/// every few milliseconds), take over from a dead one, and have `try_` and `_timeout` twins. A
/// thread that already holds the writer lock gets
/// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) instead of waiting for itself.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// use std::time::Duration;
/// let cfg = shmkit::SeqLock::new([0u64; 8]);
/// cfg.write(&[7; 8])?;
/// cfg.update(|v| v[0] += 1)?;
/// assert_eq!(cfg.read(), [8, 7, 7, 7, 7, 7, 7, 7]);
/// let mut w = cfg.writer()?; // holds the writer lock for a series of writes
/// w.write(&[1; 8]);
/// // The same thread asking again would wait for itself: an error, not a hang.
/// assert!(matches!(cfg.write(&[2; 8]), Err(shmkit::Error::WouldDeadlock { .. })));
/// drop(w);
/// cfg.write_timeout(&[1; 8], Duration::from_millis(100))?;
/// assert_eq!(cfg.try_read(), Some([1; 8]));
/// # Ok(()) }
/// ```
#[repr(C)]
pub struct SeqLock<T> {
    _t: PhantomData<fn() -> T>,
    lock: WriterLock,
    /// The latch, carved locally from `T`'s size (offsets in words):
    ///
    /// | words                         | what                                                   |
    /// | ----------------------------- | ------------------------------------------------------ |
    /// | `0` (own 128 B slot)          | `published`: the version, i.e. completed writes        |
    /// | `SLOT` (own 128 B slot)       | `begun`: the version the writer last started           |
    /// | `2·SLOT + c·S ..`, `c < N`    | copy `c` (`E` words; `S` = `E` rounded up to a slot)   |
    ///
    /// `published` is the only word readers poll; `begun` is read only by
    /// [`read_checked`](SeqLock::read_checked).
    words: [AtomicU64],
}

/// Number of rotating copies a [`SeqLock`] of a `bytes`-byte value keeps (a power of two): 16 up
/// to 512 bytes, 8 up to 64 KiB, 4 above (4 under loom, to keep the models small).
///
/// A reader is disturbed only when the writer completes `N − 1` writes during its read, so `N`
/// must cover how much slower a read is than a write. A reader of a freshly written value pulls
/// every cache line of it from the writer's core (~100 ns each, overlapped), while the writer
/// stores into lines it mostly owns already: a small value is written in about 10 ns but read in
/// about three cache misses, a 4 KiB one written in about 0.3 µs but read in 1–2 µs. The cost is
/// memory: `N ×` the value, each copy rounded up to 128 bytes; above 64 KiB the copies are capped
/// at 4 (three whole writes of a large value still take long).
pub const fn copies_for(bytes: usize) -> usize {
    if cfg!(feature = "loom") {
        4
    } else if bytes <= 512 {
        16
    } else if bytes <= 64 << 10 {
        8
    } else {
        4
    }
}

impl<T: Pod> SeqLock<T> {
    /// Data words of one copy.
    const E: usize = words_for_type::<T>();
    /// Number of copies.
    const N: usize = copies_for(core::mem::size_of::<T>());
    /// Words from one copy to the next.
    const S: usize = round_up(Self::E, SLOT);
    /// All words after the lock.
    const WORDS: usize = 2 * SLOT + Self::N * Self::S;

    /// A seqlock on the heap holding `init` (for one process, tests and models).
    pub fn new(init: T) -> Box<Self> {
        let raw = alloc_region(Self::WORDS) as *mut Self;
        // SAFETY: `alloc_region` returned a heap allocation of `region_layout(WORDS)`, which is
        // the layout of `Self` with WORDS words (repr(C): a zero-sized marker, the lock, the
        // words), fully initialized, from the global allocator: what `Box` owns and frees.
        let b = unsafe { Box::from_raw(raw) };
        b.init_with(&init);
        b
    }

    fn init_with(&self, init: &T) {
        self.lock.init_free();
        self.begun().store(0, Ordering::Relaxed);
        let r = self.latch();
        // Version 0 lives in copy 0; the other copies are filled before they are published.
        store_pod(&self.words[2 * SLOT..2 * SLOT + Self::E], init);
        r.init();
    }

    #[inline]
    fn latch(&self) -> Rotation<'_> {
        Rotation::new(
            &self.words[0],
            &self.words[2 * SLOT..],
            Self::N,
            Self::S,
            Self::E,
        )
    }

    #[inline]
    fn begun(&self) -> &AtomicU64 {
        &self.words[SLOT]
    }

    /// The current value. Retries only while the writer laps the read (`N − 1` writes during
    /// it); never waits for a writer that stopped or died (it then returns the last complete
    /// value).
    #[inline]
    pub fn read(&self) -> T {
        self.read_versioned().0
    }

    /// Reads into a value in place (a large `T` is not moved around) and returns it with the
    /// version read.
    #[inline]
    fn read_versioned(&self) -> (T, u64) {
        let mut v = MaybeUninit::uninit();
        let ((), s) = self.latch().read(|c| {
            load_uninit(c, &mut v);
        });
        // SAFETY: `read` returns after a complete call of the closure, and `load_uninit`
        // initializes every byte of `v`.
        (unsafe { v.assume_init() }, s)
    }

    /// One attempt at reading: `None` when the writer lapped it (contention), instead of
    /// retrying.
    #[inline]
    pub fn try_read(&self) -> Option<T> {
        let mut v = MaybeUninit::uninit();
        self.latch().try_read(|c| {
            load_uninit(c, &mut v);
        })?;
        // SAFETY: `try_read` returned `Some`, so the closure ran to completion, and
        // `load_uninit` initializes every byte of `v`.
        Some(unsafe { v.assume_init() })
    }

    /// Reads like [`read`](Self::read) and reports a writer that died in the middle of a write.
    ///
    /// When a write of the next version has begun but is not published, it waits up to
    /// 50 µs for the version to move on, then checks (one `/proc` read) that the
    /// writer still runs.
    ///
    /// # Errors
    /// [`Error::WriterDied`](crate::Error::WriterDied) when the writer died mid-write; the last
    /// complete value is still available from [`read`](Self::read), and the next writer takes
    /// over.
    pub fn read_checked(&self) -> Result<T> {
        let r = self.latch();
        let (v, s) = self.read_versioned();
        // `begun` was stored before `published = s` (which we acquired): it reads `s`, or a later
        // write has begun.
        if self.begun().load(Ordering::Relaxed) == s {
            return Ok(v);
        }
        let deadline = Deadline::after(Some(STALL));
        let mut spin = Spin::new();
        let mut rounds = 0u32;
        while r.version() == s {
            rounds += 1;
            // Under loom time stands still: a few rounds stand for the stall.
            if deadline.expired() || (cfg!(feature = "loom") && rounds > 2) {
                self.lock.check()?;
                return Ok(v);
            }
            spin.snooze();
        }
        Ok(v)
    }

    /// `Err(WriterDied)` when the writer lock is held by a process that no longer runs (it died
    /// during or between writes); one `/proc` read when the lock is held.
    pub fn check_writer(&self) -> Result<()> {
        self.lock.check()
    }

    /// Number of writes completed so far (wrapping; for tools and change detection).
    pub fn version(&self) -> u64 {
        self.latch().version()
    }

    /// Replaces the value. Takes the writer lock for this one write: waits while another live
    /// writer holds it (sleeping, and rechecking that writer's liveness every
    /// [`LIVENESS_PERIOD`](super::LIVENESS_PERIOD)), takes over from a dead one.
    ///
    /// # Errors
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread holds the writer
    /// lock already (a [`SeqLockWriter`] of this seqlock is alive in it).
    #[inline]
    pub fn write(&self, v: &T) -> Result<()> {
        self.write_waiting(v, Wait::For(None))
    }

    /// One write under the lock taken as `wait` allows (no `Result<Writer>` on the way: the
    /// small `Fail` keeps the fast path in registers).
    #[inline]
    fn write_waiting(&self, v: &T, wait: Wait) -> Result<()> {
        match self.lock.acquire(wait) {
            Ok(a) => self.wrap(a).write(v),
            Err(f) => Err(f.into_error(wait)),
        }
    }

    fn writer_waiting(&self, wait: Wait) -> Result<SeqLockWriter<'_, T>> {
        match self.lock.acquire(wait) {
            Ok(a) => Ok(self.wrap(a)),
            Err(f) => Err(f.into_error(wait)),
        }
    }

    /// Like [`write`](Self::write), waiting at most `timeout` for the writer lock.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) when a live writer kept the lock for all of
    /// `timeout` (also a stopped one, or a live process's identity written into the lock word);
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock).
    pub fn write_timeout(&self, v: &T, timeout: Duration) -> Result<()> {
        self.write_waiting(v, Wait::For(Some(timeout)))
    }

    /// Replaces the value with `f` applied to it, atomically with respect to other writers;
    /// returns the new value. Waits for the writer lock as [`write`](Self::write) does.
    ///
    /// # Errors
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread holds the writer
    /// lock already.
    pub fn update(&self, f: impl FnOnce(&mut T)) -> Result<T> {
        self.writer()?.update(f)
    }

    /// Replaces the value if the writer lock is free (or its holder is dead).
    ///
    /// # Errors
    /// [`Error::WriterBusy`](crate::Error::WriterBusy) when another live writer holds the lock;
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread does.
    pub fn try_write(&self, v: &T) -> Result<()> {
        self.write_waiting(v, Wait::Try)
    }

    /// Takes the writer lock and keeps it until the returned handle is dropped: a single-writer
    /// handle whose writes make no lock traffic. Waits as [`write`](Self::write) does.
    ///
    /// # Errors
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread holds the writer
    /// lock already.
    pub fn writer(&self) -> Result<SeqLockWriter<'_, T>> {
        self.writer_waiting(Wait::For(None))
    }

    /// Like [`writer`](Self::writer), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout), [`Error::WouldDeadlock`](crate::Error::WouldDeadlock).
    pub fn writer_timeout(&self, timeout: Duration) -> Result<SeqLockWriter<'_, T>> {
        self.writer_waiting(Wait::For(Some(timeout)))
    }

    /// Like [`writer`](Self::writer), without waiting.
    ///
    /// # Errors
    /// [`Error::WriterBusy`](crate::Error::WriterBusy) when another live writer holds the lock;
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread does.
    pub fn try_writer(&self) -> Result<SeqLockWriter<'_, T>> {
        self.writer_waiting(Wait::Try)
    }

    fn wrap(&self, a: Acquired) -> SeqLockWriter<'_, T> {
        if a.took_over_from.is_some() {
            // The dead writer never released the lock: read its last version with a
            // read-modify-write. Its unpublished copy is simply written again by the next write;
            // `begun` is set back so `read_checked` stops waiting for it.
            let v = self.latch().resync();
            self.begun().store(v, Ordering::Relaxed);
        }
        SeqLockWriter {
            lock: self,
            took_over_from: a.took_over_from,
            generation: writer::generation(),
        }
    }

    /// Test hook: takes the writer lock in the name of process `owner_pid` (this process's
    /// identity when it is our pid), starts writing `v` and abandons the write before it is
    /// published, with half of the data written — the state a writer killed there leaves. The
    /// lock stays held.
    ///
    /// # Errors
    /// [`Error::WriterBusy`](crate::Error::WriterBusy) when the lock is held.
    #[doc(hidden)]
    pub fn __abandon_write(&self, v: &T, owner_pid: u32) -> Result<()> {
        let id = if owner_pid == crate::process::pid() {
            writer::me()
        } else {
            writer::pack(owner_pid, 0)
        };
        // Keep the lock held, as the killed writer would (by no thread of this process).
        let a = (self.lock.acquire_as(id, 0, Wait::Try)).map_err(|f| f.into_error(Wait::Try))?;
        core::mem::forget(self.wrap(a));
        let scratch: Vec<AtomicU64> = (0..Self::E).map(|_| AtomicU64::new(0)).collect();
        store_pod(&scratch, v);
        let (u, _, next) = self.latch().begin();
        self.begun().store(u, Ordering::Relaxed);
        let half = Self::E.div_ceil(2);
        super::latch::copy_words(&next[..half], &scratch[..half]);
        Ok(())
    }
}

/// Holds a [`SeqLock`]'s writer lock (from [`SeqLock::writer`]); released on drop.
///
/// A copy inherited by a `fork()`ed child is inert there: its writes return
/// [`Error::InheritedGuard`](crate::Error::InheritedGuard) and change nothing, and dropping it
/// leaves the parent's lock held.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let pos = seg.seqlock("pos", [0.0f64; 3])?;
/// let mut w = pos.writer()?; // other writers wait (or time out) until `w` is dropped
/// for step in 1..=3 {
///     w.write(&[step as f64, 0.0, 0.0])?;
/// }
/// assert_eq!(w.update(|p| p[1] = 2.0)?, [3.0, 2.0, 0.0]);
/// assert!(matches!(pos.try_write(&[0.0; 3]), Err(shmkit::Error::WouldDeadlock { .. })));
/// drop(w);
/// assert_eq!(pos.read(), [3.0, 2.0, 0.0]);
/// # Ok(()) }
/// ```
pub struct SeqLockWriter<'a, T: Pod> {
    lock: &'a SeqLock<T>,
    took_over_from: Option<u32>,
    /// The fork generation the lock was taken in (the guard is inert in another).
    generation: u64,
}

impl<T: Pod> SeqLockWriter<'_, T> {
    /// Replaces the value.
    ///
    /// # Errors
    /// [`Error::InheritedGuard`](crate::Error::InheritedGuard) in a `fork()`ed child, for a
    /// writer its parent took (nothing is written).
    #[inline]
    pub fn write(&mut self, v: &T) -> Result<()> {
        if self.generation != writer::generation() {
            return Err(writer::inherited());
        }
        let begun = self.lock.begun();
        self.lock.latch().write(|u, _, next| {
            begun.store(u, Ordering::Relaxed);
            store_pod(next, v);
        });
        Ok(())
    }

    /// The current value (the writer's own, without retry).
    #[inline]
    pub fn get(&self) -> T {
        load_pod(self.lock.latch().current())
    }

    /// Replaces the value with `f` applied to it; returns the new value.
    ///
    /// # Errors
    /// [`Error::InheritedGuard`](crate::Error::InheritedGuard), as [`write`](Self::write).
    pub fn update(&mut self, f: impl FnOnce(&mut T)) -> Result<T> {
        let mut v = self.get();
        f(&mut v);
        self.write(&v)?;
        Ok(v)
    }

    /// The pid of a dead writer whose lock this writer took over (its unpublished write is
    /// discarded), like `EOWNERDEAD`.
    pub fn took_over_from(&self) -> Option<u32> {
        self.took_over_from
    }
}

impl<T: Pod> Drop for SeqLockWriter<'_, T> {
    fn drop(&mut self) {
        // Frees the lock only if this process holds it: in a forked child (another process)
        // an inherited writer leaves the parent's lock alone.
        self.lock.lock.release(writer::me());
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for SeqLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SeqLock").field(&self.read()).finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use crate::seqlock::{fat, region_layout, LAYOUT_VERSION};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: SeqLock<T> is #[repr(C)]: a zero-sized marker, a padded AtomicU64 and AtomicU64
    // words, valid for every bit pattern; the word count comes from T (local), never from shared
    // memory, and `layout` covers it; no pointers, no Drop.
    unsafe impl<T: Pod> Object for SeqLock<T> {
        type Params = T;
        fn element() -> TypeTag {
            TypeTag::of::<T>(Kind::SEQLOCK)
        }
        /// `extra` holds the latch layout version: an object of another layout (another shmkit
        /// build) is a type mismatch, never misread.
        fn tag(_: &T) -> TypeTag {
            Self::element().with_dims(0, LAYOUT_VERSION)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            if tag.elem_size as usize != core::mem::size_of::<T>() || tag.extra != LAYOUT_VERSION {
                return None;
            }
            region_layout(Self::WORDS)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, init: T) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag), which is
            // the layout of Self with WORDS words; every bit pattern is valid (all atomics).
            let s = unsafe { Self::cast(ptr, tag).as_ref() };
            s.init_with(&init);
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            fat(ptr, Self::WORDS, |p| p as *mut Self)
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn odd_sizes_round_trip() {
        let a = SeqLock::new([1u8, 2, 3]);
        assert_eq!(a.read(), [1, 2, 3]);
        a.write(&[4, 5, 6]).unwrap();
        assert_eq!(a.update(|v| v[2] = 9).unwrap(), [4, 5, 9]);
        assert_eq!(a.read(), [4, 5, 9]);
        assert_eq!(a.version(), 2);
        let z = SeqLock::new(());
        z.write(&()).unwrap();
        z.read();
    }

    /// A value larger than a copy's 128-byte slot and not a whole number of words.
    #[test]
    fn large_odd_size_round_trip() {
        type Odd = [[[u8; 3]; 3]; 31]; // 279 bytes
        let fill = |f: fn(usize) -> u8| -> Odd {
            let mut v: Odd = bytemuck::Zeroable::zeroed();
            for (i, b) in bytemuck::bytes_of_mut(&mut v).iter_mut().enumerate() {
                *b = f(i);
            }
            v
        };
        let init = fill(|i| i as u8);
        let s = SeqLock::new(init);
        assert_eq!(s.read(), init);
        let next = fill(|i| !(i as u8));
        s.write(&next).unwrap();
        assert_eq!(s.try_read(), Some(next));
        assert_eq!(s.read_checked().unwrap(), next);
    }

    #[test]
    fn threads_never_tear() {
        // Under miri (data-race detector, weak-memory emulation) a shorter run.
        const N: u64 = if cfg!(miri) { 100 } else { 20_000 };
        let s = SeqLock::new([0u64; 32]);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                for k in 1..=N {
                    s.write(&[k; 32]).unwrap();
                }
            });
            for _ in 0..2 {
                sc.spawn(|| {
                    let mut last = 0;
                    while last < N {
                        let v = s.read();
                        assert!(v.iter().all(|&x| x == v[0]), "torn read {v:?}");
                        assert!(v[0] >= last, "went back in time");
                        last = v[0];
                    }
                });
            }
        });
    }

    #[test]
    fn dead_writer_keeps_old_value_and_is_repaired() {
        let s = SeqLock::new([1u64; 9]);
        let dead = (1 << 22) - 3; // above any pid in use (pids are below 2²²)
        s.__abandon_write(&[2; 9], dead).unwrap();
        assert_eq!(s.read(), [1; 9], "readers keep the last complete value");
        assert!(matches!(s.read_checked(), Err(Error::WriterDied { pid }) if pid == dead));
        assert!(matches!(s.check_writer(), Err(Error::WriterDied { .. })));
        let mut w = s.try_writer().unwrap();
        assert_eq!(w.took_over_from(), Some(dead));
        assert_eq!(w.get(), [1; 9], "the takeover sees the last complete value");
        w.write(&[3; 9]).unwrap();
        drop(w);
        assert_eq!(s.read_checked().unwrap(), [3; 9]);
        s.check_writer().unwrap();
    }

    /// A writer dead mid-write whose successor died mid-write too (under the same dead
    /// identity): the second abandoned write takes the lock over like any dead holder's
    /// (found by the seqlock_ops fuzz smoke: it was refused as the same thread twice).
    #[test]
    fn writer_dead_twice_is_taken_over() {
        let s = SeqLock::new([1u64; 3]);
        let dead = (1 << 22) - 3;
        s.__abandon_write(&[2; 3], dead).unwrap();
        s.__abandon_write(&[3; 3], dead).unwrap();
        assert_eq!(s.read(), [1; 3]);
        let mut w = s.try_writer().unwrap();
        assert_eq!(w.took_over_from(), Some(dead));
        w.write(&[4; 3]).unwrap();
        drop(w);
        assert_eq!(s.read_checked().unwrap(), [4; 3]);
    }

    #[test]
    fn busy_writer_is_reported() {
        let s = SeqLock::new(5u32);
        let w = s.writer().unwrap();
        // This thread: every form refuses at once rather than wait for itself.
        assert!(matches!(s.try_write(&1), Err(Error::WouldDeadlock { .. })));
        assert!(matches!(s.write(&1), Err(Error::WouldDeadlock { .. })));
        assert!(matches!(s.update(|_| ()), Err(Error::WouldDeadlock { .. })));
        assert!(matches!(
            s.write_timeout(&1, Duration::from_secs(60)),
            Err(Error::WouldDeadlock { .. })
        ));
        // Another thread of this process: busy, and a bounded wait ends by its deadline.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                assert!(matches!(
                    s.try_write(&1),
                    Err(Error::WriterBusy { pid }) if pid == std::process::id()
                ));
                let t = std::time::Instant::now();
                assert!(matches!(
                    s.write_timeout(&1, Duration::from_millis(50)),
                    Err(Error::Timeout { .. })
                ));
                assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
            });
        });
        drop(w);
        s.try_write(&1).unwrap();
        assert_eq!(s.read(), 1);
        // Released: the next thread waiting on a holder is woken when it lets go.
        let w = s.writer().unwrap();
        std::thread::scope(|sc| {
            let h = sc.spawn(|| s.write_timeout(&2, Duration::from_secs(60)));
            std::thread::sleep(Duration::from_millis(20));
            drop(w);
            h.join().unwrap().unwrap();
        });
        assert_eq!(s.read(), 2);
    }
}
