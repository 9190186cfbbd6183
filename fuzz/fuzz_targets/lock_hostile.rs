//! Fuzz target: Semaphore, Barrier, Event, Condvar (with its Mutex) and ReentrantMutex operating
//! in memory a hostile peer overwrites between operations; see `fuzz/common/lock_hostile.rs`.
//!
//! `cargo +nightly fuzz run lock_hostile` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/lock_hostile/`, where `cargo test --test fuzz_regressions` replays
//! them.
#![no_main]

#[path = "../common/lock_hostile.rs"]
mod lock_hostile;

libfuzzer_sys::fuzz_target!(|input: lock_hostile::Input| {
    lock_hostile::run(&input);
});
