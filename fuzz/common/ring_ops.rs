//! The `ring_ops` fuzz check, shared by the cargo-fuzz target (`fuzz/fuzz_targets/ring_ops.rs`)
//! and the regression test that replays saved inputs under plain `cargo test`
//! (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! An [`Input`] picks a ring ([`SpscRing`] split into its producer and consumer, or [`MpmcRing`],
//! each with one-word `u64` items or two-word [`Wide`] items), a requested capacity of 1 to 64 and
//! a sequence of operations. [`run`] applies them in one thread and checks every result against a
//! `VecDeque` model: the values popped, `Full`/`Empty`/`Closed`/`Timeout` exactly when the model
//! says so, exact `len`/`is_empty`/`is_full` (nothing is in flight in a single thread), the
//! capacity rounding, and one-handle-per-side claims. Blocking calls are only made when they
//! cannot block; timeouts are at most 1 ms and must be kept.

use arbitrary::Arbitrary;
use shmkit::Error;
use shmkit::{MpmcRing, PopError, PushError, SpscRing};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// At most this many operations are applied.
pub const MAX_OPS: usize = 512;
/// At most this many operations wait for a non-zero timeout (the rest use a zero timeout).
const MAX_WAITS: usize = 16;
/// Slack allowed past a timeout before a call counts as hanging (the machine may be loaded).
const SLACK: Duration = Duration::from_secs(3);

/// A two-word item (10 bytes: the second word is only partly used).
pub type Wide = [u16; 5];

/// One fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// The ring under test.
    pub ring: Which,
    /// Requested capacity, minus one, modulo 64 (so 1..=64).
    pub capacity: u8,
    /// The operations, applied in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// The ring types exercised.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `SpscRing<u64>` through a producer and a consumer.
    Spsc,
    /// `MpmcRing<u64>`.
    Mpmc,
    /// `SpscRing<Wide>`.
    SpscWide,
    /// `MpmcRing<Wide>`.
    MpmcWide,
}

/// Who does an operation that every handle offers.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The ring itself.
    Ring,
    /// The producer handle (SPSC; the ring for MPMC).
    Producer,
    /// The consumer handle (SPSC; the ring for MPMC).
    Consumer,
}

/// A timeout of 0, 1 µs, 100 µs or 1 ms (`n % 4`).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Tiny(pub u8);

impl Tiny {
    /// The duration.
    pub fn get(self) -> Duration {
        match self.0 % 4 {
            0 => Duration::ZERO,
            1 => Duration::from_micros(1),
            2 => Duration::from_micros(100),
            _ => Duration::from_millis(1),
        }
    }
}

/// One operation.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Blocking `push` (only when it cannot block: the model has room or the ring is closed).
    Push(u64),
    /// `try_push`.
    TryPush(u64),
    /// `push_timeout` with a tiny timeout.
    PushTimeout(u64, Tiny),
    /// `push_slice` of `n % 80` items derived from `seed` (SPSC; MPMC: `try_push` each).
    PushSlice {
        /// First value.
        seed: u64,
        /// Number of items, modulo 80.
        n: u8,
    },
    /// `pop_into` a buffer of `n % 80` items (SPSC; MPMC: `try_pop` up to `n` times).
    PopInto(u8),
    /// `try_pop`.
    TryPop,
    /// Blocking `pop` (only when it cannot block: the model has items or the ring is closed).
    Pop,
    /// `pop_timeout` with a tiny timeout.
    PopTimeout(Tiny),
    /// `len`, `is_empty`, `is_full`, `capacity`, `is_closed` through a handle or the ring.
    Query(Side),
    /// `close` through a handle or the ring.
    Close(Side),
    /// SPSC: claiming a held side fails; the side is dropped and claimed again (positions carry
    /// over). MPMC: `Debug` formatting.
    Reclaim(Side),
}

/// What a run did, for the regression test's own checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The capacity the ring got.
    pub capacity: usize,
    /// Items pushed.
    pub pushed: usize,
    /// Items popped (each equal to the model's).
    pub popped: usize,
    /// Pushes refused because the ring was full (`Full` or `Timeout`).
    pub full: usize,
    /// Pops refused because the ring was empty (`Empty` or `Timeout`).
    pub empty: usize,
    /// Calls answered `Closed`.
    pub closed: usize,
}

/// An item type: made from a `u64`, compared with the model.
pub trait Item: bytemuck::Pod + PartialEq + Debug + Send + Sync {
    /// The item for `v`.
    fn make(v: u64) -> Self;
}

impl Item for u64 {
    fn make(v: u64) -> Self {
        v
    }
}

impl Item for Wide {
    fn make(v: u64) -> Self {
        [
            v as u16,
            (v >> 16) as u16,
            (v >> 32) as u16,
            (v >> 48) as u16,
            v.rotate_left(23) as u16,
        ]
    }
}

/// The capacity a ring should get for a request of `req` items (`min` is the smallest ring).
fn expected_capacity(req: u64, min: u64) -> u64 {
    req.next_power_of_two().max(min)
}

/// Runs one fuzz case (single-threaded, on the heap).
pub fn run(input: &Input) -> Outcome {
    let req = u64::from(input.capacity % 64) + 1;
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    match input.ring {
        Which::Spsc => run_spsc::<u64>(req, ops),
        Which::SpscWide => run_spsc::<Wide>(req, ops),
        Which::Mpmc => run_mpmc::<u64>(req, ops),
        Which::MpmcWide => run_mpmc::<Wide>(req, ops),
    }
}

/// The model: items in order, the capacity, closed or not, and what happened.
struct Model<T> {
    q: VecDeque<T>,
    cap: usize,
    closed: bool,
    waits: usize,
    out: Outcome,
}

impl<T: Item> Model<T> {
    fn new(cap: usize) -> Self {
        Model {
            q: VecDeque::new(),
            cap,
            closed: false,
            waits: 0,
            out: Outcome {
                capacity: cap,
                ..Outcome::default()
            },
        }
    }

    fn full(&self) -> bool {
        self.q.len() == self.cap
    }

    /// The timeout to use for `t`: zero once [`MAX_WAITS`] waits were spent.
    fn timeout(&mut self, t: Tiny) -> Duration {
        let d = t.get();
        if d.is_zero() || self.waits >= MAX_WAITS {
            return Duration::ZERO;
        }
        self.waits += 1;
        d
    }

    /// Checks a push of `v` (`timed`: from `push_timeout`, where full means `Timeout`).
    fn pushed(&mut self, r: Result<(), PushError<T>>, v: T, timed: bool) {
        match r {
            Ok(()) => {
                assert!(!self.closed, "push into a closed ring succeeded");
                assert!(!self.full(), "push into a full ring succeeded");
                self.q.push_back(v);
                self.out.pushed += 1;
            }
            Err(PushError::Closed(back)) => {
                assert!(self.closed, "push said Closed on an open ring");
                assert_eq!(back, v, "Closed handed back another value");
                self.out.closed += 1;
            }
            Err(PushError::Full(back)) => {
                assert!(!timed, "push_timeout said Full instead of Timeout");
                assert!(!self.closed && self.full(), "push said Full wrongly");
                assert_eq!(back, v, "Full handed back another value");
                self.out.full += 1;
            }
            Err(PushError::Timeout(back)) => {
                assert!(timed, "try_push said Timeout");
                assert!(!self.closed && self.full(), "push timed out wrongly");
                assert_eq!(back, v, "Timeout handed back another value");
                self.out.full += 1;
            }
            Err(e) => panic!("push of {v:?}: unexpected {e:?} on an untouched ring"),
        }
    }

    /// Checks a pop (`timed`: from `pop_timeout`, where empty means `Timeout`).
    fn popped(&mut self, r: Result<T, PopError>, timed: bool) {
        match r {
            Ok(v) => {
                let want = self.q.pop_front();
                assert_eq!(
                    Some(v),
                    want,
                    "popped a value the model does not have first"
                );
                self.out.popped += 1;
            }
            Err(PopError::Empty) => {
                assert!(!timed, "pop_timeout said Empty instead of Timeout");
                assert!(self.q.is_empty() && !self.closed, "pop said Empty wrongly");
                self.out.empty += 1;
            }
            Err(PopError::Timeout) => {
                assert!(timed, "try_pop said Timeout");
                assert!(self.q.is_empty() && !self.closed, "pop timed out wrongly");
                self.out.empty += 1;
            }
            Err(PopError::Closed) => {
                assert!(self.q.is_empty() && self.closed, "pop said Closed wrongly");
                self.out.closed += 1;
            }
            Err(e) => panic!("pop: unexpected {e:?} on an untouched ring"),
        }
    }

    /// Checks `len`/`is_empty`/`is_full`/`capacity`/`is_closed` as seen through one handle.
    fn query(&self, len: usize, empty: bool, full: bool, cap: usize, closed: bool) {
        assert_eq!(len, self.q.len(), "len");
        assert_eq!(empty, self.q.is_empty(), "is_empty");
        assert_eq!(full, self.full(), "is_full");
        assert_eq!(cap, self.cap, "capacity");
        assert_eq!(closed, self.closed, "is_closed");
    }
}

/// Runs `f` and checks it returned within `d` (plus slack).
fn timed<R>(d: Duration, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    let took = t.elapsed();
    assert!(took <= d + SLACK, "a call with timeout {d:?} took {took:?}");
    r
}

fn run_spsc<T: Item>(req: u64, ops: &[Op]) -> Outcome {
    let ring = SpscRing::<T>::new(req).expect("capacities 1..=64 are valid");
    let cap = ring.capacity();
    assert_eq!(
        cap as u64,
        expected_capacity(req, 1),
        "SPSC capacity rounding"
    );
    let mut m = Model::<T>::new(cap);
    let (mut tx, mut rx) = ring.split().expect("a fresh ring's sides are free");
    for op in ops {
        match *op {
            Op::Push(v) => {
                if m.closed || !m.full() {
                    let v = T::make(v);
                    m.pushed(tx.push(v), v, false);
                }
            }
            Op::TryPush(v) => {
                let v = T::make(v);
                m.pushed(tx.try_push(v), v, false);
            }
            Op::PushTimeout(v, t) => {
                let v = T::make(v);
                let d = m.timeout(t);
                let r = timed(d, || tx.push_timeout(v, d));
                m.pushed(r, v, true);
            }
            Op::PushSlice { seed, n } => {
                let items: Vec<T> = (0..u64::from(n % 80))
                    .map(|k| T::make(seed.wrapping_add(k)))
                    .collect();
                match tx.push_slice(&items) {
                    Ok(k) => {
                        assert!(!m.closed, "push_slice into a closed ring succeeded");
                        let room = m.cap - m.q.len();
                        assert_eq!(k, room.min(items.len()), "push_slice count");
                        m.q.extend(&items[..k]);
                        m.out.pushed += k;
                        if k < items.len() {
                            m.out.full += 1;
                        }
                    }
                    Err(PushError::Closed(())) => {
                        assert!(m.closed, "push_slice said Closed on an open ring");
                        m.out.closed += 1;
                    }
                    Err(e) => panic!("push_slice: unexpected {e:?}"),
                }
            }
            Op::PopInto(n) => {
                let n = usize::from(n % 80);
                let mut buf = vec![T::make(0); n];
                match rx.pop_into(&mut buf) {
                    Ok(k) => {
                        let want = m.q.len().min(n);
                        assert_eq!(k, want, "pop_into count");
                        assert!(
                            !(m.closed && m.q.is_empty() && n > 0),
                            "pop_into on a closed, drained ring returned Ok"
                        );
                        for v in &buf[..k] {
                            assert_eq!(Some(*v), m.q.pop_front(), "pop_into value");
                        }
                        m.out.popped += k;
                        if k == 0 && n > 0 {
                            m.out.empty += 1;
                        }
                    }
                    Err(PopError::Closed) => {
                        assert!(
                            m.closed && m.q.is_empty() && n > 0,
                            "pop_into said Closed wrongly"
                        );
                        m.out.closed += 1;
                    }
                    Err(e) => panic!("pop_into: unexpected {e:?}"),
                }
            }
            Op::TryPop => m.popped(rx.try_pop(), false),
            Op::Pop => {
                if m.closed || !m.q.is_empty() {
                    m.popped(rx.pop(), false);
                }
            }
            Op::PopTimeout(t) => {
                let d = m.timeout(t);
                let r = timed(d, || rx.pop_timeout(d));
                m.popped(r, true);
            }
            Op::Query(side) => match side {
                Side::Ring => m.query(
                    ring.len(),
                    ring.is_empty(),
                    ring.is_full(),
                    ring.capacity(),
                    ring.is_closed(),
                ),
                Side::Producer => m.query(
                    tx.len(),
                    tx.is_empty(),
                    tx.is_full(),
                    tx.capacity(),
                    tx.is_closed(),
                ),
                Side::Consumer => m.query(
                    rx.len(),
                    rx.is_empty(),
                    rx.is_full(),
                    rx.capacity(),
                    rx.is_closed(),
                ),
            },
            Op::Close(side) => {
                match side {
                    Side::Ring => ring.close(),
                    Side::Producer => tx.close(),
                    Side::Consumer => rx.close(),
                }
                m.closed = true;
                assert!(ring.is_closed());
            }
            Op::Reclaim(side) => {
                let me = std::process::id();
                match side {
                    Side::Consumer => {
                        match ring.consumer() {
                            Err(Error::RingSideTaken {
                                side: "consumer",
                                pid,
                            }) => {
                                assert_eq!(pid, me)
                            }
                            other => panic!("claiming a held consumer: {:?}", other.map(|_| ())),
                        }
                        drop(rx);
                        assert_eq!(ring.holders().1, 0, "a dropped consumer releases its side");
                        rx = ring.consumer().expect("a released consumer side is free");
                    }
                    _ => {
                        match ring.producer() {
                            Err(Error::RingSideTaken {
                                side: "producer",
                                pid,
                            }) => {
                                assert_eq!(pid, me)
                            }
                            other => panic!("claiming a held producer: {:?}", other.map(|_| ())),
                        }
                        drop(tx);
                        assert_eq!(ring.holders().0, 0, "a dropped producer releases its side");
                        tx = ring.producer().expect("a released producer side is free");
                    }
                }
                assert_eq!(ring.holders(), (me, me));
            }
        }
        assert_eq!(ring.len(), m.q.len(), "len after {op:?}");
    }
    drain_spsc(&ring, rx, &mut m);
    m.out
}

/// Closes the ring and pops everything left: exactly the model's items, then `Closed`.
fn drain_spsc<T: Item>(ring: &SpscRing<T>, mut rx: shmkit::Consumer<T>, m: &mut Model<T>) {
    ring.close();
    m.closed = true;
    while !m.q.is_empty() {
        m.popped(rx.try_pop(), false);
    }
    assert_eq!(rx.try_pop(), Err(PopError::Closed));
    assert_eq!(rx.pop(), Err(PopError::Closed));
}

fn run_mpmc<T: Item>(req: u64, ops: &[Op]) -> Outcome {
    let ring = MpmcRing::<T>::new(req).expect("capacities 1..=64 are valid");
    let cap = ring.capacity();
    // A power of two holding the request; an MPMC ring may have a smallest size (2 today).
    assert!(
        cap.is_power_of_two() && cap as u64 >= req && cap as u64 <= expected_capacity(req, 2),
        "MPMC capacity {cap} for a request of {req}"
    );
    let mut m = Model::<T>::new(cap);
    for op in ops {
        match *op {
            Op::Push(v) => {
                if m.closed || !m.full() {
                    let v = T::make(v);
                    m.pushed(ring.push(v), v, false);
                }
            }
            Op::TryPush(v) => {
                let v = T::make(v);
                m.pushed(ring.try_push(v), v, false);
            }
            Op::PushTimeout(v, t) => {
                let v = T::make(v);
                let d = m.timeout(t);
                let r = timed(d, || ring.push_timeout(v, d));
                m.pushed(r, v, true);
            }
            Op::PushSlice { seed, n } => {
                for k in 0..u64::from(n % 80) {
                    let v = T::make(seed.wrapping_add(k));
                    let r = ring.try_push(v);
                    let stop = r.is_err();
                    m.pushed(r, v, false);
                    if stop {
                        break;
                    }
                }
            }
            Op::PopInto(n) => {
                for _ in 0..n % 80 {
                    let r = ring.try_pop();
                    let stop = r.is_err();
                    m.popped(r, false);
                    if stop {
                        break;
                    }
                }
            }
            Op::TryPop => m.popped(ring.try_pop(), false),
            Op::Pop => {
                if m.closed || !m.q.is_empty() {
                    m.popped(ring.pop(), false);
                }
            }
            Op::PopTimeout(t) => {
                let d = m.timeout(t);
                let r = timed(d, || ring.pop_timeout(d));
                m.popped(r, true);
            }
            Op::Query(_) => m.query(
                ring.len(),
                ring.is_empty(),
                ring.is_full(),
                ring.capacity(),
                ring.is_closed(),
            ),
            Op::Close(_) => {
                ring.close();
                m.closed = true;
                assert!(ring.is_closed());
            }
            Op::Reclaim(_) => {
                let s = format!("{ring:?}");
                assert!(s.starts_with("MpmcRing"), "{s}");
            }
        }
        assert_eq!(ring.len(), m.q.len(), "len after {op:?}");
    }
    ring.close();
    m.closed = true;
    while !m.q.is_empty() {
        m.popped(ring.try_pop(), false);
    }
    assert_eq!(ring.try_pop(), Err(PopError::Closed));
    assert_eq!(ring.pop(), Err(PopError::Closed));
    m.out
}
