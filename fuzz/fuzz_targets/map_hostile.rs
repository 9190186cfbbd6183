//! Fuzz target: see `fuzz/common/map_hostile.rs`.
//!
//! `cargo +nightly fuzz run map_hostile` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/map_hostile/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/map_hostile.rs"]
mod map_hostile;

libfuzzer_sys::fuzz_target!(|input: map_hostile::Input| {
    map_hostile::run(&input);
});
