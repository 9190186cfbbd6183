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
//!   freed and the segment is removed.
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
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Shared {
            life: AtomicU64::new(0),
            cleaner: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
            slots: [AtomicU64::new(0), AtomicU64::new(0)],
            dead: AtomicU64::new(0),
        })
    }

    fn words(&self) -> Words<'_> {
        Words {
            life: &self.life,
            cleaner: &self.cleaner,
            overflow: &self.overflow,
            slots: &self.slots,
        }
    }

    fn alive(&self, w: u64) -> bool {
        self.dead.load(Ordering::SeqCst) & w == 0
    }

    fn die(&self, w: u64) {
        self.dead.fetch_or(w, Ordering::SeqCst);
    }

    /// A whole `remove_if_stale` decision by cleaner `me` (steps 1–2).
    fn clean(&self, me: u64) -> Outcome {
        let w = self.words();
        let alive = |x| self.alive(x);
        match w.claim_removal(me, &alive).expect("no damage in a model") {
            Err(NoClaim::AlreadyRemoved) => Outcome::AlreadyRemoved,
            Err(NoClaim::Busy(_)) => Outcome::Busy,
            Ok(claim) => {
                let found = w.scan(&alive);
                match w.decide_with(claim, found, &alive) {
                    Decision::Stale => Outcome::Stale,
                    Decision::InUse(scan) => Outcome::InUse(scan),
                    Decision::Busy(_) => Outcome::Busy,
                }
            }
        }
    }

    /// A whole attach by process `me`.
    fn attach(&self, me: u64) -> Attach {
        let w = self.words();
        let place = w.claim_place(me, &|x| self.alive(x));
        w.settle(place, me).expect("no damage in a model")
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
        let s = Shared::new();
        let dying = {
            let s = s.clone();
            thread::spawn(move || {
                s.words().claim_place(ATTACHER, &|x| s.alive(x));
                s.die(ATTACHER);
            })
        };
        let first = s.clean(CLEANER_A);
        dying.join().unwrap();
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
