//! A map's writes, made by the holder of the key's stripe ([`Locked`]): find an entry, update its
//! value in place, insert a new entry, remove one. Each marks its gaps with test points
//! (`map.<op>.<where>`) for the crash tests.
//!
//! | op     | steps (one store each unless said)                                            |
//! | ------ | ----------------------------------------------------------------------------- |
//! | insert | claim a free slot, the bucket's own first (CAS `0 → CLAIMED\|s`) · fence · `seq` odd · fill key, link (hash tag, next), value · `seq` even with the key length · link at the bucket's head · `claim = LIVE` · count + 1 |
//! | update | (the entry claim is held: [`super::entry`]) fill the latch's other copy · publish it |
//! | remove | `claim = CLAIMED\|s` (from the held entry claim, or by a CAS from `LIVE`) · unlink (one store to the predecessor or the head) · `seq` odd · `claim = 0` · count − 1 |
//!
//! A holder killed anywhere leaves the stripe for the [repair](Locked::repair) of the next holder:
//! linked means it happened (for a removal: did not), unlinked means it did not (did). An update
//! killed leaves the entry claim to the next writer of the entry ([`super::entry`]).

use super::geometry::*;
use super::stripe::Locked;
use crate::sync::{fence, AtomicU64, Deadline, Ordering};
use crate::words::store_bytes;
use crate::{Error, Result};
use std::time::Duration;

/// Where a key is in its chain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    /// The slot holding the key.
    pub slot: usize,
    /// The slot before it in the chain (`None`: it is the head).
    pub pred: Option<usize>,
}

impl<'a> Locked<'a> {
    /// Finds `key` (hash `h`) in bucket `b`'s chain. Nobody else changes the chain (we hold its
    /// stripe), so no validation is needed; the walk is bounded all the same.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`] on a link past the capacity or a chain longer than it.
    pub(crate) fn find(&self, b: usize, h: u64, key: &[u8]) -> Result<Option<Place>> {
        let t = &self.t;
        let mut pred = None;
        let mut next = t.target(t.head(b).load(Ordering::Acquire))?;
        let mut steps = 0;
        while let Some(j) = next {
            steps += 1;
            if steps > t.g.cap {
                return Err(super::corrupted("map", "a chain longer than the capacity"));
            }
            let slot = t.slot(j);
            let link = slot[LINK].load(Ordering::Acquire);
            if link >> 32 == h
                && (slot[SEQ].load(Ordering::Relaxed) >> KEY_LEN_SHIFT) as usize == key.len()
                && t.key_is(slot, key)
            {
                return Ok(Some(Place { slot: j, pred }));
            }
            pred = Some(j);
            next = t.target(link)?;
        }
        Ok(None)
    }

    /// The current value of slot `j` (its words and length): the caller holds its entry claim,
    /// so nobody else writes it.
    pub(crate) fn value(&self, j: usize) -> (&'a [AtomicU64], usize) {
        self.t.latch(self.t.slot(j)).current()
    }

    /// The current value of slot `j`, copied out.
    pub(crate) fn value_vec(&self, j: usize) -> Vec<u8> {
        let (words, len) = self.value(j);
        let mut v = vec![0u8; len];
        crate::words::load_bytes(words, &mut v);
        v
    }

    /// Replaces the value of the entry in slot `j`, whose entry claim the caller holds (readers
    /// see the old or the new value whole).
    pub(crate) fn set_value(&self, j: usize, value: &[u8]) -> Result<()> {
        let latch = self.t.latch(self.t.slot(j));
        let (u, next) = latch.begin();
        store_bytes(next, value);
        self.point("map.update.filled")?;
        latch.publish(u, value.len());
        self.point("map.update.published")?;
        Ok(())
    }

    /// Inserts a new entry (the key is not in bucket `b`: the caller looked). Returns its slot.
    ///
    /// # Errors
    /// [`Error::MapFull`] when no slot is free, even after sweeping dead processes' stripes.
    pub(crate) fn insert_new(&self, b: usize, h: u64, key: &[u8], value: &[u8]) -> Result<usize> {
        let t = &self.t;
        let j = match self.claim_free(b) {
            Some(j) => j,
            None => {
                t.sweep_dead(self.s);
                self.claim_free(b).ok_or(Error::MapFull {
                    capacity: t.g.cap as u64,
                    key_max: t.g.key_max as u64,
                    value_max: t.g.value_max as u64,
                })?
            }
        };
        self.point("map.insert.claimed")?;
        let slot = t.slot(j);
        // Readers that still hold a stale link to this slot may load the words below: this fence
        // makes such a reader see the odd `seq` on its second load (see the read module docs).
        fence(Ordering::Release);
        // The version goes odd (the old key length stays beside it until the slot is stable).
        let old = slot[SEQ].load(Ordering::Relaxed);
        let odd = (old | 1) & SEQ_VERSION;
        slot[SEQ].store(old & !SEQ_VERSION | odd, Ordering::Relaxed);
        store_bytes(t.key_words(slot), key);
        let head = t.head(b).load(Ordering::Relaxed) & 0xffff_ffff;
        slot[LINK].store(h << 32 | head, Ordering::Relaxed);
        let latch = t.latch(slot);
        let (u, next) = latch.begin();
        store_bytes(next, value);
        latch.publish(u, value.len());
        self.point("map.insert.filled")?;
        let even = odd.wrapping_add(1) & SEQ_VERSION;
        slot[SEQ].store(
            (key.len() as u64) << KEY_LEN_SHIFT | even,
            Ordering::Release,
        );
        self.point("map.insert.stable")?;
        t.head(b).store(j as u64 + 1, Ordering::Release);
        self.point("map.insert.linked")?;
        slot[CLAIM].store(LIVE, Ordering::Release);
        let count = &t.stripe(self.s)[S_COUNT];
        count.store(
            count.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        Ok(j)
    }

    /// Claims a free slot for this stripe: slot `home` (the bucket's own, whose line holds the
    /// bucket's head) if it is free, else one searched from the stripe's hint (one CAS per
    /// candidate: two stripes never take one slot).
    fn claim_free(&self, home: usize) -> Option<usize> {
        let t = &self.t;
        let mine = CLAIMED | self.s as u64;
        let take = |j: usize| {
            let claim = &t.slot(j)[CLAIM];
            claim.load(Ordering::Relaxed) == FREE
                && claim
                    .compare_exchange(FREE, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        };
        if take(home) {
            return Some(home);
        }
        let hint = &t.stripe(self.s)[S_HINT];
        let cap = t.g.cap;
        let start = (hint.load(Ordering::Relaxed) as usize) % cap;
        for k in 0..cap {
            let j = (start + k) % cap;
            if take(j) {
                hint.store((j + 1) as u64, Ordering::Relaxed);
                return Some(j);
            }
        }
        None
    }

    /// Removes the entry at `place` from bucket `b`'s chain and frees its slot. `take`: `None`
    /// when the caller holds the entry claim (and gives it to the removal); `Some(deadline,
    /// waited)` to take it, waiting for a writer of the value until the deadline.
    ///
    /// # Errors
    /// As [`Table::hold_entry`](super::read::Table::hold_entry) when the claim was not held.
    pub(crate) fn remove_at(
        &self,
        b: usize,
        place: Place,
        take: Option<(Deadline, Duration)>,
    ) -> Result<()> {
        let t = &self.t;
        let slot = t.slot(place.slot);
        let mine = CLAIMED | self.s as u64;
        match take {
            None => slot[CLAIM].store(mine, Ordering::Relaxed),
            Some((deadline, waited)) => t.hold_entry(place.slot, mine, deadline, waited)?,
        }
        self.point("map.remove.marked")?;
        let next = slot[LINK].load(Ordering::Relaxed) & 0xffff_ffff;
        match place.pred {
            None => t.head(b).store(next, Ordering::Release),
            Some(p) => {
                let link = &t.slot(p)[LINK];
                let keep = link.load(Ordering::Relaxed) & !0xffff_ffff;
                link.store(keep | next, Ordering::Release);
            }
        }
        self.point("map.remove.unlinked")?;
        let seq = slot[SEQ].load(Ordering::Relaxed);
        slot[SEQ].store(seq | 1, Ordering::Release);
        self.point("map.remove.odd")?;
        slot[CLAIM].store(FREE, Ordering::Release);
        let count = &t.stripe(self.s)[S_COUNT];
        count.store(
            count.load(Ordering::Relaxed).wrapping_sub(1),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Removes every entry of the stripe's buckets, waiting for writers of their values until
    /// `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::ObjectCorrupted`].
    pub(crate) fn clear_stripe(&self, deadline: Deadline, waited: Duration) -> Result<()> {
        let t = self.t;
        for b in (self.s..t.g.buckets).step_by(t.g.stripes) {
            let mut n = 0;
            while let Some(j) = t.target(t.head(b).load(Ordering::Acquire))? {
                n += 1;
                if n > t.g.cap {
                    return Err(super::corrupted("map", "a chain longer than the capacity"));
                }
                self.remove_at(
                    b,
                    Place {
                        slot: j,
                        pred: None,
                    },
                    Some((deadline, waited)),
                )?;
            }
        }
        Ok(())
    }
}
