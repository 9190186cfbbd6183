//! The `seqlock_ops` fuzz check, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/seqlock_ops.rs`) and the regression test that replays saved inputs under
//! plain `cargo test` (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! SeqArray operations from arbitrary input, checked against a `Vec` model (every write goes
//! around the blocks' rotating copies, so a lost or resurrected write shows), SeqLock operations
//! checked against a plain value (writers dying mid-write and being taken over included); then
//! the same types placed over arbitrary bytes (as a corrupted or hostile segment would leave
//! them) and read: errors are allowed, panics and out-of-bounds accesses are not.

use arbitrary::Arbitrary;
use shmkit::{Error, SeqArray, SeqLock};
use std::time::{Duration, Instant};

/// A pid no process can have: a writer "killed" under it is dead.
const DEAD: u32 = (1 << 22) - 1; // above any pid in use (pids are below 2²²)

#[derive(Arbitrary, Debug)]
pub enum Op {
    Set {
        i: u16,
        v: u32,
    },
    Get {
        i: u16,
    },
    TryGet {
        i: u16,
    },
    ReadRange {
        start: u16,
        n: u16,
    },
    ReadInto {
        n: u16,
    },
    WriteFrom {
        seed: u32,
        n: u16,
    },
    UpdateRange {
        start: u16,
        end: u16,
        add: u32,
    },
    Snapshot,
    /// A writer dies half-way through setting `i`; the next writer takes over.
    AbandonSet {
        i: u16,
        v: u32,
    },
    WriterBatch {
        sets: Vec<(u16, u32)>,
    },
    CheckWriter,
}

#[derive(Arbitrary, Debug)]
pub enum LockOp {
    Write(u64),
    Update(u64),
    Read,
    TryRead,
    ReadChecked,
    /// A writer dies half-way through writing this value; the next writer takes over.
    Abandon(u64),
    Batch(Vec<u64>),
    CheckWriter,
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub len: u16,
    pub ops: Vec<Op>,
    pub lock_ops: Vec<LockOp>,
    /// Bytes to fill a second array's memory with.
    pub garbage: Vec<u8>,
    pub garbage_len: u8,
    pub reads: Vec<u16>,
}

fn oob(r: shmkit::Result<impl Sized>, bad: bool) {
    match r {
        Ok(_) => assert!(!bad, "out-of-range access succeeded"),
        Err(Error::IndexOutOfBounds { .. } | Error::LengthMismatch { .. }) => assert!(bad),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn model_ops(len: usize, ops: &[Op]) {
    let a = SeqArray::<u32>::new(len);
    let mut m = vec![0u32; len];
    let mut dead_writer = false;
    for op in ops.iter().take(256) {
        match *op {
            Op::Set { i, v } => {
                let i = i as usize;
                oob(a.set(i, v), i >= len);
                if i < len {
                    m[i] = v;
                    dead_writer = false;
                }
            }
            Op::Get { i } => match a.get(i as usize) {
                Ok(v) => assert_eq!(v, m[i as usize]),
                Err(_) => assert!(i as usize >= len),
            },
            Op::TryGet { i } => match a.try_get(i as usize) {
                // Single-threaded: a read never overlaps a write.
                Ok(v) => assert_eq!(v, Some(m[i as usize])),
                Err(_) => assert!(i as usize >= len),
            },
            Op::ReadRange { start, n } => {
                let (s, n) = (start as usize, n as usize % 600);
                let mut out = vec![0; n];
                let bad = s + n > len;
                oob(a.read_range(s, &mut out), bad);
                if !bad {
                    assert_eq!(out, m[s..s + n]);
                }
            }
            Op::ReadInto { n } => {
                let mut out = vec![0; n as usize % 600];
                oob(a.read_into(&mut out), out.len() != len);
                if out.len() == len {
                    assert_eq!(out, m);
                }
            }
            Op::WriteFrom { seed, n } => {
                let src: Vec<u32> = (0..n as usize % 600)
                    .map(|k| seed.wrapping_mul(k as u32 + 1))
                    .collect();
                oob(a.write_from(&src), src.len() != len);
                if src.len() == len {
                    m = src;
                    dead_writer = false;
                }
            }
            Op::UpdateRange { start, end, add } => {
                let (s, e) = (start as usize, end as usize);
                let bad = s > e || e > len;
                oob(
                    a.update_range(s..e, |xs| {
                        xs.iter_mut().for_each(|x| *x = x.wrapping_add(add))
                    }),
                    bad,
                );
                if !bad {
                    m[s..e].iter_mut().for_each(|x| *x = x.wrapping_add(add));
                    dead_writer = false;
                }
            }
            Op::Snapshot => assert_eq!(a.snapshot(), m),
            Op::AbandonSet { i, v } => {
                let i = i as usize;
                if dead_writer {
                    // The lock is still held by the dead writer: a try takes it over.
                    drop(a.try_writer().unwrap());
                }
                oob(a.__abandon_set(i, v, DEAD), i >= len);
                dead_writer = i < len;
                // Readers keep the last complete value.
                assert_eq!(a.snapshot(), m);
            }
            Op::WriterBatch { ref sets } => {
                let mut w = a.writer().unwrap();
                assert_eq!(w.took_over_from().is_some(), dead_writer);
                dead_writer = false;
                // The holding thread asking again is refused at once, never left waiting.
                assert!(matches!(
                    a.writer_timeout(Duration::from_secs(60)),
                    Err(Error::WouldDeadlock { .. })
                ));
                for &(i, v) in sets.iter().take(64) {
                    let i = i as usize;
                    oob(w.set(i, v), i >= len);
                    if i < len {
                        m[i] = v;
                        assert_eq!(w.get(i).unwrap(), v);
                    }
                }
            }
            Op::CheckWriter => {
                assert_eq!(a.check_writer().is_err(), dead_writer);
            }
        }
    }
    assert_eq!(a.snapshot(), m);
}

/// A value whose words must agree (a torn or mixed-up copy shows).
fn lv(x: u64) -> [u64; 3] {
    [x, !x, x.wrapping_mul(3)]
}

fn lock_ops(ops: &[LockOp]) {
    let s = SeqLock::new(lv(0));
    let (mut m, mut writes, mut dead) = (0u64, 0u64, false);
    for op in ops.iter().take(128) {
        match *op {
            LockOp::Write(x) => {
                s.write(&lv(x)).unwrap();
                (m, writes, dead) = (x, writes + 1, false);
            }
            LockOp::Update(x) => {
                let got = s.update(|v| *v = lv(v[0].wrapping_add(x))).unwrap();
                (m, writes, dead) = (m.wrapping_add(x), writes + 1, false);
                assert_eq!(got, lv(m));
            }
            LockOp::Read => assert_eq!(s.read(), lv(m)),
            // Single-threaded: nothing overlaps the read.
            LockOp::TryRead => assert_eq!(s.try_read(), Some(lv(m))),
            LockOp::ReadChecked => match s.read_checked() {
                Ok(v) => {
                    assert!(!dead, "a dead writer mid-write was not reported");
                    assert_eq!(v, lv(m));
                }
                Err(Error::WriterDied { pid }) => assert!(dead && pid == DEAD),
                Err(e) => panic!("unexpected error {e}"),
            },
            LockOp::Abandon(x) => {
                s.__abandon_write(&lv(x), DEAD).unwrap();
                dead = true;
                assert_eq!(s.read(), lv(m), "readers keep the last complete value");
            }
            LockOp::Batch(ref xs) => {
                let mut w = s.writer().unwrap();
                assert_eq!(w.took_over_from().is_some(), dead);
                dead = false;
                assert!(matches!(s.write(&lv(0)), Err(Error::WouldDeadlock { .. })));
                assert!(matches!(
                    s.try_write(&lv(0)),
                    Err(Error::WouldDeadlock { .. })
                ));
                assert_eq!(w.get(), lv(m));
                for &x in xs.iter().take(16) {
                    w.write(&lv(x)).unwrap();
                    (m, writes) = (x, writes + 1);
                }
            }
            LockOp::CheckWriter => assert_eq!(s.check_writer().is_err(), dead),
        }
        assert_eq!(s.version(), writes, "one version per completed write");
    }
    assert_eq!(s.read(), lv(m));
}

/// Overwrites every byte of the object behind `b` (lock word included) with `bytes`, cycled.
fn scribble<T: ?Sized>(b: &mut Box<T>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let size = core::mem::size_of_val(&**b);
    let p = (&mut **b as *mut T).cast::<u8>();
    for k in 0..size {
        // SAFETY: `p..p + size` is the object we own exclusively through `b`; it is made of
        // atomics, for which every bit pattern is valid.
        unsafe { p.add(k).write(bytes[k % bytes.len()]) };
    }
}

fn hostile(len: usize, bytes: &[u8], reads: &[u16]) {
    let mut a = SeqArray::<[u16; 3]>::new(len);
    scribble(&mut a, bytes);
    assert_eq!(
        a.len(),
        len,
        "the length is local, not read from shared memory"
    );
    for &i in reads.iter().take(64) {
        let _ = a.get(i as usize);
        let _ = a.try_get(i as usize);
        let mut out = [[0u16; 3]; 5];
        let _ = a.read_range(i as usize, &mut out);
    }
    let _ = a.snapshot();
    let _ = a.check_writer();
    // A bounded wait returns by its deadline whatever the lock word holds.
    let t = Instant::now();
    match a.writer_timeout(Duration::from_millis(1)) {
        Ok(_) | Err(Error::Timeout { .. } | Error::WouldDeadlock { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // A lock word naming a dead process is taken over and every block resynchronized; one naming a
    // live process is busy. Either way, no panic and no hang.
    if let Ok(mut w) = a.try_writer() {
        if len > 0 {
            w.set(len - 1, [1, 2, 3]).unwrap();
            drop(w);
            assert_eq!(a.get(len - 1).unwrap(), [1, 2, 3]);
        }
    }

    let mut s = SeqLock::new([0u64; 5]);
    scribble(&mut s, bytes);
    let _ = s.read();
    let _ = s.try_read();
    let _ = s.read_checked();
    let _ = s.version();
    if s.try_write(&[9; 5]).is_ok() {
        assert_eq!(s.read(), [9; 5]);
    }
}

/// Runs one input: the array ops against a `Vec` model, the lock ops against a plain value, then
/// the hostile part.
pub fn run(input: &Input) {
    model_ops(input.len as usize % 300, &input.ops);
    lock_ops(&input.lock_ops);
    hostile(input.garbage_len as usize, &input.garbage, &input.reads);
}
