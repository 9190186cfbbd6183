//! Fuzz target: SeqArray and SeqLock operation sequences against models, and both types over
//! scribbled memory; see `fuzz/common/seqlock_ops.rs`.
//!
//! `cargo +nightly fuzz run seqlock_ops` (from the repository root). Crashes found are copied to
//! `tests/fuzz-regressions/seqlock_ops/`, where `cargo test --test fuzz_regressions` replays them.
#![no_main]

#[path = "../common/seqlock_ops.rs"]
mod seqlock_ops;

libfuzzer_sys::fuzz_target!(|input: seqlock_ops::Input| {
    seqlock_ops::run(&input);
});
