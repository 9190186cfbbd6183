//! What a segment holds, as structured state: for a library user, an exporter
//! ([`crate::export`]) and the `shmkit` tool (`stat`, `watch`, `export`, `serve`).
//!
//! [`report`] lists every object of a segment with its [`State`]: plain numbers (a counter's
//! value, a ring's positions, a lock word's state …). `Display` on a [`State`] gives the one line
//! of `shmkit stat`. Everything here only reads: no call takes a lock a writer takes, waits for a
//! writer, or makes a writer wait (a seqlock is read optimistically, and given up after a
//! bounded number of attempts lapped by writers; a map lock-free; a
//! semaphore's reader may help finish an operation in flight, lock-free, as any of its users
//! does).
//!
//! ```
//! use shmkit::inspect::{self, State};
//! use shmkit::Segment;
//!
//! # fn main() -> shmkit::Result<()> {
//! let seg = Segment::anonymous(1 << 16)?;
//! seg.counter("hits")?.add(3);
//! let objects = inspect::report(&seg)?;
//! assert_eq!(objects[0].name, "hits");
//! assert!(matches!(objects[0].state, Ok(State::Counter { value: 3 })));
//! assert_eq!(objects[0].state.as_ref().unwrap().to_string(), "3");
//! # Ok(()) }
//! ```

mod collections;
mod state;
mod text;

pub use collections::{list_state, map_state, ListState, MapState};
pub use state::{Number, ObjectReport, Positions, Reading, State};

use crate::object::Kind;
use crate::segment::directory::{Directory, EntryInfo};
use crate::{AtomicValue, Counter, Result, Segment, SeqArray, SeqLock, ShardedCounter};

/// Every object of `seg`, in directory order, with its state.
///
/// # Errors
/// The directory could not be read (scribbled over); an object whose state cannot be read
/// carries its own error in [`ObjectReport::state`].
pub fn report(seg: &Segment) -> Result<Vec<ObjectReport>> {
    let mut out = Vec::new();
    each(seg, &mut out)?;
    Ok(out)
}

/// What [`each`] calls.
pub(crate) trait Visit {
    /// About how many objects there are, before the first.
    fn reserve(&mut self, objects: usize);
    /// An object and its state.
    fn object(&mut self, entry: &EntryInfo, state: Result<State>);
}

impl Visit for Vec<ObjectReport> {
    fn reserve(&mut self, objects: usize) {
        Vec::reserve(self, objects);
    }
    fn object(&mut self, e: &EntryInfo, state: Result<State>) {
        self.push(ObjectReport {
            kind: e.tag.kind,
            type_name: e.tag.type_name.clone(),
            offset: e.offset,
            size: e.size,
            name: e.name.clone(),
            state,
        })
    }
}

/// Tells `v` every object of `seg` and its state, in directory order, as [`report`] lists
/// them, in one pass over the directory and without allocating per object (the `EntryInfo` is
/// reused; the states of counters, values, rings and locks hold no heap data).
///
/// # Errors
/// As [`report`]; the objects before a scribbled entry have been passed to `v`.
pub(crate) fn each(seg: &Segment, v: &mut impl Visit) -> Result<()> {
    let dir = seg.directory();
    // One O(n log n) overlap check for all the objects instead of one pass over the directory
    // per object; an object it did not cover (published since, or all of them when it failed:
    // then the overlapping ones report the error) is checked on its own.
    let checked = dir.disjoint_checked().ok();
    v.reserve(checked.as_ref().map_or(0, |c| c.len()));
    dir.scan(|e| {
        let at = At {
            seg,
            scanned: Some(&dir),
            checked: checked.as_ref().is_some_and(|c| c.contains(e.index)),
        };
        v.object(e, state_at(at, e))
    })
}

/// The current state of the object `entry` (from [`Segment::entries`]) in `seg`.
///
/// Values whose element type is a primitive number are decoded; others are shown as raw bits.
///
/// # Errors
/// As [`Segment::open_entry_as`]: the entry no longer names a valid object of its kind.
pub fn state(seg: &Segment, entry: &EntryInfo) -> Result<State> {
    state_at(At::each(seg), entry)
}

/// How objects are opened: from `seg`, at an entry just read by a scan of the directory
/// `scanned` (else found again), with the overlap check done for all of them already
/// (`checked`) or for each.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    seg: &'a Segment,
    scanned: Option<&'a Directory<'a>>,
    checked: bool,
}

impl<'a> At<'a> {
    /// An entry listed earlier, found again and checked on its own.
    fn each(seg: &'a Segment) -> Self {
        At {
            seg,
            scanned: None,
            checked: false,
        }
    }

    fn open<P: crate::object::Object + ?Sized>(
        self,
        entry: &EntryInfo,
    ) -> Result<crate::Handle<P>> {
        match self.scanned {
            Some(dir) => self.seg.open_scanned_as(dir, entry, self.checked),
            None => self.seg.open_entry_as(entry),
        }
    }
}

fn state_at(at: At<'_>, entry: &EntryInfo) -> Result<State> {
    if !entry.ready {
        return Ok(State::Initializing);
    }
    Ok(match entry.tag.kind {
        Kind::COUNTER => State::Counter {
            value: at.open::<Counter>(entry)?.load(),
        },
        Kind::SHARDED_COUNTER => {
            let c = at.open::<ShardedCounter>(entry)?;
            State::ShardedCounter {
                sum: c.sum(),
                busy_stripes: c.stripes().iter().filter(|&&s| s != 0).count(),
            }
        }
        Kind::VALUE => State::Value(value(at, entry)?),
        Kind::MUTEX => State::Lock {
            state: at.open::<crate::Mutex<()>>(entry)?.state(),
            depth: None,
        },
        Kind::REENTRANT_MUTEX => {
            let m = at.open::<crate::ReentrantMutex>(entry)?;
            State::Lock {
                state: m.state(),
                depth: Some(m.depth()),
            }
        }
        Kind::CONDVAR => {
            let c = at.open::<crate::Condvar>(entry)?;
            State::Condvar {
                waiters: c.waiters(),
                notifies: c.generation(),
            }
        }
        Kind::SEMAPHORE => {
            let s = at.open::<crate::Semaphore>(entry)?;
            State::Semaphore {
                available: s.available(),
                bound: s.bound(),
                holders: s.holders(),
                reclaimed: s.reclaimed(),
            }
        }
        Kind::BARRIER => {
            let b = at.open::<crate::Barrier>(entry)?;
            State::Barrier {
                generation: b.generation(),
                arrived: b.arrived(),
                parties: b.parties(),
                broken: b.is_broken(),
            }
        }
        Kind::EVENT => {
            let e = at.open::<crate::Event>(entry)?;
            State::Event {
                set: e.is_set(),
                waiters: e.waiters(),
            }
        }
        Kind::SEQLOCK => seqlock(at, entry)?,
        Kind::SEQ_ARRAY => array(at, entry)?,
        Kind::SPSC => {
            // The ring's head, positions and claims do not depend on the element type; the
            // element size (and so the layout) comes from the tag, so any element type opens it.
            let r = at.open::<crate::SpscRing<u8>>(entry)?;
            State::Spsc {
                positions: positions(r.positions(), r.capacity()),
                holders: r.holders(),
                closed: r.is_closed(),
            }
        }
        Kind::MPMC => {
            // As for SPSC: the element size comes from the tag, so any element type opens it.
            let r = at.open::<crate::MpmcRing<u8>>(entry)?;
            State::Mpmc {
                positions: positions(r.positions(), r.capacity()),
                lost: r.lost(),
                closed: r.is_closed(),
            }
        }
        Kind::BYTES_QUEUE => {
            let r = at.open::<crate::ByteRing>(entry)?;
            State::ByteRing {
                positions: positions(r.positions(), r.capacity()),
                max_msg: r.max_msg() as u64,
                holders: r.holders(),
                closed: r.is_closed(),
            }
        }
        Kind::PIPE => {
            let p = at.open::<crate::Pipe>(entry)?;
            let (ab, ba) = p.positions();
            State::Pipe {
                a_to_b: positions(ab, p.capacity()),
                b_to_a: positions(ba, p.capacity()),
                max_msg: p.max_msg() as u64,
                holders: p.holders(),
                closed: p.is_closed(),
            }
        }
        Kind::MPMC_BYTES => {
            let q = at.open::<crate::ring::MpmcBytes>(entry)?;
            State::MpmcBytes {
                positions: positions(q.positions(), q.capacity()),
                max_msg: q.max_msg() as u64,
                lost: q.lost(),
                closed: q.is_closed(),
            }
        }
        Kind::MAP => State::Map(collections::map_at(at, entry)?),
        Kind::LIST => State::List(collections::list_at(at, entry)?),
        kind => State::Other {
            kind,
            offset: entry.offset,
            size: entry.size,
        },
    })
}

fn positions((head, tail): (u64, u64), capacity: usize) -> Positions {
    Positions {
        head,
        tail,
        capacity: capacity as u64,
    }
}

/// Runs `$body` with `$t` bound to the element type named by `$entry`'s tag, when that is a
/// primitive number; `$num` wraps a value of it into a [`Number`].
macro_rules! with_number_type {
    ($entry:expr, |$t:ident, $num:ident| $body:block) => {
        with_number_type!(@each $entry, $t, $num, $body,
            u8 Unsigned u64, u16 Unsigned u64, u32 Unsigned u64, u64 Unsigned u64,
            usize Unsigned u64, i8 Signed i64, i16 Signed i64, i32 Signed i64, i64 Signed i64,
            isize Signed i64, f32 F32 f32, f64 F64 f64)
    };
    (@each $entry:expr, $t:ident, $num:ident, $body:block, $($ty:ident $variant:ident $wide:ty),*) => {
        $(
            if $entry.tag.type_name == core::any::type_name::<$ty>() {
                type $t = $ty;
                let $num = |x: $ty| Number::$variant(x as $wide);
                return $body;
            }
        )*
    };
}

fn value(at: At<'_>, entry: &EntryInfo) -> Result<Reading> {
    with_number_type!(entry, |T, num| {
        Ok(Reading::Number(num(at
            .open::<AtomicValue<T>>(entry)?
            .load())))
    });
    // An element type this tool does not know: the raw bits of the value's word. Every
    // AtomicValue<T> has the layout of AtomicValue<u64>; the low bytes hold T.
    let v = at.open::<AtomicValue<u64>>(entry)?;
    let bits = v.load() & (u64::MAX >> (64 - 8 * entry.tag.elem_size.clamp(1, 8)));
    Ok(Reading::Bits {
        type_name: entry.tag.type_name.clone(),
        bits,
    })
}

/// Attempts at one seqlock read before it is given up for this look: an attempt fails only
/// when writers lapped it (a whole window of writes during one read), so only writers that never
/// stop could keep a reader here, and a tool must not wait on them for ever.
const READ_TRIES: u32 = 10_000;

/// The first success of `attempt` in [`READ_TRIES`] tries.
fn bounded<R>(mut attempt: impl FnMut() -> Option<R>) -> Result<R> {
    for _ in 0..READ_TRIES {
        if let Some(r) = attempt() {
            return Ok(r);
        }
        std::hint::spin_loop();
    }
    Err(crate::Error::WouldBlock {
        what: "a seqlock read (writers lapped every attempt)",
    })
}

/// How many leading elements of a [`SeqArray`] are read.
const SHOWN: usize = 8;

fn note(r: Result<()>) -> Option<String> {
    r.err().map(|e| e.to_string())
}

/// `SeqLock<T>`: the value for primitive numbers, version and writer state; the type and size
/// for other element types.
fn seqlock(at: At<'_>, entry: &EntryInfo) -> Result<State> {
    with_number_type!(entry, |T, num| {
        let s = at.open::<SeqLock<T>>(entry)?;
        Ok(State::SeqLock {
            value: Reading::Number(num(bounded(|| s.try_read())?)),
            version: s.version(),
            writer_note: note(s.check_writer()),
        })
    });
    Ok(State::SeqLock {
        value: Reading::Opaque {
            type_name: entry.tag.type_name.clone(),
            size: u64::from(entry.tag.elem_size),
        },
        version: 0,
        writer_note: None,
    })
}

/// `SeqArray<T>`: the length and, for primitive numbers, the first elements.
fn array(at: At<'_>, entry: &EntryInfo) -> Result<State> {
    with_number_type!(entry, |T, num| {
        let a = at.open::<SeqArray<T>>(entry)?;
        let n = a.len().min(SHOWN);
        let mut first = vec![T::default(); n];
        for (i, x) in first.iter_mut().enumerate() {
            *x = bounded(|| a.try_get(i).transpose())??;
        }
        Ok(State::SeqArray {
            len: a.len() as u64,
            type_name: entry.tag.type_name.clone(),
            first: Some(first.into_iter().map(num).collect()),
            writer_note: note(a.check_writer()),
        })
    });
    Ok(State::SeqArray {
        len: entry.tag.len,
        type_name: entry.tag.type_name.clone(),
        first: None,
        writer_note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{bounded, state, READ_TRIES};
    use crate::ring::PipeEnd;
    use crate::segment::directory::EntryInfo;
    use crate::Segment;

    fn line_of(seg: &Segment, name: &str) -> String {
        let entry = seg
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap();
        state(seg, &entry).unwrap().to_string()
    }

    #[test]
    fn seqlock_and_array_lines() {
        let name = format!("shmkit-seqlock-describe-{}", std::process::id());
        let seg = Segment::create(&name, 1 << 20).unwrap();
        seg.seqlock::<f64>("temp", 21.5).unwrap();
        seg.seqlock::<[u8; 3]>("rgb", [1, 2, 3]).unwrap();
        let a = seg.array::<i32>("w", 100).unwrap();
        a.set(1, -4).unwrap();
        seg.array::<u32>("short", 2).unwrap();
        let lines: Vec<String> = seg
            .entries()
            .unwrap()
            .iter()
            .map(|e: &EntryInfo| state(&seg, e).unwrap().to_string())
            .collect();
        seg.unlink().unwrap();
        assert_eq!(lines[0], "21.5 (version 0)");
        assert_eq!(lines[1], "[u8; 3] (3 bytes)");
        assert_eq!(lines[2], "len 100: [0, -4, 0, 0, 0, 0, 0, 0, …]");
        assert_eq!(lines[3], "len 2: [0, 0]");
    }

    #[test]
    fn byte_ring_line() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let r = seg.byte_ring("r", 1000, 200).unwrap();
        let (mut tx, mut rx) = r.split().unwrap();
        tx.send(b"in a segment").unwrap();
        assert_eq!(rx.recv().unwrap(), b"in a segment");
        let line = line_of(&seg, "r");
        assert!(
            line.contains("0/1024 bytes used") && line.contains("max_msg 200"),
            "{line}"
        );
    }

    #[test]
    fn pipe_line() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let p = seg.pipe("p", 512, 64).unwrap();
        let mut a = p.end(PipeEnd::A).unwrap();
        let b = seg.pipe("p", 512, 64).unwrap();
        let mut b = b.end(PipeEnd::B).unwrap();
        a.send(b"hi").unwrap();
        assert_eq!(b.recv().unwrap(), b"hi");
        b.send(b"hey").unwrap();
        let line = line_of(&seg, "p");
        let me = std::process::id();
        assert!(
            line.contains("B->A 16 bytes used")
                && line.contains("capacity 512")
                && line.contains(&format!("end A pid {me}")),
            "{line}"
        );
        let _ = a.recv();
    }

    #[test]
    fn seqlock_reads_give_up_after_their_tries() {
        let mut n = 0;
        assert_eq!(
            bounded(|| (n == 2).then_some(7).or_else(|| {
                n += 1;
                None
            }))
            .unwrap(),
            7
        );
        let mut tries = 0;
        let never = bounded(|| -> Option<u8> {
            tries += 1;
            None
        });
        assert!(
            matches!(never, Err(crate::Error::WouldBlock { .. })),
            "{never:?}"
        );
        assert_eq!(tries, READ_TRIES);
    }
}
