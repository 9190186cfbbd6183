//! The reading side of the directory: finding an object by name (waiting, bounded, for a
//! creator in progress), checking a found object's placement, and listing the entries.

use super::{validate_object_name, Directory, EntryInfo, Seen, CLAIMED, DEAD, EMPTY, NAMED, READY};
use crate::error::{Error, Result};
use crate::object::TypeTag;
use crate::sync::{Deadline, Ordering};
use core::alloc::Layout;

impl Directory<'_> {
    /// Finds the object `name` and returns its entry index, tag, offset and size, waiting
    /// (bounded) while its creator initializes it.
    pub fn find(&self, name: &str) -> Result<(u32, TypeTag, u64, u64)> {
        validate_object_name(name)?;
        let name_b = name.as_bytes();
        let deadline = Deadline::after(Some(self.wait));
        let mut i = 0usize;
        while i < self.entries.len() {
            let raw = self.entries[i].state.load(Ordering::Acquire);
            match self.look(i, raw, name_b)? {
                Seen::Empty => break,
                Seen::Dead
                | Seen::Named {
                    name_matches: false,
                    ..
                } => i += 1,
                Seen::Claimed { pid, start, ns } => {
                    if self.wait_on(i, raw, pid, start, ns, &deadline)? {
                        i += 1; // dead before naming it: not our object
                    }
                }
                Seen::Named {
                    name_matches: true,
                    ready: true,
                    ..
                } => {
                    let (tag, offset, size) = self.tag_of(i)?;
                    return Ok((i as u32, tag, offset, size));
                }
                Seen::Named {
                    name_matches: true,
                    ready: false,
                    pid,
                    start,
                    ns,
                } => {
                    if self.wait_on(i, raw, pid, start, ns, &deadline)? {
                        return Err(Error::CreatorDied {
                            what: format!("object {name:?}"),
                            pid,
                        });
                    }
                }
            }
        }
        Err(Error::ObjectNotFound {
            name: name.to_string(),
        })
    }

    /// [`find`](Self::find) for a name that [`list`](Self::list) showed at `index`: the entry there
    /// when it is still ready under that name (no scan, so a tool that opens every listed object
    /// does not scan the directory once per object), else a `find`.
    pub fn find_listed(&self, index: u32, name: &str) -> Result<(u32, TypeTag, u64, u64)> {
        let i = index as usize;
        if i < self.entries.len() {
            let raw = self.entries[i].state.load(Ordering::Acquire);
            if raw & 0xff == READY && self.name_is(i, name.as_bytes())? {
                let (tag, offset, size) = self.tag_of(i)?;
                return Ok((index, tag, offset, size));
            }
        }
        self.find(name)
    }

    /// Checks a found object's placement against the layout the caller computed for its tag.
    pub fn check_found(&self, index: u32, offset: u64, size: u64, layout: Layout) -> Result<()> {
        self.check_placement(index as usize, offset, size, layout)
    }

    /// [`check_found`](Self::check_found) without the pass over the other entries, for an
    /// object whose entry [`check_all_disjoint`](Self::check_all_disjoint) has just checked.
    pub fn check_found_bounds(
        &self,
        index: u32,
        offset: u64,
        size: u64,
        layout: Layout,
    ) -> Result<()> {
        self.check_bounds(index as usize, offset, size, layout)
    }

    /// Lists the named entries (ready ones and ones being initialized).
    pub fn list(&self) -> Result<Vec<EntryInfo>> {
        let mut out = Vec::new();
        self.scan(|e| out.push(e.clone()))?;
        Ok(out)
    }

    /// Calls `f` with each named entry in directory order, as [`list`](Self::list) lists them,
    /// without allocating per entry: the one `EntryInfo` passed is reused (its strings keep
    /// their buffers), so a tool that reads 10,000 objects does not make 30,000 allocations.
    ///
    /// # Errors
    /// As `list`: an entry's state, name or type-name length is impossible (scribbled); the
    /// entries before it have been passed to `f`.
    pub fn scan(&self, mut f: impl FnMut(&EntryInfo)) -> Result<()> {
        let mut e = EntryInfo {
            index: 0,
            name: String::new(),
            tag: TypeTag::plain(crate::object::Kind(0)),
            offset: 0,
            size: 0,
            ready: false,
        };
        let mut name = [0u8; super::NAME_MAX];
        for i in 0..self.entries.len() {
            let raw = self.entries[i].state.load(Ordering::Acquire);
            let s = raw & 0xff;
            match s {
                EMPTY if raw != EMPTY => {
                    return Err(self.corrupted(format!(
                        "directory entry {i} is marked empty but its state word is {raw:#018x} \
                         (an empty entry is all zero)"
                    )))
                }
                EMPTY => break,
                CLAIMED | DEAD => continue,
                NAMED | READY => {
                    let n = self.name_into(i, &mut name)?;
                    super::set_lossy(&mut e.name, n);
                    (e.offset, e.size) = self.tag_into(i, &mut e.tag)?;
                    e.index = i as u32;
                    e.ready = s == READY;
                    f(&e);
                }
                other => {
                    return Err(self.corrupted(format!(
                        "directory entry {i} has state {other} (valid states are 0..=4)"
                    )))
                }
            }
        }
        Ok(())
    }
}
