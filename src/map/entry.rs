//! The entry claim: whoever writes the value of a present key holds the entry itself, by one CAS
//! on its slot's `claim` word (`LIVE` → the writer's owner word, back to `LIVE` when done).
//!
//! An update of a present key (`insert`/`set`) takes only that claim, not the key's stripe lock:
//! it finds the key with a lock-free walk (as a reader does), claims the entry, checks that the
//! slot still holds the same version of the key (`seq` unchanged), and writes the value through
//! the slot's latch. For a small entry all of it is one line, the slot's own, so two writers of
//! different keys share no line. The stripe's holder (inserts of new keys, removals, `update`,
//! `compare_exchange`) claims an entry the same way before it reads or writes its value or
//! removes it, waiting for an update in progress; an entry claim holder never waits for anything,
//! so the order stripe → entry cannot deadlock.
//!
//! | `claim`               | meaning                                          | who changes it            |
//! | --------------------- | ------------------------------------------------ | ------------------------- |
//! | `LIVE`                | linked, nobody writes the value                  | CAS by any writer         |
//! | owner word            | linked, that process writes the value            | its holder; a taker-over  |
//! | `CLAIMED \| s`        | being inserted or removed by stripe `s`'s holder | the stripe's holder       |
//! | `FREE`                | free                                             | CAS by an inserting holder |
//!
//! # Why the version check suffices
//!
//! A slot leaves `LIVE` for a removal (`CLAIMED | s`) and comes back to `LIVE` only after it was
//! freed, refilled with a new `seq` version and linked again, and that `LIVE` store is a release
//! after the new `seq`. A writer whose acquiring CAS read such a `LIVE` (or a later value of the
//! word) therefore loads the new `seq`, unequal to the one it found the key with, and gives the
//! claim back. An unchanged `seq` means the slot held the key, linked, for the whole time.
//!
//! # Death
//!
//! A holder killed at any point leaves its owner word in `claim` and the latch with its last
//! published copy (the copy it was filling was never visible). The next writer of the entry
//! waits for it only until a liveness check says it is dead ([`claim::acquire_from`]), takes the
//! claim over by one CAS, and resynchronizes the latch (reads `published` with a
//! read-modify-write, so that it never overwrites the copy readers read). Readers never look at
//! `claim`; iteration counts an owner word as a live entry.

use super::claim::{self, Got};
use super::geometry::*;
use super::read::Table;
use super::stripe::ABANDONED;
use super::value::Pair;
use crate::sync::{fence, AtomicU64, Deadline, Ordering};
use crate::words::store_bytes;
use crate::{Error, Result};
use core::cell::Cell;
use std::time::Duration;

/// What the waits for an entry claim report as waited for.
const WHAT: &str = "a map entry being written";

/// Holds a slot's entry claim (its `claim` word holds the holder's owner word); gives it back
/// (`LIVE`) on drop unless it was handed to a removal or the operation was abandoned.
pub(crate) struct Held<'a> {
    claim: &'a AtomicU64,
    armed: Cell<bool>,
    /// A test point at which the operation stops as if its process had died there (crash
    /// models); `None` otherwise.
    abandon_at: Option<&'static str>,
}

impl<'a> Held<'a> {
    fn new(claim: &'a AtomicU64, abandon_at: Option<&'static str>) -> Self {
        Held {
            claim,
            armed: Cell::new(true),
            abandon_at,
        }
    }

    /// The claim now belongs to a removal (which stored `CLAIMED | s` over it): not given back.
    pub(crate) fn disarm(&self) {
        self.armed.set(false);
    }

    /// Test point `name`: the `test-hooks` action, and in crash models an abandonment (`Err`;
    /// the claim then stays with the holder, as a dead process leaves it).
    #[inline]
    pub(crate) fn point(&self, name: &'static str) -> Result<()> {
        crate::hooks::at(name);
        if self.abandon_at == Some(name) {
            self.disarm();
            return Err(Error::WouldBlock { what: ABANDONED });
        }
        Ok(())
    }
}

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.armed.get() {
            self.claim.store(LIVE, Ordering::Release);
        }
    }
}

/// What [`Table::set_present`] did.
pub(crate) enum Set<R> {
    /// Wrote the value; the old one as the caller's closure read it.
    Done(R),
    /// The key was not found present and stable, or its entry is being inserted or removed:
    /// the caller takes the stripe path (with the deadline, if one was started).
    Fallback(Option<Deadline>),
}

impl<'a> Table<'a> {
    /// Finds `key` (hash `h`) in bucket `b`'s chain without a lock, as a reader does: its slot
    /// and the (even) `seq` it was read with. `None` when it is absent, or when the walk was
    /// disturbed or found anything odd (the stripe path then decides and reports).
    #[inline]
    pub(crate) fn locate(&self, b: usize, h: u64, key: &[u8]) -> Option<(usize, u64)> {
        let mut next = self.target(self.head(b).load(Ordering::Acquire)).ok()?;
        let mut steps = 0usize;
        while let Some(j) = next {
            steps += 1;
            if steps > self.g.cap {
                return None;
            }
            let slot = self.slot(j);
            let s1 = slot[SEQ].load(Ordering::Acquire);
            if s1 & 1 == 1 {
                return None;
            }
            let link = slot[LINK].load(Ordering::Relaxed);
            let hit = link >> 32 == h
                && (s1 >> KEY_LEN_SHIFT) as usize == key.len()
                && self.key_is(slot, key);
            // The key words belong to version `s1` only if `seq` still holds it (read module).
            fence(Ordering::Acquire);
            if slot[SEQ].load(Ordering::Relaxed) != s1 {
                return None;
            }
            if hit {
                return Some((j, s1));
            }
            next = self.target(link).ok()?;
        }
        None
    }

    /// Writes `value` (at most `value_max` bytes: the caller checked) as the value of `key`
    /// if the key is present, holding only its entry claim in the name of owner word `me`;
    /// `old` reads the value replaced. Waits for another writer of the entry until the deadline
    /// of `timeout` (started only if it must wait).
    ///
    /// # Errors
    /// [`Error::Timeout`] behind a live writer of the entry.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_present<R>(
        &self,
        b: usize,
        h: u64,
        key: &[u8],
        value: &[u8],
        me: u64,
        timeout: Option<Duration>,
        abandon_at: Option<&'static str>,
        old: impl FnOnce(&[AtomicU64], usize) -> R,
    ) -> Result<Set<R>> {
        let Some((j, s1)) = self.locate(b, h, key) else {
            return Ok(Set::Fallback(None));
        };
        let slot = self.slot(j);
        let claim = &slot[CLAIM];
        let mut deadline = None;
        if claim
            .compare_exchange(LIVE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            let d = Deadline::after(timeout);
            deadline = Some(d);
            let waited = timeout.unwrap_or(Duration::MAX);
            if !wait_entry(claim, self.latch(slot), me, d, waited)? {
                return Ok(Set::Fallback(deadline));
            }
        }
        let held = Held::new(claim, abandon_at);
        // A load after the acquiring CAS: the version of the slot we hold (module docs).
        if slot[SEQ].load(Ordering::Relaxed) != s1 {
            return Ok(Set::Fallback(deadline));
        }
        held.point("map.set.claimed")?;
        let latch = self.latch(slot);
        let (words, len) = latch.current();
        let r = old(words, len);
        let (u, next) = latch.begin();
        store_bytes(next, value);
        held.point("map.set.filled")?;
        latch.publish(u, value.len());
        held.point("map.set.published")?;
        Ok(Set::Done(r))
    }

    /// Takes the entry claim of slot `j`, a live entry linked in a chain of the stripe whose
    /// lock the caller holds, in the name of `me` (an owner word, or `CLAIMED | s` for a
    /// removal): waits for a writer of its value until `deadline`, takes a dead one's place
    /// (resynchronizing the latch).
    ///
    /// # Errors
    /// [`Error::Timeout`] behind a live writer; [`Error::ObjectCorrupted`] when the entry's
    /// `claim` holds neither `LIVE` nor an owner word (only a scribbled map does that: the
    /// stripe's own claims were repaired when its lock was taken).
    pub(crate) fn hold_entry(
        &self,
        j: usize,
        me: u64,
        deadline: Deadline,
        waited: Duration,
    ) -> Result<()> {
        let slot = self.slot(j);
        let claim = &slot[CLAIM];
        if claim
            .compare_exchange(LIVE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        match wait_entry(claim, self.latch(slot), me, deadline, waited)? {
            true => Ok(()),
            false => Err(super::corrupted(
                "map",
                format!(
                    "slot {j} is linked but its claim word is {:#x}",
                    claim.load(Ordering::Relaxed)
                ),
            )),
        }
    }

    /// [`hold_entry`](Table::hold_entry) as a guard given back on drop.
    pub(crate) fn held_entry(
        &self,
        j: usize,
        me: u64,
        deadline: Deadline,
        waited: Duration,
        abandon_at: Option<&'static str>,
    ) -> Result<Held<'a>> {
        self.hold_entry(j, me, deadline, waited)?;
        Ok(Held::new(&self.slot(j)[CLAIM], abandon_at))
    }
}

/// Waits for the entry claim `claim` (held by another writer, or not `LIVE`) of the slot whose
/// value latch is `latch`: `true` when it is ours now (taken over from a dead holder: the latch
/// resynchronized), `false` when the entry is being inserted or removed, or was freed (then
/// nothing was taken). A free function out of line, so that no caller's table leaves registers
/// for it.
#[cold]
#[inline(never)]
fn wait_entry(
    claim: &AtomicU64,
    latch: Pair<'_>,
    me: u64,
    deadline: Deadline,
    waited: Duration,
) -> Result<bool> {
    match claim::acquire_from(claim, LIVE, me, is_owner, deadline, WHAT, waited)? {
        Got::Idle => Ok(true),
        Got::FromDead(_) => {
            latch.resync();
            Ok(true)
        }
        Got::Other(_) => Ok(false),
    }
}
