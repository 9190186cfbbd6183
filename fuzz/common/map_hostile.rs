//! The `map_hostile` fuzz check, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/map_hostile.rs`) and `tests/fuzz_regressions.rs`.
//!
//! A map and a list are placed, as a segment places them (the [`Object`] trait's `layout`,
//! `init`, `cast`), in one heap buffer the fuzzer then scribbles on between operations, as a
//! hostile or crashed peer would: any word is set, nudged by a small delta or copied from
//! another (indices modulo the buffer's size, with no knowledge of the layout). Each object may
//! also be opened from a tag with fuzzed dimensions (through `layout` and `cast`, as a peer's
//! directory entry would be).
//!
//! Operations may fail (`ObjectCorrupted`, `MapFull`, `ListFull`, `Timeout` behind a lock word
//! naming a live process, …) or return wrong values; they must never panic, touch memory out of
//! bounds, or wait past their timeout (1 ms, plus slack for a loaded machine).

use arbitrary::Arbitrary;
use shmkit::{ByteMap, List, MapOptions};
use shmkit::{Object, TypeTag};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most this many operations are applied.
pub const MAX_OPS: usize = 128;
/// Slack allowed past a timeout before a call counts as hanging.
const SLACK: Duration = Duration::from_secs(3);
/// Largest buffer placed.
const MAX_HEAP: usize = 1 << 20;
const T: Duration = Duration::from_millis(1);

/// One fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// Map capacity (1..=64), key_max (1..=16), value_max (0..=64).
    pub capacity: u8,
    pub key_max: u8,
    pub value_max: u8,
    /// List capacity (1..=64).
    pub list_capacity: u8,
    /// Dimensions the map is opened with, as a peer's tag says (`None`: the creator's).
    pub map_tag: Option<(u64, u64)>,
    /// The list's capacity and element size as a peer's tag says (`None`: the creator's).
    pub list_tag: Option<(u64, u64)>,
    /// Operations and scribbles, in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// An operation or an overwrite.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Insert(u8, u8),
    Remove(u8),
    Get(u8),
    Update(u8),
    Iter,
    Clear,
    Push(u64),
    Pop,
    Set(u8, u64),
    ListGet(u8),
    ListIter,
    ListClear,
    /// Sets word `at` (modulo the words) of the map (`map`) or the list.
    Scribble {
        map: bool,
        at: u16,
        how: How,
    },
}

/// How a word is overwritten.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum How {
    Set(u64),
    Nudge(i8),
    CopyFrom(u16),
    /// An owner word of this process (a live holder) or of one that cannot exist.
    Owner {
        live: bool,
    },
}

/// A heap buffer holding one placed object, freed on drop.
struct Placed {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Placed {
    fn new<P: Object + ?Sized>(tag: &TypeTag, params: P::Params) -> Option<(Placed, TypeTag)> {
        let layout = P::layout(tag)?;
        if layout.size() == 0 || layout.size() > MAX_HEAP {
            return None;
        }
        // SAFETY: a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        // SAFETY: `ptr` holds `layout` writable bytes, aligned.
        unsafe { P::init(ptr, tag, params) };
        Some((Placed { ptr, layout }, tag.clone()))
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the buffer holds `size / 8` aligned words, alive while `self` is.
        unsafe {
            std::slice::from_raw_parts(
                self.ptr.as_ptr().cast::<AtomicU64>(),
                self.layout.size() / 8,
            )
        }
    }

    /// The object through a possibly different tag, as `open_object` would: only when that tag
    /// lays out within the buffer.
    fn open<P: Object + ?Sized>(&self, tag: &TypeTag) -> Option<&P> {
        let l = P::layout(tag)?;
        if l.size() > self.layout.size() || l.align() > self.layout.align() {
            return None;
        }
        // SAFETY: the tag's layout fits the buffer (checked above); the object is all atomics.
        Some(unsafe { P::cast(self.ptr, tag).as_ref() })
    }

    fn scribble(&self, at: u16, how: How) {
        let w = self.words();
        if w.is_empty() {
            return;
        }
        let v = match how {
            How::Set(v) => v,
            How::Nudge(d) => w[at as usize % w.len()]
                .load(Ordering::Relaxed)
                .wrapping_add(d as i64 as u64),
            How::CopyFrom(from) => w[from as usize % w.len()].load(Ordering::Relaxed),
            How::Owner { live: true } => shmkit::process::my_word(),
            How::Owner { live: false } => (1 << 22) - 7,
        };
        w[at as usize % w.len()].store(v, Ordering::Relaxed);
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Checks that `f` returned within its timeout (plus slack).
fn timed<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let t0 = Instant::now();
    let r = f();
    assert!(t0.elapsed() < T + SLACK, "{what} took {:?}", t0.elapsed());
    r
}

/// Runs the case; panics only on a hang (a call past its timeout).
pub fn run(input: &Input) {
    let opts = MapOptions::new(1 + input.capacity as u64 % 64)
        .key_max(1 + input.key_max as u64 % 16)
        .value_max(input.value_max as u64 % 65);
    let mtag = <ByteMap as Object>::tag(&opts);
    let lcap = 1 + input.list_capacity as u64 % 64;
    let ltag = <List<u64> as Object>::tag(&lcap);
    let Some((mbuf, _)) = Placed::new::<ByteMap>(&mtag, opts) else {
        return;
    };
    let Some((lbuf, _)) = Placed::new::<List<u64>>(&ltag, lcap) else {
        return;
    };
    let mut mopen = mtag.clone();
    if let Some((len, extra)) = input.map_tag {
        mopen.len = len;
        mopen.extra = extra;
    }
    let mut lopen = ltag.clone();
    if let Some((len, extra)) = input.list_tag {
        lopen.len = len;
        lopen.extra = extra;
    }
    let (Some(m), Some(l)) = (mbuf.open::<ByteMap>(&mopen), lbuf.open::<List<u64>>(&lopen)) else {
        return;
    };
    for op in input.ops.iter().take(MAX_OPS) {
        match *op {
            Op::Insert(k, v) => {
                let _ = timed("insert", || m.insert_timeout(&[k % 16], &[v; 3], T));
            }
            Op::Remove(k) => {
                let _ = timed("remove", || m.remove_timeout(&[k % 16], T));
            }
            Op::Get(k) => {
                let _ = timed("get", || (m.get(&[k % 16]), m.contains_key(&[k])));
            }
            Op::Update(k) => {
                let _ = timed("update", || {
                    m.update_timeout(&[k % 16], T, |v| v.map(<[u8]>::to_vec))
                });
            }
            Op::Iter => {
                let _ = timed("iter", || {
                    (m.iter().count(), m.len(), m.for_each(|_, _| ()))
                });
            }
            Op::Clear => {
                let _ = timed("clear", || m.clear_timeout(T));
            }
            Op::Push(v) => {
                let _ = timed("push", || l.push_timeout(v, T));
            }
            Op::Pop => {
                let _ = timed("pop", || l.pop_timeout(T));
            }
            Op::Set(i, v) => {
                let _ = timed("set", || l.set_timeout(i as usize, v, T));
            }
            Op::ListGet(i) => {
                let _ = timed("list get", || l.get(i as usize));
            }
            Op::ListIter => {
                let _ = timed("list iter", || (l.to_vec(), l.len(), l.holes()));
            }
            Op::ListClear => {
                let _ = timed("list clear", || l.clear_timeout(T));
            }
            Op::Scribble { map, at, how } => {
                if map {
                    mbuf.scribble(at, how)
                } else {
                    lbuf.scribble(at, how)
                }
            }
        }
    }
}
