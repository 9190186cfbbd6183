//! Fuzz target: ring operation sequences checked against a `VecDeque` model; see
//! `fuzz/common/ring_ops.rs`.
//!
//! `cargo +nightly fuzz run ring_ops` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/ring_ops/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/ring_ops.rs"]
mod ring_ops;

libfuzzer_sys::fuzz_target!(|input: ring_ops::Input| {
    ring_ops::run(&input);
});
