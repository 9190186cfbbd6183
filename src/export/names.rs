//! The family names of an exposition: every name in one buffer (no allocation per name) and an
//! open-addressing index over them, hashed with a per-`Metrics` random seed (object names come
//! from whoever writes the segment; an unseeded fast hash would let one make a scrape quadratic).

use std::hash::BuildHasher;
use std::ops::Range;

/// Family names (sanitized, so ASCII), each a range of one buffer, found through a hash index.
pub(super) struct Names {
    text: Vec<u8>,
    ranges: Vec<Range<usize>>,
    /// `0` empty, else the high 32 bits of the name's hash and its number plus one.
    slots: Vec<u64>,
    seed: u64,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            text: Vec::new(),
            ranges: Vec::new(),
            slots: Vec::new(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5348_4d4b_u64),
        }
    }
}

impl Names {
    /// How many names there are.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The name numbered `i`.
    pub(super) fn get(&self, i: usize) -> &[u8] {
        &self.text[self.ranges[i].clone()]
    }

    fn hash(&self, name: &[u8]) -> u32 {
        let mix = |h: u64, w: u64| {
            let h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^ h >> 29
        };
        let mut h = self.seed ^ name.len() as u64;
        let mut words = name.chunks_exact(8);
        for c in &mut words {
            h = mix(h, u64::from_le_bytes(c.try_into().expect("chunks of 8")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            h = mix(h, tail.iter().fold(0, |w, &b| w << 8 | u64::from(b)));
        }
        (h.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 32) as u32
    }

    /// The number of `name`, if it is there.
    pub(super) fn find(&self, name: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let h = self.hash(name);
        let mask = self.slots.len() - 1;
        let mut at = h as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            let i = (slot as u32 - 1) as usize;
            if (slot >> 32) as u32 == h && self.get(i) == name {
                return Some(i);
            }
            at = (at + 1) & mask;
        }
    }

    /// Makes room for `n` more names.
    pub(super) fn reserve(&mut self, n: usize) {
        self.ranges.reserve(n);
        self.text.reserve(n * 24);
        let want = (self.ranges.len() + n).saturating_mul(2);
        if self.slots.len() < want {
            self.rehash(want.next_power_of_two());
        }
    }

    /// Adds `name` (not there yet) and returns its number.
    pub(super) fn add(&mut self, name: &[u8]) -> usize {
        if (self.ranges.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let i = self.ranges.len();
        let start = self.text.len();
        self.text.extend_from_slice(name);
        self.ranges.push(start..self.text.len());
        let h = self.hash(name);
        self.place(u64::from(h) << 32 | (i as u64 + 1));
        i
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut at = (slot >> 32) as usize & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        self.rehash((self.slots.len() * 2).max(64));
    }

    /// Places every name again in `size` (a power of two) slots.
    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.place(slot);
        }
    }

    /// Drops the names numbered `len` and above.
    pub(super) fn truncate(&mut self, len: usize) {
        if len >= self.ranges.len() {
            return;
        }
        self.text.truncate(self.ranges[len].start);
        self.ranges.truncate(len);
        self.slots.fill(0);
        for i in 0..len {
            let h = self.hash(self.get(i));
            self.place(u64::from(h) << 32 | (i as u64 + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn finds_what_was_added_through_growth_and_truncation() {
        let mut n = Names::default();
        assert_eq!(n.find(b"a"), None);
        let names: Vec<String> = (0..1000).map(|i| format!("shmkit_x_{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(n.add(name.as_bytes()), i);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(n.find(name.as_bytes()), Some(i));
            assert_eq!(n.get(i), name.as_bytes());
        }
        assert_eq!(n.find(b"shmkit_x_1000"), None);
        assert_eq!(n.find(b"shmkit_x_"), None);
        n.truncate(10);
        assert_eq!(n.len(), 10);
        assert_eq!(n.find(b"shmkit_x_9"), Some(9));
        assert_eq!(n.find(b"shmkit_x_10"), None);
        assert_eq!(n.add(b"shmkit_x_10"), 10);
        assert_eq!(n.find(b"shmkit_x_10"), Some(10));
    }
}
