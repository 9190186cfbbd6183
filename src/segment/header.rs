//! The segment header: the first 256 bytes of every segment.
//!
//! ```text
//! offset  field            written                     checked on open
//! 0       magic            first                       == MAGIC, else NotAShmkitSegment
//! 8       version_state    LAST (Release): READY<<32|v  high half READY, low half == FORMAT_VERSION
//! 16      layout_hash      at creation                 == layout_hash() of this build
//! 24      size             at creation                 <= real file size, >= minimum
//! 32      dir_offset       at creation                 == HEADER_SIZE
//! 40      dir_capacity     at creation                 1..=MAX_DIR_CAPACITY
//! 48      arena_offset     at creation                 == arena_offset_for(dir_capacity) <= size
//! 56      checksum         at creation                 FNV-1a of the fields 8..56
//! 64      creator          first (before the magic)    owner word (crate::process): liveness
//! 72      creator_start    first                       full start time: pid-reuse guard
//! 80      created_unix_ns  at creation                 shown by tools
//! 88      life             lifecycle word (users.rs)   state in bits 62..64, generation below
//! 96      cleaner          owner word of a remover     advisory: who is deciding a removal
//! 104     users_overflow   attachers the table missed  > 0: "unknown users", never stale
//! 112     flags            bit 0: remove on last detach
//! 128     alloc_next       bump pointer (own line)     in [arena_offset, size] at every use
//! ```
//!
//! The user table ([`users`](super::users)) follows the directory: `USER_SLOTS` owner words at
//! `HEADER_SIZE + dir_capacity * 256`, before the (page-aligned) arena.
//!
//! Nothing in the header is trusted until all of it is validated; then the validated numbers are
//! copied into the local handle and the shared copies are never read again (except `alloc_next`,
//! which is re-validated at every allocation).

use crate::error::{Error, Result};
use crate::object::fnv1a;
use crate::segment::directory::DirEntry;
use crate::sync::{AtomicU64, Ordering};
use std::path::Path;

pub use crate::format::{FORMAT_VERSION, MAGIC};
/// Marker in the high half of `version_state` once the segment is initialized ("REDY").
pub const READY: u32 = u32::from_le_bytes(*b"REDY");
/// Bytes taken by the header; the directory follows.
pub const HEADER_SIZE: u64 = 256;
/// The largest directory a segment may have.
pub const MAX_DIR_CAPACITY: u64 = 65_536;
/// The smallest arena a segment may have, in bytes.
pub const MIN_ARENA: u64 = 4096;

/// The header's layout in shared memory. Every field is an atomic.
#[repr(C)]
pub struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) version_state: AtomicU64,
    pub(crate) layout_hash: AtomicU64,
    pub(crate) size: AtomicU64,
    pub(crate) dir_offset: AtomicU64,
    pub(crate) dir_capacity: AtomicU64,
    pub(crate) arena_offset: AtomicU64,
    pub(crate) checksum: AtomicU64,
    pub(crate) creator_pid: AtomicU64,
    pub(crate) creator_start: AtomicU64,
    pub(crate) created_unix_ns: AtomicU64,
    pub(crate) life: AtomicU64,
    pub(crate) cleaner: AtomicU64,
    pub(crate) users_overflow: AtomicU64,
    pub(crate) flags: AtomicU64,
    _reserved: AtomicU64,
    pub(crate) alloc_next: AtomicU64,
    _pad: [AtomicU64; 15],
}

static_assertions::assert_eq_size!(Header, [u8; HEADER_SIZE as usize]);
static_assertions::assert_eq_align!(Header, u64);
static_assertions::const_assert_eq!(core::mem::offset_of!(Header, alloc_next), 128);
static_assertions::const_assert_eq!(core::mem::offset_of!(Header, life), 88);
static_assertions::const_assert_eq!(core::mem::offset_of!(Header, users_overflow), 104);
static_assertions::const_assert_eq!(core::mem::offset_of!(Header, flags), 112);

/// Bit of [`Header::flags`]: the last process to detach removes the segment.
pub const FLAG_REMOVE_ON_LAST_DETACH: u64 = 1;

/// Where the user table starts for a directory of `dir_capacity` entries (right after it).
pub fn users_offset_for(dir_capacity: u64) -> u64 {
    HEADER_SIZE + dir_capacity * core::mem::size_of::<DirEntry>() as u64
}

/// Where the arena starts for a directory of `dir_capacity` entries (page-aligned, after the
/// user table).
pub fn arena_offset_for(dir_capacity: u64) -> u64 {
    (users_offset_for(dir_capacity) + super::users::USERS_BYTES).div_ceil(4096) * 4096
}

/// A hash of the shared layouts this build uses. Two builds whose layouts differ (even at the same
/// format version) refuse each other's segments instead of misreading them.
pub fn layout_hash() -> u64 {
    let desc = format!(
        "shmkit-v{FORMAT_VERSION};header={};users={};entry={};counter={};sharded={}x{};endian={}",
        core::mem::size_of::<Header>(),
        super::users::USER_SLOTS,
        core::mem::size_of::<DirEntry>(),
        core::mem::size_of::<crate::Counter>(),
        crate::counter::SHARDS,
        core::mem::size_of::<crate::ShardedCounter>(),
        if cfg!(target_endian = "little") {
            "le"
        } else {
            "be"
        },
    );
    fnv1a(desc.as_bytes())
}

/// The validated facts of a header, held locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Segment size in bytes.
    pub size: u64,
    /// Number of directory entries.
    pub dir_capacity: u64,
    /// Offset of the arena.
    pub arena_offset: u64,
}

fn checksum(version_state: u64, layout: u64, g: &Geometry) -> u64 {
    let mut bytes = Vec::with_capacity(48);
    for v in [
        version_state,
        layout,
        g.size,
        HEADER_SIZE,
        g.dir_capacity,
        g.arena_offset,
    ] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    fnv1a(&bytes)
}

/// Checks a size and directory capacity for a new segment and returns its geometry.
pub fn plan(size: u64, dir_capacity: u64) -> Result<Geometry> {
    if dir_capacity == 0 || dir_capacity > MAX_DIR_CAPACITY {
        return Err(Error::InvalidSize {
            requested: size,
            reason: format!("directory capacity {dir_capacity} is outside 1..={MAX_DIR_CAPACITY}"),
        });
    }
    let arena_offset = arena_offset_for(dir_capacity);
    let min = arena_offset + MIN_ARENA;
    if size < min {
        return Err(Error::InvalidSize {
            requested: size,
            reason: format!(
                "a segment with {dir_capacity} directory entries needs at least {min} bytes"
            ),
        });
    }
    if size > isize::MAX as u64 {
        return Err(Error::InvalidSize {
            requested: size,
            reason: "larger than the address space".into(),
        });
    }
    Ok(Geometry {
        size,
        dir_capacity,
        arena_offset,
    })
}

impl Header {
    /// Writes a complete header into fresh memory; `version_state` goes last, with Release, so
    /// whoever sees it ready sees every other field.
    pub fn initialize(&self, g: &Geometry, flags: u64) {
        self.flags.store(flags, Ordering::Relaxed);
        self.creator_pid
            .store(crate::process::my_word(), Ordering::Relaxed);
        self.creator_start
            .store(crate::process::start_time(), Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.created_unix_ns.store(now, Ordering::Relaxed);
        let layout = layout_hash();
        let vs = (READY as u64) << 32 | FORMAT_VERSION as u64;
        self.layout_hash.store(layout, Ordering::Relaxed);
        self.size.store(g.size, Ordering::Relaxed);
        self.dir_offset.store(HEADER_SIZE, Ordering::Relaxed);
        self.dir_capacity.store(g.dir_capacity, Ordering::Relaxed);
        self.arena_offset.store(g.arena_offset, Ordering::Relaxed);
        self.alloc_next.store(g.arena_offset, Ordering::Relaxed);
        self.checksum
            .store(checksum(vs, layout, g), Ordering::Relaxed);
        self.version_state.store(vs, Ordering::Release);
    }
}

/// What a look at a header found.
pub enum State {
    /// Valid and ready.
    Ready(Geometry),
    /// Magic (or nothing yet) present, but the ready word not yet written.
    Initializing {
        /// Creator's owner word recorded in the header (0 if none yet).
        word: u64,
        /// Creator start time recorded (0 if none).
        start: u64,
    },
}

/// Whether the creator recorded as owner word `word` with full start time `start` still runs:
/// the crate's liveness rule on the word, and the full start time where one was recorded.
pub fn creator_alive(word: u64, start: u64) -> bool {
    crate::process::word_alive(word)
        && (start == 0
            || crate::process::word_is_foreign(word)
            || crate::process::owner_alive(crate::process::word_pid(word), start))
}

/// Validates the header at the start of a mapping of `file_len` bytes.
pub fn validate(h: &Header, file_len: u64, path: &Path) -> Result<State> {
    let magic = h.magic.load(Ordering::Acquire);
    let vs = h.version_state.load(Ordering::Acquire);
    if magic != MAGIC {
        let creator = h.creator_pid.load(Ordering::Relaxed);
        if magic == 0 && vs == 0 {
            return Ok(State::Initializing {
                word: creator,
                start: h.creator_start.load(Ordering::Relaxed),
            });
        }
        return Err(Error::NotAShmkitSegment {
            path: path.to_path_buf(),
            found_magic: magic,
        });
    }
    if vs == 0 {
        return Ok(State::Initializing {
            word: h.creator_pid.load(Ordering::Relaxed),
            start: h.creator_start.load(Ordering::Relaxed),
        });
    }
    if (vs >> 32) as u32 != READY {
        return Err(Error::corrupted(
            path,
            format!(
                "header ready/version word is {vs:#018x}, whose high half is not the ready marker"
            ),
        ));
    }
    let version = vs as u32;
    if version != FORMAT_VERSION {
        return Err(Error::VersionMismatch {
            path: path.to_path_buf(),
            expected: FORMAT_VERSION,
            found: version,
        });
    }
    let layout = h.layout_hash.load(Ordering::Relaxed);
    if layout != layout_hash() {
        return Err(Error::corrupted(
            path,
            format!(
                "layout hash {layout:#018x} differs from this build's {:#018x} \
                 (written by an incompatible build of shmkit)",
                layout_hash()
            ),
        ));
    }
    let g = Geometry {
        size: h.size.load(Ordering::Relaxed),
        dir_capacity: h.dir_capacity.load(Ordering::Relaxed),
        arena_offset: h.arena_offset.load(Ordering::Relaxed),
    };
    let dir_offset = h.dir_offset.load(Ordering::Relaxed);
    let sum = h.checksum.load(Ordering::Relaxed);
    if sum != checksum(vs, layout, &g) || dir_offset != HEADER_SIZE {
        return Err(Error::corrupted(
            path,
            format!("header checksum {sum:#018x} does not match its fields"),
        ));
    }
    if g.size > file_len {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: g.size,
            actual: file_len,
        });
    }
    match plan(g.size, g.dir_capacity) {
        Ok(p) if p.arena_offset == g.arena_offset => {}
        _ => {
            return Err(Error::corrupted(
                path,
                format!(
                    "header geometry is impossible: size {}, directory capacity {}, arena at {}",
                    g.size, g.dir_capacity, g.arena_offset
                ),
            ))
        }
    }
    Ok(State::Ready(g))
}

/// The rows `(offset, size, field)` of the table marked `<!-- table: NAME ... -->` in
/// `docs/FORMAT.md`, for the tests that pin the documented layout to the code.
#[cfg(test)]
pub(crate) fn format_doc_table(name: &str) -> Vec<(usize, usize, String)> {
    const DOC: &str = include_str!("../../docs/FORMAT.md");
    let marker = format!("<!-- table: {name} ");
    let start = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/FORMAT.md has no table {name:?}"));
    DOC[start..]
        .lines()
        .skip(3) // the marker, the column names, the separator
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let num = |s: &str| {
                s.parse::<usize>()
                    .unwrap_or_else(|_| panic!("not a number in {l:?}"))
            };
            (num(cells[1]), num(cells[2]), cells[3].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn the_documented_header_table_matches_the_code() {
        let code = [
            (offset_of!(Header, magic), 8, "magic"),
            (offset_of!(Header, version_state), 8, "version_state"),
            (offset_of!(Header, layout_hash), 8, "layout_hash"),
            (offset_of!(Header, size), 8, "size"),
            (offset_of!(Header, dir_offset), 8, "dir_offset"),
            (offset_of!(Header, dir_capacity), 8, "dir_capacity"),
            (offset_of!(Header, arena_offset), 8, "arena_offset"),
            (offset_of!(Header, checksum), 8, "checksum"),
            (offset_of!(Header, creator_pid), 8, "creator_pid"),
            (offset_of!(Header, creator_start), 8, "creator_start"),
            (offset_of!(Header, created_unix_ns), 8, "created_unix_ns"),
            (offset_of!(Header, life), 8, "life"),
            (offset_of!(Header, cleaner), 8, "cleaner"),
            (offset_of!(Header, users_overflow), 8, "users_overflow"),
            (offset_of!(Header, flags), 8, "flags"),
            (offset_of!(Header, _reserved), 8, "_reserved"),
            (offset_of!(Header, alloc_next), 8, "alloc_next"),
            (offset_of!(Header, _pad), 120, "_pad"),
        ];
        let code: Vec<(usize, usize, String)> = code
            .iter()
            .map(|&(o, s, n)| (o, s, n.to_string()))
            .collect();
        assert_eq!(format_doc_table("header"), code);
        let last = code.last().unwrap();
        assert_eq!(last.0 + last.1, size_of::<Header>());
        assert_eq!(HEADER_SIZE as usize, size_of::<Header>());
    }

    #[test]
    fn the_documented_constants_match_the_code() {
        const DOC: &str = include_str!("../../docs/FORMAT.md");
        assert!(DOC.starts_with(&format!(
            "# The shmkit segment format, version {FORMAT_VERSION}\n"
        )));
        // The layout string a reader can hash, and the magic and ready marker as printed.
        let layout = format!(
            "shmkit-v{FORMAT_VERSION};header=256;users=64;entry=256;counter=128;sharded=32x4096;endian=le"
        );
        assert!(DOC.contains(&format!("`{layout}`")));
        if cfg!(all(target_endian = "little", target_pointer_width = "64"))
            && size_of::<crate::Counter>() == 128
        {
            assert_eq!(fnv1a(layout.as_bytes()), layout_hash());
        }
        let hex = format!("{MAGIC:016x}");
        let grouped = format!(
            "0x{}_{}_{}_{}",
            &hex[0..4],
            &hex[4..8],
            &hex[8..12],
            &hex[12..16]
        );
        assert!(DOC.contains(&grouped), "{grouped} not in docs/FORMAT.md");
        let ready = format!("{READY:08x}");
        assert!(DOC.contains(&format!("0x{}_{} << 32", &ready[0..4], &ready[4..8])));
        assert_eq!(
            arena_offset_for(3),
            (256 + 256 * 3 + 512u64).div_ceil(4096) * 4096
        );
    }
}
