//! Fuzz target: see `fuzz/common/map_ops.rs`.
//!
//! `cargo +nightly fuzz run map_ops` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/map_ops/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/map_ops.rs"]
mod map_ops;

libfuzzer_sys::fuzz_target!(|input: map_ops::Input| {
    map_ops::run(&input);
});
