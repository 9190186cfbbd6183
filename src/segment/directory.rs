//! The directory of named objects: a fixed array of entries in the segment, filled in order.
//!
//! The algorithm is written against `&[DirEntry]` and a bump-allocator word, so it runs the same on
//! a mapped segment and on the heap (where loom model-checks it).
//!
//! # Entry states
//!
//! The low byte of `state` is the state; bits 8..28 hold the pid-namespace tag and bits 32..64 the
//! pid of the process that last claimed the entry, set in the same CAS as the state (a claim and
//! its owner are never two steps). Liveness follows the crate's one rule
//! ([`process::record_alive`]): a claimer in another pid namespace is never judged by its pid.
//!
//! | state     | meaning                                                     | next                    |
//! |-----------|-------------------------------------------------------------|-------------------------|
//! | `EMPTY`   | never used; every later entry is empty too                  | `CLAIMED`               |
//! | `CLAIMED` | a creator is writing name, tag and allocating space         | `NAMED`, `DEAD`         |
//! | `NAMED`   | name, tag, offset visible; the object is being initialized  | `READY` (or taken over) |
//! | `READY`   | the object is initialized and usable                        | —                       |
//! | `DEAD`    | abandoned (creator died while `CLAIMED`, or out of space)   | —                       |
//!
//! Uniqueness: a creator claims the **first** empty entry, after having seen the names of all
//! entries before it. Two creators of one name race for the same empty entry; the loser re-reads
//! it, waits until its name is visible, and finds the winner's object. A creator that died in
//! `NAMED` is replaced by the next opener, who re-runs the (complete) initialization; one that died
//! in `CLAIMED` leaves a `DEAD` entry and the name free for the next creator.
//!
//! Test points ([`crate::hooks`], feature `test-hooks`, named by the object):
//! `directory.create.claimed` (entry claimed, name written, space allocated, not yet published),
//! `directory.create.named` (published as `NAMED`, not yet initialized) and
//! `directory.create.takeover` (won the entry of a dead creator, not yet re-initialized).

use crate::error::{Error, Result};
use crate::object::{Kind, TypeTag, TYPE_NAME_MAX};
use crate::process;
use crate::sync::{AtomicU64, Deadline, Ordering, Spin};
use crate::words;
use core::alloc::Layout;
use std::path::Path;
use std::time::Duration;

#[cfg(all(test, not(feature = "loom")))]
mod format_doc;
mod placement;
mod read;

/// Longest object name, in bytes.
pub const NAME_MAX: usize = 64;

/// Objects in the arena start on this boundary (two cache lines, the x86_64 prefetch pair), so
/// objects never share a line.
pub const OBJECT_ALIGN: u64 = 128;

const EMPTY: u64 = 0;
const CLAIMED: u64 = 1;
const NAMED: u64 = 2;
const READY: u64 = 3;
const DEAD: u64 = 4;

/// One directory entry in shared memory. All fields are atomics; see the module docs for states.
#[repr(C)]
pub struct DirEntry {
    /// State (low byte) and claimer pid (high 32 bits).
    state: AtomicU64,
    /// Start time of the claimer (written right after the claim; 0 until then).
    claimer_start: AtomicU64,
    /// Object kind (low 32 bits).
    kind: AtomicU64,
    /// Element size (low 32 bits) and alignment (high 32 bits).
    elem: AtomicU64,
    /// Kind-specific length.
    len: AtomicU64,
    /// Kind-specific extra parameter.
    extra: AtomicU64,
    /// Offset of the object from the segment's start.
    offset: AtomicU64,
    /// Size of the object in bytes.
    size: AtomicU64,
    /// FNV-1a hash of the element type name.
    type_hash: AtomicU64,
    /// Name length (low 32 bits) and type-name length (high 32 bits).
    lens: AtomicU64,
    /// The name's bytes.
    name: [AtomicU64; NAME_MAX / 8],
    /// The element type name's bytes.
    type_name: [AtomicU64; TYPE_NAME_MAX / 8],
    _reserved: [AtomicU64; 2],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(DirEntry, [u8; 256]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(DirEntry, u64);

impl DirEntry {
    /// A fresh (empty) entry, for heap-placed directories (loom models, tests).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        DirEntry {
            state: AtomicU64::new(0),
            claimer_start: AtomicU64::new(0),
            kind: AtomicU64::new(0),
            elem: AtomicU64::new(0),
            len: AtomicU64::new(0),
            extra: AtomicU64::new(0),
            offset: AtomicU64::new(0),
            size: AtomicU64::new(0),
            type_hash: AtomicU64::new(0),
            lens: AtomicU64::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            type_name: core::array::from_fn(|_| AtomicU64::new(0)),
            _reserved: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// What the directory says about one object, for tools and `open`.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// seg.counter("hits")?;
/// seg.array::<f32>("temps", 8)?;
/// let entries = seg.entries()?;
/// let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
/// assert_eq!(names, ["hits", "temps"]);
/// assert_eq!(entries[1].tag.kind, shmkit::Kind::SEQ_ARRAY);
/// assert_eq!(entries[1].tag.len, 8);
/// assert!(entries.iter().all(|e| e.ready));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Position in the directory.
    pub index: u32,
    /// The object's name.
    pub name: String,
    /// Its kind and element type.
    pub tag: TypeTag,
    /// Offset from the segment's start.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// `false` while its creator is still initializing it.
    pub ready: bool,
}

/// Checks an object name: 1 to [`NAME_MAX`] bytes, no NUL.
pub fn validate_object_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "object names must not be empty"
    } else if name.len() > NAME_MAX {
        "object names are at most 64 bytes"
    } else if name.contains('\0') {
        "object names must not contain NUL"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_string(),
        reason,
    })
}

/// The directory algorithm over entries and an arena, with every bound held locally.
pub struct Directory<'a> {
    entries: &'a [DirEntry],
    alloc_next: &'a AtomicU64,
    arena_start: u64,
    arena_end: u64,
    path: &'a Path,
    wait: Duration,
}

enum Seen {
    /// The entry is empty.
    Empty,
    /// The entry is being claimed; name not yet visible.
    Claimed { pid: u32, start: u64, ns: u32 },
    /// Name visible; `ready` tells whether the object is initialized.
    Named {
        name_matches: bool,
        ready: bool,
        pid: u32,
        start: u64,
        ns: u32,
    },
    /// Abandoned.
    Dead,
}

impl<'a> Directory<'a> {
    /// A directory over `entries`, allocating objects from `[arena_start, arena_end)` with the
    /// bump pointer `alloc_next`. `path` names the segment in errors; `wait` bounds how long an
    /// opener waits for another process's creation in progress.
    pub fn new(
        entries: &'a [DirEntry],
        alloc_next: &'a AtomicU64,
        arena_start: u64,
        arena_end: u64,
        path: &'a Path,
        wait: Duration,
    ) -> Self {
        Directory {
            entries,
            alloc_next,
            arena_start,
            arena_end,
            path,
            wait,
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Bytes not yet allocated in the arena (0 if the allocation word is corrupted).
    pub fn free_bytes(&self) -> u64 {
        let cur = self.alloc_next.load(Ordering::Acquire);
        if cur < self.arena_start || cur > self.arena_end {
            0
        } else {
            self.arena_end - cur
        }
    }

    fn corrupted(&self, what: String) -> Error {
        Error::corrupted(self.path, what)
    }

    /// Reads the state of entry `i`, comparing its name with `name` once it is visible.
    fn look(&self, i: usize, s: u64, name: &[u8]) -> Result<Seen> {
        let e = &self.entries[i];
        let pid = (s >> 32) as u32;
        let ns = ((s >> 8) & 0xF_FFFF) as u32;
        let state = s & 0xff;
        let start = || e.claimer_start.load(Ordering::Relaxed);
        Ok(match state {
            // An empty entry's word is all zero: the claim CAS expects exactly EMPTY, so an
            // "empty" state with other bits set would make find_or_create retry forever.
            EMPTY if s != EMPTY => {
                return Err(self.corrupted(format!(
                    "directory entry {i} is marked empty but its state word is {s:#018x} \
                     (an empty entry is all zero)"
                )))
            }
            EMPTY => Seen::Empty,
            CLAIMED => Seen::Claimed {
                pid,
                start: start(),
                ns,
            },
            NAMED | READY => Seen::Named {
                name_matches: self.name_is(i, name)?,
                ready: state == READY,
                pid,
                start: start(),
                ns,
            },
            DEAD => Seen::Dead,
            other => {
                return Err(self.corrupted(format!(
                    "directory entry {i} has state {other} (valid states are 0..=4)"
                )))
            }
        })
    }

    /// Entry `i`'s name, read into `buf` (no allocation: `find` compares every entry's name).
    fn name_into<'b>(&self, i: usize, buf: &'b mut [u8; NAME_MAX]) -> Result<&'b [u8]> {
        let e = &self.entries[i];
        let lens = e.lens.load(Ordering::Relaxed);
        let len = (lens & 0xffff_ffff) as usize;
        if len == 0 || len > NAME_MAX {
            return Err(self.corrupted(format!(
                "directory entry {i} has a name length of {len} (1..=64 expected)"
            )));
        }
        let name = &mut buf[..len];
        words::load_bytes(&e.name, name);
        Ok(name)
    }

    /// Whether entry `i`'s name is `name`.
    fn name_is(&self, i: usize, name: &[u8]) -> Result<bool> {
        Ok(self.name_into(i, &mut [0; NAME_MAX])? == name)
    }

    /// The tag, offset and size stored in entry `i` (its name is visible, i.e. NAMED or READY).
    fn tag_of(&self, i: usize) -> Result<(TypeTag, u64, u64)> {
        let mut tag = TypeTag::plain(Kind(0));
        let (offset, size) = self.tag_into(i, &mut tag)?;
        Ok((tag, offset, size))
    }

    /// [`tag_of`](Self::tag_of) into `tag`, whose type-name buffer is reused; returns the
    /// offset and size.
    fn tag_into(&self, i: usize, tag: &mut TypeTag) -> Result<(u64, u64)> {
        let e = &self.entries[i];
        let lens = e.lens.load(Ordering::Relaxed);
        let tlen = (lens >> 32) as usize;
        if tlen > TYPE_NAME_MAX {
            return Err(self.corrupted(format!(
                "directory entry {i} has a type-name length of {tlen} (at most {TYPE_NAME_MAX})"
            )));
        }
        let mut tname = [0u8; TYPE_NAME_MAX];
        let tname = &mut tname[..tlen];
        words::load_bytes(&e.type_name, tname);
        set_lossy(&mut tag.type_name, tname);
        let elem = e.elem.load(Ordering::Relaxed);
        tag.kind = Kind(e.kind.load(Ordering::Relaxed) as u32);
        tag.type_hash = e.type_hash.load(Ordering::Relaxed);
        tag.elem_size = elem as u32;
        tag.elem_align = (elem >> 32) as u32;
        tag.len = e.len.load(Ordering::Relaxed);
        tag.extra = e.extra.load(Ordering::Relaxed);
        let offset = e.offset.load(Ordering::Relaxed);
        let size = e.size.load(Ordering::Relaxed);
        Ok((offset, size))
    }

    /// Waits (bounded) for entry `i` to leave a transitional state held by (`pid`, `start`).
    /// Returns `Ok(true)` if the holder died (the caller decides what to do), `Ok(false)` when the
    /// state may have changed.
    fn wait_on(
        &self,
        i: usize,
        seen: u64,
        pid: u32,
        start: u64,
        ns: u32,
        deadline: &Deadline,
    ) -> Result<bool> {
        let e = &self.entries[i];
        let mut spin = Spin::new();
        let mut rounds = 0u32;
        while e.state.load(Ordering::Acquire) == seen {
            rounds += 1;
            if rounds % 64 == 0 && !process::record_alive(pid, start, ns) {
                return Ok(true);
            }
            if deadline.expired() {
                // Before giving up, look at the holder once more: with a short wait the
                // deadline can pass before the periodic check above ever ran, and a dead
                // holder must be reported (or taken over), not waited for.
                if !process::record_alive(pid, start, ns) {
                    return Ok(true);
                }
                return Err(Error::Timeout {
                    what: "another process to finish creating a directory entry",
                    waited: self.wait,
                });
            }
            spin.snooze();
        }
        Ok(false)
    }

    /// Allocates `layout` from the arena.
    fn alloc(&self, layout: Layout) -> Result<u64> {
        let align = (layout.align() as u64).max(OBJECT_ALIGN);
        let size = layout.size() as u64;
        let mut cur = self.alloc_next.load(Ordering::Acquire);
        loop {
            if cur < self.arena_start || cur > self.arena_end {
                return Err(self.corrupted(format!(
                    "allocation pointer {cur} lies outside the arena [{}, {})",
                    self.arena_start, self.arena_end
                )));
            }
            let start = cur.div_ceil(align) * align;
            let end = start.checked_add(size);
            match end {
                Some(end) if end <= self.arena_end => {
                    match self.alloc_next.compare_exchange_weak(
                        cur,
                        end,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(start),
                        Err(now) => cur = now,
                    }
                }
                _ => {
                    return Err(Error::OutOfSpace {
                        needed: size.saturating_add(start - cur),
                        available: self.arena_end - cur,
                    })
                }
            }
        }
    }

    fn write_entry(&self, i: usize, name: &[u8], tag: &TypeTag) {
        let e = &self.entries[i];
        e.claimer_start
            .store(process_start_time(), Ordering::Relaxed);
        e.kind.store(tag.kind.0 as u64, Ordering::Relaxed);
        e.elem.store(
            tag.elem_size as u64 | (tag.elem_align as u64) << 32,
            Ordering::Relaxed,
        );
        e.len.store(tag.len, Ordering::Relaxed);
        e.extra.store(tag.extra, Ordering::Relaxed);
        e.type_hash.store(tag.type_hash, Ordering::Relaxed);
        let tname = tag.type_name.as_bytes();
        let tname = &tname[..tname.len().min(TYPE_NAME_MAX)];
        words::store_bytes(&e.name, name);
        words::store_bytes(&e.type_name, tname);
        e.lens.store(
            name.len() as u64 | (tname.len() as u64) << 32,
            Ordering::Relaxed,
        );
    }

    /// Finds the object `name` or, if it does not exist, creates it with `tag` and `layout`,
    /// calling `init(offset)` once to initialize its memory. Returns the entry's index and the
    /// object's offset.
    ///
    /// Errors: [`Error::TypeMismatch`] if `name` holds another type, [`Error::OutOfSpace`],
    /// [`Error::DirectoryFull`], [`Error::Timeout`] if another creator stalls, and
    /// [`Error::Corrupted`] for impossible directory contents.
    pub fn find_or_create(
        &self,
        name: &str,
        tag: &TypeTag,
        layout: Layout,
        init: impl FnOnce(u64),
    ) -> Result<(u32, u64)> {
        validate_object_name(name)?;
        let name_b = name.as_bytes();
        let me = ((process::pid() as u64) << 32) | (u64::from(process::my_ns_tag()) << 8);
        let deadline = Deadline::after(Some(self.wait));
        let mut init = Some(init);
        let mut i = 0usize;
        while i < self.entries.len() {
            let e = &self.entries[i];
            let raw = e.state.load(Ordering::Acquire);
            match self.look(i, raw, name_b)? {
                Seen::Dead => i += 1,
                Seen::Named {
                    name_matches: false,
                    ..
                } => i += 1,
                Seen::Empty => {
                    if e.state
                        .compare_exchange(EMPTY, me | CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue; // someone else claimed it: look again
                    }
                    self.write_entry(i, name_b, tag);
                    let offset = match self.alloc(layout) {
                        Ok(o) => o,
                        Err(err) => {
                            e.state.store(me | DEAD, Ordering::Release);
                            return Err(err);
                        }
                    };
                    // A sane bump pointer never hands out space of a published object; a
                    // scribbled one might: refuse rather than initialize over it.
                    if let Err(err) = self.check_disjoint(i, offset, layout.size() as u64) {
                        e.state.store(me | DEAD, Ordering::Release);
                        return Err(err);
                    }
                    e.offset.store(offset, Ordering::Relaxed);
                    e.size.store(layout.size() as u64, Ordering::Relaxed);
                    crate::hooks::at_named("directory.create.claimed", name);
                    e.state.store(me | NAMED, Ordering::Release);
                    crate::hooks::at_named("directory.create.named", name);
                    (init.take().expect("init runs once"))(offset);
                    e.state.store(me | READY, Ordering::Release);
                    return Ok((i as u32, offset));
                }
                Seen::Claimed { pid, start, ns } => {
                    if self.wait_on(i, raw, pid, start, ns, &deadline)? {
                        // The claimer died before publishing a name: abandon the entry.
                        let _ = e.state.compare_exchange(
                            raw,
                            (raw & !0xff) | DEAD,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                }
                Seen::Named {
                    name_matches: true,
                    ready,
                    pid,
                    start,
                    ns,
                } => {
                    let (found, offset, size) = self.tag_of(i)?;
                    if &found != tag {
                        return Err(Error::TypeMismatch {
                            name: name.to_string(),
                            expected: tag.to_string(),
                            found: found.to_string(),
                        });
                    }
                    self.check_placement(i, offset, size, layout)?;
                    if ready {
                        return Ok((i as u32, offset));
                    }
                    if self.wait_on(i, raw, pid, start, ns, &deadline)? {
                        // The creator died while initializing: take the entry over and
                        // initialize the object again (initialization writes all of it).
                        //
                        // Clear the dead creator's start time BEFORE the claim: a waiter that
                        // sees our claim (Acquire on `state`) must not pair our pid with the
                        // dead creator's start time, which would make us look dead (a start
                        // time mismatch means "pid reused") and let it take the entry from us
                        // while we initialize. With 0 it checks our pid alone until our own
                        // start time lands below. (If another taker wins instead, our 0 may
                        // overwrite its start time: it is then checked by pid alone, which is
                        // still safe, merely blind to pid reuse. Found by tests/object_takeover.rs,
                        // `live_taker_over_is_not_mistaken_for_dead`.)
                        e.claimer_start.store(0, Ordering::Relaxed);
                        if e.state
                            .compare_exchange(raw, me | NAMED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                        {
                            crate::hooks::at_named("directory.create.takeover", name);
                            e.claimer_start
                                .store(process_start_time(), Ordering::Relaxed);
                            (init.take().expect("init runs once"))(offset);
                            e.state.store(me | READY, Ordering::Release);
                            return Ok((i as u32, offset));
                        }
                    }
                }
            }
        }
        Err(Error::DirectoryFull {
            capacity: self.capacity(),
        })
    }
}

/// Sets `s` to `bytes` (invalid UTF-8 replaced), keeping its buffer; valid text (all names this
/// crate writes) is checked by the fast `from_utf8` only.
fn set_lossy(s: &mut String, bytes: &[u8]) {
    s.clear();
    match std::str::from_utf8(bytes) {
        Ok(text) => s.push_str(text),
        Err(_) => s.push_str(&String::from_utf8_lossy(bytes)),
    }
}

#[cfg(not(feature = "loom"))]
fn process_start_time() -> u64 {
    process::start_time()
}

// Under loom every "process" is this one; skip the /proc read inside models.
#[cfg(feature = "loom")]
fn process_start_time() -> u64 {
    0
}
