//! The MPMC announcement lines: which thread of which process is about to take, or has taken,
//! which push position, so that the positions of a dead producer are found and reaped (see the
//! [guide](crate::guide::mpmc), "Process death"). Pops need no line: a pop copies its item
//! before it takes the position, so a taken pop position is already finished.
//!
//! A line is one cache line written by one thread: the owner word of its process
//! ([`crate::process`]), the thread's id, the thread's announcement, and the last head it
//! read (a lower bound of the head, so that a push reads the head once a lap). Lines
//! `0..SHARED_LINE` belong to one thread each (claimed once, cached per thread); the last line
//! is shared by threads that found no line of their own and is held for one operation at a time.
//!
//! | `announce` | meaning |
//! | --- | --- |
//! | 0 | nothing announced |
//! | `ACTIVE \| pos` | about to take, or took, push position `pos` (63 bits) |

use super::engine::{lap_of, state_word, Core, SKIP};
use crate::ring::wait::wake;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Announcement lines of a ring (the last one is shared).
#[cfg(not(feature = "loom"))]
pub const LINES: usize = 128;
/// Announcement lines (small under loom, to keep the models' state space small).
#[cfg(feature = "loom")]
pub const LINES: usize = 4;
/// The line shared, one operation at a time, by threads that found no line of their own.
pub(crate) const SHARED_LINE: u64 = LINES as u64 - 1;

const ACTIVE: u64 = 1 << 63;
const POS_MASK: u64 = ACTIVE - 1;

/// The announcement of push position `pos`.
#[inline]
const fn announcement(pos: u64) -> u64 {
    ACTIVE | (pos & POS_MASK)
}

/// One thread's announcement line.
#[repr(C)]
pub(crate) struct Line {
    /// The owner word of the process holding the line; 0 when free.
    pub(crate) owner: AtomicU64,
    /// The holder's thread id (0 while it is being claimed; unused on the shared line).
    pub(crate) tid: AtomicU64,
    /// What the holder announced (see the module docs).
    pub(crate) announce: AtomicU64,
    /// A head value the holder read (so at most the head now); a hint, 0 when fresh.
    seen_head: AtomicU64,
    _reserved: [AtomicU64; 4],
}

impl Line {
    fn fresh() -> Self {
        Line {
            owner: AtomicU64::new(0),
            tid: AtomicU64::new(0),
            announce: AtomicU64::new(0),
            seen_head: AtomicU64::new(0),
            _reserved: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    #[cfg(not(feature = "loom"))]
    fn reset(&self) {
        for w in [&self.owner, &self.tid, &self.announce, &self.seen_head]
            .into_iter()
            .chain(self._reserved.iter())
        {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Announces push position `pos`, before the CAS that takes it. Release: a reaper that
    /// sees the announcement also sees everything this thread did before (the end of its
    /// previous push).
    #[inline]
    pub(crate) fn announce(&self, pos: u64) {
        self.announce.store(announcement(pos), Ordering::Release);
    }

    /// The last head value stored by [`set_seen_head`](Self::set_seen_head). Acquire: with the
    /// Release there, whoever reads it (another thread that took the line over, or the shared
    /// line's next holder) also sees the pops before that head (their copies are done).
    #[inline]
    pub(crate) fn seen_head(&self) -> u64 {
        self.seen_head.load(Ordering::Acquire)
    }

    /// Records head value `h`, read from the ring's head (with Acquire).
    #[inline]
    pub(crate) fn set_seen_head(&self, h: u64) {
        self.seen_head.store(h, Ordering::Release);
    }

    /// Withdraws the announcement of a position this thread did not take.
    #[inline]
    pub(crate) fn withdraw(&self) {
        self.announce.store(0, Ordering::Release);
    }
}

/// The MPMC part of the header: the lost-item count and the announcement lines.
#[repr(C)]
pub(crate) struct MpmcMeta {
    /// Items lost with a process that died while holding their position.
    pub(crate) lost: AtomicU64,
    _reserved: [AtomicU64; 15],
    pub(crate) lines: [CachePadded<Line>; LINES],
}

#[cfg(not(feature = "loom"))]
static_assertions::const_assert_eq!(core::mem::size_of::<Line>(), 64);
#[cfg(all(not(feature = "loom"), target_arch = "x86_64"))]
static_assertions::const_assert_eq!(core::mem::size_of::<MpmcMeta>(), 128 + 128 * LINES);

impl MpmcMeta {
    pub(crate) fn fresh() -> Self {
        MpmcMeta {
            lost: AtomicU64::new(0),
            _reserved: core::array::from_fn(|_| AtomicU64::new(0)),
            lines: core::array::from_fn(|_| CachePadded::new(Line::fresh())),
        }
    }

    /// Reserved word `i` (0..15) of the header: kind-specific, written once at creation.
    pub(crate) fn reserved(&self, i: usize) -> &AtomicU64 {
        &self._reserved[i]
    }

    #[cfg(not(feature = "loom"))]
    pub(crate) fn reset(&self) {
        self.lost.store(0, Ordering::Relaxed);
        for w in self._reserved.iter() {
            w.store(0, Ordering::Relaxed);
        }
        for l in self.lines.iter() {
            l.reset();
        }
    }
}

/// Whether the owner word `o` of a line names a live process (0: a free line, nobody).
#[cfg(not(feature = "loom"))]
fn owner_alive(o: u64) -> bool {
    o != 0 && crate::ring::wait::holder_alive(o)
}

/// The owner word a loom model writes into a line to stage a dead process (no real identity
/// has it: its pid field is 0).
#[cfg(feature = "loom")]
pub const LOOM_DEAD_WORD: u64 = 1 << 32;

/// Under loom every model thread is this live process; lines naming [`LOOM_DEAD_WORD`] are dead.
#[cfg(feature = "loom")]
fn owner_alive(o: u64) -> bool {
    o != 0 && o != LOOM_DEAD_WORD
}

/// This thread's id ([`crate::sync::thread_id`]: `gettid`, under loom the model thread's).
fn my_tid() -> u64 {
    u64::from(crate::sync::thread_id())
}

/// Whether thread `tid` of this process still runs (under loom: always).
#[cfg(not(feature = "loom"))]
fn thread_alive(tid: u64) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}
#[cfg(feature = "loom")]
fn thread_alive(_: u64) -> bool {
    true
}

/// A push position in the way of a waiter, taken by a producer that has not published it: its
/// slot still holds `word` (the word of the slot's previous lap). A candidate for reaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocker {
    pub(crate) pos: u64,
    pub(crate) word: u64,
}

impl Core<'_> {
    /// This thread's line index, or [`SHARED_LINE`] when every other line is held by a live
    /// thread. Cached per thread (keyed by the ring's address, with the owner word and fork
    /// generation it was claimed with, and checked against the line's owner, so a remapped ring
    /// or a forked child never uses a stale index).
    #[inline]
    pub(crate) fn me(&self) -> u64 {
        let key = self.m as *const MpmcMeta as usize;
        let gen = fork_generation();
        if let Some((i, word)) = cache::get(key, gen) {
            if self
                .m
                .lines
                .get(i as usize)
                .is_some_and(|l| l.owner.load(Ordering::Relaxed) == word)
            {
                return i;
            }
        }
        let mine = crate::process::my_word();
        let i = self.register(mine);
        if i != SHARED_LINE {
            cache::put(key, i, mine, gen);
        }
        i
    }

    #[cold]
    fn register(&self, mine: u64) -> u64 {
        let tid = my_tid();
        let own = &self.m.lines[..SHARED_LINE as usize];
        // A line this thread holds already (its cache entry was evicted).
        if let Some(i) = own.iter().position(|l| {
            l.owner.load(Ordering::Acquire) == mine && l.tid.load(Ordering::Acquire) == tid
        }) {
            return i as u64;
        }
        // A free line.
        for (i, l) in own.iter().enumerate() {
            if l.owner.load(Ordering::Relaxed) == 0
                && l.owner
                    .compare_exchange(0, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                l.tid.store(tid, Ordering::Release);
                return i as u64;
            }
        }
        // The line of a dead process, or of an exited thread of this one. Its announcement is
        // withdrawn after the takeover: a live owner with a stale announcement would hold back
        // the reaping of that position (see the guide).
        for (i, l) in own.iter().enumerate() {
            let o = l.owner.load(Ordering::Acquire);
            if o == mine {
                let t = l.tid.load(Ordering::Acquire);
                if t != 0
                    && t != tid
                    && !thread_alive(t)
                    && l.tid
                        .compare_exchange(t, tid, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    l.withdraw();
                    return i as u64;
                }
            } else if o != 0
                && !owner_alive(o)
                && l.owner
                    .compare_exchange(o, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                l.tid.store(tid, Ordering::Release);
                l.withdraw();
                return i as u64;
            }
        }
        SHARED_LINE
    }

    /// The line of `me` for one operation: this thread's own line, or the shared line if it is
    /// free (or its holder is dead), or `None` while a live thread holds the shared line.
    #[inline]
    pub(crate) fn enter(&self, me: u64) -> Option<&Line> {
        let line = self.m.lines.get(me as usize)?;
        if me != SHARED_LINE {
            return Some(line);
        }
        let mine = crate::process::my_word();
        let o = line.owner.load(Ordering::Acquire);
        if owner_alive(o)
            || line
                .owner
                .compare_exchange(o, mine, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        line.withdraw();
        Some(line)
    }

    /// Ends an operation begun with [`enter`](Self::enter): frees the shared line (Release: after
    /// the operation's last store, so a reaper that sees it free also sees the position done).
    #[inline]
    pub(crate) fn leave(&self, me: u64) {
        if me == SHARED_LINE {
            self.m.lines[me as usize].owner.store(0, Ordering::Release);
        }
    }

    /// Whether a line of a live process announces push position `pos`.
    fn announced_by_live(&self, pos: u64) -> bool {
        let a = announcement(pos);
        self.m.lines.iter().any(|l| {
            l.announce.load(Ordering::Acquire) == a && owner_alive(l.owner.load(Ordering::Acquire))
        })
    }

    /// Reaps `b` if its position was taken, is unpublished (its slot still holds `b.word`, of
    /// the slot's previous lap) and no live thread announces it: marks the slot `SKIP` of its
    /// lap (consumers move the head past it) and counts the item lost. `Some(true)` if reaped
    /// here, `Some(false)` if the slot changed meanwhile (look again), `None` if nothing may be
    /// reaped.
    fn try_reap(&self, b: Blocker) -> Option<bool> {
        let (sw, _) = self.slot(b.pos);
        if sw.load(Ordering::Acquire) != b.word {
            return Some(false);
        }
        let lap = self.lap(b.pos);
        if lap_of(b.word) != lap {
            return None;
        }
        // Taken: the tail moved past it (Acquire: pairs with the taker's CAS, so its
        // announcement, made before, is seen below).
        if self.h.tail.load(Ordering::Acquire).wrapping_sub(b.pos) as i64 <= 0 {
            return None;
        }
        if self.announced_by_live(b.pos) {
            return None;
        }
        crate::hooks::at("mpmc.reap.judged");
        let next = state_word(lap.wrapping_add(1), SKIP);
        if sw
            .compare_exchange(b.word, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Some(false);
        }
        self.m.lost.fetch_add(1, Ordering::Relaxed);
        wake(&self.h.ctl.items);
        wake(&self.h.ctl.space);
        Some(true)
    }

    /// Reaps `b` if its taker is dead (see [`try_reap`](Self::try_reap)). `true` if the slot
    /// changed, so the caller should look again.
    pub(crate) fn reap_if_dead(&self, b: Blocker) -> bool {
        self.try_reap(b).is_some()
    }

    /// Reaps every taken, unpublished position whose taker is dead; returns how many.
    pub(crate) fn reap_dead(&self) -> u64 {
        if self.cap == 0 {
            return 0;
        }
        let head = self.h.head.load(Ordering::Acquire);
        let tail = self.h.tail.load(Ordering::Acquire);
        let mut n = 0;
        // Unpublished pushes lie in [head, tail).
        for k in 0..tail.wrapping_sub(head).min(self.cap) {
            let pos = head.wrapping_add(k);
            let (sw, _) = self.slot(pos);
            let word = sw.load(Ordering::Acquire);
            if self.try_reap(Blocker { pos, word }) == Some(true) {
                n += 1;
            }
        }
        n
    }
}

/// The fork generation ([`crate::process`]): a cache entry made before a `fork()` is not used
/// in the child. Under loom there is no fork.
#[inline]
fn fork_generation() -> u64 {
    #[cfg(not(feature = "loom"))]
    return crate::process::fork_generation();
    #[cfg(feature = "loom")]
    0
}

/// Per-thread cache of line indices, keyed by ring address: `(key, line, owner word, fork
/// generation)`, one `Cell` per entry so a lookup copies 32 bytes, not the whole cache.
mod cache {
    use std::cell::Cell;

    type Entry = (usize, u64, u64, u64);
    const N: usize = 4;
    // A const only to repeat it in the array initializers below, each a fresh Cell.
    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Cell<Entry> = Cell::new((0, 0, 0, 0));
    #[cfg(not(feature = "loom"))]
    std::thread_local! {
        static CACHE: ([Cell<Entry>; N], Cell<usize>) = const { ([FREE; N], Cell::new(0)) };
    }
    // Under loom, per model thread and per execution (a cache surviving between executions
    // would make them differ; loom needs each to be deterministic).
    #[cfg(feature = "loom")]
    crate::sync::model_thread_local! {
        static CACHE: ([Cell<Entry>; N], Cell<usize>) = ([FREE; N], Cell::new(0));
    }

    /// The line and owner word cached for ring `key` in fork generation `gen`.
    #[inline]
    pub(super) fn get(key: usize, gen: u64) -> Option<(u64, u64)> {
        CACHE.with(|(e, _)| {
            e.iter().find_map(|c| {
                let (k, i, w, g) = c.get();
                (k == key && g == gen).then_some((i, w))
            })
        })
    }

    pub(super) fn put(key: usize, i: u64, word: u64, gen: u64) {
        CACHE.with(|(e, next)| {
            if let Some(c) = e.iter().find(|c| c.get().0 == key) {
                c.set((key, i, word, gen));
            } else {
                let n = next.get();
                e[n % N].set((key, i, word, gen));
                next.set((n + 1) % N);
            }
        });
    }
}
