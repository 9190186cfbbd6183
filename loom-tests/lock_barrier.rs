//! loom model of the barrier: two parties through two generations, one leader each, nobody
//! leaves a generation early (strict futex: a forgotten wake is a deadlock).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::atomic::{AtomicUsize, Ordering};
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
