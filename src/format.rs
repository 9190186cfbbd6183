//! The identity of the segment format: the magic number and version every segment header starts
//! with.
//!
//! They sit below [`error`](crate::error), whose messages name the magic, and below the segment
//! code that writes and checks them; their public path is `shmkit::{MAGIC,
//! FORMAT_VERSION}`.

/// The first 8 bytes of every shmkit segment (`"SHMKIT\0\x01"` read as a little-endian u64).
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMKIT\0\x01");
/// The segment format version this build reads and writes (`docs/FORMAT.md` is its spec).
///
/// - 3: the header's lifecycle words (88..120) and the user table after the directory; maps'
///   bucket heads live in their slots (map layout 2).
/// - 2: the first published layout.
pub const FORMAT_VERSION: u32 = 3;
