//! Where each part of a map lives (word offsets computed from its dimensions), the map's header,
//! and the key hash.
//!
//! The dimensions are read from the header at every operation and checked against the number of
//! words this process mapped (which came from the directory's validated tag), so a scribbled
//! header gives an error, never an index outside the map.

use super::{corrupted, LAYOUT_VERSION, LINE};
use crate::sync::{AtomicU64, Ordering};
use crate::words::words_for;
use crate::Result;

/// The header's first word: `"shmkmap"` and the layout version.
pub(crate) const MAP_TAG: u64 = 0x73686d6b_6d617000 | LAYOUT_VERSION;

/// Header words (a line): tag, capacity, limits (`key_max << 32 | value_max`), seed.
pub(crate) const H_TAG: usize = 0;
pub(crate) const H_CAP: usize = 1;
pub(crate) const H_LIMITS: usize = 2;
pub(crate) const H_SEED: usize = 3;
const HEADER_WORDS: usize = if LINE < 4 { 4 } else { LINE };

/// Words of one stripe (a line, at least 3): lock, count, hint.
pub(crate) const STRIPE_WORDS: usize = if LINE < 3 { 3 } else { LINE };
pub(crate) const S_LOCK: usize = 0;
pub(crate) const S_COUNT: usize = 1;
pub(crate) const S_HINT: usize = 2;

/// Most stripes a map has (under loom: 2, so that two keys meet or not by choice).
pub(crate) const MAX_STRIPES: usize = if cfg!(feature = "loom") { 2 } else { 64 };

/// Slot words before the key, in the order a lookup reads them. `HEAD` is not the entry's: it is
/// the head of the chain of the bucket with the slot's number (bucket `b`'s chain starts in slot
/// `b`, which is also where an insert into bucket `b` puts its entry when that slot is free, so a
/// lookup usually finds the head and the entry in the same line: for keys and values of up to 8
/// bytes a slot is one 64-byte line).
///
/// | word        | contents                                                                 |
/// | ----------- | ------------------------------------------------------------------------ |
/// | `seq`       | key length (bits 63…47) · version (bits 46…0): odd while free or being filled |
/// | `link`      | the key's hash tag (high 32 bits) · next slot of the chain + 1 (low 32 bits) |
/// | `published` | the value latch's version and length ([`super::value`])                 |
/// | `head`      | first slot + 1 of the chain of bucket *j* (this slot's number), 0 = empty |
/// | `claim`     | [`FREE`] · [`LIVE`] · `CLAIMED \| stripe` · an owner word ([`is_owner`])   |
/// | key…        | the key's bytes, zero padded                                             |
/// | copies…     | the value's two copies (`words_for(value_max)` words each)               |
pub(crate) const SEQ: usize = 0;
pub(crate) const LINK: usize = 1;
pub(crate) const PUBLISHED: usize = 2;
pub(crate) const HEAD: usize = 3;
pub(crate) const CLAIM: usize = 4;
pub(crate) const KEY: usize = 5;

/// The version bits of `seq` (the key length is above them).
pub(crate) const SEQ_VERSION: u64 = (1 << KEY_LEN_SHIFT) - 1;
/// Where the key length starts in `seq` (17 bits: up to [`KEY_MAX_LIMIT`](super::KEY_MAX_LIMIT)).
pub(crate) const KEY_LEN_SHIFT: u32 = 47;

/// `claim` of a free slot.
pub(crate) const FREE: u64 = 0;
/// `claim` of a slot held by stripe `s`'s lock holder (being inserted or removed):
/// `CLAIMED | s`. Bit 63 is [`process::FLAG`](crate::process::FLAG), never set in an owner word.
pub(crate) const CLAIMED: u64 = 1 << 63;
/// `claim` of a live entry (in a chain, not being removed) whose value nobody is writing. Bit 63
/// set, so never an owner word, and above every `CLAIMED | s`.
pub(crate) const LIVE: u64 = CLAIMED | 1 << 62;

/// Whether a `claim` word is an owner word ([`process::my_word`](crate::process::my_word)): a
/// live entry whose value that process is writing (the entry claim, see
/// [`super::entry`]). Any non-zero word with bit 63 clear.
#[inline]
pub(crate) const fn is_owner(claim: u64) -> bool {
    claim != FREE && claim & CLAIMED == 0
}

/// Whether a `claim` word is a live entry's: [`LIVE`] or claimed by a value writer.
#[inline]
pub(crate) const fn is_live(claim: u64) -> bool {
    claim == LIVE || is_owner(claim)
}

static_assertions::const_assert!(STRIPE_WORDS >= 3 && HEADER_WORDS >= 4);
static_assertions::const_assert!(KEY == 5 && LIVE > CLAIMED | (MAX_STRIPES as u64));
static_assertions::const_assert!(super::KEY_MAX_LIMIT < 1 << (64 - KEY_LEN_SHIFT));

/// A map's dimensions and the word offsets derived from them (all local numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Slots (the capacity in entries).
    pub cap: usize,
    pub key_max: usize,
    pub value_max: usize,
    /// Buckets (as many as slots: bucket `b`'s head is in slot `b`) and stripes (a power of
    /// two ≤ `buckets`).
    pub buckets: usize,
    pub stripes: usize,
    /// Words of the key, of one value copy and of a slot.
    pub key_words: usize,
    pub copy_words: usize,
    pub slot_words: usize,
    /// Where a slot's first value copy starts and how far apart the two copies are (words):
    /// on line boundaries when that costs no space ([`copies_of`]).
    pub copies_at: usize,
    pub copy_stride: usize,
    pub stripes_at: usize,
    pub slots_at: usize,
    /// Words of the whole map (a `u64`: it is compared with the words mapped before it is used).
    pub total: u64,
}

impl Geometry {
    /// The geometry of a map with these dimensions, `None` when they are out of the limits or
    /// the size overflows.
    #[inline]
    pub(crate) fn new(cap: u64, key_max: u64, value_max: u64) -> Option<Geometry> {
        if !in_limits(cap, key_max, value_max) {
            return None;
        }
        let g = Geometry::derive(cap, key_max, value_max);
        // Whole bytes must fit an isize (a Layout), and every offset a usize.
        let bytes = g.total.checked_mul(8)?;
        (bytes <= isize::MAX as u64).then_some(())?;
        Some(g)
    }

    /// The geometry of dimensions within the limits ([`in_limits`]): plain arithmetic, which
    /// cannot overflow a `u64` there (at most 2^30 slots of at most 2^23 words).
    #[inline(always)]
    fn derive(cap: u64, key_max: u64, value_max: u64) -> Geometry {
        let cap = cap as usize;
        let (key_max, value_max) = (key_max as usize, value_max as usize);
        // The largest power of two ≤ min(cap, MAX_STRIPES).
        let stripes = 1usize << cap.min(MAX_STRIPES).ilog2();
        let key_words = words_for(key_max);
        let copy_words = words_for(value_max);
        let (copies_at, copy_stride, slot_words) = copies_of(key_words, copy_words);
        let stripes_at = HEADER_WORDS;
        let slots_at = stripes_at + stripes * STRIPE_WORDS;
        let total = slots_at as u64 + cap as u64 * slot_words as u64;
        Geometry {
            cap,
            key_max,
            value_max,
            buckets: cap,
            stripes,
            key_words,
            copy_words,
            slot_words,
            copies_at,
            copy_stride,
            stripes_at,
            slots_at,
            total,
        }
    }

    /// The bucket of hash tag `h` (32 bits, [`tag`]): scaled to `0..buckets` (one multiply; any
    /// number of buckets). Bits above the tag's 32 are ignored (a scribbled `link` word).
    #[inline]
    pub(crate) fn bucket(&self, h: u64) -> usize {
        (((h & 0xffff_ffff) * self.buckets as u64) >> 32) as usize
    }

    /// The type tag's `extra` for these limits: layout version, key_max, value_max.
    #[cfg_attr(feature = "loom", allow(dead_code))]
    pub(crate) fn extra(key_max: u64, value_max: u64) -> u64 {
        LAYOUT_VERSION << 56 | key_max << 32 | value_max
    }

    /// The limits in a tag's `extra`, if its layout version is this build's.
    #[cfg_attr(feature = "loom", allow(dead_code))]
    pub(crate) fn limits_of_extra(extra: u64) -> Option<(u64, u64)> {
        (extra >> 56 == LAYOUT_VERSION).then_some(((extra >> 32) & 0xff_ffff, extra & 0xffff_ffff))
    }

    /// Reads and checks the header of the map made of `words`. A face that knows its limits at
    /// compile time (`known`: key_max and value_max, a [`PodMap`](super::PodMap)'s key and value
    /// sizes) passes them: the header must then hold exactly these, and every offset that depends
    /// only on them folds into a constant. `None` takes the limits from the header.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted) when the header's tag or
    /// dimensions do not describe exactly `words.len()` words, or its limits are not `known`.
    #[inline(always)]
    pub(crate) fn of(words: &[AtomicU64], known: Option<(u64, u64)>) -> Result<Geometry> {
        let h = |i: usize| words.get(i).map_or(0, |w| w.load(Ordering::Relaxed));
        let (tag, cap, limits) = (h(H_TAG), h(H_CAP), h(H_LIMITS));
        let (key_max, value_max) = known.unwrap_or((limits >> 32, limits & 0xffff_ffff));
        if tag == MAP_TAG
            && limits == key_max << 32 | value_max
            && in_limits(cap, key_max, value_max)
        {
            let g = Geometry::derive(cap, key_max, value_max);
            if g.total == words.len() as u64 {
                return Ok(g);
            }
        }
        Err(bad_header(tag, cap, limits, words.len()))
    }

    /// Writes a fresh header and the initial state of every part into `words` (which hold
    /// arbitrary bytes): stripes free, chains empty, slots free with odd `seq`.
    pub(crate) fn init(&self, words: &[AtomicU64], seed: u64) {
        debug_assert_eq!(words.len() as u64, self.total);
        for w in &words[..self.slots_at] {
            w.store(0, Ordering::Relaxed);
        }
        for (k, s) in words[self.stripes_at..self.slots_at]
            .chunks_exact(STRIPE_WORDS)
            .enumerate()
        {
            // Stripes start allocating at evenly spread slots.
            s[S_HINT].store((k * self.cap / self.stripes) as u64, Ordering::Relaxed);
        }
        for slot in words[self.slots_at..].chunks_exact(self.slot_words) {
            for w in slot {
                w.store(0, Ordering::Relaxed);
            }
            slot[SEQ].store(1, Ordering::Relaxed);
        }
        words[H_CAP].store(self.cap as u64, Ordering::Relaxed);
        words[H_LIMITS].store(
            (self.key_max as u64) << 32 | self.value_max as u64,
            Ordering::Relaxed,
        );
        words[H_SEED].store(seed, Ordering::Relaxed);
        // The tag last, with Release: a header with the tag is complete.
        words[H_TAG].store(MAP_TAG, Ordering::Release);
    }
}

/// Whether dimensions are within [`MapOptions::check`](super::MapOptions::check)'s limits
/// (plain comparisons: on every operation's path).
#[inline]
const fn in_limits(cap: u64, key_max: u64, value_max: u64) -> bool {
    cap.wrapping_sub(1) < super::MAP_CAPACITY_LIMIT
        && key_max.wrapping_sub(1) < super::KEY_MAX_LIMIT
        && value_max <= super::VALUE_MAX_LIMIT
}

/// The error for a header that does not describe the words mapped.
#[cold]
#[inline(never)]
fn bad_header(tag: u64, cap: u64, limits: u64, words: usize) -> crate::Error {
    if tag != MAP_TAG && tag >> 8 == MAP_TAG >> 8 {
        return corrupted(
            "map",
            format!(
                "map layout {} (another shmkit version); this build reads layout {LAYOUT_VERSION}",
                tag & 0xff
            ),
        );
    }
    if tag != MAP_TAG {
        return corrupted("map", format!("header tag {tag:#x}"));
    }
    corrupted(
        "map",
        format!(
            "header says capacity {cap}, key_max {}, value_max {}: not the {words} words mapped",
            limits >> 32,
            limits & 0xffff_ffff,
        ),
    )
}

/// A fresh hash seed for a new map (fixed under loom, whose models must be deterministic).
pub(crate) fn new_seed() -> u64 {
    #[cfg(feature = "loom")]
    return 0x5eed;
    #[cfg(not(feature = "loom"))]
    {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    }
}

/// A slot's words rounded up so that slots start on line boundaries: 8 words (one 64-byte line)
/// for a small entry (keys and values of up to 8 bytes), 16 words (an aligned 128-byte pair of
/// lines, fetched together) up to 16, a multiple of 8 words (one line) otherwise. Under loom
/// (`LINE` = 1) slots are not padded.
const fn pad_slot(words: usize) -> usize {
    if LINE == 1 {
        words
    } else if words <= 8 {
        8
    } else if words <= 16 {
        16
    } else {
        words.next_multiple_of(8)
    }
}

/// Where the value copies go in a slot with a key of `key_words` and copies of `copy_words`, and
/// the slot's padded size: `(copies_at, copy_stride, slot_words)`. Copies of a line or more
/// start on line boundaries when the padded slot does not grow for it (32-byte keys and 256-byte
/// values: 80 words either way, and a copy then spans 4 lines instead of 5), else they follow
/// the key back to back.
const fn copies_of(key_words: usize, copy_words: usize) -> (usize, usize, usize) {
    let packed = pad_slot(KEY + key_words + 2 * copy_words);
    if LINE > 1 && copy_words >= 8 {
        let (at, stride) = (
            (KEY + key_words).next_multiple_of(8),
            copy_words.next_multiple_of(8),
        );
        let aligned = pad_slot(at + 2 * stride);
        if aligned <= packed {
            return (at, stride, aligned);
        }
    }
    (KEY + key_words, copy_words, packed)
}

/// The 32-bit tag a slot keeps of its key's hash (in its `link` word): the hash's high half.
#[inline]
pub(crate) const fn tag(h: u64) -> u64 {
    h >> 32
}

/// The key length in a slot's `seq` word, clamped to `key_max`.
#[inline]
pub(crate) fn seq_key_len(seq: u64, key_max: usize) -> usize {
    ((seq >> KEY_LEN_SHIFT) as usize).min(key_max)
}

/// The seeded 64-bit hash of a key: one multiply-xorshift round per 8-byte word, then
/// MurmurHash3's finalizer. Not cryptographic; the per-map random seed keeps keys chosen by an
/// outsider from piling up in one bucket by design.
#[inline]
pub(crate) fn hash(seed: u64, key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("chunks of 8"));
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 32;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K);
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Word `i` of `key` as stored (native byte order, the last one zero padded), as
/// [`crate::words::store_bytes`] stores it.
#[inline]
pub(crate) fn key_word(key: &[u8], i: usize) -> u64 {
    let at = i * 8;
    match key.get(at..at + 8) {
        Some(c) => u64::from_ne_bytes(c.try_into().expect("8 bytes")),
        None => {
            let mut b = [0u8; 8];
            let rest = key.get(at..).unwrap_or(&[]);
            b[..rest.len()].copy_from_slice(rest);
            u64::from_ne_bytes(b)
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn geometry_limits_and_round_trip() {
        assert!(Geometry::new(0, 8, 8).is_none());
        assert!(Geometry::new(1, 0, 8).is_none());
        assert!(Geometry::new(1 << 31, 8, 8).is_none());
        assert!(Geometry::new(10, 8, super::super::VALUE_MAX_LIMIT + 1).is_none());
        let huge = Geometry::new(1 << 30, 1 << 16, 1 << 24).unwrap();
        assert_eq!(huge.slot_words, 5 + (1 << 13) + 2 * (1 << 21) + 3);
        let g = Geometry::new(1000, 32, 256).unwrap();
        assert_eq!((g.buckets, g.stripes), (1000, 64));
        assert_eq!(g.slot_words, (5 + 4 + 2 * 32usize).next_multiple_of(8));
        assert_eq!((g.copies_at, g.copy_stride), (16, 32));
        // Aligning copies of 13 words would grow the slot from 40 to 48 words: packed.
        let odd = Geometry::new(1000, 32, 100).unwrap();
        assert_eq!(
            (odd.copies_at, odd.copy_stride, odd.slot_words),
            (9, 13, 40)
        );
        assert_eq!((huge.copies_at, huge.copy_stride), (8200, 1 << 21));
        assert_eq!(g.slots_at % LINE, 0);
        let small = Geometry::new(100, 8, 8).unwrap();
        assert_eq!((small.slot_words, small.stripes), (8, 64));
        assert_eq!(Geometry::new(100, 16, 8).unwrap().slot_words, 16);
        assert_eq!(Geometry::new(3, 8, 8).unwrap().stripes, 2);
        for h in [0, 1, u64::MAX / 2, u64::MAX, tag(u64::MAX)] {
            assert!(g.bucket(h) < g.buckets && small.bucket(h) < small.buckets);
        }
        let words = crate::map::heap_words(g.total as usize);
        g.init(&words, 7);
        assert_eq!(Geometry::of(&words, None).unwrap(), g);
        assert!(Geometry::of(&words[..g.total as usize - 1], None).is_err());
        words[H_CAP].store(999, Ordering::Relaxed);
        assert!(Geometry::of(&words, None).is_err());
        // A map of layout 3 (an update of a present key under its stripe lock, `LIVE` = 1 in
        // `claim`) is refused by its header and by its directory tag, never read with this
        // layout.
        words[H_CAP].store(1000, Ordering::Relaxed);
        words[H_TAG].store(MAP_TAG - LAYOUT_VERSION + 3, Ordering::Relaxed);
        let e = Geometry::of(&words, None).unwrap_err().to_string();
        assert!(e.contains("map layout 3") && e.contains("layout 4"), "{e}");
        assert_eq!(Geometry::limits_of_extra(3 << 56 | 32 << 32 | 256), None);
        assert_eq!(
            Geometry::limits_of_extra(Geometry::extra(32, 256)),
            Some((32, 256))
        );
    }

    #[test]
    fn hash_spreads_and_key_words_match_store_bytes() {
        let a = hash(1, b"job-1");
        assert_ne!(a, hash(1, b"job-2"));
        assert_ne!(a, hash(2, b"job-1"));
        assert_ne!(hash(1, b""), hash(1, b"\0"));
        for len in 0..20 {
            let key: Vec<u8> = (0..len as u8).collect();
            let words = crate::map::heap_words(3);
            crate::words::store_bytes(&words, &key);
            for (i, w) in words.iter().enumerate().take(words_for(len)) {
                assert_eq!(w.load(Ordering::Relaxed), key_word(&key, i));
            }
        }
    }
}
