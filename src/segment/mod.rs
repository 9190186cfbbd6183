//! Segments: memory maps with a validated header and a directory of named objects.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::segments`], written in `src/guide/segments.md`.

#[cfg(not(feature = "loom"))]
mod handle;
#[cfg(not(feature = "loom"))]
pub(crate) mod header;
#[cfg(not(feature = "loom"))]
mod mapping;
#[cfg(not(feature = "loom"))]
mod publish;
#[cfg(not(feature = "loom"))]
mod typed;

pub mod directory;

#[cfg(not(feature = "loom"))]
pub use handle::Handle;

#[cfg(not(feature = "loom"))]
pub use self::imp::*;

#[cfg(not(feature = "loom"))]
mod imp {
    use super::directory::{DirEntry, Directory, EntryInfo};
    use super::header::{self, Geometry, Header};
    use super::mapping::{self, Trust};
    use super::Handle;
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

    /// Options for creating and opening segments; [`Segment`]'s constructors use the defaults.
    ///
    /// ```
    /// use shmkit::SegmentOptions;
    /// use std::os::unix::fs::PermissionsExt;
    /// use std::time::Duration;
    ///
    /// # fn main() -> shmkit::Result<()> {
    /// let name = format!("shmkit-doc-options-{}", std::process::id());
    /// let opts = SegmentOptions::new()
    ///     .mode(0o640) // readable by the group too (exactly this, whatever the umask)
    ///     .dir_capacity(256) // room for 256 named objects
    ///     .wait_timeout(Duration::from_secs(1)); // give up on a stuck creator after 1 s
    /// let seg = opts.create(&name, 1 << 20)?;
    /// assert_eq!(seg.dir_capacity(), 256);
    /// let mode = std::fs::metadata(seg.path().unwrap()).unwrap().permissions().mode();
    /// assert_eq!(mode & 0o777, 0o640);
    ///
    /// // The same options open it (the mode and capacity only apply to creation).
    /// let again = opts.open(&name)?;
    /// assert_eq!(again.size(), seg.size());
    /// seg.unlink()?;
    /// # Ok(()) }
    /// ```
    #[derive(Clone, Debug)]
    pub struct SegmentOptions {
        mode: u32,
        dir_capacity: u32,
        wait: Duration,
        trust: Trust,
    }

    impl Default for SegmentOptions {
        fn default() -> Self {
            SegmentOptions {
                mode: 0o600,
                dir_capacity: DEFAULT_DIR_CAPACITY,
                wait: DEFAULT_WAIT,
                trust: Trust::default(),
            }
        }
    }

    impl SegmentOptions {
        /// The defaults: mode 0600, 64 directory entries, waits bounded at 5 s.
        pub fn new() -> Self {
            Self::default()
        }

        /// File mode of segments this creates (exactly this, whatever the umask). Default 0600.
        ///
        /// A mode that lets the group or others write (0660, 0666) makes a deliberately shared
        /// segment: openers, this process included, must then accept it with
        /// [`allow_shared(true)`](Self::allow_shared) (and other users' processes with
        /// [`trust_owner`](Self::trust_owner) naming the creator's uid). A group-readable 0640
        /// segment needs no opt-in.
        pub fn mode(mut self, mode: u32) -> Self {
            self.mode = mode & 0o7777;
            self
        }

        /// How many named objects a new segment can hold. Default 64.
        pub fn dir_capacity(mut self, entries: u32) -> Self {
            self.dir_capacity = entries;
            self
        }

        /// How long to wait for another process that is creating the segment or an object in it
        /// before giving up with an error. Default 5 s.
        pub fn wait_timeout(mut self, wait: Duration) -> Self {
            self.wait = wait;
            self
        }

        /// Also accept segments owned by the user `uid` (may be given several times).
        ///
        /// By default `open`, `open_file` and the existing-file path of `open_or_create` and
        /// `file` accept only segments owned by this process's effective uid or by root, and
        /// refuse others with [`Error::UntrustedSegment`]: the owner of a segment can rewrite
        /// every object in it and truncate it, which makes every process using the lost pages
        /// take `SIGBUS`. Trust another user only for a segment you share with it on purpose.
        pub fn trust_owner(mut self, uid: u32) -> Self {
            if !self.trust.owners.contains(&uid) {
                self.trust.owners.push(uid);
            }
            self
        }

        /// Accept segments whose mode lets their group or others write (default `false`: they
        /// are refused with [`Error::UntrustedSegment`], since any process of those users could
        /// rewrite the objects or truncate the file). Set it for a segment shared on purpose,
        /// e.g. one created with [`mode(0o660)`](Self::mode) for a group.
        pub fn allow_shared(mut self, allow: bool) -> Self {
            self.trust.shared = allow;
            self
        }

        /// Creates the named segment `name` in `/dev/shm`; fails if it exists.
        pub fn create(&self, name: &str, size: u64) -> Result<Segment> {
            let path = named_path(name)?;
            self.create_at(path, size, Backing::Named)
        }

        /// Opens the named segment `name`.
        pub fn open(&self, name: &str) -> Result<Segment> {
            self.open_at(named_path(name)?, Backing::Named)
        }

        /// Opens the named segment `name`, creating it with `size` bytes if it does not exist.
        /// Of many processes racing here exactly one creates; the others open its segment. An
        /// existing segment is opened whatever its size.
        pub fn open_or_create(&self, name: &str, size: u64) -> Result<Segment> {
            self.open_or_create_at(named_path(name)?, size, Backing::Named)
        }

        /// Opens the file-backed segment at `path`, creating it with `size` bytes if missing.
        pub fn file(&self, path: impl AsRef<Path>, size: u64) -> Result<Segment> {
            self.open_or_create_at(path.as_ref().to_path_buf(), size, Backing::File)
        }

        /// Opens the existing file-backed segment at `path`.
        pub fn open_file(&self, path: impl AsRef<Path>) -> Result<Segment> {
            self.open_at(path.as_ref().to_path_buf(), Backing::File)
        }

        /// Creates an anonymous segment, shared with children `fork()`ed after this call.
        pub fn anonymous(&self, size: u64) -> Result<Segment> {
            let g = header::plan(size, self.dir_capacity as u64)?;
            let map = mapping::create_anonymous(&g)?;
            Ok(Segment::from_map(
                map,
                g,
                None,
                Backing::Anonymous,
                self.wait,
            ))
        }

        fn create_at(&self, path: PathBuf, size: u64, backing: Backing) -> Result<Segment> {
            let g = header::plan(size, self.dir_capacity as u64)?;
            let map = mapping::create_file(&path, &g, self.mode)?;
            Ok(Segment::from_map(map, g, Some(path), backing, self.wait))
        }

        fn open_at(&self, path: PathBuf, backing: Backing) -> Result<Segment> {
            let (map, g) = mapping::open_file(&path, self.wait, &self.trust)?;
            Ok(Segment::from_map(map, g, Some(path), backing, self.wait))
        }

        fn open_or_create_at(&self, path: PathBuf, size: u64, backing: Backing) -> Result<Segment> {
            // Validate the arguments before touching the file system.
            header::plan(size, self.dir_capacity as u64)?;
            loop {
                match self.open_at(path.clone(), backing) {
                    Err(Error::NotFound { .. }) => {}
                    other => return other,
                }
                match self.create_at(path.clone(), size, backing) {
                    // Lost the race to another creator: open theirs.
                    Err(Error::AlreadyExists { .. }) => continue,
                    other => return other,
                }
            }
        }
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

    struct Inner {
        map: MmapRaw,
        geometry: Geometry,
        path: Option<PathBuf>,
        backing: Backing,
        wait: Duration,
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
        inner: Arc<Inner>,
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
        fn from_map(
            map: MmapRaw,
            geometry: Geometry,
            path: Option<PathBuf>,
            backing: Backing,
            wait: Duration,
        ) -> Self {
            Segment {
                inner: Arc::new(Inner {
                    map,
                    geometry,
                    path,
                    backing,
                    wait,
                }),
            }
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

        /// Removes the named segment `name` from `/dev/shm` without opening it. Processes that
        /// have it mapped keep using it.
        pub fn remove(name: &str) -> Result<()> {
            let path = named_path(name)?;
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), &path, e))
        }

        /// Removes this segment's file (named or file-backed; nothing for anonymous segments).
        /// Mappings stay valid; new `open`s fail with [`Error::NotFound`].
        pub fn unlink(&self) -> Result<()> {
            match &self.inner.path {
                Some(p) => std::fs::remove_file(p)
                    .map_err(|e| Error::io(format!("removing {}", p.display()), p, e)),
                None => Ok(()),
            }
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
            let g = &self.inner.geometry;
            // SAFETY: the header was validated: HEADER_SIZE + dir_capacity * 256 <= arena_offset
            // <= size == the mapping's length, so the entries lie inside the mapping; the offset
            // 256 keeps 8-byte alignment; DirEntry is all atomics (valid for any bits).
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
            let (index, found, offset, size) = dir.find(&entry.name)?;
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
