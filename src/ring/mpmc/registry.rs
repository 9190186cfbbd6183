//! The MPMC process registry: which processes may hold slots, so that the slots of a dead one
//! are found and reaped (see the [module docs](super), "Process death").

use super::engine::{
    lap_of, owner_of, state_of, state_word, Core, EMPTY, NO_OWNER, READING, WRITING,
};
use crate::ring::wait::wake;
use crate::sync::{AtomicU64, Ordering};

/// Registry entries: processes whose in-flight slots can be reaped if they die.
#[cfg(not(feature = "loom"))]
pub const REGISTRY_ENTRIES: usize = 128;
/// Registry entries (small under loom, to keep the models' state space small).
#[cfg(feature = "loom")]
pub const REGISTRY_ENTRIES: usize = 2;

/// Marks a registry entry whose new holder is still reaping the slots of the dead previous one
/// (the owner word's flag bit, never set in an identity).
const SWEEPING: u64 = crate::process::FLAG;

/// The MPMC part of the header: the lost-item count and the process registry.
#[repr(C)]
pub(crate) struct MpmcMeta {
    /// Items lost with a process that died while holding their slot.
    pub(crate) lost: AtomicU64,
    _reserved: [AtomicU64; 7],
    /// The owner word ([`crate::process`]) of each registered process (0: free entry).
    pub(crate) registry: [AtomicU64; REGISTRY_ENTRIES],
}

#[cfg(not(feature = "loom"))]
static_assertions::const_assert_eq!(core::mem::size_of::<MpmcMeta>(), 64 + 8 * 128);

impl MpmcMeta {
    pub(crate) fn fresh() -> Self {
        MpmcMeta {
            lost: AtomicU64::new(0),
            _reserved: core::array::from_fn(|_| AtomicU64::new(0)),
            registry: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Reserved word `i` (0..7) of the header: kind-specific, written once at creation.
    pub(crate) fn reserved(&self, i: usize) -> &AtomicU64 {
        &self._reserved[i]
    }

    #[cfg(not(feature = "loom"))]
    pub(crate) fn reset(&self) {
        self.lost.store(0, Ordering::Relaxed);
        for w in self._reserved.iter().chain(self.registry.iter()) {
            w.store(0, Ordering::Relaxed);
        }
    }
}

/// Whether the registry entry `e` names a live process. An empty entry (never legitimately
/// named by a claim: claimers register first) counts as alive: liveness unknown, keep waiting.
#[cfg(not(feature = "loom"))]
fn entry_alive(e: u64) -> bool {
    e == 0 || crate::ring::wait::holder_alive(e & !SWEEPING)
}

/// The owner word a loom model writes into a registry entry to stage a dead process (no real
/// identity has it: its pid field is 0).
#[cfg(feature = "loom")]
pub const LOOM_DEAD_WORD: u64 = 1 << 32;

/// Under loom every model thread is this live process; entries naming [`LOOM_DEAD_WORD`] are
/// dead.
#[cfg(feature = "loom")]
fn entry_alive(e: u64) -> bool {
    e & !SWEEPING != LOOM_DEAD_WORD
}

/// This process's registry value.
fn my_entry() -> u64 {
    crate::process::my_word()
}

impl Core<'_> {
    /// This process's registry index, or [`NO_OWNER`] when the registry is full of live
    /// processes. Cached per thread (keyed by the ring's address and checked against the entry,
    /// so a remapped ring or a forked child never uses a stale index).
    pub(crate) fn me(&self) -> u64 {
        let key = self.m as *const MpmcMeta as usize;
        let mine = my_entry();
        if let Some(i) = cache::get(key) {
            if self
                .m
                .registry
                .get(i as usize)
                .is_some_and(|e| e.load(Ordering::Relaxed) == mine)
            {
                return i;
            }
        }
        let i = self.register(mine);
        if i != NO_OWNER {
            cache::put(key, i);
        }
        i
    }

    #[cold]
    fn register(&self, mine: u64) -> u64 {
        let reg = &self.m.registry;
        // Another thread of this process may have registered already.
        if let Some(i) = reg.iter().position(|e| e.load(Ordering::Acquire) == mine) {
            return i as u64;
        }
        for (i, e) in reg.iter().enumerate() {
            if e.load(Ordering::Relaxed) != 0 {
                continue;
            }
            match e.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return i as u64,
                Err(now) if now == mine => return i as u64,
                Err(_) => {}
            }
        }
        // Full: take over the entry of a dead process, after reaping what it still holds.
        for (i, e) in reg.iter().enumerate() {
            let w = e.load(Ordering::Acquire);
            if w == mine {
                return i as u64;
            }
            if entry_alive(w) {
                continue;
            }
            if e.compare_exchange(w, mine | SWEEPING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for k in 0..self.cap as usize {
                    let (sw, _) = self.slot_at(k);
                    let s = sw.load(Ordering::Acquire);
                    if owner_of(s) == i as u64 {
                        self.reap_word(sw, s);
                    }
                }
                if e.compare_exchange(mine | SWEEPING, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return i as u64;
                }
                // We were judged dead meanwhile (cannot happen while we run): give up on it.
            }
        }
        NO_OWNER
    }

    /// Turns an in-flight slot word `s` (WRITING or READING of a dead owner) into `EMPTY` of the
    /// next lap, counting the item as lost. `true` if the slot changed (reaped here or by
    /// someone else), so the caller should look again.
    fn reap_word(&self, sw: &AtomicU64, s: u64) -> bool {
        let st = state_of(s);
        if st != WRITING && st != READING {
            return false;
        }
        let next = state_word(lap_of(s).wrapping_add(1), EMPTY, 0);
        match sw.compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => {
                self.m.lost.fetch_add(1, Ordering::Relaxed);
                wake(&self.h.ctl.items);
                wake(&self.h.ctl.space);
                true
            }
            Err(_) => true,
        }
    }

    /// Reaps slot `i` if it still holds word `s` and its owner is dead. `true` if the slot
    /// changed.
    pub(crate) fn reap_if_dead(&self, i: usize, s: u64) -> bool {
        if i as u64 >= self.cap {
            return false;
        }
        let (sw, _) = self.slot_at(i);
        if sw.load(Ordering::Acquire) != s {
            return true;
        }
        let o = owner_of(s);
        let Some(e) = self.m.registry.get(o as usize) else {
            // NO_OWNER (unregistered claimer) or garbage: liveness unknown, keep waiting.
            return false;
        };
        if entry_alive(e.load(Ordering::Acquire)) {
            return false;
        }
        self.reap_word(sw, s)
    }

    /// Reaps every in-flight slot whose owner is dead; returns how many.
    pub(crate) fn reap_dead(&self) -> u64 {
        let mut n = 0;
        for i in 0..self.cap as usize {
            let (sw, _) = self.slot_at(i);
            let s = sw.load(Ordering::Acquire);
            let st = state_of(s);
            if (st == WRITING || st == READING) && self.reap_if_dead(i, s) {
                n += 1;
            }
        }
        n
    }
}

/// Per-thread cache of registry indices, keyed by ring address.
mod cache {
    use std::cell::Cell;

    const N: usize = 4;
    std::thread_local! {
        static CACHE: Cell<([(usize, u64); N], usize)> = const { Cell::new(([(0, 0); N], 0)) };
    }

    #[inline]
    pub(super) fn get(key: usize) -> Option<u64> {
        // Loom replays a model many times in one thread: a cache surviving between executions
        // would make them differ (loom needs each to be deterministic).
        if cfg!(feature = "loom") {
            return None;
        }
        CACHE.with(|c| {
            let (e, _) = c.get();
            e.iter().find(|(k, _)| *k == key).map(|&(_, i)| i)
        })
    }

    pub(super) fn put(key: usize, i: u64) {
        CACHE.with(|c| {
            let (mut e, next) = c.get();
            if let Some(x) = e.iter_mut().find(|(k, _)| *k == key) {
                x.1 = i;
            } else {
                e[next % N] = (key, i);
            }
            c.set((e, (next + 1) % N));
        });
    }
}
