//! The lifecycle protocol on plain words: user slots, the overflow count, the `life` word and
//! the `cleaner` word, with liveness passed in. `segment/users.rs` and `segment/removal.rs`
//! run it on a segment's header; the loom models
//! (`loom-tests/segment_life.rs`) run it on heap words with simulated deaths. The protocol
//! itself (states, generations, why an attacher and a cleaner always see each other) is told in
//! `segment/removal.rs`'s module docs.

use crate::sync::{fence, AtomicU64, Ordering};

/// Lifecycle states (bits 62..64 of the `life` word; the bits below are a generation, bumped
/// by every removal claim so that a stale claim can never be confirmed).
pub(crate) const STATE_SHIFT: u32 = 62;
/// Lifecycle state: in use (or unused), not being removed.
pub(crate) const IDLE: u64 = 0;
/// Lifecycle state: a cleaner is checking whether the segment is stale.
pub(crate) const REMOVING: u64 = 1;
/// Lifecycle state: decided: the segment is being (or has been) removed; nobody attaches.
pub(crate) const REMOVED: u64 = 2;
/// The generation bits of the lifecycle word.
pub(crate) const GEN_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// Bit of the overflow word: some process counted there holds no overflow lock, so that
/// the count cannot be checked against the kernel's locks and is taken as it stands (never
/// cleared; only a process that could not take its lock sets it).
///
/// Every process counted in the overflow word holds a lock the kernel drops when it dies (in
/// the segment file: an OFD read lock on the word's bytes, `segment/overflow.rs`), taken before
/// its count is added and let go after it is taken away. A cleaner reads the count under its
/// removal claim, then asks whether any such lock is held; none held means the count counts no
/// one:
/// - a process counted before the claim and still attached holds its lock all through the
///   cleaner's check, so the cleaner finds a lock held;
/// - a process counted after the claim reads `life` after counting ([`Words::settle`]) and
///   cancels the claim (or finds the removal decided and leaves), the same handshake as for
///   a slot.
///
/// The count itself is left alone (processes it includes may still be taking themselves off
/// it), so no reset can ever race a newcomer.
pub const UNLOCKED: u64 = 1 << 63;
/// The count bits of the overflow word.
pub const COUNT_MASK: u64 = !UNLOCKED;

/// Attempts to cancel removal claims before an attacher gives up.
const CANCEL_ATTEMPTS: u32 = 10_000;
/// Attempts to claim a removal before a cleaner answers "busy".
const CLAIM_ATTEMPTS: u32 = 1000;

/// The state of lifecycle word `life`.
#[inline]
pub(crate) fn state(life: u64) -> u64 {
    life >> STATE_SHIFT
}

/// The words of one segment's lifecycle: the header's `life`, `cleaner` and `users_overflow`,
/// and the user slots.
#[derive(Clone, Copy)]
pub struct Words<'a> {
    /// State and generation (bits 62..64 and below).
    pub life: &'a AtomicU64,
    /// Owner word of the cleaner deciding a removal (advisory: who to judge alive).
    pub cleaner: &'a AtomicU64,
    /// Attachers the full table could not record.
    pub overflow: &'a AtomicU64,
    /// One owner word per registered process, 0 when free.
    pub slots: &'a [AtomicU64],
}

/// Where a process is recorded: a slot index, or counted in the overflow word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Slot `i` holds its word.
    Slot(usize),
    /// Counted in the overflow word.
    Overflow,
}

/// What attaching found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Recorded at the place; nobody removes the segment while it is.
    Attached(Place),
    /// A cleaner already decided to remove it: not recorded (the place was given back).
    Doomed,
}

/// A lifecycle word that no protocol step writes: the segment is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// `life` held no valid state.
    BadState(u64),
    /// Cancelling removal claims kept failing (only a word rewritten on purpose does that).
    KeptChanging,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::BadState(life) => write!(f, "lifecycle word {life:#018x} has no valid state"),
            Damage::KeptChanging => write!(
                f,
                "the lifecycle word kept changing ({CANCEL_ATTEMPTS} attempts to attach)"
            ),
        }
    }
}

/// The users a scan found: the live words, and the overflow count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Owner words of the live users, in slot order.
    pub live: Vec<u64>,
    /// Unknown users (the overflow count).
    pub unknown: u64,
}

impl Scan {
    /// Nobody would miss the segment.
    pub fn is_stale(&self) -> bool {
        self.live.is_empty() && self.unknown == 0
    }
}

/// A removal claim a cleaner holds: `REMOVING` at this exact `life` value, made by owner word
/// `me`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    life: u64,
    me: u64,
}

/// What a cleaner's claim step found, when it holds no claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoClaim {
    /// Someone already decided to remove it.
    AlreadyRemoved,
    /// Another live cleaner (this owner word; 0 if unknown) is deciding.
    Busy(u64),
}

/// What a cleaner decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This cleaner confirmed the removal (`REMOVED`): it must unlink the name.
    Stale,
    /// It has users (or an attacher cancelled the claim during the check).
    InUse(Scan),
    /// The claim was lost without a user to show for it: another cleaner (this owner word; 0
    /// if unknown) took it over, or an attacher that cancelled it has gone again.
    Busy(u64),
}

impl Words<'_> {
    /// Claims a slot for `word` (a free one, else one whose word `alive` judges dead), or
    /// counts it in the overflow word if every slot holds a live process. Before counting it
    /// there, `lock_overflow` is called: it takes the caller's overflow lock (see
    /// [`UNLOCKED`]) and says whether it holds it; if not, [`UNLOCKED`] is set first.
    pub fn claim_place(
        &self,
        word: u64,
        alive: &dyn Fn(u64) -> bool,
        lock_overflow: &mut dyn FnMut() -> bool,
    ) -> Place {
        for (i, s) in self.slots.iter().enumerate() {
            if s.load(Ordering::Relaxed) == 0
                && s.compare_exchange(0, word, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Place::Slot(i);
            }
        }
        for (i, s) in self.slots.iter().enumerate() {
            let w = s.load(Ordering::Relaxed);
            if w != 0
                && !alive(w)
                && s.compare_exchange(w, word, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Place::Slot(i);
            }
        }
        // Locked before counted (and, on release, uncounted before unlocked): whoever reads a
        // count that includes this process finds its lock held while it lives.
        if !lock_overflow() {
            // Set before the count rises, in the same word: a count read with this process in
            // it carries the flag.
            self.overflow.fetch_or(UNLOCKED, Ordering::SeqCst);
        }
        self.overflow.fetch_add(1, Ordering::SeqCst);
        Place::Overflow
    }

    /// Gives back a place claimed for `word` (never below zero, never someone else's slot).
    pub fn release(&self, place: Place, word: u64) {
        match place {
            Place::Slot(i) => {
                if let Some(s) = self.slots.get(i) {
                    let _ = s.compare_exchange(word, 0, Ordering::SeqCst, Ordering::Relaxed);
                }
            }
            Place::Overflow => {
                // Uncounted before the caller lets go of its overflow lock.
                let mut cur = self.overflow.load(Ordering::Relaxed);
                while cur & COUNT_MASK != 0 {
                    match self.overflow.compare_exchange_weak(
                        cur,
                        cur - 1,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(now) => cur = now,
                    }
                }
            }
        }
    }

    /// After `place` was claimed for `word`: reads `life`, cancelling a removal in progress;
    /// a removal already decided gives the place back ([`Attach::Doomed`]).
    pub fn settle(&self, place: Place, word: u64) -> Result<Attach, Damage> {
        // The handshake with a cleaner (store our place, then read `life`; it writes `life`,
        // then reads the places) rests on these two fences: of the two fences, the later one
        // makes the earlier side's write visible to the later side's read. (The RMWs and loads
        // are `SeqCst` too, which C++ already orders; the fences also make loom check it.)
        fence(Ordering::SeqCst);
        for _ in 0..CANCEL_ATTEMPTS {
            let life = self.life.load(Ordering::SeqCst);
            match state(life) {
                IDLE => return Ok(Attach::Attached(place)),
                // A cleaner is deciding: cancel its claim (its confirmation then fails). Our
                // place is already visible to any cleaner that claims after this.
                REMOVING => {
                    if self
                        .life
                        .compare_exchange(life, life & GEN_MASK, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        return Ok(Attach::Attached(place));
                    }
                }
                REMOVED => {
                    self.release(place, word);
                    return Ok(Attach::Doomed);
                }
                _ => {
                    self.release(place, word);
                    return Err(Damage::BadState(life));
                }
            }
        }
        // Each failed cancel means a new removal claim, and every claim made after our place
        // was stored sees it: only a word rewritten on purpose keeps failing.
        self.release(place, word);
        Err(Damage::KeptChanging)
    }

    /// The live users. Slots of dead processes are freed on the way (one CAS each, from the
    /// exact word judged dead, so a slot claimed meanwhile is left alone). A positive overflow
    /// count without [`UNLOCKED`] counts only if `overflow_held` (asked after the count is
    /// read) finds an overflow lock held: else everyone counted there has died.
    pub fn scan(&self, alive: &dyn Fn(u64) -> bool, overflow_held: &dyn Fn() -> bool) -> Scan {
        let live = self
            .slots
            .iter()
            .filter_map(|s| {
                let w = s.load(Ordering::SeqCst);
                if w == 0 {
                    return None;
                }
                if alive(w) {
                    return Some(w);
                }
                let _ = s.compare_exchange(w, 0, Ordering::SeqCst, Ordering::Relaxed);
                None
            })
            .collect();
        let o = self.overflow.load(Ordering::SeqCst);
        let mut unknown = o & COUNT_MASK;
        if unknown > 0 && o & UNLOCKED == 0 && !overflow_held() {
            unknown = 0;
        }
        Scan { live, unknown }
    }

    /// Step 1 of a removal: claims `life` (`IDLE g → REMOVING g+1`, or takes over a claim
    /// whose recorded cleaner is none, dead, or `me`) and records `me` as the cleaner.
    ///
    /// `me` is taken over because the word is only advisory: it may be this process's own
    /// record left by a claim it lost (two cleaners' stores of it can land in either order),
    /// and it stays alive as long as this process does. Taking over from another thread of
    /// this process only makes that thread's confirmation fail: exactly one claim confirms
    /// whatever the order, by the generation.
    pub fn claim_removal(
        &self,
        me: u64,
        alive: &dyn Fn(u64) -> bool,
    ) -> Result<Result<Claim, NoClaim>, Damage> {
        let mut attempts = 0u32;
        loop {
            let life = self.life.load(Ordering::SeqCst);
            match state(life) {
                IDLE => {}
                REMOVING => {
                    let c = self.cleaner.load(Ordering::SeqCst);
                    if c != 0 && c != me && alive(c) {
                        return Ok(Err(NoClaim::Busy(c)));
                    }
                }
                REMOVED => return Ok(Err(NoClaim::AlreadyRemoved)),
                _ => return Err(Damage::BadState(life)),
            }
            let next = REMOVING << STATE_SHIFT | (life.wrapping_add(1) & GEN_MASK);
            if self
                .life
                .compare_exchange(life, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.cleaner.store(me, Ordering::SeqCst);
                // The cleaner's side of the handshake in `settle`: the claim before the scan.
                fence(Ordering::SeqCst);
                return Ok(Ok(Claim { life: next, me }));
            }
            attempts += 1;
            if attempts > CLAIM_ATTEMPTS {
                // Attachers and cleaners keep changing it: somebody is busy with this segment.
                return Ok(Err(NoClaim::Busy(0)));
            }
            crate::sync::yield_now();
        }
    }

    /// Step 2 of a removal, on the users `found` by a scan made after the claim: with a user
    /// the claim is given back; without, the removal is confirmed (`REMOVING g → REMOVED g`),
    /// which fails if an attacher cancelled the claim or a cleaner took it over. A cleaner
    /// that does not confirm clears its record in the `cleaner` word (if it is still there),
    /// so that a record left behind never makes later cleaners answer "busy".
    pub fn decide_with(
        &self,
        claim: Claim,
        found: Scan,
        alive: &dyn Fn(u64) -> bool,
        overflow_held: &dyn Fn() -> bool,
    ) -> Decision {
        if !found.is_stale() {
            // Give the claim back (an attacher may have cancelled it already).
            let _ = self.life.compare_exchange(
                claim.life,
                claim.life & GEN_MASK,
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
            self.clear_record(claim);
            return Decision::InUse(found);
        }
        let done = REMOVED << STATE_SHIFT | (claim.life & GEN_MASK);
        match self
            .life
            .compare_exchange(claim.life, done, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Decision::Stale,
            // Cancelled by an attacher that arrived during the check, or taken over.
            Err(_) => {
                self.clear_record(claim);
                let now = self.scan(alive, overflow_held);
                if now.is_stale() {
                    Decision::Busy(self.cleaner.load(Ordering::SeqCst))
                } else {
                    Decision::InUse(now)
                }
            }
        }
    }

    /// Clears `claim`'s cleaner record, if it is still there.
    fn clear_record(&self, claim: Claim) {
        let _ = self
            .cleaner
            .compare_exchange(claim.me, 0, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// Marks the segment `REMOVED` whatever its users (forced removal): attachers stop joining.
    pub fn condemn(&self) {
        let mut life = self.life.load(Ordering::SeqCst);
        while state(life) != REMOVED {
            let done = REMOVED << STATE_SHIFT | (life.wrapping_add(1) & GEN_MASK);
            match self
                .life
                .compare_exchange(life, done, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => life = now,
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    const ME: u64 = 0x11;
    const OTHER: u64 = 0x22;

    struct Heap {
        life: AtomicU64,
        cleaner: AtomicU64,
        overflow: AtomicU64,
        slots: [AtomicU64; 2],
    }

    impl Heap {
        fn new(life: u64, cleaner: u64) -> Self {
            Heap {
                life: AtomicU64::new(life),
                cleaner: AtomicU64::new(cleaner),
                overflow: AtomicU64::new(0),
                slots: [AtomicU64::new(0), AtomicU64::new(0)],
            }
        }

        fn words(&self) -> Words<'_> {
            Words {
                life: &self.life,
                cleaner: &self.cleaner,
                overflow: &self.overflow,
                slots: &self.slots,
            }
        }
    }

    /// Regression: a claim lost to a takeover could leave this process's own word in
    /// `cleaner` (the two cleaners' stores landing in the other order); every later decision,
    /// this process's own included, then answered "busy" for as long as it lived.
    #[test]
    fn own_record_left_in_cleaner_is_taken_over() {
        let h = Heap::new(REMOVING << STATE_SHIFT | 7, ME);
        let w = h.words();
        let all_alive = |_| true;
        let claim = w.claim_removal(ME, &all_alive).unwrap().expect("claimed");
        assert_eq!(
            w.decide_with(claim, w.scan(&all_alive, &|| true), &all_alive, &|| true),
            Decision::Stale
        );
        // Another live cleaner's record still means busy.
        let h = Heap::new(REMOVING << STATE_SHIFT | 7, OTHER);
        let w = h.words();
        assert_eq!(
            w.claim_removal(ME, &all_alive).unwrap(),
            Err(NoClaim::Busy(OTHER))
        );
    }

    /// A cleaner that does not confirm clears its record; a lost claim with nobody to show
    /// answers busy, not "in use" with no user.
    #[test]
    fn a_lost_claim_is_busy_and_clears_its_record() {
        let h = Heap::new(0, 0);
        let w = h.words();
        let all_alive = |_| true;
        let mine = w.claim_removal(ME, &all_alive).unwrap().unwrap();
        // Another cleaner takes over (as if it had read `cleaner` before this one's store).
        h.cleaner.store(0, Ordering::SeqCst);
        let theirs = w.claim_removal(OTHER, &all_alive).unwrap().unwrap();
        h.cleaner.store(ME, Ordering::SeqCst); // this one's store lands last
        assert_eq!(
            w.decide_with(mine, Scan::default(), &all_alive, &|| true),
            Decision::Busy(0)
        );
        assert_eq!(h.cleaner.load(Ordering::SeqCst), 0);
        assert_eq!(
            w.decide_with(theirs, Scan::default(), &all_alive, &|| true),
            Decision::Stale
        );
    }
}
