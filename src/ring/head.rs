//! The fixed part every ring starts with: its two positions, each on a cache line of its own,
//! and a line of rarely written words (close flag, side claims, futex words, waiter flags).
//!
//! | line | field | written by |
//! | --- | --- | --- |
//! | 0 | `head`: what was ever consumed (items or bytes) | the consuming side(s) |
//! | 1 | `tail`: what was ever produced | the producing side(s) |
//! | 2 | [`Control`] | rarely |
//!
//! Every face (SPSC, byte ring, each pipe direction, MPMC, MPMC bytes) has one, and closes
//! through it ([`RingHead::close`]).

use super::wait::wake;
use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// The rarely written line: close flag, side claims, futex words and waiter flags.
#[repr(C)]
pub(crate) struct Control {
    /// 0 = open, anything else = closed.
    pub(crate) closed: AtomicU32,
    /// Futex word the consumer sleeps on; the producer bumps it to wake it.
    pub(crate) items: AtomicU32,
    /// Futex word the producer sleeps on; the consumer bumps it to wake it.
    pub(crate) space: AtomicU32,
    /// Non-zero while the consumer is (about to be) asleep on `items`.
    pub(crate) items_waiting: AtomicU32,
    /// Non-zero while the producer is (about to be) asleep on `space`.
    pub(crate) space_waiting: AtomicU32,
    pub(crate) _reserved: AtomicU32,
    /// Producer claim: the holder's owner word ([`crate::process`]), 0 when free.
    pub(crate) producer: AtomicU64,
    /// Consumer claim, same encoding.
    pub(crate) consumer: AtomicU64,
}

/// The fixed part of a ring, before its slots.
#[repr(C)]
pub(crate) struct RingHead {
    pub(crate) head: CachePadded<AtomicU64>,
    pub(crate) tail: CachePadded<AtomicU64>,
    pub(crate) ctl: CachePadded<Control>,
}

impl RingHead {
    /// A fresh head: positions 0, open, no sleepers, no claims.
    pub(crate) fn fresh() -> Self {
        RingHead {
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
            ctl: CachePadded::new(Control {
                closed: AtomicU32::new(0),
                items: AtomicU32::new(0),
                space: AtomicU32::new(0),
                items_waiting: AtomicU32::new(0),
                space_waiting: AtomicU32::new(0),
                _reserved: AtomicU32::new(0),
                producer: AtomicU64::new(0),
                consumer: AtomicU64::new(0),
            }),
        }
    }

    /// Resets a head in place (in shared memory, through its atomics) to the fresh state.
    #[cfg(not(feature = "loom"))]
    pub(crate) fn reset(&self) {
        self.head.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        let c = &self.ctl;
        for w in [
            &c.closed,
            &c.items,
            &c.space,
            &c.items_waiting,
            &c.space_waiting,
            &c._reserved,
        ] {
            w.store(0, Ordering::Relaxed);
        }
        c.producer.store(0, Ordering::Relaxed);
        c.consumer.store(0, Ordering::Relaxed);
    }
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(RingHead, [CachePadded<u64>; 3]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(RingHead, CachePadded<u64>);
#[cfg(not(feature = "loom"))]
static_assertions::const_assert!(core::mem::size_of::<Control>() == 40);

impl RingHead {
    /// Whether the ring was closed.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.ctl.closed.load(Ordering::Acquire) != 0
    }

    /// Closes the ring: sets the flag, then wakes every sleeper on both sides (the fence keeps a
    /// sleeper that armed before it from missing the flag). Closing twice is harmless.
    pub(crate) fn close(&self) {
        let c = &self.ctl;
        c.closed.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        wake(&c.items);
        wake(&c.space);
    }

    /// The raw positions (head, tail) as found in shared memory.
    #[inline]
    pub(crate) fn positions(&self) -> (u64, u64) {
        (
            self.head.load(Ordering::Acquire),
            self.tail.load(Ordering::Acquire),
        )
    }
}
