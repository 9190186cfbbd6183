//! loom model of the semaphore: never more holders than permits, and a release wakes a sleeper
//! (strict futex: a forgotten wake is a deadlock).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::atomic::{AtomicUsize, Ordering};
use shmkit::sync::loom_futex;
use shmkit::Semaphore;
use std::sync::Arc;

#[test]
fn one_permit_two_threads() {
    loom_futex::set_strict(true);
    common::model(|| {
        let s = Arc::new(Semaphore::bounded(1, 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let run = |s: &Semaphore, inside: &AtomicUsize| {
            s.acquire().unwrap();
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders of one permit"
            );
            inside.fetch_sub(1, Ordering::SeqCst);
            s.release().unwrap();
        };
        let t = {
            let (s, inside) = (s.clone(), inside.clone());
            thread::spawn(move || run(&s, &inside))
        };
        run(&s, &inside);
        t.join().unwrap();
        assert_eq!(s.available(), 1);
        assert!(s.release().is_err(), "bounded: no release beyond the bound");
    });
    loom_futex::set_strict(false);
}
