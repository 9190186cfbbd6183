//! How every model in `loom-tests/` runs: with this crate's own loom bounds, so that a plain
//! `cargo test --features loom` (debug build, no environment) checks them all in a few minutes.
//!
//! - **Preemptions**: at most [`PREEMPTION_BOUND`] per execution unless `LOOM_MAX_PREEMPTIONS`
//!   is set (`LOOM_MAX_PREEMPTIONS=3` searches deeper and takes much longer). Without a bound
//!   loom explores every interleaving, which for most of these models does not end in any useful
//!   time.
//! - **Stacks**: every model thread, the model's body included, runs on a coroutine stack of
//!   [`STACK_BYTES`]. loom's default (generator's 32 KiB) is too small for a debug build: the
//!   `ShardedCounter` models (32 padded stripes) need about 40 KiB and overflowed it. loom 0.7's
//!   `model::Builder` has no stack setting, so [`model`] runs the body on a thread spawned with
//!   one and joins it, and [`thread::spawn`] (import `common::thread` instead of `loom::thread`)
//!   gives the threads that the body spawns the same stack. That first thread is loom's thread
//!   0, blocked in `join`: a body may spawn at most 3 threads (loom's `MAX_THREADS` is 5).
//! - **Everything else** comes from `loom::model::Builder::new()`, which reads the environment
//!   as `loom::model` does: `LOOM_MAX_BRANCHES`, `LOOM_MAX_PERMUTATIONS`, `LOOM_MAX_DURATION`,
//!   `LOOM_CHECKPOINT_FILE`/`LOOM_CHECKPOINT_INTERVAL` (loom's `checkpoint` feature, not
//!   enabled here, is needed for the file), `LOOM_LOCATION`; `LOOM_LOG` (e.g. `LOOM_LOG=trace`)
//!   prints loom's log through the same subscriber as `loom::model` installs.
#![allow(dead_code)] // each model file uses its own part of this module

use loom::model::Builder;
use std::sync::Arc;

/// Preemptions per execution when `LOOM_MAX_PREEMPTIONS` is not set.
pub const PREEMPTION_BOUND: usize = 2;

/// Coroutine stack of every model thread. The stacks are mapped, not filled, so a large one
/// costs no more per execution than loom's default; only the pages a thread touches are used.
pub const STACK_BYTES: usize = 1 << 20;

/// loom passes a thread's stack size to `generator`, which counts it in `usize` words, not in
/// bytes as loom's docs say.
const STACK_WORDS: usize = STACK_BYTES / std::mem::size_of::<usize>();

/// A loom `Builder` from the environment, with this crate's preemption bound where
/// `LOOM_MAX_PREEMPTIONS` is not set.
pub fn builder() -> Builder {
    let mut b = Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(PREEMPTION_BOUND);
    }
    b
}

/// Checks every execution of `f` (within the bounds of [`builder`]), as `loom::model` does,
/// and fails if loom ran it only once: a model whose threads can interleave but that loom ran
/// once checked one interleaving, not all of them.
///
/// That happens more easily than it sounds. loom 0.7 re-runs a load before the store it read,
/// but a thread that runs first in the first execution and only loads may never be run another
/// way (tokio-rs/loom#392): four models of this crate passed for months in one execution each.
/// A model that has only one ordering by design uses [`model_once`].
pub fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let runs = check(f);
    // A user's own bounds (`LOOM_MAX_PREEMPTIONS=0`, `LOOM_MAX_BRANCHES`, …) may cut the search
    // to one execution on purpose: the guard holds for the crate's own bounds only.
    let own_bounds = [
        "LOOM_MAX_PREEMPTIONS",
        "LOOM_MAX_BRANCHES",
        "LOOM_MAX_PERMUTATIONS",
    ]
    .iter()
    .all(|v| std::env::var_os(v).is_none());
    assert!(
        runs > 1 || !own_bounds,
        "loom ran this model in one execution: its threads were never interleaved another \
         way, so it checked one ordering (see loom-tests/common/mod.rs; swap the threads' roles \
         so that a thread that loads runs second, or use `model_once` if one ordering is all \
         there is)"
    );
}

/// [`model`] for a model that has one ordering by design: one thread (a death replayed step by
/// step, then checked), or threads none of whose accesses conflict (say why at the call).
pub fn model_once<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    check(f);
}

/// Runs `f` under [`builder`]'s bounds; returns how many executions loom ran.
fn check<F>(f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let f = Arc::new(f);
    // loom::model's log subscriber: LOOM_LOG=trace (or any filter) prints each execution.
    let subscriber = tracing_subscriber::fmt::Subscriber::builder()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        builder().check(move || {
            // std's atomic, not loom's: it counts executions, outside the model.
            counted.fetch_add(1, Ordering::Relaxed);
            let f = f.clone();
            // A panic in the body (a failed assertion) fails the model here, with its message.
            thread::spawn(move || f()).join().unwrap();
        });
    });
    runs.load(Ordering::Relaxed)
}

/// `loom::thread` with a [`STACK_BYTES`] stack for every spawned thread.
pub mod thread {
    pub use loom::thread::*;

    /// `loom::thread::spawn` on a [`STACK_BYTES`](super::STACK_BYTES) coroutine stack.
    #[track_caller]
    pub fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Builder::new()
            .stack_size(super::STACK_WORDS)
            .spawn(f)
            .expect("loom spawns model threads without failing")
    }
}
