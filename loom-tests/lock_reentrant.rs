//! loom model of the reentrant mutex: nested locking by the owner, exclusion between threads,
//! release only at the last guard (strict futex: a forgotten wake is a deadlock).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::atomic::{AtomicUsize, Ordering};
use shmkit::sync::loom_futex;
use shmkit::ReentrantMutex;
use std::sync::Arc;

#[test]
fn nested_and_exclusive() {
    loom_futex::set_strict(true);
    common::model(|| {
        let m = Arc::new(ReentrantMutex::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let run = |m: &ReentrantMutex, inside: &AtomicUsize| {
            let a = m.lock().unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two owners");
            let b = m.lock().unwrap();
            drop(a);
            // Still held through `b`.
            assert_eq!(inside.load(Ordering::SeqCst), 1);
            inside.fetch_sub(1, Ordering::SeqCst);
            drop(b);
        };
        let t = {
            let (m, i) = (m.clone(), inside.clone());
            thread::spawn(move || run(&m, &i))
        };
        run(&m, &inside);
        t.join().unwrap();
        assert_eq!(m.state().owner_tid, None);
    });
    loom_futex::set_strict(false);
}
