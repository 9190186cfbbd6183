//! Fuzz target: open arbitrary and corrupted segment files; see `fuzz/common/segment_open.rs`.
//!
//! `cargo +nightly fuzz run segment_open` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/segment_open/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/segment_open.rs"]
mod segment_open;

libfuzzer_sys::fuzz_target!(|input: segment_open::Input| {
    segment_open::run(&input);
});
