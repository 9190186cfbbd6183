//! A hostile or crashed peer left arbitrary bytes in a mutex's lock word and owner record:
//! `try_lock`, `lock_timeout` and unlocking must return within their bounds, with a guard or an
//! error, never panic or hang.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shmkit::{Error, LockError, Mutex};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shared bytes of a `Mutex<u64>` as a peer could write them (layout of `#[repr(C)]`
/// `RawMutex`: lock word (owner thread id and pid-namespace tag, flags), reserved word, the
/// owner's process word (`process::my_word`), the owner record `owner << 32 | fold(process
/// word)`; then data).
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Bytes {
    state: u32,
    reserved: u32,
    owner_proc: u64,
    owner_record: u64,
    data: u64,
}

#[derive(Arbitrary, Debug)]
enum Op {
    TryLock {
        repair: bool,
        write: bool,
    },
    LockTimeout {
        ms: u8,
        repair: bool,
    },
    /// Overwrite the shared bytes (between operations).
    Scribble(Bytes),
    /// Take the lock, then let a peer overwrite the word before the unlock.
    ScribbleWhileHeld(u32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    initial: Bytes,
    /// Name the owner with a real pid (in the process word) so the liveness check reads a live
    /// process's /proc entry.
    real_pid: bool,
    ops: Vec<Op>,
}

fn words(m: &Mutex<u64>) -> (&AtomicU32, &AtomicU32, &AtomicU64, &AtomicU64, &AtomicU64) {
    let p = m as *const Mutex<u64> as *const u8;
    // SAFETY: Mutex<u64> is #[repr(C)]: a 24-byte RawMutex (u32 word, u32 reserved, two u64
    // owner-record words, all atomics) followed by one atomic data word; the box keeps it alive
    // for the borrow of `m`.
    unsafe {
        (
            &*(p as *const AtomicU32),
            &*(p.add(4) as *const AtomicU32),
            &*(p.add(8) as *const AtomicU64),
            &*(p.add(16) as *const AtomicU64),
            &*(p.add(24) as *const AtomicU64),
        )
    }
}

fn scribble(m: &Mutex<u64>, b: &Bytes, real_pid: bool) {
    let (s, r, proc, record, data) = words(m);
    let mut owner_proc = b.owner_proc;
    if real_pid {
        // The pid field of an owner word is its low 22 bits.
        owner_proc = (owner_proc & !0x3f_ffff) | u64::from(std::process::id());
    }
    s.store(b.state, Ordering::Relaxed);
    r.store(b.reserved, Ordering::Relaxed);
    proc.store(owner_proc, Ordering::Relaxed);
    record.store(b.owner_record, Ordering::Relaxed);
    data.store(b.data, Ordering::Relaxed);
}

fn settle(r: shmkit::LockResult<shmkit::MutexGuard<'_, u64>>, repair: bool, write: bool) {
    match r {
        Ok(mut g) => {
            if write {
                *g = g.wrapping_add(1);
            }
        }
        Err(LockError::OwnerDied(mut g)) => {
            if repair {
                g.mark_consistent();
            }
            if write {
                *g = g.wrapping_add(1);
            }
        }
        Err(LockError::Error(
            Error::WouldBlock { .. }
            | Error::Timeout { .. }
            | Error::NotRecoverable { .. }
            | Error::WouldDeadlock { .. },
        )) => {}
        Err(LockError::Error(e)) => panic!("unexpected error {e}"),
    }
}

fuzz_target!(|input: Input| {
    let m = Mutex::new(0u64);
    scribble(&m, &input.initial, input.real_pid);
    for op in input.ops.iter().take(16) {
        let t = Instant::now();
        let bound = match *op {
            Op::TryLock { repair, write } => {
                settle(m.try_lock(), repair, write);
                Duration::from_millis(500)
            }
            Op::LockTimeout { ms, repair } => {
                let d = Duration::from_millis(u64::from(ms % 8));
                settle(m.lock_timeout(d), repair, true);
                d + Duration::from_millis(500)
            }
            Op::Scribble(b) => {
                scribble(&m, &b, input.real_pid);
                Duration::from_millis(10)
            }
            Op::ScribbleWhileHeld(w) => {
                if let Ok(g) = m.try_lock() {
                    words(&m).0.store(w, Ordering::Relaxed);
                    drop(g);
                }
                Duration::from_millis(500)
            }
        };
        assert!(t.elapsed() <= bound, "{op:?} took {:?}", t.elapsed());
    }
});
