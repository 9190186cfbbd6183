//! The `segment_open` fuzz check, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/segment_open.rs`) and the regression test that replays saved inputs under
//! plain `cargo test` (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! An [`Input`] describes a segment file: either arbitrary bytes, or a real segment created by
//! shmkit (with a few objects) whose header, directory and arena are then patched with arbitrary
//! words and bytes, so the fuzzer gets past the header checks into the directory's. The file is
//! written, closed and only then opened; nothing truncates it while it is mapped (SIGBUS from a
//! peer truncating a mapped file is out of scope). [`run`] opens it, lists the entries, describes
//! each, opens objects by listed and fuzzed names under several types and uses them. Every call
//! must return `Ok` or `Err`: a panic, a hang or an out-of-bounds access is a bug.

use arbitrary::Arbitrary;
use shmkit::internals::fnv1a;
use shmkit::{AtomicValue, Counter, Segment, SegmentOptions, ShardedCounter};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bytes of the segment header (the directory follows).
const HEADER_SIZE: u64 = 256;
/// Bytes of one directory entry.
const ENTRY_SIZE: u64 = 256;
/// Bound on every wait, so a patched "creation in progress" costs a millisecond, not seconds.
const WAIT: Duration = Duration::from_millis(1);
/// At most this many patches and lookups are applied (each lookup may wait [`WAIT`]).
const MAX_STEPS: usize = 32;

/// Object names the fuzzer can pick by number (shared with the creations, so lookups hit).
const NAMES: &[&str] = &[
    "hits",
    "temp",
    "c",
    "shards",
    "level",
    "flag",
    "0123456789012345678901234567890123456789012345678901234567890123", // 64 bytes: longest
    "01234567890123456789012345678901234567890123456789012345678901234", // 65: too long
    "",
    "nul\0name",
];

/// One fuzz case.
#[derive(Arbitrary, Debug)]
pub struct Input {
    /// What the file starts as.
    pub base: Base,
    /// Changes applied to the file's bytes (after the base is written and closed).
    pub patches: Vec<Patch>,
    /// Recompute the header checksum after patching, so patched header fields reach the
    /// geometry checks behind it.
    pub fix_checksum: bool,
    /// Set the file's length to this many bytes before opening (never while it is mapped).
    pub set_len: Option<u16>,
    /// Objects to look up by name after listing.
    pub lookups: Vec<Lookup>,
}

/// The initial contents of the segment file.
#[derive(Arbitrary, Debug)]
pub enum Base {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// A real segment with `dir_capacity % 8 + 1` entries, `arena_pages % 4 + 1` pages of arena,
    /// and these objects created in it.
    Valid {
        /// Directory entries, minus one, modulo 8.
        dir_capacity: u8,
        /// Arena pages, minus one, modulo 4.
        arena_pages: u8,
        /// Objects created before the segment is closed and patched.
        objects: Vec<Create>,
    },
}

/// An object created in a valid base segment.
#[derive(Arbitrary, Debug)]
pub struct Create {
    /// Its name.
    pub name: Name,
    /// Its type.
    pub kind: Kind,
    /// Its initial value (or an amount added after creation).
    pub value: u64,
}

/// An object name: one of [`NAMES`] or any string.
#[derive(Arbitrary, Debug)]
pub enum Name {
    /// `NAMES[i % NAMES.len()]`.
    Known(u8),
    /// Any string.
    Any(String),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Known(i) => NAMES[*i as usize % NAMES.len()],
            Name::Any(s) => s,
        }
    }
}

/// The object types exercised.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    /// [`Counter`].
    Counter,
    /// [`ShardedCounter`].
    Sharded,
    /// `AtomicValue<f64>`.
    F64,
    /// `AtomicValue<u32>`.
    U32,
    /// `AtomicValue<u8>`.
    U8,
}

/// Who a patched directory-entry state names as its holder.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Holder {
    /// This process (alive: openers wait for it, bounded).
    Me,
    /// A pid that does not exist (openers take over or skip).
    Dead,
    /// Any pid.
    Pid(u32),
}

/// A change to the file.
#[derive(Arbitrary, Debug)]
pub enum Patch {
    /// Write `bytes` at `at` (modulo the file length).
    Bytes {
        /// Offset, modulo the file length.
        at: u16,
        /// Bytes to write (cut at the file's end).
        bytes: Vec<u8>,
    },
    /// Write a little-endian word into the header, at word `field % 32`.
    HeaderWord {
        /// Word index in the header.
        field: u8,
        /// Value.
        value: u64,
    },
    /// Write a word into directory entry `entry` (modulo its capacity), at word `field % 32`.
    EntryWord {
        /// Entry index.
        entry: u8,
        /// Word index in the entry.
        field: u8,
        /// Value.
        value: u64,
    },
    /// Set the state word of directory entry `entry`: state `state % 8` held by `holder`.
    EntryState {
        /// Entry index.
        entry: u8,
        /// State (0 empty, 1 claimed, 2 named, 3 ready, 4 dead, more is corrupt).
        state: u8,
        /// Holder recorded with the state.
        holder: Holder,
    },
    /// Write a word into the arena at word `word` (modulo the arena's words).
    ArenaWord {
        /// Word index in the arena.
        word: u16,
        /// Value.
        value: u64,
    },
}

/// A lookup of an object after the segment was opened.
#[derive(Arbitrary, Debug)]
pub struct Lookup {
    /// The name looked up.
    pub name: Name,
    /// Find or create (`true`), or open an existing object only (`false`).
    pub create: bool,
    /// The type asked for.
    pub kind: Kind,
}

/// What a run reached, for the regression test's own checks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The file was built (a valid base could be created).
    pub built: bool,
    /// The segment opened.
    pub opened: bool,
    /// Entries listed (`None` if listing failed or the segment did not open).
    pub listed: Option<usize>,
    /// Objects opened or created successfully, by name or from the listing.
    pub objects_used: usize,
}

/// Runs one fuzz case in a scratch file that is removed afterwards.
pub fn run(input: &Input) -> Outcome {
    let path = scratch_path();
    let _cleanup = RemoveOnDrop(path.clone());
    let mut out = Outcome::default();
    if build(input, &path).is_none() {
        return out;
    }
    out.built = true;
    exercise(input, &path, &mut out);
    out
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh file name for this process, in /dev/shm (or the temp dir where that is missing).
fn scratch_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!(
        "shmkit-fuzz-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Bytes of the user table between the directory and the arena (format version 3).
const USERS_BYTES: u64 = shmkit::limits::USER_SLOTS as u64 * 8;

/// Where the arena of a segment with `cap` entries starts (as shmkit lays it out).
fn arena_offset(cap: u64) -> u64 {
    (HEADER_SIZE + cap * ENTRY_SIZE + USERS_BYTES).div_ceil(4096) * 4096
}

/// Writes the base, closes it, applies the patches. `None` if a valid base could not be made.
fn build(input: &Input, path: &Path) -> Option<()> {
    let (cap, arena) = match &input.base {
        Base::Raw(bytes) => {
            // Mode 0600 whatever the umask: a file others may write is refused (untrusted)
            // before its bytes are looked at, which would leave them unfuzzed.
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .ok()?
                .write_all(bytes)
                .ok()?;
            (1, HEADER_SIZE + ENTRY_SIZE)
        }
        Base::Valid {
            dir_capacity,
            arena_pages,
            objects,
        } => {
            let cap = u64::from(dir_capacity % 8) + 1;
            let size = arena_offset(cap) + 4096 * (u64::from(arena_pages % 4) + 1);
            let seg = SegmentOptions::new()
                .dir_capacity(cap as u32)
                .wait_timeout(WAIT)
                .file(path, size)
                .ok()?;
            for o in objects.iter().take(MAX_STEPS) {
                let _ = use_object(&seg, o.name.as_str(), o.kind, true, o.value);
            }
            // Every handle is gone with `seg`: the file is unmapped before it is patched.
            drop(seg);
            (cap, arena_offset(cap))
        }
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .ok()?;
    let len = file.metadata().ok()?.len();
    let write = |at: u64, bytes: &[u8]| {
        if at < len {
            let n = bytes.len().min((len - at) as usize);
            let _ = file.write_all_at(&bytes[..n], at);
        }
    };
    for p in input.patches.iter().take(MAX_STEPS) {
        match p {
            Patch::Bytes { at, bytes } if len > 0 => {
                write(u64::from(*at) % len, &bytes[..bytes.len().min(512)])
            }
            Patch::Bytes { .. } => {}
            Patch::HeaderWord { field, value } => {
                write(u64::from(field % 32) * 8, &value.to_le_bytes())
            }
            Patch::EntryWord {
                entry,
                field,
                value,
            } => write(
                HEADER_SIZE + u64::from(*entry) % cap * ENTRY_SIZE + u64::from(field % 32) * 8,
                &value.to_le_bytes(),
            ),
            Patch::EntryState {
                entry,
                state,
                holder,
            } => {
                let pid = match holder {
                    Holder::Me => std::process::id(),
                    // Above the kernel's largest pid_max (2^22): never a live process.
                    Holder::Dead => (1 << 22) + 1,
                    Holder::Pid(p) => *p,
                };
                let word = u64::from(pid) << 32 | u64::from(state % 8);
                write(
                    HEADER_SIZE + u64::from(*entry) % cap * ENTRY_SIZE,
                    &word.to_le_bytes(),
                )
            }
            Patch::ArenaWord { word, value } => {
                let words = len.saturating_sub(arena) / 8;
                if words > 0 {
                    write(arena + u64::from(*word) % words * 8, &value.to_le_bytes())
                }
            }
        }
    }
    if input.fix_checksum && len >= 64 {
        let mut h = [0u8; 64];
        file.read_exact_at(&mut h, 0).ok()?;
        let word = |i: usize| u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().unwrap());
        // FNV-1a over version_state, layout hash, size, HEADER_SIZE, capacity, arena offset.
        let mut bytes = Vec::with_capacity(48);
        for v in [word(1), word(2), word(3), HEADER_SIZE, word(5), word(6)] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        file.write_all_at(&fnv1a(&bytes).to_le_bytes(), 56).ok()?;
    }
    if let Some(n) = input.set_len {
        // The file is not mapped by anyone: changing its length cannot raise SIGBUS.
        file.set_len(u64::from(n)).ok()?;
    }
    Some(())
}

/// Opens or creates `name` as `kind` and uses it. `Ok(())` when the object could be used.
fn use_object(seg: &Segment, name: &str, kind: Kind, create: bool, v: u64) -> shmkit::Result<()> {
    match kind {
        Kind::Counter => {
            let c = if create {
                seg.counter(name)?
            } else {
                seg.open_object::<Counter>(name)?
            };
            c.add(v);
            let _ = c.fetch_add(1);
            let _ = c.compare_exchange(v, c.load());
            let _ = format!("{:?}", *c);
        }
        Kind::Sharded => {
            let c = if create {
                seg.sharded_counter(name)?
            } else {
                seg.open_object::<ShardedCounter>(name)?
            };
            c.add(v);
            c.add_to(v as usize, 1);
            let _ = (c.sum(), c.stripes());
        }
        Kind::F64 => {
            let x = f64::from_bits(v);
            let a = if create {
                seg.value::<f64>(name, x)?
            } else {
                seg.open_object::<AtomicValue<f64>>(name)?
            };
            let _ = a.fetch_add(1.5);
            let _ = a.fetch_update(|y| Some(y * 2.0));
            let _ = a.compare_exchange(a.load(), x);
        }
        Kind::U32 => {
            let a = if create {
                seg.value::<u32>(name, v as u32)?
            } else {
                seg.open_object::<AtomicValue<u32>>(name)?
            };
            let _ = a.fetch_sub(3);
            let _ = a.swap(v as u32);
        }
        Kind::U8 => {
            let a = if create {
                seg.value::<u8>(name, v as u8)?
            } else {
                seg.open_object::<AtomicValue<u8>>(name)?
            };
            let _ = a.fetch_add(200);
            a.store(v as u8);
        }
    }
    Ok(())
}

/// Opens the patched file and uses everything in it.
fn exercise(input: &Input, path: &Path, out: &mut Outcome) {
    let seg = match SegmentOptions::new().wait_timeout(WAIT).open_file(path) {
        Ok(seg) => seg,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    out.opened = true;
    let _ = (
        seg.size(),
        seg.free_bytes(),
        seg.dir_capacity(),
        seg.creator(),
    );
    let _ = format!("{seg:?}");
    // The whole report and the exposition of a scribbled segment: errors, never a panic.
    let _ = shmkit::inspect::report(&seg);
    let _ = shmkit::export::write_openmetrics(&seg, &mut std::io::sink());
    match seg.entries() {
        Ok(list) => {
            out.listed = Some(list.len());
            for e in &list {
                let _ = format!("{} {} {:?}", e.name, e.tag, e);
                if let Ok(s) = shmkit::inspect::state(&seg, e) {
                    let _ = s.to_string().len();
                }
                if let Ok(v) = seg.open_entry_as::<AtomicValue<u64>>(e) {
                    let _ = v.load();
                }
                for kind in [Kind::Counter, Kind::Sharded, Kind::F64, Kind::U32, Kind::U8] {
                    if use_object(&seg, &e.name, kind, false, 1).is_ok() {
                        out.objects_used += 1;
                    }
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    for l in input.lookups.iter().take(MAX_STEPS) {
        match use_object(&seg, l.name.as_str(), l.kind, l.create, 7) {
            Ok(()) => out.objects_used += 1,
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // A second listing after the lookups (which may have created or taken over entries).
    let _ = seg.entries();
}
