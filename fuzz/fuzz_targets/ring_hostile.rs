//! Fuzz target: SPSC and MPMC rings in memory a hostile peer overwrites between operations, and
//! opened from a type tag the peer wrote; see `fuzz/common/ring_hostile.rs`.
//!
//! `cargo +nightly fuzz run ring_hostile` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/ring_hostile/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/ring_hostile.rs"]
mod ring_hostile;

libfuzzer_sys::fuzz_target!(|input: ring_hostile::Input| {
    ring_hostile::run(&input);
});
