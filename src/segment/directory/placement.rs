//! Where a directory entry may place its object: inside the arena, aligned, of its type's size,
//! and sharing no byte with another published object. Every opener checks these before it
//! dereferences an offset read from shared memory (a hostile or broken peer could write any).

use super::{Directory, EMPTY, NAMED, READY};
use crate::error::Result;
use crate::sync::Ordering;
use core::alloc::Layout;

impl Directory<'_> {
    /// Checks that `[offset, offset + size)` lies in the arena, is aligned for `layout` and
    /// shares no byte with another published object ([`check_disjoint`](Self::check_disjoint)).
    pub(super) fn check_placement(
        &self,
        i: usize,
        offset: u64,
        size: u64,
        layout: Layout,
    ) -> Result<()> {
        self.check_bounds(i, offset, size, layout)?;
        self.check_disjoint(i, offset, size)
    }

    /// The part of [`check_placement`](Self::check_placement) about entry `i` alone: inside the
    /// arena, aligned and of its layout's size.
    pub(super) fn check_bounds(
        &self,
        i: usize,
        offset: u64,
        size: u64,
        layout: Layout,
    ) -> Result<()> {
        let end = offset.checked_add(size);
        if offset < self.arena_start
            || end.is_none_or(|end| end > self.arena_end)
            || offset % (layout.align() as u64) != 0
            || size != layout.size() as u64
        {
            return Err(self.corrupted(format!(
                "directory entry {i} places its object at offset {offset} size {size}, \
                 outside the arena [{}, {}) or not matching its type ({} bytes, align {})",
                self.arena_start,
                self.arena_end,
                layout.size(),
                layout.align()
            )));
        }
        Ok(())
    }

    /// The overlap check of [`check_found`](Self::check_found) for every published entry at once, in
    /// O(n log n): for a tool that opens every object (10,000 counters would otherwise cost
    /// 10,000 passes over the directory). Objects then opened with
    /// [`check_found_bounds`](Self::check_found_bounds) at the indices seen here are as checked
    /// as by [`check_found`](Self::check_found).
    pub fn check_all_disjoint(&self) -> Result<()> {
        self.disjoint_checked().map(drop)
    }

    /// [`check_all_disjoint`](Self::check_all_disjoint), returning which entries it checked:
    /// an entry published while it ran (or after) was not, and must be checked on its own.
    pub(crate) fn disjoint_checked(&self) -> Result<Checked> {
        let mut spans: Vec<(u64, u64, usize)> = Vec::new();
        let mut checked = Checked(vec![0; self.entries.len().div_ceil(64)]);
        for (j, e) in self.entries.iter().enumerate() {
            let s = e.state.load(Ordering::Acquire);
            if s == EMPTY {
                break;
            }
            if matches!(s & 0xff, NAMED | READY) {
                checked.0[j / 64] |= 1 << (j % 64);
                let o = e.offset.load(Ordering::Relaxed);
                let size = e.size.load(Ordering::Relaxed);
                // An empty span overlaps nothing (as in check_disjoint).
                if size != 0 {
                    spans.push((o, o.saturating_add(size), j));
                }
            }
        }
        // The bump allocator places objects in directory order: spans already in order need no
        // sort to be checked.
        if !spans.is_sorted() {
            spans.sort_unstable();
        }
        for w in spans.windows(2) {
            let ((o, oe, j), (p, pe, i)) = (w[0], w[1]);
            if p < oe {
                return Err(self.corrupted(format!(
                    "directory entry {i} places its object at [{p}, {pe}), which overlaps \
                     the object of entry {j} at [{o}, {oe})"
                )));
            }
        }
        Ok(checked)
    }

    /// Checks that the object of entry `i`, `[offset, offset + size)`, shares no byte with the
    /// object of any other published (`NAMED` or `READY`) entry: a directory written by a
    /// hostile or broken peer could otherwise hand two names the same memory. One pass over the
    /// entries (up to the first empty one, where every lookup stops too), O(capacity) per lookup.
    /// Entries being claimed or abandoned are skipped: their space is not anyone's object.
    pub(super) fn check_disjoint(&self, i: usize, offset: u64, size: u64) -> Result<()> {
        let end = offset.saturating_add(size);
        for (j, e) in self.entries.iter().enumerate() {
            let s = e.state.load(Ordering::Acquire);
            if s == EMPTY {
                break;
            }
            if j == i || !matches!(s & 0xff, NAMED | READY) {
                continue;
            }
            let o = e.offset.load(Ordering::Relaxed);
            let oe = o.saturating_add(e.size.load(Ordering::Relaxed));
            if o < end && offset < oe {
                return Err(self.corrupted(format!(
                    "directory entry {i} places its object at [{offset}, {end}), which overlaps \
                     the object of entry {j} at [{o}, {oe})"
                )));
            }
        }
        Ok(())
    }
}

/// The entries a [`Directory::disjoint_checked`] pass covered (published when it looked).
#[derive(Clone, Debug, Default)]
pub(crate) struct Checked(Vec<u64>);

// Read by `inspect`, which models under loom do not build.
#[cfg_attr(feature = "loom", allow(dead_code))]
impl Checked {
    /// How many entries were covered.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the entry at `index` was covered.
    pub(crate) fn contains(&self, index: u32) -> bool {
        let i = index as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}
