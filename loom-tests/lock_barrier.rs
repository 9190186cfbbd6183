//! loom models of the barrier: two parties through two generations, one leader each, nobody
//! leaves a generation early (strict futex: a forgotten wake is a deadlock); a party killed at
//! any step of its wait never hangs the other, and arrivals are counted exactly.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::atomic::{AtomicUsize, Ordering};
use shmkit::internals::sim;
use shmkit::sync::loom_futex;
use shmkit::Barrier;
use std::sync::Arc;

#[test]
fn two_parties_two_generations() {
    loom_futex::set_strict(true);
    common::model(|| {
        let b = Arc::new(Barrier::new(2));
        let arrivals = Arc::new(AtomicUsize::new(0));
        let run = |b: &Barrier, arrivals: &AtomicUsize| {
            let mut leads = 0;
            for gen in 0..2 {
                arrivals.fetch_add(1, Ordering::SeqCst);
                if b.wait().unwrap() {
                    leads += 1;
                }
                assert!(
                    arrivals.load(Ordering::SeqCst) >= 2 * (gen + 1),
                    "left early"
                );
            }
            leads
        };
        let t = {
            let (b, a) = (b.clone(), arrivals.clone());
            thread::spawn(move || run(&b, &a))
        };
        let mine = run(&b, &arrivals);
        assert_eq!(mine + t.join().unwrap(), 2, "one leader per generation");
        assert_eq!(b.generation(), 2);
    });
    loom_futex::set_strict(false);
}

#[test]
fn party_killed_at_every_step() {
    // Two parties; A dies at a step of its wait. B never hangs, and the generation completes
    // exactly when A's arrival was counted.
    for point in [
        "barrier.wait.claimed",
        "barrier.wait.arrived",
        "barrier.wait.recorded",
    ] {
        common::model(move || {
            sim::reset();
            let b = Arc::new(Barrier::new(2));
            let a = {
                let b = b.clone();
                thread::spawn(move || {
                    sim::die_at(point);
                    let _ = b.wait();
                    assert!(sim::is_dead_me());
                })
            };
            let r = b.wait();
            a.join().unwrap();
            let counted = point != "barrier.wait.claimed";
            match r {
                Ok(_) => {
                    assert!(counted, "completed without A's arrival");
                    assert_eq!(b.generation(), 1);
                    assert_eq!(b.arrived(), 0);
                }
                Err(_) => {
                    // Only a death that A's arrival record does not cover breaks it.
                    assert!(point != "barrier.wait.recorded", "broken though A arrived");
                    assert!(b.is_broken());
                }
            }
        });
    }
}
