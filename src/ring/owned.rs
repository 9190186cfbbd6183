//! What lets a ring's ends own their ring: a [`Keep`] holds whatever keeps the ring's memory
//! mapped (an [`Arc`](std::sync::Arc) of a heap ring, or a segment's typed handle, which the
//! segment layer passes in), so an end is `Send + 'static` and can move into a thread or a struct.
//!
//! The primitives never name the segment layer: they take the keeper as an opaque box, and the
//! caller vouches (an `unsafe` contract) that it keeps the ring alive at a fixed address.

/// Keeps a ring's memory alive (and at the same address) for as long as it lives.
pub(crate) struct Keep(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Keep {
    /// A keeper for memory that `owner` keeps alive.
    ///
    /// # Safety
    /// For as long as `owner` lives (wherever it is moved), the ring the caller pairs it with
    /// stays valid for shared access at the address the caller took from it: true of an `Arc`
    /// (its allocation never moves) and of a segment handle (it keeps the mapping, which never
    /// moves, mapped).
    pub(crate) unsafe fn new(owner: impl Send + Sync + 'static) -> Self {
        Keep(Box::new(owner))
    }
}
