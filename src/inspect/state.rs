//! The structured state of each object kind: numbers a library user, an exporter or the CLI
//! formats as it likes. `Display` (in `text.rs`) gives `shmkit stat`'s one line.

use super::{ListState, MapState};
use crate::lock::LockState;
use crate::object::Kind;

/// A number read from shared memory, in the element type's own family (so that it prints as
/// that type does: an `f32` stays `0.1`, not `0.10000000149011612`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// Any unsigned integer type (`u8` … `usize`).
    Unsigned(u64),
    /// Any signed integer type (`i8` … `isize`).
    Signed(i64),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
}

impl Number {
    /// The number as an `f64` (integers above 2^53 are rounded), for gauges and rates.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Unsigned(n) => n as f64,
            Number::Signed(n) => n as f64,
            Number::F32(x) => f64::from(x),
            Number::F64(x) => x,
        }
    }
}

/// What a value-like object holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A primitive number (`u8` … `f64`), decoded.
    Number(Number),
    /// A type this crate does not know, 8 bytes or less: the raw bits of its word.
    Bits {
        /// The element type's name, as recorded by its creator.
        type_name: String,
        /// The value's bits (the low `size_of::<T>()` bytes).
        bits: u64,
    },
    /// A larger type this crate does not know: only its name and size.
    Opaque {
        /// The element type's name.
        type_name: String,
        /// Its size in bytes.
        size: u64,
    },
}

impl Reading {
    /// The number, if the element type is a primitive number.
    pub fn number(&self) -> Option<Number> {
        match self {
            Reading::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// A ring's positions as read (monotonic 64-bit counts of items or bytes pushed and popped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    /// Items (or bytes) taken out so far.
    pub head: u64,
    /// Items (or bytes) put in so far (claimed, for MPMC rings).
    pub tail: u64,
    /// Capacity, from the local handle's validated dimensions.
    pub capacity: u64,
}

impl Positions {
    /// `tail − head` when it is a possible length (at most the capacity); `None` when the
    /// positions were scribbled over (or, for an MPMC ring, read while racing: rare and brief).
    pub fn len(&self) -> Option<u64> {
        self.tail
            .checked_sub(self.head)
            .filter(|&n| n <= self.capacity)
    }

    /// Whether the positions say empty (`head == tail`).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The state of one object, read without taking any lock a writer takes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum State {
    /// Its creator has not finished initializing it.
    Initializing,
    /// A [`Counter`](crate::Counter).
    Counter {
        /// Its value.
        value: u64,
    },
    /// A [`ShardedCounter`](crate::ShardedCounter).
    ShardedCounter {
        /// The sum of its stripes.
        sum: u64,
        /// Stripes that are not zero.
        busy_stripes: usize,
    },
    /// An [`AtomicValue`](crate::AtomicValue).
    Value(Reading),
    /// A [`Mutex`](crate::Mutex) or [`ReentrantMutex`](crate::ReentrantMutex).
    Lock {
        /// The lock word.
        state: LockState,
        /// Recursion depth of a reentrant mutex's owner (`None` for a mutex, or unlocked).
        depth: Option<u64>,
    },
    /// A [`Condvar`](crate::Condvar).
    Condvar {
        /// Threads waiting now.
        waiters: u32,
        /// Notifications so far (wrapping).
        notifies: u32,
    },
    /// A [`Semaphore`](crate::Semaphore).
    Semaphore {
        /// Permits free now.
        available: u32,
        /// Its bound, if any.
        bound: Option<u32>,
        /// Permits held per process: `(pid, count)` (pid 0: untracked holders).
        holders: Vec<(u32, u64)>,
        /// Permits taken back from dead holders so far.
        reclaimed: u64,
    },
    /// A [`Barrier`](crate::Barrier).
    Barrier {
        /// Completed rounds (wrapping).
        generation: u32,
        /// Parties arrived in this round.
        arrived: u32,
        /// Parties per round.
        parties: u32,
        /// A party died or timed out: the barrier must be reset.
        broken: bool,
    },
    /// An [`Event`](crate::Event).
    Event {
        /// Whether it is set.
        set: bool,
        /// Threads waiting now.
        waiters: u32,
    },
    /// A [`SeqLock`](crate::SeqLock).
    SeqLock {
        /// The value.
        value: Reading,
        /// Writes completed so far (wrapping).
        version: u64,
        /// Why the writer lock is not clean (a writer died mid-write), if it is not.
        writer_note: Option<String>,
    },
    /// A [`SeqArray`](crate::SeqArray).
    SeqArray {
        /// Its length.
        len: u64,
        /// The element type's name.
        type_name: String,
        /// The first elements (up to 8), when the element type is a primitive number.
        first: Option<Vec<Number>>,
        /// As for [`State::SeqLock`].
        writer_note: Option<String>,
    },
    /// An [`SpscRing`](crate::SpscRing) (counts in items).
    Spsc {
        /// Head, tail and capacity.
        positions: Positions,
        /// Pids of the producer and consumer ends (0 = free).
        holders: (u32, u32),
        /// Whether it was closed.
        closed: bool,
    },
    /// An [`MpmcRing`](crate::MpmcRing) (counts in items).
    Mpmc {
        /// Head, tail (claimed pushes) and capacity.
        positions: Positions,
        /// Items lost with processes that died holding a slot.
        lost: u64,
        /// Whether it was closed.
        closed: bool,
    },
    /// A [`ByteRing`](crate::ByteRing) (counts in bytes).
    ByteRing {
        /// Head, tail and capacity, in bytes.
        positions: Positions,
        /// The largest message accepted.
        max_msg: u64,
        /// Pids of the sender and receiver ends (0 = free).
        holders: (u32, u32),
        /// Whether it was closed.
        closed: bool,
    },
    /// A [`Pipe`](crate::Pipe): two byte rings.
    Pipe {
        /// The direction A→B, in bytes.
        a_to_b: Positions,
        /// The direction B→A, in bytes.
        b_to_a: Positions,
        /// The largest message accepted.
        max_msg: u64,
        /// Pids holding ends A and B (0 = free).
        holders: (u32, u32),
        /// Whether it was closed.
        closed: bool,
    },
    /// An `MpmcBytes` queue (counts in messages).
    MpmcBytes {
        /// Head, tail (claimed sends) and capacity, in messages.
        positions: Positions,
        /// The largest message accepted.
        max_msg: u64,
        /// Messages lost with processes that died holding a slot.
        lost: u64,
        /// Whether it was closed.
        closed: bool,
    },
    /// A map (any of its faces).
    Map(MapState),
    /// A list (any of its faces).
    List(ListState),
    /// A kind this version does not decode.
    Other {
        /// Its kind.
        kind: Kind,
        /// Offset from the segment's start.
        offset: u64,
        /// Size in bytes.
        size: u64,
    },
}

/// One object of a segment: where it is and its state.
#[derive(Debug)]
pub struct ObjectReport {
    /// The object's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The element type's name (empty for kinds without one).
    pub type_name: String,
    /// Offset from the segment's start.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Its state, or why it could not be read (a scribbled entry, say).
    pub state: crate::Result<State>,
}
