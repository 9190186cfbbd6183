//! The placement contract: what a segment's directory knows about an object (its kind and type
//! tag) and the trait by which a primitive is placed into shared memory.
//!
//! Primitives implement [`Object`] here and never name a segment; the segment places them.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

/// The kind of a shared object, as stored in the directory.
///
/// A number rather than a Rust enum, because the directory is untrusted memory: an unknown value
/// read from it must stay representable (and is shown as `unknown(N)`).
///
/// ```
/// use shmkit::Kind;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// seg.mutex("m", 0u64)?;
/// let kind = seg.entries()?[0].tag.kind;
/// assert_eq!(kind, Kind::MUTEX);
/// assert_eq!(kind.name(), Some("mutex"));
/// assert_eq!(Kind(999).name(), None); // a value no shmkit wrote stays representable
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Kind(pub u32);

impl Kind {
    /// [`Counter`](crate::Counter).
    pub const COUNTER: Kind = Kind(1);
    /// [`ShardedCounter`](crate::ShardedCounter).
    pub const SHARDED_COUNTER: Kind = Kind(2);
    /// [`AtomicValue`](crate::AtomicValue).
    pub const VALUE: Kind = Kind(3);
    /// A seqlock-protected value.
    pub const SEQLOCK: Kind = Kind(4);
    /// A seqlock-protected array.
    pub const SEQ_ARRAY: Kind = Kind(5);
    /// A single-producer single-consumer ring.
    pub const SPSC: Kind = Kind(6);
    /// A multi-producer multi-consumer ring.
    pub const MPMC: Kind = Kind(7);
    /// A ring of variable-length byte messages.
    pub const BYTES_QUEUE: Kind = Kind(8);
    /// A duplex pipe made of two byte rings.
    pub const PIPE: Kind = Kind(9);
    /// A robust futex mutex.
    pub const MUTEX: Kind = Kind(10);
    /// A reentrant robust mutex.
    pub const REENTRANT_MUTEX: Kind = Kind(11);
    /// A counting semaphore.
    pub const SEMAPHORE: Kind = Kind(12);
    /// An event flag.
    pub const EVENT: Kind = Kind(13);
    /// A barrier.
    pub const BARRIER: Kind = Kind(14);
    /// A condition variable.
    pub const CONDVAR: Kind = Kind(15);
    /// A multi-producer multi-consumer queue of byte messages.
    pub const MPMC_BYTES: Kind = Kind(16);
    /// A hash map ([`ByteMap`](crate::ByteMap) and its typed faces).
    pub const MAP: Kind = Kind(17);
    /// A list ([`List`](crate::List) and its typed faces).
    pub const LIST: Kind = Kind(18);

    /// The kind's name as shown by tools and errors (`counter`, `value`, …).
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "counter",
            2 => "sharded_counter",
            3 => "value",
            4 => "seqlock",
            5 => "seq_array",
            6 => "spsc",
            7 => "mpmc",
            8 => "bytes_queue",
            9 => "pipe",
            10 => "mutex",
            11 => "reentrant_mutex",
            12 => "semaphore",
            13 => "event",
            14 => "barrier",
            15 => "condvar",
            16 => "mpmc_bytes",
            17 => "map",
            18 => "list",
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

/// Longest element type name kept in the directory, in bytes (longer names are cut, their hash is
/// kept whole).
pub const TYPE_NAME_MAX: usize = 96;

/// The description of an object that the directory stores next to its name: what kind it is, what
/// element type it holds and how many.
///
/// ```
/// use shmkit::{Kind, TypeTag};
///
/// # fn main() -> shmkit::Result<()> {
/// let t = TypeTag::of::<[f32; 3]>(Kind::SEQLOCK);
/// assert_eq!((t.elem_size, t.elem_align), (12, 4));
/// assert!(t.same_type(&TypeTag::of::<[f32; 3]>(Kind::SEQLOCK)));
/// assert!(!t.same_type(&TypeTag::of::<[u32; 3]>(Kind::SEQLOCK)));
///
/// // What the directory recorded for an object (tools list it; errors print it).
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// seg.seqlock("pos", [0.0f32; 3])?;
/// let tag = &seg.entries()?[0].tag;
/// assert_eq!(tag.kind, Kind::SEQLOCK);
/// assert!(tag.type_name.contains("f32"));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TypeTag {
    /// The object's kind.
    pub kind: Kind,
    /// The element type's name (`core::any::type_name`), cut to [`TYPE_NAME_MAX`](crate::limits::TYPE_NAME_MAX) bytes; empty
    /// when the kind has no element type.
    pub type_name: String,
    /// FNV-1a hash of the element type's full name (0 when there is none).
    pub type_hash: u64,
    /// `size_of` of the element type (0 when there is none).
    pub elem_size: u32,
    /// `align_of` of the element type (0 when there is none).
    pub elem_align: u32,
    /// Number of elements (array length, ring capacity, shard count…); kind-specific.
    pub len: u64,
    /// A second kind-specific parameter (e.g. the largest message of a byte queue).
    pub extra: u64,
}

impl TypeTag {
    /// A tag for a kind without an element type.
    pub fn plain(kind: Kind) -> Self {
        TypeTag {
            kind,
            type_name: String::new(),
            type_hash: 0,
            elem_size: 0,
            elem_align: 0,
            len: 0,
            extra: 0,
        }
    }

    /// A tag for a kind holding elements of type `T`.
    pub fn of<T>(kind: Kind) -> Self {
        let full = core::any::type_name::<T>();
        let mut cut = full.len().min(TYPE_NAME_MAX);
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        TypeTag {
            kind,
            type_name: full[..cut].to_string(),
            type_hash: fnv1a(full.as_bytes()),
            elem_size: core::mem::size_of::<T>() as u32,
            elem_align: core::mem::align_of::<T>() as u32,
            len: 0,
            extra: 0,
        }
    }

    /// The same tag with `len` and `extra` set.
    pub fn with_dims(mut self, len: u64, extra: u64) -> Self {
        self.len = len;
        self.extra = extra;
        self
    }

    /// Whether `other` has the same kind and element type (ignoring `len` and `extra`).
    pub fn same_type(&self, other: &TypeTag) -> bool {
        self.kind == other.kind
            && self.type_hash == other.type_hash
            && self.elem_size == other.elem_size
            && self.elem_align == other.elem_align
    }
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.type_name.is_empty() {
            write!(f, "<{}>", self.type_name)?;
        }
        if self.len != 0 {
            write!(f, "[{}]", self.len)?;
        }
        if self.extra != 0 {
            write!(f, "(extra {})", self.extra)?;
        }
        Ok(())
    }
}

/// 64-bit FNV-1a, the hash used for type names, the layout hash and the header checksum.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// A primitive that can live in a segment's arena and be found by name.
///
/// # Safety
/// Implementors promise that:
/// - the memory described by [`layout`](Object::layout) holds the whole object, and the type is
///   `#[repr(C)]` and made only of atomics (and types made of atomics), so that **every bit
///   pattern is a valid value** and shared access through `&Self` is sound across processes;
/// - [`cast`](Object::cast) returns a pointer to at most `layout(tag).size()` bytes from `ptr`,
///   with any slice length taken from the *local* `tag`, never from shared memory;
/// - the type holds no pointers and nothing with a `Drop` that matters.
///
/// Users never implement it; they name it to open an object whose type a caller chooses:
///
/// ```
/// use shmkit::{Counter, Handle, Object, Segment};
///
/// fn open_as<P: Object + ?Sized>(seg: &Segment, name: &str) -> shmkit::Result<Handle<P>> {
///     seg.open_object::<P>(name)
/// }
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// seg.counter("hits")?.add(2);
/// assert_eq!(open_as::<Counter>(&seg, "hits")?.load(), 2);
/// assert_eq!(Counter::element().kind, shmkit::Kind::COUNTER);
/// assert!(matches!(
///     open_as::<shmkit::Mutex<u64>>(&seg, "hits"),
///     Err(shmkit::Error::TypeMismatch { .. })
/// ));
/// # Ok(()) }
/// ```
pub unsafe trait Object: Send + Sync + 'static {
    /// What the creator passes to initialize the object (initial value, length…).
    type Params;

    /// The tag of this object type with `len`/`extra` zero: its kind and element type.
    fn element() -> TypeTag;

    /// The full tag for an object created with `params`.
    fn tag(params: &Self::Params) -> TypeTag;

    /// Size and alignment of an object with tag `tag`; `None` when the tag's dimensions are
    /// impossible (overflow, zero capacity…). Called on tags read from shared memory.
    fn layout(tag: &TypeTag) -> Option<Layout>;

    /// Writes the complete initial state of a new object.
    ///
    /// # Safety
    /// `ptr` points to `layout(tag).size()` writable bytes of shared memory, aligned to
    /// `layout(tag).align()`, that hold arbitrary bytes (a creator may have died half-way).
    unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, params: Self::Params);

    /// Forms the (possibly fat) pointer to the object at `ptr`.
    fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self>;
}
