//! Segments: memory maps with a validated header and a directory of named objects.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::segments`], written in `src/guide/segments.md`.

#[cfg(not(feature = "loom"))]
mod handle;
#[cfg(not(feature = "loom"))]
pub(crate) mod header;
pub mod life;
#[cfg(not(feature = "loom"))]
mod mapping;
#[cfg(not(feature = "loom"))]
mod options;
#[cfg(not(feature = "loom"))]
mod overflow;
#[cfg(not(feature = "loom"))]
mod publish;
#[cfg(not(feature = "loom"))]
pub(crate) mod removal;
#[cfg(not(feature = "loom"))]
mod typed;
#[cfg(not(feature = "loom"))]
pub(crate) mod users;

pub mod directory;

#[cfg(not(feature = "loom"))]
pub use handle::Handle;
#[cfg(not(feature = "loom"))]
pub use options::SegmentOptions;
#[cfg(not(feature = "loom"))]
pub use publish::DraftFile;
#[cfg(not(feature = "loom"))]
pub use removal::Removal;
#[cfg(not(feature = "loom"))]
pub use users::{User, Users, USER_SLOTS};

#[cfg(not(feature = "loom"))]
pub use self::imp::*;

#[cfg(not(feature = "loom"))]
mod imp {
    use super::directory::{DirEntry, Directory, EntryInfo};
    use super::header::{self, Geometry, Header};
    use super::mapping::FileId;
    use super::users::{self, Attach, Attachment, Table, Users};
    use super::{Handle, SegmentOptions};
    use crate::error::{Error, Result};
    use crate::object::{Object, TypeTag};
    use memmap2::MmapRaw;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    /// Directory where named segments live.
    pub const SHM_DIR: &str = "/dev/shm";
    /// Default number of directory entries (objects) of a new segment.
    pub const DEFAULT_DIR_CAPACITY: u32 = 64;
    /// Default bound on waits for another process's creation in progress.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
    /// Longest segment name, in bytes.
    pub const SEGMENT_NAME_MAX: usize = 200;

    /// How a segment is backed, as [`Segment::backing`] reports it.
    ///
    /// ```
    /// use shmkit::{Backing, Segment};
    ///
    /// # fn main() -> shmkit::Result<()> {
    /// let anon = Segment::anonymous(1 << 16)?;
    /// assert_eq!(anon.backing(), Backing::Anonymous);
    /// assert_eq!(anon.path(), None);
    ///
    /// let name = format!("shmkit-doc-backing-{}", std::process::id());
    /// let named = Segment::create(&name, 1 << 16)?;
    /// assert_eq!(named.backing(), Backing::Named);
    /// assert!(named.path().unwrap().starts_with("/dev/shm"));
    /// named.unlink()?;
    /// # Ok(()) }
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Backing {
        /// A file in `/dev/shm`.
        Named,
        /// A file elsewhere.
        File,
        /// A memfd shared with forked children.
        Anonymous,
    }

    /// Checks a segment name and returns its path in `/dev/shm`.
    pub fn named_path(name: &str) -> Result<PathBuf> {
        let reason = if name.is_empty() {
            "segment names must not be empty"
        } else if name.len() > SEGMENT_NAME_MAX {
            "segment names are at most 200 bytes"
        } else if name.contains('/') {
            "segment names must not contain '/' (use Segment::file for paths)"
        } else if name.contains('\0') {
            "segment names must not contain NUL"
        } else if name.starts_with('.') {
            "segment names must not start with '.' (reserved for files being created)"
        } else {
            return Ok(Path::new(SHM_DIR).join(name));
        };
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    }

    pub(super) struct Inner {
        pub(super) map: MmapRaw,
        pub(super) geometry: Geometry,
        pub(super) path: Option<PathBuf>,
        pub(super) backing: Backing,
        pub(super) wait: Duration,
        /// This mapping's share of the process's entry in the user table.
        pub(super) attach: Attachment,
    }

    impl Inner {
        /// The user table of this mapping (header and slots).
        pub(super) fn table(&self) -> Table<'_> {
            let base = self.map.as_ptr();
            let users_at = header::users_offset_for(self.geometry.dir_capacity) as usize;
            // SAFETY: the header was validated (or written by us): the user table lies at
            // users_offset_for(dir_capacity), 8-aligned, and ends before arena_offset <= size,
            // the mapping's length; Header and the slots are all atomics (valid for any bits,
            // shared through `&`). The borrow lives no longer than `self`, which owns the map.
            unsafe {
                Table {
                    header: &*(base as *const Header),
                    slots: std::slice::from_raw_parts(
                        base.add(users_at) as *const crate::sync::AtomicU64,
                        users::USER_SLOTS,
                    ),
                    file: match self.backing {
                        Backing::Anonymous => None,
                        _ => self.path.as_deref().map(|p| (p, self.attach.file_id())),
                    },
                }
            }
        }
    }

    impl Drop for Inner {
        fn drop(&mut self) {
            use crate::sync::Ordering;
            let t = self.table();
            let last = self.attach.detach(t);
            let marked =
                t.header.flags.load(Ordering::Relaxed) & header::FLAG_REMOVE_ON_LAST_DETACH != 0;
            if last && marked {
                if let Some(path) = &self.path {
                    let _ =
                        super::removal::remove_mapped(t, path, self.attach.file_id(), self.wait);
                }
            }
        }
    }

    /// A mapped segment. Cheap to clone (the clones share one mapping, unmapped with the last).
    ///
    /// Named segments live in `/dev/shm` and are found by name; file-backed ones anywhere (and
    /// survive restarts); anonymous ones are shared with `fork()`ed children only. Objects in a
    /// segment are found or created by name and type (`seg.counter`, `seg.value`, `seg.mpmc` …).
    ///
    /// ```
    /// use shmkit::Segment;
    ///
    /// # fn main() -> shmkit::Result<()> {
    /// let name = format!("shmkit-doc-segment-{}", std::process::id());
    /// let seg = Segment::open_or_create(&name, 1 << 20)?; // one process creates, all share
    /// seg.counter("requests")?.add(2);
    ///
    /// // Another process (here: the same one) opens it by name and sees the same objects.
    /// let other = Segment::open(&name)?;
    /// assert_eq!(other.counter("requests")?.load(), 2);
    /// let names: Vec<String> = other.entries()?.into_iter().map(|e| e.name).collect();
    /// assert_eq!(names, ["requests"]);
    ///
    /// // The name stays in /dev/shm until removed; mappings stay valid after.
    /// seg.unlink()?;
    /// assert!(matches!(Segment::open(&name), Err(shmkit::Error::NotFound { .. })));
    /// assert_eq!(other.counter("requests")?.load(), 2);
    /// # Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct Segment {
        pub(super) inner: Arc<Inner>,
    }

    impl std::fmt::Debug for Segment {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Segment")
                .field("path", &self.inner.path)
                .field("backing", &self.inner.backing)
                .field("size", &self.inner.geometry.size)
                .finish()
        }
    }

    impl Segment {
        /// Wraps a validated mapping of file `id`, registering this process as a user if
        /// `register`; `None` if the segment is being removed (then nothing is registered).
        #[allow(clippy::too_many_arguments)]
        pub(super) fn from_map(
            map: MmapRaw,
            geometry: Geometry,
            path: Option<PathBuf>,
            backing: Backing,
            wait: Duration,
            id: FileId,
            register: bool,
        ) -> Result<Option<Self>> {
            let mut inner = Inner {
                map,
                geometry,
                path,
                backing,
                wait,
                attach: Attachment::none(id.0, id.1),
            };
            if register {
                let shown = inner.path.clone().unwrap_or_else(|| "<anonymous>".into());
                let (a, r) = Attachment::attach(id.0, id.1, inner.table(), &shown)?;
                if let Attach::Doomed = r {
                    return Ok(None);
                }
                inner.attach = a;
            }
            Ok(Some(Segment {
                inner: Arc::new(inner),
            }))
        }

        /// Marks the segment to be removed by the last process that detaches.
        pub(super) fn mark_remove_on_last_detach(&self) {
            self.inner.table().header.flags.fetch_or(
                header::FLAG_REMOVE_ON_LAST_DETACH,
                crate::sync::Ordering::Relaxed,
            );
        }

        /// The live processes recorded as users of this segment (this one included, if it
        /// registered), and how many more the full table could not record. See
        /// [the guide](crate::guide::segments) for the rules (one entry per process, fork
        /// children, observers, a full table).
        ///
        /// ```
        /// use shmkit::Segment;
        ///
        /// # fn main() -> shmkit::Result<()> {
        /// let name = format!("shmkit-doc-users-{}", std::process::id());
        /// let seg = Segment::create(&name, 1 << 16)?;
        /// let again = Segment::open(&name)?; // the same process: still one user
        /// let users = again.users();
        /// assert_eq!(users.live.len(), 1);
        /// assert!(users.live[0].is_me && !users.is_stale());
        /// seg.unlink()?;
        /// # Ok(()) }
        /// ```
        pub fn users(&self) -> Users {
            self.refresh_registration();
            self.inner.table().users()
        }

        /// In a fork child, registers the inherited mapping (see [`users`](super::users)).
        fn refresh_registration(&self) {
            self.inner
                .attach
                .refresh(self.inner.table(), self.dir_path());
        }

        /// Whether this mapping counts this process as a user (it was mapped with
        /// [`SegmentOptions::register`] on, in this process, and not refused by a removal).
        pub fn is_registered(&self) -> bool {
            self.inner.attach.registered()
        }

        /// Creates the named segment `name` (in `/dev/shm`) of `size` bytes, mode 0600.
        ///
        /// # Errors
        /// [`Error::AlreadyExists`] if it exists, [`Error::InvalidName`], [`Error::InvalidSize`]
        /// (at least 24 KiB with the default directory), [`Error::PermissionDenied`], I/O errors.
        pub fn create(name: &str, size: u64) -> Result<Segment> {
            SegmentOptions::new().create(name, size)
        }

        /// Opens the named segment `name`. It must be owned by this process's user (or root)
        /// and writable by nobody else (see [`SegmentOptions::trust_owner`] and
        /// [`SegmentOptions::allow_shared`] for shared segments).
        ///
        /// # Errors
        /// [`Error::NotFound`], [`Error::UntrustedSegment`], [`Error::NotAShmkitSegment`],
        /// [`Error::VersionMismatch`], [`Error::Truncated`], [`Error::Corrupted`],
        /// [`Error::InitializationNotFinished`], [`Error::CreatorDied`],
        /// [`Error::PermissionDenied`], [`Error::InvalidName`].
        pub fn open(name: &str) -> Result<Segment> {
            SegmentOptions::new().open(name)
        }

        /// Opens the named segment `name`, creating it with `size` bytes if it does not exist
        /// (see [`SegmentOptions::open_or_create`]).
        pub fn open_or_create(name: &str, size: u64) -> Result<Segment> {
            SegmentOptions::new().open_or_create(name, size)
        }

        /// Opens the file-backed segment at `path`, creating it with `size` bytes if missing.
        /// Its contents survive restarts; call [`flush`](Segment::flush) to force them to disk.
        pub fn file(path: impl AsRef<Path>, size: u64) -> Result<Segment> {
            SegmentOptions::new().file(path, size)
        }

        /// Opens the existing file-backed segment at `path`.
        pub fn open_file(path: impl AsRef<Path>) -> Result<Segment> {
            SegmentOptions::new().open_file(path)
        }

        /// Creates an anonymous segment of `size` bytes, shared with children `fork()`ed later.
        pub fn anonymous(size: u64) -> Result<Segment> {
            SegmentOptions::new().anonymous(size)
        }

        /// The file of the named segment `name`: `/dev/shm/<name>`, once the name is checked.
        ///
        /// ```
        /// use shmkit::Segment;
        ///
        /// let p = Segment::path_of("jobs").unwrap();
        /// assert_eq!(p, std::path::Path::new(shmkit::SHM_DIR).join("jobs"));
        /// assert!(matches!(Segment::path_of("a/b"), Err(shmkit::Error::InvalidName { .. })));
        /// ```
        ///
        /// # Errors
        /// [`Error::InvalidName`] for an empty name, one longer than 200 bytes, or one with `/`,
        /// NUL or a leading `.`.
        pub fn path_of(name: &str) -> Result<PathBuf> {
            named_path(name)
        }

        /// Writes the segment's contents to its file (file-backed segments; harmless otherwise).
        pub fn flush(&self) -> Result<()> {
            let p = self.path().unwrap_or(Path::new("<anonymous>"));
            self.inner
                .map
                .flush()
                .map_err(|e| Error::io(format!("flushing {}", p.display()), p, e))
        }

        /// The segment's file, `None` for anonymous segments.
        pub fn path(&self) -> Option<&Path> {
            self.inner.path.as_deref()
        }

        /// How the segment is backed.
        pub fn backing(&self) -> Backing {
            self.inner.backing
        }

        /// Size of the segment in bytes.
        pub fn size(&self) -> u64 {
            self.inner.geometry.size
        }

        /// Bytes still free for new objects.
        pub fn free_bytes(&self) -> u64 {
            self.directory().free_bytes()
        }

        /// Number of directory entries (the most objects it can hold).
        pub fn dir_capacity(&self) -> u32 {
            self.inner.geometry.dir_capacity as u32
        }

        /// The process that created the segment and when (Unix time in nanoseconds).
        pub fn creator(&self) -> (u32, u64) {
            use crate::sync::Ordering;
            let h = self.header();
            (
                crate::process::word_pid(h.creator_pid.load(Ordering::Relaxed)),
                h.created_unix_ns.load(Ordering::Relaxed),
            )
        }

        /// Whether the process that created the segment is still running (pid and start time
        /// both match, so a reused pid does not count).
        pub fn creator_alive(&self) -> bool {
            use crate::sync::Ordering;
            let h = self.header();
            header::creator_alive(
                h.creator_pid.load(Ordering::Relaxed),
                h.creator_start.load(Ordering::Relaxed),
            )
        }

        /// Lists the objects in the segment.
        pub fn entries(&self) -> Result<Vec<EntryInfo>> {
            self.directory().list()
        }

        fn header(&self) -> &Header {
            // SAFETY: the mapping holds at least a validated header at offset 0, page-aligned;
            // Header is all atomics (valid for any bits, shareable through `&`). The reference
            // lives no longer than `self`, which keeps the mapping.
            unsafe { &*(self.inner.map.as_ptr() as *const Header) }
        }

        fn dir_path(&self) -> &Path {
            self.path().unwrap_or(Path::new("<anonymous>"))
        }

        /// The directory over this segment's entries and arena, with validated local bounds.
        pub fn directory(&self) -> Directory<'_> {
            self.refresh_registration();
            let g = &self.inner.geometry;
            // SAFETY: the header was validated: HEADER_SIZE + dir_capacity * 256 <= arena_offset
            // <= size == the mapping's length, so the entries lie inside the mapping; the offset
            // HEADER_SIZE (256) keeps 8-byte alignment; DirEntry is all atomics (valid for any bits).
            let entries = unsafe {
                std::slice::from_raw_parts(
                    self.inner.map.as_ptr().add(header::HEADER_SIZE as usize) as *const DirEntry,
                    g.dir_capacity as usize,
                )
            };
            Directory::new(
                entries,
                &self.header().alloc_next,
                g.arena_offset,
                g.size,
                self.dir_path(),
                self.inner.wait,
            )
        }

        /// Finds the object `name` of type `P`, or creates it from `params`.
        ///
        /// This is the generic form behind [`counter`](Segment::counter),
        /// [`value`](Segment::value) and the other typed constructors.
        ///
        /// # Errors
        /// [`Error::TypeMismatch`] if `name` holds another kind, element type or length;
        /// [`Error::OutOfSpace`]; [`Error::DirectoryFull`]; [`Error::InvalidName`];
        /// [`Error::InvalidSize`] for impossible parameters; [`Error::Corrupted`].
        pub fn object<P: Object + ?Sized>(
            &self,
            name: &str,
            params: P::Params,
        ) -> Result<Handle<P>> {
            let tag = P::tag(&params);
            let layout = P::layout(&tag).ok_or_else(|| Error::InvalidSize {
                requested: tag.len,
                reason: format!("no {tag} can be laid out with these parameters"),
            })?;
            let base = self.inner.map.as_mut_ptr();
            let (index, offset) = self.directory().find_or_create(name, &tag, layout, |off| {
                // SAFETY: the directory allocated [off, off + layout.size()) inside the arena
                // (checked against the local geometry), aligned to layout.align(); the memory
                // is shared and writable; `init` writes it through atomics only.
                unsafe {
                    P::init(
                        std::ptr::NonNull::new_unchecked(base.add(off as usize)),
                        &tag,
                        params,
                    )
                }
            })?;
            Ok(self.handle_at::<P>(index, offset, &tag))
        }

        /// Opens the existing object `name` of type `P`, with the dimensions it was created
        /// with (for arrays and rings, their length).
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::CreatorDied`],
        /// [`Error::Corrupted`].
        pub fn open_object<P: Object + ?Sized>(&self, name: &str) -> Result<Handle<P>> {
            let dir = self.directory();
            let (index, found, offset, size) = dir.find(name)?;
            let want = P::element();
            if !want.same_type(&found) {
                return Err(Error::TypeMismatch {
                    name: name.to_string(),
                    expected: want.to_string(),
                    found: found.to_string(),
                });
            }
            let layout = P::layout(&found).ok_or_else(|| {
                Error::corrupted(
                    self.dir_path(),
                    format!("object {name:?} has impossible dimensions: {found}"),
                )
            })?;
            dir.check_found(index, offset, size, layout)?;
            Ok(self.handle_at::<P>(index, offset, &found))
        }

        /// Opens the listed `entry` as a `P`, checking its kind and placement but not its element
        /// type name: for tools that show objects of types they do not know (same layout).
        pub fn open_entry_as<P: Object + ?Sized>(&self, entry: &EntryInfo) -> Result<Handle<P>> {
            let dir = self.directory();
            let (index, found, offset, size) = dir.find_listed(entry.index, &entry.name)?;
            if found.kind != P::element().kind {
                return Err(Error::TypeMismatch {
                    name: entry.name.clone(),
                    expected: P::element().to_string(),
                    found: found.to_string(),
                });
            }
            let layout = P::layout(&found).ok_or_else(|| {
                Error::corrupted(
                    self.dir_path(),
                    format!("object {:?} has impossible dimensions: {found}", entry.name),
                )
            })?;
            dir.check_found(index, offset, size, layout)?;
            Ok(self.handle_at::<P>(index, offset, &found))
        }

        /// Opens `entry` as a `P` as a [`Directory::scan`] of `dir` (this segment's directory)
        /// has just read it, without reading the entry again: its kind, layout and bounds are
        /// checked, and its overlap with other objects unless `disjoint_checked` (a
        /// `Directory::disjoint_checked` pass before the scan covered its index).
        pub(crate) fn open_scanned_as<P: Object + ?Sized>(
            &self,
            dir: &Directory<'_>,
            entry: &EntryInfo,
            disjoint_checked: bool,
        ) -> Result<Handle<P>> {
            let found = &entry.tag;
            if found.kind != P::element().kind {
                return Err(Error::TypeMismatch {
                    name: entry.name.clone(),
                    expected: P::element().to_string(),
                    found: found.to_string(),
                });
            }
            let layout = P::layout(found).ok_or_else(|| {
                Error::corrupted(
                    self.dir_path(),
                    format!("object {:?} has impossible dimensions: {found}", entry.name),
                )
            })?;
            let (index, offset, size) = (entry.index, entry.offset, entry.size);
            if disjoint_checked {
                dir.check_found_bounds(index, offset, size, layout)?;
            } else {
                dir.check_found(index, offset, size, layout)?;
            }
            Ok(self.handle_at::<P>(index, offset, found))
        }

        fn handle_at<P: Object + ?Sized>(
            &self,
            index: u32,
            offset: u64,
            tag: &TypeTag,
        ) -> Handle<P> {
            // SAFETY: `offset` was checked to lie inside the mapping (non-null base + offset).
            let ptr = unsafe {
                std::ptr::NonNull::new_unchecked(self.inner.map.as_mut_ptr().add(offset as usize))
            };
            // SAFETY: the object at `ptr` was placed and checked by the directory for the
            // layout of `tag`, initialized (READY), and P is an Object (all atomics).
            unsafe { Handle::new(self.clone(), P::cast(ptr, tag), index) }
        }
    }
}
