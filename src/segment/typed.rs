//! Every typed constructor of a segment, in one place: `seg.counter`, `seg.spsc`, `seg.mutex` …
//!
//! Each finds or creates an object through [`Segment::object`] with the primitive's parameters
//! (checked and rounded here exactly as the primitive's heap constructor does). The primitives
//! only implement the placement contract, [`Object`](crate::Object), and never name a segment.

use super::{Handle, Segment};
use crate::error::{Error, Result};
use crate::lock::{Barrier, Condvar, Event, Mutex, ReentrantMutex, Semaphore};
use crate::map::{ByteList, ByteMap, List, MapOptions, PodMap, LIST_CAPACITY_LIMIT};
use crate::ring::bytes::byte_dims;
use crate::ring::mpmc::mpmc_capacity;
use crate::ring::mpmc_bytes::MAX_MSG_LIMIT;
use crate::ring::{mpmc, mpmc_bytes, round_capacity};
use crate::ring::{ByteReceiver, ByteRing, ByteSender, Connection, Consumer, PipeEnd, Producer};
use crate::ring::{MpmcBytes, MpmcRing, Pipe, SpscRing};
use crate::seqlock::{SeqArray, SeqLock};
use crate::{AtomicValue, Counter, ShardedCounter};
use bytemuck::Pod;

// ---------------------------------------------------------------------------------------------
// Counters and values: one atomic word (or one per stripe), no lock.
// ---------------------------------------------------------------------------------------------

impl Segment {
    /// Finds or creates the [`Counter`](crate::Counter) `name` (starting at 0).
    pub fn counter(&self, name: &str) -> Result<Handle<Counter>> {
        self.object::<Counter>(name, 0)
    }

    /// Finds or creates the [`ShardedCounter`](crate::ShardedCounter) `name`.
    pub fn sharded_counter(&self, name: &str) -> Result<Handle<ShardedCounter>> {
        self.object::<ShardedCounter>(name, ())
    }

    /// Finds or creates the [`AtomicValue`](crate::AtomicValue) `name`, starting at `init`
    /// when created (an existing value keeps its contents).
    pub fn value<T: Pod + Send + Sync>(
        &self,
        name: &str,
        init: T,
    ) -> Result<Handle<AtomicValue<T>>> {
        self.object::<AtomicValue<T>>(name, init)
    }
}

// ---------------------------------------------------------------------------------------------
// Seqlocks: tear-free snapshots of values and arrays of any size.
// ---------------------------------------------------------------------------------------------

impl Segment {
    /// Finds or creates the [`SeqLock`] `name`, holding `init` when created (an existing one
    /// keeps its value).
    ///
    /// # Errors
    /// As [`Segment::object`]; [`Error::TypeMismatch`](crate::Error::TypeMismatch) if `name` holds something else.
    pub fn seqlock<T: Pod>(&self, name: &str, init: T) -> Result<Handle<SeqLock<T>>> {
        self.object::<SeqLock<T>>(name, init)
    }

    /// Finds or creates the [`SeqArray`] `name` of `len` elements (zeroed when created).
    ///
    /// # Errors
    /// As [`Segment::object`]; [`Error::TypeMismatch`](crate::Error::TypeMismatch) if `name` holds something else or
    /// an array of another length.
    pub fn array<T: Pod>(&self, name: &str, len: usize) -> Result<Handle<SeqArray<T>>> {
        self.object::<SeqArray<T>>(name, len)
    }
}

// ---------------------------------------------------------------------------------------------
// Rings: SPSC and MPMC queues of `T`, byte rings, pipes and MPMC byte queues.
// ---------------------------------------------------------------------------------------------

impl Segment {
    /// Finds or creates the [`SpscRing`] `name` with room for `capacity` items, rounded up
    /// to a power of two (an existing ring must have the same element type and rounded
    /// capacity).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](crate::ring::MAX_CAPACITY);
    /// as [`Segment::object`](crate::Segment::object).
    pub fn spsc<T: Pod + Send + Sync>(
        &self,
        name: &str,
        capacity: u64,
    ) -> Result<Handle<SpscRing<T>>> {
        let cap = round_capacity(capacity).ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "a ring holds 1 to 2^32 items",
        })?;
        self.object::<SpscRing<T>>(name, cap)
    }

    /// Finds or creates the [`MpmcRing`] `name` with room for `capacity` items, rounded up
    /// to a power of two, at least 2 (an existing ring must have the same element type and
    /// rounded capacity).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](crate::ring::MAX_CAPACITY);
    /// as [`Segment::object`](crate::Segment::object).
    pub fn mpmc<T: Pod + Send + Sync>(
        &self,
        name: &str,
        capacity: u64,
    ) -> Result<Handle<MpmcRing<T>>> {
        let cap = mpmc_capacity(capacity).ok_or_else(|| mpmc::bad_capacity(capacity))?;
        self.object::<MpmcRing<T>>(name, cap)
    }

    /// Finds or creates the [`ByteRing`] `name` of `capacity` bytes (rounded up to a power
    /// of two, at least 16) for messages of up to `max_msg` bytes. An existing ring must
    /// have the same rounded capacity and `max_msg`, else [`Error::TypeMismatch`].
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] (see [`ByteRing::new`]); as
    /// [`Segment::object`](crate::Segment::object).
    pub fn byte_ring(&self, name: &str, capacity: u64, max_msg: u64) -> Result<Handle<ByteRing>> {
        let cap = byte_dims(capacity, max_msg)?;
        self.object::<ByteRing>(name, (cap, max_msg))
    }

    /// Finds or creates the [`Pipe`] `name` of `capacity` bytes per direction (rounded up to
    /// a power of two, at least 16) for messages of up to `max_msg` bytes. An existing pipe
    /// must have the same rounded capacity and `max_msg`, else [`Error::TypeMismatch`].
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] (see [`Pipe::new`]); as
    /// [`Segment::object`](crate::Segment::object).
    pub fn pipe(&self, name: &str, capacity: u64, max_msg: u64) -> Result<Handle<Pipe>> {
        let cap = byte_dims(capacity, max_msg)?;
        self.object::<Pipe>(name, (cap, max_msg))
    }

    /// Finds or creates the [`MpmcBytes`] queue `name` with room for `capacity` messages
    /// (rounded up to a power of two, at least 2) of at most `max_msg` bytes each (an
    /// existing queue must have the same rounded capacity and `max_msg`).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for a capacity of 0 or above 2³² or `max_msg` above
    /// [`MAX_MSG_LIMIT`]; as [`Segment::object`](crate::Segment::object).
    pub fn mpmc_bytes(&self, name: &str, capacity: u64, max_msg: u64) -> Result<Handle<MpmcBytes>> {
        let cap = mpmc_capacity(capacity)
            .filter(|_| max_msg <= MAX_MSG_LIMIT)
            .ok_or_else(|| mpmc_bytes::bad_capacity(capacity))?;
        self.object::<MpmcBytes>(name, (cap, max_msg))
    }
}

// ---------------------------------------------------------------------------------------------
// Owned ends of the rings in a segment: each end owns a clone of the handle, which keeps the
// mapping alive, so `seg.spsc::<u64>("x", 16)?.split()?` gives ends that outlive the handle.
// ---------------------------------------------------------------------------------------------

impl<T: Pod + Send + Sync> Handle<SpscRing<T>> {
    /// Claims the producer side (see [`SpscRing::producer`]); the [`Producer`] keeps the
    /// segment mapped.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub fn producer(&self) -> Result<Producer<T>> {
        // SAFETY: a handle derefs to one fixed address in its segment's mapping, which the
        // handle's clone keeps mapped for as long as it lives.
        unsafe { (**self).producer_kept(self.clone()) }
    }

    /// Claims the consumer side (see [`SpscRing::consumer`]); the [`Consumer`] keeps the
    /// segment mapped.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub fn consumer(&self) -> Result<Consumer<T>> {
        // SAFETY: as in `producer`.
        unsafe { (**self).consumer_kept(self.clone()) }
    }

    /// Claims both sides (see [`SpscRing::split`]).
    ///
    /// # Errors
    /// As [`producer`](Self::producer) and [`consumer`](Self::consumer).
    pub fn split(&self) -> Result<(Producer<T>, Consumer<T>)> {
        Ok((self.producer()?, self.consumer()?))
    }
}

impl Handle<ByteRing> {
    /// Claims the sending side (see [`ByteRing::sender`]); the [`ByteSender`] keeps the segment
    /// mapped.
    ///
    /// # Errors
    /// As [`ByteRing::sender`].
    pub fn sender(&self) -> Result<ByteSender> {
        // SAFETY: as in `Handle<SpscRing<T>>::producer`.
        unsafe { (**self).sender_kept(self.clone()) }
    }

    /// Claims the receiving side (see [`ByteRing::receiver`]); the [`ByteReceiver`] keeps the
    /// segment mapped.
    ///
    /// # Errors
    /// As [`ByteRing::receiver`].
    pub fn receiver(&self) -> Result<ByteReceiver> {
        // SAFETY: as in `Handle<SpscRing<T>>::producer`.
        unsafe { (**self).receiver_kept(self.clone()) }
    }

    /// Claims both sides (see [`ByteRing::split`]).
    ///
    /// # Errors
    /// As [`sender`](Self::sender) and [`receiver`](Self::receiver).
    pub fn split(&self) -> Result<(ByteSender, ByteReceiver)> {
        Ok((self.sender()?, self.receiver()?))
    }
}

impl Handle<Pipe> {
    /// Claims `end` for this process (see [`Pipe::end`]); the [`Connection`] keeps the segment
    /// mapped.
    ///
    /// # Errors
    /// As [`Pipe::end`].
    pub fn end(&self, end: PipeEnd) -> Result<Connection> {
        // SAFETY: as in `Handle<SpscRing<T>>::producer`.
        unsafe { (**self).end_kept(end, self.clone()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Locks: robust futex mutexes and what is built on them.
// ---------------------------------------------------------------------------------------------

impl Segment {
    /// Finds or creates the robust [`Mutex`] `name` holding a `T`, starting at `init` when
    /// created (an existing mutex keeps its contents).
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn mutex<T: Pod>(&self, name: &str, init: T) -> Result<Handle<Mutex<T>>> {
        self.object::<Mutex<T>>(name, init)
    }

    /// Finds or creates the [`ReentrantMutex`] `name`.
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn reentrant_mutex(&self, name: &str) -> Result<Handle<ReentrantMutex>> {
        self.object::<ReentrantMutex>(name, ())
    }

    /// Finds or creates the [`Condvar`] `name` (use it with one [`Mutex`](crate::Mutex)).
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn condvar(&self, name: &str) -> Result<Handle<Condvar>> {
        self.object::<Condvar>(name, ())
    }

    /// Finds or creates the unbounded [`Semaphore`] `name` with `permits` free permits.
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn semaphore(&self, name: &str, permits: u32) -> Result<Handle<Semaphore>> {
        self.object::<Semaphore>(name, (permits, 0))
    }

    /// Finds or creates the bounded [`Semaphore`] `name`: `permits` free, at most `bound`.
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn bounded_semaphore(
        &self,
        name: &str,
        permits: u32,
        bound: u32,
    ) -> Result<Handle<Semaphore>> {
        self.object::<Semaphore>(name, (permits, bound.max(1)))
    }

    /// Finds or creates the [`Event`] `name` (created clear).
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn event(&self, name: &str) -> Result<Handle<Event>> {
        self.object::<Event>(name, ())
    }

    /// Finds or creates the [`Barrier`] `name` for `parties` parties (an existing barrier
    /// keeps its own number of parties).
    ///
    /// # Errors
    /// As [`Segment::object`].
    pub fn barrier(&self, name: &str, parties: u32) -> Result<Handle<Barrier>> {
        self.object::<Barrier>(name, parties.max(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Maps and lists: Python's Manager().dict(), .list() and .Namespace() without a server.
// ---------------------------------------------------------------------------------------------

impl Segment {
    /// Finds or creates the [`ByteMap`] `name` with the dimensions `opts` (an existing map must
    /// have the same dimensions).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for dimensions out of the limits ([`MapOptions::check`]);
    /// [`Error::TypeMismatch`] for an existing object of other dimensions or type; as
    /// [`Segment::object`].
    pub fn map(&self, name: &str, opts: MapOptions) -> Result<Handle<ByteMap>> {
        opts.check()?;
        self.object::<ByteMap>(name, opts)
    }

    /// Finds or creates the [`PodMap`] `name` of `capacity` entries with `K` keys and `V`
    /// values.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for a capacity of 0 or above
    /// [`MAP_CAPACITY_LIMIT`](crate::map::MAP_CAPACITY_LIMIT), or a zero-sized `K`; as
    /// [`Segment::map`].
    pub fn pod_map<K: Pod, V: Pod>(
        &self,
        name: &str,
        capacity: u64,
    ) -> Result<Handle<PodMap<K, V>>> {
        PodMap::<K, V>::options(capacity).check()?;
        self.object::<PodMap<K, V>>(name, capacity)
    }

    /// Finds or creates the [`SerdeMap`](crate::SerdeMap) `name` (feature `serde`).
    ///
    /// # Errors
    /// As [`Segment::map`].
    #[cfg(feature = "serde")]
    pub fn serde_map<K, V>(
        &self,
        name: &str,
        opts: MapOptions,
    ) -> Result<Handle<crate::SerdeMap<K, V>>>
    where
        K: serde::Serialize + serde::de::DeserializeOwned + 'static,
        V: serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        opts.check()?;
        self.object::<crate::SerdeMap<K, V>>(name, opts)
    }

    /// Finds or creates the [`Namespace`](crate::Namespace) `name` (feature `serde`): attribute
    /// names up to `opts.key_max` bytes, encoded values up to `opts.value_max`.
    ///
    /// # Errors
    /// As [`Segment::map`].
    #[cfg(feature = "serde")]
    pub fn namespace(&self, name: &str, opts: MapOptions) -> Result<Handle<crate::Namespace>> {
        opts.check()?;
        self.object::<crate::Namespace>(name, opts)
    }

    /// Finds or creates the [`List`] `name` of at most `capacity` elements.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`LIST_CAPACITY_LIMIT`]; as
    /// [`Segment::object`].
    pub fn list<T: Pod>(&self, name: &str, capacity: u64) -> Result<Handle<List<T>>> {
        check_list(capacity, core::mem::size_of::<T>() as u64)?;
        self.object::<List<T>>(name, capacity)
    }

    /// Finds or creates the [`ByteList`] `name` of at most `capacity` elements of at most
    /// `elem_max` bytes.
    ///
    /// # Errors
    /// As [`Segment::list`].
    pub fn byte_list(&self, name: &str, capacity: u64, elem_max: u64) -> Result<Handle<ByteList>> {
        check_list(capacity, elem_max)?;
        self.object::<ByteList>(name, (capacity, elem_max))
    }

    /// Finds or creates the [`SerdeList`](crate::SerdeList) `name` (feature `serde`) of at
    /// most `capacity` elements encoded in at most `elem_max` bytes.
    ///
    /// # Errors
    /// As [`Segment::list`].
    #[cfg(feature = "serde")]
    pub fn serde_list<T>(
        &self,
        name: &str,
        capacity: u64,
        elem_max: u64,
    ) -> Result<Handle<crate::SerdeList<T>>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        check_list(capacity, elem_max)?;
        self.object::<crate::SerdeList<T>>(name, (capacity, elem_max))
    }
}

fn check_list(capacity: u64, elem_max: u64) -> Result<()> {
    if capacity == 0 || capacity > LIST_CAPACITY_LIMIT || elem_max > crate::map::VALUE_MAX_LIMIT {
        return Err(Error::InvalidCapacity {
            requested: capacity,
            reason: "a list holds 1 to 2^31 - 1 elements of at most 16 MiB",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ring::PipeEnd;
    use crate::seqlock::SeqArray;
    use crate::{ByteRing, Error, Segment};

    #[test]
    fn seqlock_in_a_segment() {
        let name = format!("shmkit-seqlock-unit-{}", std::process::id());
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let a = seg.seqlock::<[f64; 4]>("prices", [1.0; 4]).unwrap();
        let b = seg.seqlock::<[f64; 4]>("prices", [9.0; 4]).unwrap();
        assert_eq!(b.read(), [1.0; 4], "found, not re-created");
        a.write(&[2.5; 4]).unwrap();
        assert_eq!(b.read(), [2.5; 4]);
        assert!(matches!(
            seg.seqlock::<[f64; 5]>("prices", [0.0; 5]),
            Err(Error::TypeMismatch { .. })
        ));
        seg.unlink().unwrap();
    }

    #[test]
    fn seq_array_in_a_segment() {
        let name = format!("shmkit-seqarray-unit-{}", std::process::id());
        let seg = Segment::create(&name, 1 << 20).unwrap();
        let a = seg.array::<f32>("weights", 1024).unwrap();
        a.set(1023, 2.0).unwrap();
        let b = seg.array::<f32>("weights", 1024).unwrap();
        assert_eq!(b.len(), 1024);
        assert_eq!(b.get(1023).unwrap(), 2.0);
        assert!(matches!(
            seg.array::<f32>("weights", 1000),
            Err(Error::TypeMismatch { .. })
        ));
        let c = seg.open_object::<SeqArray<f32>>("weights").unwrap();
        assert_eq!(c.len(), 1024);
        seg.unlink().unwrap();
    }

    #[test]
    fn byte_ring_in_a_segment_with_type_checks() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let r = seg.byte_ring("r", 1000, 200).unwrap();
        assert_eq!((r.capacity(), r.max_msg()), (1024, 200));
        assert_eq!(seg.byte_ring("r", 1024, 200).unwrap().capacity(), 1024);
        for (cap, max) in [(2048, 200), (1024, 201)] {
            assert!(
                matches!(
                    seg.byte_ring("r", cap, max),
                    Err(Error::TypeMismatch { .. })
                ),
                "({cap}, {max})"
            );
        }
        assert!(matches!(
            seg.spsc::<u64>("r", 16),
            Err(Error::TypeMismatch { .. })
        ));
        let (mut tx, mut rx) = r.split().unwrap();
        tx.send(b"in a segment").unwrap();
        let again = seg.open_object::<ByteRing>("r").unwrap();
        assert_eq!(again.len(), 24);
        assert_eq!(rx.recv().unwrap(), b"in a segment");
    }

    #[test]
    fn pipe_in_a_segment_with_type_checks() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let p = seg.pipe("p", 512, 64).unwrap();
        assert!(matches!(
            seg.pipe("p", 512, 65),
            Err(Error::TypeMismatch { .. })
        ));
        assert!(matches!(
            seg.byte_ring("p", 512, 64),
            Err(Error::TypeMismatch { .. })
        ));
        let mut a = p.end(PipeEnd::A).unwrap();
        let b = seg.pipe("p", 512, 64).unwrap();
        let mut b = b.end(PipeEnd::B).unwrap();
        a.send(b"hi").unwrap();
        assert_eq!(b.recv().unwrap(), b"hi");
        b.send(b"hey").unwrap();
        assert_eq!(a.recv().unwrap(), b"hey");
    }
}
