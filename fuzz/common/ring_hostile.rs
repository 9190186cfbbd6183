//! The `ring_hostile` fuzz check, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/ring_hostile.rs`) and the regression test that replays saved inputs under
//! plain `cargo test` (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! A ring lives in memory the fuzzer controls, as a hostile or crashed peer would leave it:
//!
//! - it is **created** as one of [`View`] (an SPSC or MPMC ring of `u64`, `u8` or two-word
//!   [`Wide`] items, capacity 1..=64) and filled with a few items, either in a heap buffer through
//!   the [`Object`] trait (`init`, then `cast`, as a segment places it) or in a real file-backed
//!   segment (`Segment::object`);
//! - it is **opened** as a possibly different `View` from a type tag the fuzzer wrote: on the heap
//!   the opener's tag gets fuzzed dimensions (capacity, element size and alignment) and goes
//!   through `layout` and `cast` like the segment's; in the segment the directory entry's kind,
//!   element, length and size words are overwritten and the ring is opened with
//!   `open_entry_as`/`open_object`/`object`, the paths a peer's tag reaches;
//! - between operations ([`Op`]), any word of the ring's memory is overwritten (set, nudged by a
//!   small delta, or copied from another word): positions, control words, futex words, waiter
//!   counts, side claims, per-slot sequences, items. Word indices are taken modulo the object's
//!   size, with no knowledge of the layout, so the check survives layout changes;
//! - in the segment, `inspect::describe` (the CLI's `stat`) reads the entry before the open and
//!   after the scribbles.
//!
//! Operations may fail (`Corrupted`, `Closed`, `Full`, `Empty`, `Timeout`, a side that cannot be
//! claimed) or return wrong values; they must never panic, touch memory out of bounds, or wait
//! longer than their timeout (at most 1 ms, plus slack for a loaded machine).

use arbitrary::Arbitrary;
use shmkit::SegmentOptions;
use shmkit::{
    ByteRing, MpmcBytes, MpmcRing, Pipe, PipeEnd, PopError, PushError, RecvError, SendError,
    SpscRing,
};
use shmkit::{Object, TypeTag};
use std::alloc::Layout;
use std::fmt::Debug;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most this many operations are applied.
pub const MAX_OPS: usize = 128;
/// At most this many operations wait for a non-zero timeout (the rest use a zero timeout).
const MAX_WAITS: usize = 16;
/// Slack allowed past a timeout before a call counts as hanging (the machine may be loaded).
const SLACK: Duration = Duration::from_secs(3);
/// Largest buffer the heap placement allocates for a fuzzed tag.
const MAX_HEAP: usize = 1 << 20;
/// Bytes of the segment header, and of one directory entry (the first follows the header).
const HEADER_SIZE: u64 = 256;
/// Size of the scratch segment: one page of header and directory (one entry), then the arena.
const SEGMENT_SIZE: u64 = 4096 + 64 * 1024;
/// Bound on the segment's waits for entries in transitional states.
const WAIT: Duration = Duration::from_millis(1);

/// A two-word item (10 bytes).
pub type Wide = [u16; 5];

/// One fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// The ring that is created.
    pub created: View,
    /// Its requested capacity, minus one, modulo 64.
    pub capacity: u8,
    /// Items pushed into it right after creation (modulo 80; pushes stop when it is full).
    pub prefill: u8,
    /// Where it lives.
    pub place: Place,
    /// What it is opened as.
    pub opened: View,
    /// The tag it is opened with, as a peer wrote it.
    pub tag: TagPatch,
    /// Operations and overwrites, in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// The ring types.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `SpscRing<u64>`.
    SpscU64,
    /// `SpscRing<u8>`.
    SpscU8,
    /// `SpscRing<Wide>`.
    SpscWide,
    /// `MpmcRing<u64>`.
    MpmcU64,
    /// `MpmcRing<u8>`.
    MpmcU8,
    /// `MpmcRing<Wide>`.
    MpmcWide,
    /// `ByteRing` (16 bytes per requested item, messages of up to 40 bytes).
    Bytes,
    /// `MpmcBytes` (messages of up to 24 bytes).
    MpmcBytes,
    /// `Pipe` (16 bytes per requested item and direction, messages of up to 40 bytes).
    Pipe,
}

/// Where the ring lives.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A heap buffer, placed through the `Object` trait.
    Heap,
    /// A file-backed segment in /dev/shm (or the temp dir), written with `pwrite`.
    Segment,
}

/// Fields of the type tag a peer wrote (`None`: as created).
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct TagPatch {
    /// Kind (segment only: the heap opener takes its own kind, as the directory checks it).
    pub kind: Option<u32>,
    /// Number of slots.
    pub len: Option<Dim>,
    /// Element size.
    pub elem_size: Option<u32>,
    /// Element alignment.
    pub elem_align: Option<u32>,
    /// The extra dimension.
    pub extra: Option<u64>,
    /// Segment only: the object size recorded in the directory.
    pub size: SizePatch,
}

/// A dimension a peer wrote: small, a power of two (the plausible lies) or anything.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// This value.
    Small(u8),
    /// `1 << (n % 64)`.
    Pow2(u8),
    /// Any value.
    Any(u64),
}

impl Dim {
    /// The value.
    pub fn get(self) -> u64 {
        match self {
            Dim::Small(n) => u64::from(n),
            Dim::Pow2(n) => 1 << (n % 64),
            Dim::Any(v) => v,
        }
    }
}

/// What the directory records as the object's size (segment only).
#[derive(Arbitrary, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SizePatch {
    /// The creator's size.
    #[default]
    Keep,
    /// The size the opener computes from the patched tag (a consistent liar).
    Fit,
    /// Any value.
    Set(u64),
}

/// A side of an SPSC ring.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The producer.
    Producer,
    /// The consumer.
    Consumer,
    /// The ring itself.
    Ring,
}

/// A timeout of 0, 1 µs, 100 µs or 1 ms (`n % 4`).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Tiny(pub u8);

impl Tiny {
    fn get(self) -> Duration {
        match self.0 % 4 {
            0 => Duration::ZERO,
            1 => Duration::from_micros(1),
            2 => Duration::from_micros(100),
            _ => Duration::from_millis(1),
        }
    }
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Overwrite word `word` (modulo the object's words) with `value`.
    Set {
        /// Word index.
        word: u16,
        /// New value.
        value: u64,
    },
    /// Add a small delta to a word (near-valid positions, sequences, counts).
    Add {
        /// Word index.
        word: u16,
        /// Added (wrapping).
        delta: i16,
    },
    /// Copy one word over another (a sequence into a position, a claim into another…).
    Copy {
        /// Source word index.
        from: u16,
        /// Destination word index.
        to: u16,
    },
    /// `try_push`.
    TryPush(u64),
    /// `push_timeout` with a tiny timeout.
    PushTimeout(u64, Tiny),
    /// `push_slice` of `n % 80` items (SPSC; MPMC: `try_push` each until one fails).
    PushSlice {
        /// First value.
        seed: u64,
        /// Number of items, modulo 80.
        n: u8,
    },
    /// `pop_into` a buffer of `n % 80` items (SPSC; MPMC: `try_pop` until one fails).
    PopInto(u8),
    /// `try_pop`.
    TryPop,
    /// `pop_timeout` with a tiny timeout.
    PopTimeout(Tiny),
    /// Every query: `len`, `is_empty`, `is_full`, `capacity`, `is_closed`, `positions`,
    /// `holders`, `Debug`.
    Query,
    /// `close` (through a side handle or the ring); the next push must say `Closed`.
    Close(Side),
    /// SPSC: drop a side handle and claim it again (reads the shared positions and claim word).
    Reclaim(Side),
}

/// What a run reached, for the regression test's own checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The ring could be created (on the heap: its capacity and layout were possible; in a
    /// segment: it was created there).
    pub created: bool,
    /// The ring was opened under the (patched) tag.
    pub opened: bool,
    /// The opened view's capacity.
    pub capacity: usize,
    /// Pushes that succeeded.
    pub pushed: usize,
    /// Pops that succeeded.
    pub popped: usize,
    /// Results that said `Corrupted`.
    pub corrupted: usize,
    /// Other errors (`Full`, `Empty`, `Closed`, `Timeout`, a side not claimed).
    pub refused: usize,
    /// Words overwritten.
    pub scribbled: usize,
}

/// An item type made from a `u64`.
pub trait Item: bytemuck::Pod + Debug + Send + Sync {
    /// The item for `v`.
    fn make(v: u64) -> Self;
}

impl Item for u64 {
    fn make(v: u64) -> Self {
        v
    }
}

impl Item for u8 {
    fn make(v: u64) -> Self {
        v as u8
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

/// The ring's memory as the peer sees it: words it can read and overwrite.
pub trait Memory {
    /// Number of words (at least one).
    fn words(&self) -> usize;
    /// Reads word `w` (`w < words()`).
    fn get(&self, w: usize) -> u64;
    /// Writes word `w` (`w < words()`).
    fn set(&self, w: usize, v: u64);
}

/// A heap buffer this thread owns.
struct Heap {
    base: NonNull<u8>,
    layout: Layout,
}

impl Heap {
    /// A zeroed buffer (`None` when the layout is empty or too large).
    fn new(layout: Layout) -> Option<Heap> {
        if layout.size() < 8 || layout.size() > MAX_HEAP || layout.align() < 8 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Heap { base, layout })
    }

    fn word(&self, w: usize) -> &AtomicU64 {
        assert!(w < self.words(), "word {w} out of the buffer");
        // SAFETY: `w * 8 + 8 <= size` (checked above), the base is aligned to at least 8, and
        // the buffer lives as long as `self`. The rings in it are made of atomics (any bits are
        // valid) plus padding that nothing reads; only this thread touches the buffer, so a
        // whole-word relaxed access never races (where it spans two 32-bit atomics, it is a
        // non-racing mixed-size access).
        unsafe { &*(self.base.as_ptr().add(w * 8) as *const AtomicU64) }
    }
}

impl Memory for Heap {
    fn words(&self) -> usize {
        self.layout.size() / 8
    }
    fn get(&self, w: usize) -> u64 {
        self.word(w).load(Ordering::Relaxed)
    }
    fn set(&self, w: usize, v: u64) {
        self.word(w).store(v, Ordering::Relaxed)
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every reference into it is gone (they
        // borrow `self`).
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// The object's bytes in the segment file, read and written with `pread`/`pwrite` (as another
/// process's stores: the mapping shares the file's pages).
struct FileWords<'a> {
    file: &'a File,
    offset: u64,
    words: usize,
}

impl Memory for FileWords<'_> {
    fn words(&self) -> usize {
        self.words
    }
    fn get(&self, w: usize) -> u64 {
        let mut b = [0u8; 8];
        let _ = self.file.read_exact_at(&mut b, self.offset + w as u64 * 8);
        u64::from_le_bytes(b)
    }
    fn set(&self, w: usize, v: u64) {
        let _ = self
            .file
            .write_all_at(&v.to_le_bytes(), self.offset + w as u64 * 8);
    }
}

/// Applies an overwrite op; `false` for any other op.
fn scribble(op: &Op, mem: &dyn Memory, out: &mut Outcome) -> bool {
    let n = mem.words();
    match *op {
        Op::Set { word, value } => mem.set(usize::from(word) % n, value),
        Op::Add { word, delta } => {
            let w = usize::from(word) % n;
            mem.set(w, mem.get(w).wrapping_add(delta as i64 as u64));
        }
        Op::Copy { from, to } => {
            let v = mem.get(usize::from(from) % n);
            mem.set(usize::from(to) % n, v);
        }
        _ => return false,
    }
    out.scribbled += 1;
    true
}

/// Per-run bookkeeping of waits.
struct Clock {
    waits: usize,
}

impl Clock {
    fn timeout(&mut self, t: Tiny) -> Duration {
        let d = t.get();
        if d.is_zero() || self.waits >= MAX_WAITS {
            return Duration::ZERO;
        }
        self.waits += 1;
        d
    }
}

fn push_result<T>(r: Result<(), PushError<T>>, out: &mut Outcome) {
    match r {
        Ok(()) => out.pushed += 1,
        Err(PushError::Corrupted(_)) => out.corrupted += 1,
        Err(_) => out.refused += 1,
    }
}

fn pop_result<T>(r: Result<T, PopError>, out: &mut Outcome) {
    match r {
        Ok(_) => out.popped += 1,
        Err(PopError::Corrupted) => out.corrupted += 1,
        Err(_) => out.refused += 1,
    }
}

/// The producer side of a ring placed in memory this check owns. Every end is a local of
/// `prefill` or `exercise`, dropped before they return, while the memory lives on.
fn producer_of<T: Item>(r: &SpscRing<T>) -> shmkit::Result<shmkit::Producer<T>> {
    // SAFETY: the end never outlives the call that holds `r` (see above).
    unsafe { r.producer_kept(()) }
}

/// The consumer side, as [`producer_of`].
fn consumer_of<T: Item>(r: &SpscRing<T>) -> shmkit::Result<shmkit::Consumer<T>> {
    // SAFETY: as in `producer_of`.
    unsafe { r.consumer_kept(()) }
}

/// A ring type the check knows how to fill and exercise.
pub trait Ring: Object {
    /// The creation parameters for a requested capacity `cap` (a power of two).
    fn params(cap: u64) -> Self::Params;
    /// Pushes up to `n` items (stops at the first refusal).
    fn prefill(&self, n: usize);
    /// Runs the ops against this ring, with `mem` its memory.
    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome);
}

impl<T: Item> Ring for SpscRing<T> {
    fn params(cap: u64) -> u64 {
        cap
    }

    fn prefill(&self, n: usize) {
        if let Ok(mut tx) = producer_of(self) {
            for k in 0..n {
                if tx.try_push(T::make(k as u64 + 1)).is_err() {
                    break;
                }
            }
        }
    }

    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome) {
        let cap = self.capacity();
        assert!(cap == 0 || cap.is_power_of_two(), "capacity {cap}");
        out.capacity = cap;
        let mut clock = Clock { waits: 0 };
        let mut tx = producer_of(self).ok();
        let mut rx = consumer_of(self).ok();
        for op in ops {
            let start = Instant::now();
            let mut bound = Duration::ZERO;
            if scribble(op, mem, out) {
                continue;
            }
            match *op {
                Op::TryPush(v) => {
                    if let Some(tx) = tx.as_mut() {
                        push_result(tx.try_push(T::make(v)), out);
                    }
                }
                Op::PushTimeout(v, t) => {
                    if let Some(tx) = tx.as_mut() {
                        bound = clock.timeout(t);
                        push_result(tx.push_timeout(T::make(v), bound), out);
                    }
                }
                Op::PushSlice { seed, n } => {
                    if let Some(tx) = tx.as_mut() {
                        let items: Vec<T> = (0..u64::from(n % 80))
                            .map(|k| T::make(seed.wrapping_add(k)))
                            .collect();
                        match tx.push_slice(&items) {
                            Ok(k) => {
                                assert!(k <= items.len() && k <= cap, "push_slice pushed {k}");
                                out.pushed += k;
                            }
                            Err(PushError::Corrupted(())) => out.corrupted += 1,
                            Err(_) => out.refused += 1,
                        }
                    }
                }
                Op::PopInto(n) => {
                    if let Some(rx) = rx.as_mut() {
                        let mut buf = vec![T::make(0); usize::from(n % 80)];
                        match rx.pop_into(&mut buf) {
                            Ok(k) => {
                                assert!(k <= buf.len() && k <= cap, "pop_into popped {k}");
                                out.popped += k;
                            }
                            Err(PopError::Corrupted) => out.corrupted += 1,
                            Err(_) => out.refused += 1,
                        }
                    }
                }
                Op::TryPop => {
                    if let Some(rx) = rx.as_mut() {
                        pop_result(rx.try_pop(), out);
                    }
                }
                Op::PopTimeout(t) => {
                    if let Some(rx) = rx.as_mut() {
                        bound = clock.timeout(t);
                        pop_result(rx.pop_timeout(bound), out);
                    }
                }
                Op::Query => {
                    let n = self.len();
                    assert!(n <= cap, "len {n} above capacity {cap}");
                    assert_eq!(self.is_empty(), n == 0);
                    let _ = (self.is_full(), self.is_closed(), self.positions());
                    let _ = (self.holders(), format!("{self:?}"));
                    if let Some(tx) = &tx {
                        assert!(tx.len() <= cap && tx.capacity() == cap);
                        let _ = (tx.is_empty(), tx.is_full(), tx.is_closed());
                    }
                    if let Some(rx) = &rx {
                        assert!(rx.len() <= cap && rx.capacity() == cap);
                        let _ = (rx.is_empty(), rx.is_full(), rx.is_closed());
                    }
                }
                Op::Close(side) => {
                    match (side, &tx, &rx) {
                        (Side::Producer, Some(tx), _) => tx.close(),
                        (Side::Consumer, _, Some(rx)) => rx.close(),
                        _ => self.close(),
                    }
                    assert!(self.is_closed());
                    if let Some(tx) = tx.as_mut() {
                        let r = tx.try_push(T::make(0));
                        assert!(
                            matches!(r, Err(PushError::Closed(_))),
                            "push right after close: {r:?}"
                        );
                    }
                }
                Op::Reclaim(Side::Consumer) => {
                    drop(rx.take()); // release the side before claiming it again
                    rx = consumer_of(self).ok();
                    if rx.is_none() {
                        out.refused += 1;
                    }
                }
                Op::Reclaim(_) => {
                    drop(tx.take()); // release the side before claiming it again
                    tx = producer_of(self).ok();
                    if tx.is_none() {
                        out.refused += 1;
                    }
                }
                Op::Set { .. } | Op::Add { .. } | Op::Copy { .. } => unreachable!(),
            }
            let took = start.elapsed();
            assert!(took <= bound + SLACK, "{op:?} took {took:?}");
            assert_eq!(self.capacity(), cap, "the capacity is local");
        }
    }
}

impl<T: Item> Ring for MpmcRing<T> {
    fn params(cap: u64) -> u64 {
        cap
    }

    fn prefill(&self, n: usize) {
        for k in 0..n {
            if self.try_push(T::make(k as u64 + 1)).is_err() {
                break;
            }
        }
    }

    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome) {
        let cap = self.capacity();
        assert!(cap == 0 || cap.is_power_of_two(), "capacity {cap}");
        out.capacity = cap;
        let mut clock = Clock { waits: 0 };
        for op in ops {
            let start = Instant::now();
            let mut bound = Duration::ZERO;
            if scribble(op, mem, out) {
                continue;
            }
            match *op {
                Op::TryPush(v) => push_result(self.try_push(T::make(v)), out),
                Op::PushTimeout(v, t) => {
                    bound = clock.timeout(t);
                    push_result(self.push_timeout(T::make(v), bound), out);
                }
                Op::PushSlice { seed, n } => {
                    for k in 0..u64::from(n % 80) {
                        let r = self.try_push(T::make(seed.wrapping_add(k)));
                        let stop = r.is_err();
                        push_result(r, out);
                        if stop {
                            break;
                        }
                    }
                }
                Op::PopInto(n) => {
                    for _ in 0..n % 80 {
                        let r = self.try_pop();
                        let stop = r.is_err();
                        pop_result(r, out);
                        if stop {
                            break;
                        }
                    }
                }
                Op::TryPop => pop_result(self.try_pop(), out),
                Op::PopTimeout(t) => {
                    bound = clock.timeout(t);
                    pop_result(self.pop_timeout(bound), out);
                }
                Op::Query => {
                    let n = self.len();
                    assert!(n <= cap, "len {n} above capacity {cap}");
                    assert_eq!(self.is_empty(), n == 0);
                    let _ = (self.is_full(), self.is_closed(), format!("{self:?}"));
                }
                Op::Close(_) => {
                    self.close();
                    assert!(self.is_closed());
                    let r = self.try_push(T::make(0));
                    assert!(
                        matches!(r, Err(PushError::Closed(_))),
                        "push right after close: {r:?}"
                    );
                }
                Op::Reclaim(_) => {
                    let _ = format!("{self:?}");
                }
                Op::Set { .. } | Op::Add { .. } | Op::Copy { .. } => unreachable!(),
            }
            let took = start.elapsed();
            assert!(took <= bound + SLACK, "{op:?} took {took:?}");
            assert_eq!(self.capacity(), cap, "the capacity is local");
        }
    }
}

/// A message of `v % 48` bytes made from `v` (longer than some queues' `max_msg`: those
/// sends are refused with `TooLarge`).
fn message(v: u64) -> Vec<u8> {
    (0..v % 48)
        .map(|i| (v >> (i % 8 * 8)) as u8 ^ i as u8)
        .collect()
}

fn send_result(r: Result<(), SendError>, out: &mut Outcome) {
    match r {
        Ok(()) => out.pushed += 1,
        Err(SendError::Corrupted) => out.corrupted += 1,
        Err(_) => out.refused += 1,
    }
}

fn recv_result<T>(r: Result<T, RecvError>, out: &mut Outcome) {
    match r {
        Ok(_) => out.popped += 1,
        Err(RecvError::Corrupted) => out.corrupted += 1,
        Err(_) => out.refused += 1,
    }
}

/// Byte rings and pipes: 16 bytes per requested item, messages of up to 40 bytes (less where
/// the capacity does not allow it).
fn byte_params(cap: u64) -> (u64, u64) {
    let bytes = (cap * 16).max(32).next_power_of_two();
    (bytes, (bytes / 2 - 8).min(40))
}

/// The operations of one sending and one receiving end of a byte carrier, whatever it is.
trait Ends {
    fn try_send(&mut self, m: &[u8]) -> Result<(), SendError>;
    fn send_timeout(&mut self, m: &[u8], t: Duration) -> Result<(), SendError>;
    fn try_recv(&mut self) -> Result<Vec<u8>, RecvError>;
    fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError>;
    fn recv_timeout(&mut self, t: Duration) -> Result<Vec<u8>, RecvError>;
    fn query(&mut self, cap: usize);
    fn close(&mut self, side: Side);
    fn is_closed(&self) -> bool;
    fn reclaim(&mut self, side: Side, out: &mut Outcome);
}

/// A byte ring with the ends this check holds (`None`: not claimed). Every end is dropped
/// before the ring's memory (they live in `exercise`).
struct ByteEnds<'a> {
    ring: &'a ByteRing,
    tx: Option<shmkit::ByteSender>,
    rx: Option<shmkit::ByteReceiver>,
}

impl<'a> ByteEnds<'a> {
    fn new(ring: &'a ByteRing) -> Self {
        // SAFETY: the ends live in the returned value, which `exercise` drops before the memory
        // that holds `ring` is freed.
        let tx = unsafe { ring.sender_kept(()) }.ok();
        // SAFETY: as above.
        let rx = unsafe { ring.receiver_kept(()) }.ok();
        ByteEnds { ring, tx, rx }
    }
}

impl Ends for ByteEnds<'_> {
    fn try_send(&mut self, m: &[u8]) -> Result<(), SendError> {
        self.tx
            .as_mut()
            .map_or(Err(SendError::Closed), |t| t.try_send(m))
    }
    fn send_timeout(&mut self, m: &[u8], t: Duration) -> Result<(), SendError> {
        self.tx
            .as_mut()
            .map_or(Err(SendError::Closed), |x| x.send_timeout(m, t))
    }
    fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.rx
            .as_mut()
            .map_or(Err(RecvError::Closed), |r| r.try_recv())
    }
    fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.rx
            .as_mut()
            .map_or(Err(RecvError::Closed), |r| r.try_recv_slice(buf))
    }
    fn recv_timeout(&mut self, t: Duration) -> Result<Vec<u8>, RecvError> {
        self.rx
            .as_mut()
            .map_or(Err(RecvError::Closed), |r| r.recv_timeout(t))
    }
    fn query(&mut self, cap: usize) {
        let r = self.ring;
        assert!(r.len() <= cap, "len {} above capacity {cap}", r.len());
        assert!(
            r.max_msg() <= cap / 2,
            "max_msg {} for capacity {cap}",
            r.max_msg()
        );
        let _ = (r.is_empty(), r.positions(), r.holders(), format!("{r:?}"));
        if let Some(t) = &self.tx {
            assert!(t.len() <= cap && t.capacity() == cap);
            let _ = (t.is_empty(), t.max_msg(), t.is_closed());
        }
        if let Some(x) = self.rx.as_mut() {
            assert!(x.len() <= cap && x.capacity() == cap);
            let _ = (
                x.is_empty(),
                x.max_msg(),
                x.is_closed(),
                x.poll(Duration::ZERO),
            );
        }
    }
    fn close(&mut self, side: Side) {
        match (side, &self.tx, &self.rx) {
            (Side::Producer, Some(t), _) => t.close(),
            (Side::Consumer, _, Some(r)) => r.close(),
            _ => self.ring.close(),
        }
    }
    fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }
    fn reclaim(&mut self, side: Side, out: &mut Outcome) {
        if side == Side::Consumer {
            drop(self.rx.take());
            // SAFETY: as in `new`.
            self.rx = unsafe { self.ring.receiver_kept(()) }.ok();
            out.refused += usize::from(self.rx.is_none());
        } else {
            drop(self.tx.take());
            // SAFETY: as in `new`.
            self.tx = unsafe { self.ring.sender_kept(()) }.ok();
            out.refused += usize::from(self.tx.is_none());
        }
    }
}

/// A pipe with its two connections (A sends to B): sends go through A, receives through B.
struct PipeEnds<'a> {
    pipe: &'a Pipe,
    a: Option<shmkit::Connection>,
    b: Option<shmkit::Connection>,
}

impl<'a> PipeEnds<'a> {
    fn new(pipe: &'a Pipe) -> Self {
        // SAFETY: as in `ByteEnds::new`.
        let a = unsafe { pipe.end_kept(PipeEnd::A, ()) }.ok();
        // SAFETY: as above.
        let b = unsafe { pipe.end_kept(PipeEnd::B, ()) }.ok();
        PipeEnds { pipe, a, b }
    }
}

impl Ends for PipeEnds<'_> {
    fn try_send(&mut self, m: &[u8]) -> Result<(), SendError> {
        self.a
            .as_mut()
            .map_or(Err(SendError::Closed), |c| c.try_send(m))
    }
    fn send_timeout(&mut self, m: &[u8], t: Duration) -> Result<(), SendError> {
        self.a
            .as_mut()
            .map_or(Err(SendError::Closed), |c| c.send_timeout(m, t))
    }
    fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.b
            .as_mut()
            .map_or(Err(RecvError::Closed), |c| c.try_recv())
    }
    fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.b
            .as_mut()
            .map_or(Err(RecvError::Closed), |c| c.try_recv_slice(buf))
    }
    fn recv_timeout(&mut self, t: Duration) -> Result<Vec<u8>, RecvError> {
        self.b
            .as_mut()
            .map_or(Err(RecvError::Closed), |c| c.recv_timeout(t))
    }
    fn query(&mut self, cap: usize) {
        let p = self.pipe;
        let (ab, ba) = p.len();
        assert!(ab <= cap && ba <= cap, "len {ab}/{ba} above capacity {cap}");
        let _ = (p.is_empty(), p.max_msg(), p.holders(), format!("{p:?}"));
        for c in [self.a.as_mut(), self.b.as_mut()].into_iter().flatten() {
            assert_eq!(c.capacity(), cap);
            let _ = (
                c.end(),
                c.peer(),
                c.max_msg(),
                c.is_closed(),
                c.poll(Duration::ZERO),
            );
        }
    }
    fn close(&mut self, side: Side) {
        match (side, &self.a, &self.b) {
            (Side::Producer, Some(c), _) | (Side::Consumer, _, Some(c)) => c.close(),
            _ => self.pipe.close(),
        }
    }
    fn is_closed(&self) -> bool {
        self.pipe.is_closed()
    }
    fn reclaim(&mut self, side: Side, out: &mut Outcome) {
        let (slot, end) = if side == Side::Consumer {
            (&mut self.b, PipeEnd::B)
        } else {
            (&mut self.a, PipeEnd::A)
        };
        drop(slot.take());
        // SAFETY: as in `new`.
        *slot = unsafe { self.pipe.end_kept(end, ()) }.ok();
        out.refused += usize::from(slot.is_none());
    }
}

/// Runs the ops against a byte carrier's ends.
fn exercise_ends(
    e: &mut dyn Ends,
    cap: usize,
    capacity: &dyn Fn() -> usize,
    mem: &dyn Memory,
    ops: &[Op],
    out: &mut Outcome,
) {
    out.capacity = cap;
    let mut clock = Clock { waits: 0 };
    for op in ops {
        let start = Instant::now();
        let mut bound = Duration::ZERO;
        if scribble(op, mem, out) {
            continue;
        }
        match *op {
            Op::TryPush(v) => send_result(e.try_send(&message(v)), out),
            Op::PushTimeout(v, t) => {
                bound = clock.timeout(t);
                send_result(e.send_timeout(&message(v), bound), out);
            }
            Op::PushSlice { seed, n } => {
                for k in 0..u64::from(n % 80) {
                    let r = e.try_send(&message(seed.wrapping_add(k)));
                    let stop = r.is_err();
                    send_result(r, out);
                    if stop {
                        break;
                    }
                }
            }
            Op::PopInto(n) => {
                let mut buf = vec![0u8; usize::from(n % 80)];
                match e.try_recv_slice(&mut buf) {
                    Ok(k) => {
                        assert!(k <= buf.len(), "try_recv_slice gave {k} bytes");
                        out.popped += 1;
                    }
                    Err(RecvError::TooSmall { needed }) => {
                        assert!(needed > buf.len(), "TooSmall({needed}) for {}", buf.len());
                        out.refused += 1;
                    }
                    r => recv_result(r, out),
                }
            }
            Op::TryPop => recv_result(e.try_recv(), out),
            Op::PopTimeout(t) => {
                bound = clock.timeout(t);
                recv_result(e.recv_timeout(bound), out);
            }
            Op::Query => e.query(cap),
            Op::Close(side) => {
                e.close(side);
                assert!(e.is_closed());
                // An empty message fits any (scribbled) max_msg; a view without a whole slot
                // reports Corrupted before it looks at the flag.
                let r = e.try_send(b"");
                assert!(
                    matches!(r, Err(SendError::Closed))
                        || (cap == 0 && matches!(r, Err(SendError::Corrupted))),
                    "send right after close: {r:?}"
                );
            }
            Op::Reclaim(side) => e.reclaim(side, out),
            Op::Set { .. } | Op::Add { .. } | Op::Copy { .. } => unreachable!(),
        }
        let took = start.elapsed();
        assert!(took <= bound + SLACK, "{op:?} took {took:?}");
        assert_eq!(capacity(), cap, "the capacity is local");
    }
}

impl Ring for ByteRing {
    fn params(cap: u64) -> (u64, u64) {
        byte_params(cap)
    }

    fn prefill(&self, n: usize) {
        // SAFETY: the sender is dropped before this call returns.
        if let Ok(mut tx) = unsafe { self.sender_kept(()) } {
            for k in 0..n {
                if tx.try_send(&message(k as u64 + 1)).is_err() {
                    break;
                }
            }
        }
    }

    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome) {
        let cap = self.capacity();
        assert!(cap == 0 || cap.is_power_of_two(), "capacity {cap}");
        let mut ends = ByteEnds::new(self);
        exercise_ends(&mut ends, cap, &|| self.capacity(), mem, ops, out);
    }
}

impl Ring for Pipe {
    fn params(cap: u64) -> (u64, u64) {
        byte_params(cap)
    }

    fn prefill(&self, n: usize) {
        // SAFETY: the connection is dropped before this call returns.
        if let Ok(mut a) = unsafe { self.end_kept(PipeEnd::A, ()) } {
            for k in 0..n {
                if a.try_send(&message(k as u64 + 1)).is_err() {
                    break;
                }
            }
        }
    }

    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome) {
        let cap = self.capacity();
        assert!(cap == 0 || cap.is_power_of_two(), "capacity {cap}");
        let mut ends = PipeEnds::new(self);
        exercise_ends(&mut ends, cap, &|| self.capacity(), mem, ops, out);
    }
}

/// The MPMC byte queue: every call goes through `&self`; "claiming" a side is a no-op.
struct QueueEnds<'a>(&'a MpmcBytes);

impl Ends for QueueEnds<'_> {
    fn try_send(&mut self, m: &[u8]) -> Result<(), SendError> {
        self.0.try_send(m)
    }
    fn send_timeout(&mut self, m: &[u8], t: Duration) -> Result<(), SendError> {
        self.0.send_timeout(m, t)
    }
    fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.0.try_recv()
    }
    fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        // The queue has no slice receive: receive into a vector and compare.
        let mut v = Vec::new();
        let n = self.0.try_recv_into(&mut v)?;
        assert_eq!(n, v.len());
        assert!(
            n <= self.0.max_msg(),
            "a message of {n} bytes, max_msg {}",
            self.0.max_msg()
        );
        let k = n.min(buf.len());
        buf[..k].copy_from_slice(&v[..k]);
        Ok(k)
    }
    fn recv_timeout(&mut self, t: Duration) -> Result<Vec<u8>, RecvError> {
        self.0.recv_timeout(t)
    }
    fn query(&mut self, cap: usize) {
        let q = self.0;
        assert!(q.len() <= cap, "len {} above capacity {cap}", q.len());
        let _ = (
            q.is_empty(),
            q.is_full(),
            q.max_msg(),
            q.lost(),
            q.positions(),
        );
        let _ = (q.reap_dead(), format!("{q:?}"));
    }
    fn close(&mut self, _: Side) {
        self.0.close();
    }
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
    fn reclaim(&mut self, _: Side, _: &mut Outcome) {}
}

impl Ring for MpmcBytes {
    fn params(cap: u64) -> (u64, u64) {
        (cap.max(2), 24)
    }

    fn prefill(&self, n: usize) {
        for k in 0..n {
            if self.try_send(&message(k as u64 + 1)).is_err() {
                break;
            }
        }
    }

    fn exercise(&self, mem: &dyn Memory, ops: &[Op], out: &mut Outcome) {
        let cap = self.capacity();
        assert!(cap == 0 || cap.is_power_of_two(), "capacity {cap}");
        exercise_ends(
            &mut QueueEnds(self),
            cap,
            &|| self.capacity(),
            mem,
            ops,
            out,
        );
    }
}

/// Runs one fuzz case.
pub fn run(input: &Input) -> Outcome {
    let mut out = Outcome::default();
    match input.created {
        View::SpscU64 => opened::<SpscRing<u64>>(input, &mut out),
        View::SpscU8 => opened::<SpscRing<u8>>(input, &mut out),
        View::SpscWide => opened::<SpscRing<Wide>>(input, &mut out),
        View::MpmcU64 => opened::<MpmcRing<u64>>(input, &mut out),
        View::MpmcU8 => opened::<MpmcRing<u8>>(input, &mut out),
        View::MpmcWide => opened::<MpmcRing<Wide>>(input, &mut out),
        View::Bytes => opened::<ByteRing>(input, &mut out),
        View::MpmcBytes => opened::<MpmcBytes>(input, &mut out),
        View::Pipe => opened::<Pipe>(input, &mut out),
    }
    out
}

fn opened<C: Ring + ?Sized>(input: &Input, out: &mut Outcome) {
    match input.opened {
        View::SpscU64 => place::<C, SpscRing<u64>>(input, out),
        View::SpscU8 => place::<C, SpscRing<u8>>(input, out),
        View::SpscWide => place::<C, SpscRing<Wide>>(input, out),
        View::MpmcU64 => place::<C, MpmcRing<u64>>(input, out),
        View::MpmcU8 => place::<C, MpmcRing<u8>>(input, out),
        View::MpmcWide => place::<C, MpmcRing<Wide>>(input, out),
        View::Bytes => place::<C, ByteRing>(input, out),
        View::MpmcBytes => place::<C, MpmcBytes>(input, out),
        View::Pipe => place::<C, Pipe>(input, out),
    }
}

fn place<C: Ring + ?Sized, O: Ring + ?Sized>(input: &Input, out: &mut Outcome) {
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    match input.place {
        Place::Heap => on_heap::<C, O>(input, ops, out),
        Place::Segment => in_segment::<C, O>(input, ops, out),
    }
}

/// The capacity, tag and layout `C` is created with for the input's request: the request rounded
/// up to a power of two, or the next one if the ring type has a larger minimum.
fn creation<C: Ring + ?Sized>(input: &Input) -> Option<(C::Params, TypeTag, Layout)> {
    let cap = requested(input);
    [cap, cap * 2].into_iter().find_map(|c| {
        let p = C::params(c);
        let tag = C::tag(&p);
        C::layout(&tag).map(|l| (p, tag, l))
    })
}

/// The requested capacity: a power of two, 1 to 64.
fn requested(input: &Input) -> u64 {
    (u64::from(input.capacity % 64) + 1).next_power_of_two()
}

/// Applies the patch's dimensions to `tag`.
fn patch_dims(tag: &mut TypeTag, p: &TagPatch) {
    if let Some(v) = p.len {
        tag.len = v.get();
    }
    if let Some(v) = p.elem_size {
        tag.elem_size = v;
    }
    if let Some(v) = p.elem_align {
        tag.elem_align = v;
    }
    if let Some(v) = p.extra {
        tag.extra = v;
    }
}

fn on_heap<C: Ring + ?Sized, O: Ring + ?Sized>(input: &Input, ops: &[Op], out: &mut Outcome) {
    let Some((cap, ctag, lc)) = creation::<C>(input) else {
        return;
    };
    out.created = true;
    // The opener's tag: its own kind and element, with the dimensions the peer wrote.
    let mut otag = O::element().with_dims(ctag.len, ctag.extra);
    patch_dims(&mut otag, &input.tag);
    // Like the segment: the opener lays the object out from the tag it read, or refuses it.
    let Some(lo) = O::layout(&otag) else {
        return;
    };
    let Ok(layout) = Layout::from_size_align(
        lc.size().max(lo.size()),
        lc.align().max(lo.align()).max(128),
    ) else {
        return;
    };
    let Some(heap) = Heap::new(layout) else {
        return;
    };
    // SAFETY: the buffer is zeroed, aligned to at least `lc.align()` and holds `lc.size()`
    // bytes; nothing else refers to it yet.
    unsafe { C::init(heap.base, &ctag, cap) };
    {
        // SAFETY: `cast` with the creator's tag stays within `lc.size()` bytes of the buffer,
        // which `init` made a valid `C`; the reference ends before the buffer is freed.
        let c = unsafe { C::cast(heap.base, &ctag).as_ref() };
        c.prefill(usize::from(input.prefill % 80));
    }
    out.opened = true;
    // SAFETY: `cast` with the opener's tag stays within `lo.size()` bytes, and the buffer holds
    // `max(lc, lo)` bytes aligned for both; every bit pattern is a valid `O` (all atomics); the
    // reference ends before `heap` frees the buffer.
    let o = unsafe { O::cast(heap.base, &otag).as_ref() };
    o.exercise(&heap, ops, out);
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh file name for this process, in /dev/shm (or the temp dir where that is missing); the
/// `shmkit-fuzz-<pid>-<n>` form lets `fuzz/smoke.sh` remove those a killed run left behind.
fn scratch_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!(
        "shmkit-fuzz-{}-r{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Word `field` of directory entry 0 (the only one), as a file offset.
fn entry_word(field: u64) -> u64 {
    HEADER_SIZE + field * 8
}

fn in_segment<C: Ring + ?Sized, O: Ring + ?Sized>(input: &Input, ops: &[Op], out: &mut Outcome) {
    let Some((cap, _, _)) = creation::<C>(input) else {
        return;
    };
    let path = scratch_path();
    let _cleanup = RemoveOnDrop(path.clone());
    let Ok(seg) = SegmentOptions::new()
        .dir_capacity(1)
        .wait_timeout(WAIT)
        .file(&path, SEGMENT_SIZE)
    else {
        return;
    };
    match seg.object::<C>("ring", cap) {
        Ok(h) => h.prefill(usize::from(input.prefill % 80)),
        Err(e) => panic!("creating the ring in a fresh segment: {e}"),
    }
    out.created = true;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return;
    };
    // The peer rewrites the entry's tag (DirEntry words: 2 kind, 3 element size | align << 32,
    // 4 length, 5 extra, 7 size).
    let p = &input.tag;
    let put = |field: u64, v: u64| {
        let _ = file.write_all_at(&v.to_le_bytes(), entry_word(field));
    };
    let get = |field: u64| {
        let mut b = [0u8; 8];
        let _ = file.read_exact_at(&mut b, entry_word(field));
        u64::from_le_bytes(b)
    };
    if let Some(k) = p.kind {
        put(2, u64::from(k));
    }
    if p.elem_size.is_some() || p.elem_align.is_some() {
        let old = get(3);
        let size = p.elem_size.map_or(old & 0xffff_ffff, u64::from);
        let align = p.elem_align.map_or(old >> 32, u64::from);
        put(3, align << 32 | size);
    }
    if let Some(v) = p.len {
        put(4, v.get());
    }
    if let Some(v) = p.extra {
        put(5, v);
    }
    let Ok(list) = seg.entries() else {
        return;
    };
    let Some(entry) = list.into_iter().find(|e| e.name == "ring") else {
        return;
    };
    match p.size {
        SizePatch::Keep => {}
        SizePatch::Fit => {
            if let Some(l) = O::layout(&entry.tag) {
                put(7, l.size() as u64);
            }
        }
        SizePatch::Set(v) => put(7, v),
    }
    // The CLI's `stat` describes the entry under the patched tag (with its own view).
    let _ = shmkit::inspect::state(&seg, &entry).map(|s| s.to_string().len());
    let kind_ok = entry.tag.kind == O::element().kind;
    let h = match seg.open_entry_as::<O>(&entry) {
        Ok(h) => h,
        Err(_) => match seg.open_object::<O>("ring") {
            Ok(h) => h,
            Err(_) => match seg.object::<O>("ring", O::params(requested(input))) {
                Ok(h) => h,
                Err(_) => return,
            },
        },
    };
    assert!(kind_ok, "a ring opened under kind {}", entry.tag.kind);
    out.opened = true;
    let mem = FileWords {
        file: &file,
        offset: entry.offset,
        words: (core::mem::size_of_val::<O>(&h) / 8).max(1),
    };
    h.exercise(&mem, ops, out);
    // And again after the scribbles.
    if let Ok(list) = seg.entries() {
        for e in &list {
            let _ = shmkit::inspect::state(&seg, e).map(|s| s.to_string().len());
        }
    }
}
