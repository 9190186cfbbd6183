//! loom models of the segment lifecycle protocol (`shmkit::internals::life`): attaching against
//! removing, two cleaners, and processes that die in the middle.
//!
//! The protocol runs on heap words here (the header's `life`, `cleaner` and `users_overflow`,
//! and two user slots). A process is a thread with an owner word; its death is simulated: the
//! thread stops after a step and marks its word dead in a `dead` bitmask, which every other
//! thread's liveness check reads (the kernel's answer, instantly visible, as `/proc` is).
//!
//! What the models check (the claims of `src/segment/removal.rs`'s module docs):
//! - a segment that gains a user while a cleaner decides is never removed: the attacher and the
//!   cleaner never both succeed, and an attacher turned away ("doomed") only by a confirmed
//!   removal;
//! - of two cleaners, exactly one confirms the removal of an unused segment;
//! - a cleaner killed holding its claim does not keep the segment forever: the next cleaner
//!   takes the claim over and confirms;
//! - an attacher killed after storing its slot does not keep the segment forever: its slot is
//!   freed and the segment is removed;
//! - with a full table (no slots), the same for attachers counted in the overflow word: one
//!   that races a cleaner is never removed under (also when the count already includes a dead
//!   process, and when it could not take its overflow lock), and one killed while counted does
//!   not keep the segment for ever once its lock is gone.
//!
//! Overflow locks (the kernel's OFD locks in `src/segment/overflow.rs`) are a bitmask here:
//! taking one sets the process's bit, and its death clears it, as the kernel drops a dead
//! process's locks.
//!
//! Run: `cargo test --features loom --test loom_segment_life`.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::Arc;
use shmkit::internals::life::{Attach, Decision, NoClaim, Place, Scan, Words};
use shmkit::sync::{AtomicU64, Ordering};

/// Owner words of the simulated processes (each one bit, so `dead` can be a bitmask).
const ATTACHER: u64 = 1 << 0;
const CLEANER_A: u64 = 1 << 1;
const CLEANER_B: u64 = 1 << 2;

struct Shared {
    life: AtomicU64,
    cleaner: AtomicU64,
    overflow: AtomicU64,
    slots: [AtomicU64; 2],
    /// Words of the processes that have died.
    dead: AtomicU64,
    /// Words of the processes holding an overflow lock.
    locks: AtomicU64,
    /// User slots in the table (2, or 0: a full table).
    nslots: usize,
}

impl Shared {
    fn new() -> Arc<Self> {
        Self::with(2, 0)
    }

    /// A table of `nslots` slots whose overflow word starts at `overflow`.
    fn with(nslots: usize, overflow: u64) -> Arc<Self> {
        Arc::new(Shared {
            life: AtomicU64::new(0),
            cleaner: AtomicU64::new(0),
            overflow: AtomicU64::new(overflow),
            slots: [AtomicU64::new(0), AtomicU64::new(0)],
            dead: AtomicU64::new(0),
            locks: AtomicU64::new(0),
            nslots,
        })
    }

    fn words(&self) -> Words<'_> {
        Words {
            life: &self.life,
            cleaner: &self.cleaner,
            overflow: &self.overflow,
            slots: &self.slots[..self.nslots],
        }
    }

    /// Whether anyone holds an overflow lock (the kernel's answer).
    fn held(&self) -> bool {
        self.locks.load(Ordering::SeqCst) != 0
    }

    fn alive(&self, w: u64) -> bool {
        self.dead.load(Ordering::SeqCst) & w == 0
    }

    /// Process `w` dies: judged dead from now on, and its overflow lock is gone.
    fn die(&self, w: u64) {
        self.dead.fetch_or(w, Ordering::SeqCst);
        self.locks.fetch_and(!w, Ordering::SeqCst);
    }

    /// A whole `remove_if_stale` decision by cleaner `me` (steps 1–2).
    fn clean(&self, me: u64) -> Outcome {
        let w = self.words();
        let alive = |x| self.alive(x);
        match w.claim_removal(me, &alive).expect("no damage in a model") {
            Err(NoClaim::AlreadyRemoved) => Outcome::AlreadyRemoved,
            Err(NoClaim::Busy(_)) => Outcome::Busy,
            Ok(claim) => {
                let held = || self.held();
                let found = w.scan(&alive, &held);
                match w.decide_with(claim, found, &alive, &held) {
                    Decision::Stale => Outcome::Stale,
                    Decision::InUse(scan) => Outcome::InUse(scan),
                    Decision::Busy(_) => Outcome::Busy,
                }
            }
        }
    }

    /// A whole attach by process `me`, which takes its overflow lock if it needs one.
    fn attach(&self, me: u64) -> Attach {
        self.attach_locking(me, true)
    }

    /// A whole attach by process `me`; `can_lock`: whether its overflow lock can be had.
    fn attach_locking(&self, me: u64, can_lock: bool) -> Attach {
        let w = self.words();
        let place = w.claim_place(me, &|x| self.alive(x), &mut || self.lock(me, can_lock));
        let r = w.settle(place, me).expect("no damage in a model");
        if r == Attach::Doomed {
            self.unlock(me); // uncounted by `settle`, then unlocked
        }
        r
    }

    fn lock(&self, me: u64, can_lock: bool) -> bool {
        if can_lock {
            self.locks.fetch_or(me, Ordering::SeqCst);
        }
        can_lock
    }

    fn unlock(&self, me: u64) {
        self.locks.fetch_and(!me, Ordering::SeqCst);
    }

    fn removed(&self) -> bool {
        self.life.load(Ordering::SeqCst) >> 62 == 2
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Stale,
    InUse(Scan),
    AlreadyRemoved,
    Busy,
}

/// An attacher and a cleaner race: never both succeed.
#[test]
fn attach_against_removal() {
    common::model(|| {
        let s = Shared::new();
        let a = {
            let s = s.clone();
            thread::spawn(move || s.attach(ATTACHER))
        };
        let cleaned = s.clean(CLEANER_A);
        let attached = a.join().unwrap();
        match attached {
            Attach::Attached(Place::Slot(_)) => {
                assert_ne!(
                    cleaned,
                    Outcome::Stale,
                    "removed a segment that gained a user"
                );
                assert!(!s.removed());
            }
            Attach::Attached(Place::Overflow) => unreachable!("two slots, one attacher"),
            // Turned away only by a confirmed removal, and then not recorded.
            Attach::Doomed => {
                assert_eq!(cleaned, Outcome::Stale);
                assert!(s.slots.iter().all(|x| x.load(Ordering::SeqCst) == 0));
            }
        }
        if cleaned == Outcome::Stale {
            assert!(s.removed());
        }
    });
}

/// The same race with the roles of the threads swapped (the cleaner spawned, the attacher the
/// model's own): loom 0.7 re-explores a load before the store it read, not a store before a
/// load that ran first, so each arrangement reaches orders the other may not.
#[test]
fn removal_against_attach() {
    common::model(|| {
        let s = Shared::new();
        let c = {
            let s = s.clone();
            thread::spawn(move || s.clean(CLEANER_A))
        };
        let attached = s.attach(ATTACHER);
        let cleaned = c.join().unwrap();
        match attached {
            Attach::Attached(_) => {
                assert_ne!(
                    cleaned,
                    Outcome::Stale,
                    "removed a segment that gained a user"
                );
                assert!(!s.removed());
            }
            Attach::Doomed => assert_eq!(cleaned, Outcome::Stale),
        }
    });
}

/// Two cleaners of an unused segment: exactly one confirms.
#[test]
fn two_cleaners_confirm_once() {
    common::model(|| {
        let s = Shared::new();
        let b = {
            let s = s.clone();
            thread::spawn(move || s.clean(CLEANER_B))
        };
        let a = s.clean(CLEANER_A);
        let b = b.join().unwrap();
        let stale = [&a, &b].iter().filter(|o| ***o == Outcome::Stale).count();
        assert_eq!(stale, 1, "cleaners answered {a:?} and {b:?}");
        assert!(s.removed());
    });
}

/// A cleaner killed right after its claim: the other cleaner, retrying while it is told "busy",
/// takes the claim over once the first is dead and confirms.
#[test]
fn a_dead_cleaners_claim_is_taken_over() {
    common::model(|| {
        let s = Shared::new();
        let dying = {
            let s = s.clone();
            thread::spawn(move || {
                let w = s.words();
                let claimed = w
                    .claim_removal(CLEANER_B, &|x| s.alive(x))
                    .expect("no damage in a model");
                // Killed here, whether it got the claim or was told the other is busy.
                s.die(CLEANER_B);
                claimed.is_ok()
            })
        };
        let outcome = loop {
            match s.clean(CLEANER_A) {
                Outcome::Busy => thread::yield_now(),
                other => break other,
            }
        };
        dying.join().unwrap();
        assert_eq!(outcome, Outcome::Stale);
        assert!(s.removed());
    });
}

/// An attacher killed after storing its slot, before reading `life`: it may keep one decision
/// from removing the segment (it was alive when looked at), but its slot is freed and the
/// segment is removed once it is dead.
#[test]
fn a_dead_attachers_slot_does_not_keep_the_segment() {
    common::model(|| {
        // The cleaner is the spawned thread and the dying attacher the model's own: loom 0.7
        // explores a load again before the store it read, not a store again before a load that
        // ran first (with the cleaner first in the first execution, this model ran once).
        let s = Shared::new();
        let cleaner = {
            let s = s.clone();
            thread::spawn(move || s.clean(CLEANER_A))
        };
        s.words()
            .claim_place(ATTACHER, &|x| s.alive(x), &mut || false);
        s.die(ATTACHER);
        let first = cleaner.join().unwrap();
        let outcome = match first {
            Outcome::InUse(scan) => {
                assert_eq!(scan.live, [ATTACHER], "in use only by the attacher");
                s.clean(CLEANER_A)
            }
            other => other,
        };
        assert_eq!(outcome, Outcome::Stale);
        assert!(s.removed());
    });
}

/// The checks of an attacher against a cleaner with a full table (the attacher is counted in
/// the overflow word), on a table made by `make`.
fn overflow_attach_against_removal(make: fn() -> Arc<Shared>, can_lock: bool) {
    common::model(move || {
        let s = make();
        let a = {
            let s = s.clone();
            thread::spawn(move || s.attach_locking(ATTACHER, can_lock))
        };
        let cleaned = s.clean(CLEANER_A);
        match a.join().unwrap() {
            Attach::Attached(Place::Overflow) => {
                assert_ne!(
                    cleaned,
                    Outcome::Stale,
                    "removed a segment that gained an unknown user"
                );
                assert!(!s.removed());
            }
            Attach::Attached(Place::Slot(_)) => unreachable!("a full table"),
            Attach::Doomed => assert_eq!(cleaned, Outcome::Stale),
        }
    });
}

/// An attacher counted in the overflow word races a cleaner: never both succeed.
#[test]
fn overflow_attach_against_removal_with_its_lock() {
    overflow_attach_against_removal(|| Shared::with(0, 0), true);
}

/// The same when the count already includes a process that died (its lock is gone): the
/// cleaner does not count the dead one, and still never removes under the live one.
#[test]
fn overflow_attach_against_removal_over_a_dead_count() {
    overflow_attach_against_removal(|| Shared::with(0, 1), true);
}

/// The same for an attacher that could not take its lock: it marks the count unchecked.
#[test]
fn overflow_attach_against_removal_without_its_lock() {
    overflow_attach_against_removal(|| Shared::with(0, 1), false);
}

/// An attacher killed while counted in the overflow word does not keep the segment for ever:
/// once its lock is gone the count counts no one. (Before overflow locks, the count stayed
/// raised and every cleaner answered "in use".)
#[test]
fn a_dead_overflow_attacher_does_not_keep_the_segment() {
    common::model(|| {
        let s = Shared::with(0, 0);
        let dying = {
            let s = s.clone();
            thread::spawn(move || {
                let attached = s.attach(ATTACHER);
                s.die(ATTACHER);
                attached
            })
        };
        let first = s.clean(CLEANER_A);
        let attached = dying.join().unwrap();
        // Decided while the attacher lived: in use by it, or busy (it cancelled the claim).
        // Once it is dead, the next decision removes the segment.
        let outcome = match first {
            Outcome::InUse(scan) => {
                assert_eq!(scan.unknown, 1, "in use only by the attacher");
                s.clean(CLEANER_A)
            }
            Outcome::Busy => s.clean(CLEANER_A),
            other => other,
        };
        if attached != Attach::Doomed {
            assert_eq!(s.overflow.load(Ordering::SeqCst), 1, "died counted");
        }
        assert_eq!(outcome, Outcome::Stale);
        assert!(s.removed());
    });
}
