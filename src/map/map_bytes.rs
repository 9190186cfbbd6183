//! [`ByteMap`]: the map of byte strings, and the core every typed map face calls.

use super::entry::{Held, Set};
use super::read::{Found, Table};
use super::stripe::{Locked, ABANDONED};
use super::write::Place;
use super::{geometry::Geometry, MapOptions};
use crate::process;
use crate::sync::{AtomicU64, Deadline};
use crate::{Error, Result};
use std::time::Duration;

/// A hash map of byte strings shared between threads and processes: lock-free reads, striped
/// writers, fixed capacity, and consistent after a process is killed in the middle of any
/// operation (see the [module docs](crate::guide::maps) for the guarantees and the layout).
///
/// Keys are 1 to `key_max` bytes (an empty key is allowed too), values 0 to `value_max` bytes,
/// both fixed at creation with the capacity ([`MapOptions`]).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::{MapOptions, Segment};
/// let seg = Segment::anonymous(1 << 20)?;
/// let d = seg.map("dict", MapOptions::new(100).key_max(16).value_max(64))?;
/// assert_eq!(d.insert(b"1", b"1")?, None);
/// assert_eq!(d.insert(b"1", b"one")?, Some(b"1".to_vec()));
/// d.insert(b"0.25", b"None")?;
/// assert_eq!(d.get(b"1")?.as_deref(), Some(&b"one"[..]));
/// assert_eq!(d.len(), 2);
/// // An atomic read-modify-write of one entry.
/// d.update(b"hits", |old| {
///     let n = old.map_or(0, |b| b[0]);
///     Some(vec![n + 1])
/// })?;
/// assert_eq!(d.get(b"hits")?, Some(vec![1]));
/// assert_eq!(d.remove(b"0.25")?, Some(b"None".to_vec()));
/// assert!(matches!(d.insert(&[0; 17], b""), Err(shmkit::Error::TooLarge { .. })));
/// # Ok(()) }
/// ```
#[repr(C)]
pub struct ByteMap {
    /// The header, stripes and slots (which hold the bucket heads) ([module docs](crate::guide::maps)).
    words: [AtomicU64],
}

/// What [`ByteMap::write_with`]'s closure is given: the locked stripe, the key's bucket and hash,
/// and where the key is (if present, with its entry claim held: nobody else writes its value).
pub(crate) struct Writing<'a, 'k> {
    /// The entry claim of the key's slot (given back before the stripe lock: fields drop in order).
    entry: Option<Held<'a>>,
    pub l: Locked<'a>,
    pub b: usize,
    pub h: u64,
    pub key: &'k [u8],
    pub place: Option<Place>,
}

impl Writing<'_, '_> {
    /// Stores `value` for the key (in place, or as a new entry).
    pub(crate) fn put(&self, value: &[u8]) -> Result<()> {
        self.check_value(value)?;
        match self.place {
            Some(p) => self.l.set_value(p.slot, value),
            None => self
                .l
                .insert_new(self.b, self.h, self.key, value)
                .map(|_| ()),
        }
    }

    /// Removes the key if present.
    pub(crate) fn delete(&self) -> Result<()> {
        match self.place {
            Some(p) => {
                if let Some(e) = &self.entry {
                    // The removal stores its `CLAIMED | s` over our claim first.
                    e.disarm();
                }
                self.l.remove_at(self.b, p, None)
            }
            None => Ok(()),
        }
    }

    /// The current value, copied out.
    pub(crate) fn current(&self) -> Option<Vec<u8>> {
        self.place.map(|p| self.l.value_vec(p.slot))
    }

    /// `f(words, len)` of the current value, if the key is present (no copy).
    #[inline]
    pub(crate) fn current_with<R>(&self, f: impl FnOnce(&[AtomicU64], usize) -> R) -> Option<R> {
        self.place.map(|p| {
            let (words, len) = self.l.value(p.slot);
            f(words, len)
        })
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        ByteMap::check_value(self.l.t, value)
    }
}

impl ByteMap {
    /// A map on the heap (for one process, tests and models).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for dimensions out of the limits ([`MapOptions::check`]).
    pub fn new(opts: MapOptions) -> Result<Box<ByteMap>> {
        opts.check()?;
        let g = Geometry::new(opts.capacity, opts.key_max, opts.value_max).ok_or(
            Error::InvalidCapacity {
                requested: opts.capacity,
                reason: "the map's size overflows",
            },
        )?;
        let words = super::heap_words(g.total as usize);
        g.init(&words, super::geometry::new_seed());
        // SAFETY: ByteMap is #[repr(C)] with a single `[AtomicU64]` field: the same layout and
        // metadata as the boxed slice, allocated by the global allocator as Box expects.
        Ok(unsafe { Box::from_raw(Box::into_raw(words) as *mut ByteMap) })
    }

    /// The words' table, after checking the header.
    #[inline]
    pub(crate) fn table(&self) -> Result<Table<'_>> {
        Table::new(&self.words)
    }

    /// The dimensions the map was created with (zero when its header is corrupted).
    pub fn options(&self) -> MapOptions {
        match self.table() {
            Ok(t) => MapOptions {
                capacity: t.g.cap as u64,
                key_max: t.g.key_max as u64,
                value_max: t.g.value_max as u64,
            },
            Err(_) => MapOptions {
                capacity: 0,
                key_max: 0,
                value_max: 0,
            },
        }
    }

    /// The number of entries the map holds at most.
    pub fn capacity(&self) -> usize {
        self.options().capacity as usize
    }

    /// The number of entries (exact when no write is in progress; 0 for a corrupted header).
    pub fn len(&self) -> usize {
        self.table().map_or(0, |t| t.len())
    }

    /// Whether the map holds no entry (as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a key's length against the table's limit.
    #[inline]
    fn check_key(t: &Table<'_>, key: &[u8]) -> Result<()> {
        super::fits("key", key.len(), t.g.key_max)
    }

    /// Checks a value's length against the table's limit.
    #[inline]
    fn check_value(t: &Table<'_>, value: &[u8]) -> Result<()> {
        super::fits("value", value.len(), t.g.value_max)
    }

    /// Lock-free lookup: `f(value words, value length)` inside the validated read. `known`:
    /// the limits a typed face knows at compile time ([`Table::new_known`]).
    #[inline]
    pub(crate) fn read_with<R>(
        &self,
        known: Option<(u64, u64)>,
        key: &[u8],
        f: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        let t = Table::new_known(&self.words, known)?;
        Self::check_key(&t, key)?;
        Ok(match t.lookup(t.hash(key), key, f)? {
            Found::Present(r) => Some(r),
            Found::Absent => None,
        })
    }

    /// Locks the key's stripe (until the deadline), finds the key (claiming its entry if it is
    /// present) and runs `f`.
    #[inline]
    pub(crate) fn write_with<R>(
        &self,
        known: Option<(u64, u64)>,
        key: &[u8],
        timeout: Option<Duration>,
        f: impl FnOnce(&Writing<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        let t = Table::new_known(&self.words, known)?;
        Self::check_key(&t, key)?;
        Self::write_as(&t, key, Deadline::after(timeout), timeout, None, f)
    }

    /// [`write_with`](Self::write_with) on a checked table and key, with the deadline of
    /// `timeout` already started, in the name of `abandon`'s owner word and stopping at its test
    /// point (crash models) or of this process.
    fn write_as<R>(
        t: &Table<'_>,
        key: &[u8],
        deadline: Deadline,
        timeout: Option<Duration>,
        abandon: Option<(u64, &'static str)>,
        f: impl FnOnce(&Writing<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        let h = t.hash(key);
        let b = t.bucket(h);
        // The bucket's slot loads while the stripe lock's line does.
        t.prefetch_entry(b);
        let waited = timeout.unwrap_or(Duration::MAX);
        let me = abandon.map_or_else(process::my_word, |a| a.0);
        let mut l = t.lock_as(t.stripe_of(b), me, deadline, waited)?;
        l.abandon_at = abandon.map(|a| a.1);
        let place = l.find(b, h, key)?;
        let entry = match place {
            Some(p) => Some(t.held_entry(p.slot, me, deadline, waited, None)?),
            None => None,
        };
        let w = Writing {
            entry,
            l,
            b,
            h,
            key,
            place,
        };
        let r = f(&w);
        if matches!(&r, Err(Error::WouldBlock { what }) if *what == ABANDONED) {
            // A simulated death: the lock and the entry claim stay held by the (non-existent)
            // owner.
            core::mem::forget(w);
        }
        r
    }

    /// Sets `key` to `value`; `old` reads the value replaced (`None`: the key was new). A
    /// present key's value is written under its entry claim alone (one CAS on the slot's own
    /// line, no stripe lock: [`super::entry`]); a new key goes through its stripe.
    #[inline]
    pub(crate) fn set_with<R>(
        &self,
        known: Option<(u64, u64)>,
        key: &[u8],
        value: &[u8],
        timeout: Option<Duration>,
        old: impl Fn(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        self.set_as(known, key, value, timeout, None, old)
    }

    #[inline(always)]
    fn set_as<R>(
        &self,
        known: Option<(u64, u64)>,
        key: &[u8],
        value: &[u8],
        timeout: Option<Duration>,
        abandon: Option<(u64, &'static str)>,
        old: impl Fn(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        let t = Table::new_known(&self.words, known)?;
        Self::check_key(&t, key)?;
        Self::check_value(&t, value)?;
        let h = t.hash(key);
        let b = t.bucket(h);
        // The bucket's own slot (its head, and the entry most of the time: its words up to the
        // key's end) is about to be read, CASed and written: fetch its lines exclusive, at once.
        t.prefetch_entry_write(b);
        let me = abandon.map_or_else(process::my_word, |a| a.0);
        match t.set_present(b, h, key, value, me, timeout, abandon.map(|a| a.1), &old)? {
            Set::Done(r) => Ok(Some(r)),
            Set::Fallback(d) => self.set_locked(known, key, value, d, timeout, abandon, &old),
        }
    }

    /// [`set_as`](Self::set_as) through the key's stripe (a new key, or an entry being inserted
    /// or removed), with the deadline started by the entry path if it waited. Out of line, so
    /// that the entry path keeps its table in registers.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn set_locked<R>(
        &self,
        known: Option<(u64, u64)>,
        key: &[u8],
        value: &[u8],
        deadline: Option<Deadline>,
        timeout: Option<Duration>,
        abandon: Option<(u64, &'static str)>,
        old: &impl Fn(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        let t = Table::new_known(&self.words, known)?;
        let deadline = deadline.unwrap_or_else(|| Deadline::after(timeout));
        Self::write_as(&t, key, deadline, timeout, abandon, |w| {
            let r = w.current_with(old);
            w.put(value)?;
            Ok(r)
        })
    }

    /// The value of `key`, if present. Lock-free: never waits for writers.
    ///
    /// # Errors
    /// [`Error::TooLarge`] for a key longer than `key_max`; [`Error::ObjectCorrupted`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        Ok(self.get_into(key, &mut out)?.then_some(out))
    }

    /// Copies the value of `key` into `out` (replacing its contents) and returns `true`, or
    /// returns `false` when the key is absent. Reuses `out`'s allocation.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        Ok(self
            .read_with(None, key, |words, len| {
                out.resize(len, 0);
                crate::words::load_bytes(words, out);
            })?
            .is_some())
    }

    /// Whether `key` is present. Lock-free.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        Ok(self.read_with(None, key, |_, _| ())?.is_some())
    }

    /// Sets `key` to `value` and returns the value it had.
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::MapFull`] when the key is new and no slot is free;
    /// [`Error::ObjectCorrupted`].
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.insert_timeout_opt(key, value, None)
    }

    /// [`insert`](Self::insert), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); [`Error::Timeout`].
    pub fn insert_timeout(
        &self,
        key: &[u8],
        value: &[u8],
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>> {
        self.insert_timeout_opt(key, value, Some(timeout))
    }

    fn insert_timeout_opt(
        &self,
        key: &[u8],
        value: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>> {
        self.set_with(None, key, value, timeout, |words, len| {
            let mut v = vec![0u8; len];
            crate::words::load_bytes(words, &mut v);
            v
        })
    }

    /// Sets `key` to `value` without copying the old value out (Python's `d[key] = value`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.set_with(None, key, value, None, |_, _| ()).map(drop)
    }

    /// Removes `key` and returns its value, if it was present.
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::ObjectCorrupted`].
    pub fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.remove_timeout_opt(key, None)
    }

    /// [`remove`](Self::remove), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`remove`](Self::remove); [`Error::Timeout`].
    pub fn remove_timeout(&self, key: &[u8], timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.remove_timeout_opt(key, Some(timeout))
    }

    fn remove_timeout_opt(&self, key: &[u8], timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        self.write_with(None, key, timeout, |w| {
            let old = w.current();
            w.delete()?;
            Ok(old)
        })
    }

    /// Atomically replaces the entry of `key` with `f(current value)`: `Some(v)` stores `v`,
    /// `None` removes the key. No other writer of `key` runs in between (they wait for the key's
    /// stripe); readers see the old or the new value. Returns the new value.
    ///
    /// `f` runs while the key's stripe is locked: keep it short, and do not touch the same map
    /// from it (that may wait for the lock it holds).
    ///
    /// # Errors
    /// As [`insert`](Self::insert); the map is unchanged on error.
    pub fn update(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        self.update_timeout_opt(key, None, f)
    }

    /// [`update`](Self::update), waiting at most `timeout` for the key's stripe lock.
    ///
    /// # Errors
    /// As [`update`](Self::update); [`Error::Timeout`].
    pub fn update_timeout(
        &self,
        key: &[u8],
        timeout: Duration,
        f: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        self.update_timeout_opt(key, Some(timeout), f)
    }

    fn update_timeout_opt(
        &self,
        key: &[u8],
        timeout: Option<Duration>,
        f: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        self.write_with(None, key, timeout, |w| {
            let old = w.current();
            let new = f(old.as_deref());
            match &new {
                Some(v) => w.put(v)?,
                None => w.delete()?,
            }
            Ok(new)
        })
    }

    /// Sets `key` to `new` only if its value is `current` (`None`: absent; a `new` of `None`
    /// removes it). Returns `Ok(())` when it did, `Err(actual value)` when it did not.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn compare_exchange(
        &self,
        key: &[u8],
        current: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<core::result::Result<(), Option<Vec<u8>>>> {
        self.write_with(None, key, None, |w| {
            let old = w.current();
            if old.as_deref() != current {
                return Ok(Err(old));
            }
            match new {
                Some(v) => w.put(v)?,
                None => w.delete()?,
            }
            Ok(Ok(()))
        })
    }

    /// The value of `key`, inserting `value` first if the key is absent (atomically: of many
    /// processes racing, one inserts and all get its value).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn get_or_insert(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        if let Some(v) = self.get(key)? {
            return Ok(v);
        }
        self.write_with(None, key, None, |w| match w.current() {
            Some(v) => Ok(v),
            None => {
                w.put(value)?;
                Ok(value.to_vec())
            }
        })
    }

    /// Removes every entry, stripe by stripe (not atomic as a whole: entries inserted into a
    /// stripe already cleared stay).
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`].
    pub fn clear(&self) -> Result<()> {
        self.clear_opt(None)
    }

    /// [`clear`](Self::clear), waiting at most `timeout` for each stripe's lock (stripes
    /// cleared before a timeout stay cleared).
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::ObjectCorrupted`].
    pub fn clear_timeout(&self, timeout: Duration) -> Result<()> {
        self.clear_opt(Some(timeout))
    }

    fn clear_opt(&self, timeout: Option<Duration>) -> Result<()> {
        let t = self.table()?;
        let deadline = Deadline::after(timeout);
        let waited = timeout.unwrap_or(Duration::MAX);
        for s in 0..t.g.stripes {
            t.lock(s, deadline, waited)?
                .clear_stripe(deadline, waited)?;
        }
        Ok(())
    }

    /// Calls `f(key, value)` for each entry, each read whole (see the
    /// [module docs](crate::guide::maps#iteration) for what holds across entries). Lock-free.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`] (entries before the error were visited).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let t = self.table()?;
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for j in 0..t.g.cap {
            if t.read_slot(j, &mut k, &mut v)? {
                f(&k, &v);
            }
        }
        Ok(())
    }

    /// The entries as owned pairs (as [`for_each`](Self::for_each); an entry that cannot be read
    /// consistently, which only happens to a corrupted map, is skipped).
    pub fn iter(&self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
        let t = self.table().ok();
        let cap = t.map_or(0, |t| t.g.cap);
        (0..cap).filter_map(move |j| {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            let t = t?;
            t.read_slot(j, &mut k, &mut v).ok()?.then_some((k, v))
        })
    }

    /// The stripe `key` belongs to (models and tests pick keys that share a stripe or not).
    #[doc(hidden)]
    pub fn __stripe_of(&self, key: &[u8]) -> Option<usize> {
        let t = self.table().ok()?;
        Some(t.stripe_of(t.bucket(t.hash(key))))
    }

    /// Test hook for the crash models: runs `insert(key, value)` (or `remove(key)` when `value`
    /// is `None`) in the name of the (dead) owner word `owner` and stops at test point `point`
    /// as if that process had died there: the stripe lock, or for the points `map.set.*` of an
    /// update of a present key the entry claim, stays held by `owner`. `map.update.*` points
    /// are reached through the stripe path (an update of a present key made under the stripe
    /// lock, as `update` makes it). Returns whether it stopped there (`false`: the operation
    /// completed and released what it held).
    ///
    /// # Errors
    /// As the operation.
    #[doc(hidden)]
    pub fn __abandon(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        owner: u64,
        point: &'static str,
    ) -> Result<bool> {
        let abandon = Some((owner, point));
        let r = match value {
            Some(v) if point.starts_with("map.set.") => self
                .set_as(None, key, v, None, abandon, |_, _| ())
                .map(drop),
            _ => {
                let t = self.table()?;
                Self::check_key(&t, key)?;
                Self::write_as(
                    &t,
                    key,
                    Deadline::after(None),
                    None,
                    abandon,
                    |w| match value {
                        Some(v) => w.put(v),
                        None => w.delete(),
                    },
                )
            }
        };
        match r {
            Err(Error::WouldBlock { what }) if what == ABANDONED => Ok(true),
            r => r.map(|()| false),
        }
    }
}

impl core::fmt::Debug for ByteMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
