//! The attach registry: which processes map a segment.
//!
//! Every process that maps a segment (creates, opens, or creates an anonymous one) records its
//! owner word ([`crate::process::my_word`]) in one slot of a table of [`USER_SLOTS`] words that
//! follows the directory. A slot is claimed by one CAS (`0 → my word`, or `dead word → my word`
//! for the slot of a process that died; [`Segment::users`](super::Segment::users) also frees the
//! slots of dead processes it meets) and released by one CAS (`my word → 0`) when the last
//! mapping of that segment in this process goes away: one slot per process, however many
//! [`Segment`](super::Segment)s of the same file it holds (they are counted locally, keyed by the
//! file's device and inode).
//!
//! **Full table.** When all slots hold live processes, the attacher does not fail: it adds 1 to
//! the header's `users_overflow` word instead (and subtracts it on detach). Those are "unknown
//! users": [`Users::unknown`] counts them, and a segment with any is never stale. The word says
//! how many, not who, so each process counted there also holds a lock on the segment file that
//! the kernel drops when it dies ([`overflow`]): a count whose locks are all gone counts no
//! one, and a process killed while counted there does not keep the segment for ever. (On a
//! file system without OFD locks the count is taken as it stands, as the [`overflow`] module
//! tells.)
//!
//! **fork.** A child inherits the mapping but not the registration. Its inherited handles never
//! release the parent's slot (each registration remembers the fork generation that made it), and
//! the child registers itself at its next call that goes through the segment (finding or creating
//! an object, [`Segment::users`](super::Segment::users), [`Segment::entries`](super::Segment::entries) …).
//! A child that only uses handles it inherited, without such a call, is not listed. (The
//! process-local bookkeeping sits behind a lock; a child forked while another thread of its
//! parent held it cannot take it, and after a bounded wait maps unregistered.)
//!
//! **Observers.** Tools that only look (`shmkit ls`, `stat`, `watch`) map with
//! [`SegmentOptions::register(false)`](super::SegmentOptions::register) and are not users.
//!
//! Ordering with removal ([`removal`](super::removal)): an attacher stores its slot, then reads
//! the lifecycle word; a cleaner claims the lifecycle word, then reads the slots (all `SeqCst`).
//! So at least one of them sees the other: either the cleaner sees the user and does not remove,
//! or the attacher sees the removal in progress and cancels it (or, if it was already decided,
//! lets go of the segment and retries with the name).

use super::header::Header;
use super::life::{self, Place, Scan, Words};
use super::mapping::FileId;
use super::overflow::{self, OverflowLock};
use crate::error::{Error, Result};
use crate::process;
use crate::sync::{AtomicU64, Ordering};
use std::path::Path;
use std::sync::Mutex;

/// Slots in the user table.
pub const USER_SLOTS: usize = 64;
/// Bytes taken by the user table.
pub const USERS_BYTES: u64 = (USER_SLOTS * 8) as u64;

use super::life::{state, IDLE, REMOVED, REMOVING};

/// One live process recorded in a segment's user table.
///
/// ```
/// use shmkit::Segment;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let me = seg.users().live[0];
/// assert_eq!(me.pid, std::process::id());
/// assert!(me.is_me && !me.foreign);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// Its pid, in its own pid namespace.
    pub pid: u32,
    /// Its owner word (pid, start tag, namespace tag: see [`crate::process`]).
    pub word: u64,
    /// Whether it lives in another pid namespace than this process (its pid means nothing
    /// here, and it is taken for alive: see [`process::word_alive`]).
    pub foreign: bool,
    /// Whether it is this process.
    pub is_me: bool,
}

/// The users of a segment, as [`Segment::users`](super::Segment::users) found them.
///
/// ```
/// use shmkit::{Segment, SegmentOptions};
///
/// # fn main() -> shmkit::Result<()> {
/// let name = format!("shmkit-doc-users-type-{}", std::process::id());
/// let seg = Segment::create(&name, 1 << 16)?;
/// // An observer (not a user itself) sees this process as the one user.
/// let look = SegmentOptions::new().register(false).open(&name)?;
/// assert_eq!((look.users().count(), look.users().is_stale()), (1, false));
/// drop(seg);
/// assert!(look.users().is_stale());
/// look.unlink()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    /// The live processes in the table (dead entries are not listed).
    pub live: Vec<User>,
    /// Attachers the full table could not record ("unknown users"; see the module docs).
    pub unknown: u64,
}

impl Users {
    /// No live user and no unknown one: nobody would miss the segment.
    pub fn is_stale(&self) -> bool {
        self.live.is_empty() && self.unknown == 0
    }

    /// Live plus unknown users.
    pub fn count(&self) -> u64 {
        (self.live.len() as u64).saturating_add(self.unknown)
    }
}

/// The name test points use for the segment at `path`: its file name.
pub(crate) fn hook_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The user table of one mapped segment, with its header.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    pub(crate) header: &'a Header,
    pub(crate) slots: &'a [AtomicU64],
    /// The segment's file (its path and device/inode), for overflow locks; `None` for an
    /// anonymous segment.
    pub(crate) file: Option<(&'a Path, FileId)>,
}

/// What attaching found.
pub(crate) enum Attach {
    /// Recorded; nobody removes the segment while we are.
    Attached,
    /// A cleaner already decided to remove it: we are not recorded, and should find the name
    /// again (it is gone or about to be).
    Doomed,
}

impl<'a> Table<'a> {
    /// The lifecycle words of this table's segment, for the protocol in [`super::life`].
    pub(crate) fn words(&self) -> Words<'a> {
        Words {
            life: &self.header.life,
            cleaner: &self.header.cleaner,
            overflow: &self.header.users_overflow,
            slots: self.slots,
        }
    }

    /// Records `word` as a user, ordered against removal (see the module docs); with the
    /// overflow lock it holds when counted in the overflow word.
    fn attach(&self, word: u64, path: &Path) -> Result<(Attach, Option<Registered>)> {
        let w = self.words();
        let mut lock = None;
        let file = self.file;
        let place = w.claim_place(word, &process::word_alive, &mut || {
            lock = file.and_then(|(p, id)| overflow::lock(p, id));
            lock.is_some()
        });
        crate::hooks::at_named("segment.attach.claimed", hook_name(path));
        match w.settle(place, word) {
            Ok(life::Attach::Attached(place)) => {
                Ok((Attach::Attached, Some(Registered { place, lock })))
            }
            Ok(life::Attach::Doomed) => Ok((Attach::Doomed, None)),
            Err(d) => Err(Error::corrupted(path, d.to_string())),
        }
    }

    /// Whether an overflow lock is held on this table's file (see [`overflow`]); `true` when
    /// that cannot be told (an anonymous segment).
    pub(crate) fn overflow_held(&self) -> bool {
        match self.file {
            Some((p, id)) => overflow::held(p, id),
            None => true,
        }
    }

    /// The live users recorded in the table. Slots of dead processes are freed on the way.
    pub(crate) fn users(&self) -> Users {
        users_of(
            self.words()
                .scan(&process::word_alive, &|| self.overflow_held()),
        )
    }
}

/// The users a scan found, described.
pub(crate) fn users_of(scan: Scan) -> Users {
    let me = process::my_word();
    let live = scan
        .live
        .into_iter()
        .map(|w| {
            let w = w & !process::FLAG;
            User {
                pid: process::word_pid(w),
                word: w,
                foreign: process::word_is_foreign(w),
                is_me: w == me,
            }
        })
        .collect();
    Users {
        live,
        unknown: scan.unknown,
    }
}

/// Where a process was recorded, and the overflow lock it holds if counted in the overflow
/// word (released after the count is taken away: dropped after [`Words::release`]).
struct Registered {
    place: Place,
    lock: Option<OverflowLock>,
}

/// One registration of this process in one segment file, shared by all its mappings of it.
struct Local {
    dev: u64,
    ino: u64,
    /// The fork generation that made it: a fork child's inherited entries are not its.
    gen: u64,
    word: u64,
    place: Place,
    /// Held while counted in the overflow word (see [`overflow`]).
    lock: Option<OverflowLock>,
    refs: usize,
}

/// This process's registrations. Held only for the few atomic operations of an attach or detach.
static LOCAL: Mutex<Vec<Local>> = Mutex::new(Vec::new());

/// How long [`local`] waits for the lock. It is held for microseconds (a full table's scan
/// reads `/proc` for each slot: milliseconds); only a fork child whose parent forked while
/// another thread held it waits this long, and then goes without (bounded, see [`local`]).
const LOCAL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// This process's registrations, locked; `None` if the lock could not be had within
/// [`LOCAL_WAIT`] (a fork child of a parent that forked while another thread held it: the
/// lock is never released there). Then the caller neither registers nor releases anything:
/// the mapping works, unregistered, and a slot left behind is freed when this process dies.
fn local() -> Option<std::sync::MutexGuard<'static, Vec<Local>>> {
    let deadline = crate::sync::Deadline::after(Some(LOCAL_WAIT));
    let mut g = loop {
        match LOCAL.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if !deadline.expired() => {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    };
    // Entries made before a fork belong to the parent: forget them in the child.
    let gen = generation();
    g.retain(|l| l.gen == gen);
    Some(g)
}

/// One mapping's share of its process's registration. Dropping it (with the mapping) releases
/// the slot when it was the process's last mapping of the file.
pub(crate) struct Attachment {
    dev: u64,
    ino: u64,
    /// Fork generation of the registration this mapping counts in; `u64::MAX`: none.
    gen: AtomicU64,
}

/// The fork generation (changes in a child after `fork()`).
fn generation() -> u64 {
    process::fork_generation()
}

impl Attachment {
    /// A mapping of file (`dev`, `ino`) that is not registered (observers).
    pub(crate) fn none(dev: u64, ino: u64) -> Self {
        Attachment {
            dev,
            ino,
            gen: AtomicU64::new(u64::MAX),
        }
    }

    /// Registers a new mapping of file (`dev`, `ino`) whose table is `t`: shares this process's
    /// slot if it has one, else claims one.
    pub(crate) fn attach(dev: u64, ino: u64, t: Table<'_>, path: &Path) -> Result<(Self, Attach)> {
        let a = Attachment::none(dev, ino);
        let r = a.join(t, path, false)?;
        Ok((a, r))
    }

    /// Counts this mapping in the process's registration (claiming a slot if it is the first).
    /// With `inherited_only`, only if the mapping was registered before a fork (checked under
    /// the lock, so two threads of a fork child register it once).
    fn join(&self, t: Table<'_>, path: &Path, inherited_only: bool) -> Result<Attach> {
        let Some(mut g) = local() else {
            return Ok(Attach::Attached); // unregistered (see `local`)
        };
        let gen = generation();
        if inherited_only {
            let mine = self.gen.load(Ordering::Relaxed);
            if mine == u64::MAX || mine == gen {
                return Ok(Attach::Attached);
            }
            self.gen.store(u64::MAX, Ordering::Relaxed);
        }
        if let Some(l) = g
            .iter_mut()
            .find(|l| l.dev == self.dev && l.ino == self.ino)
        {
            // Already a user (our slot is visible to every cleaner), unless a removal was
            // decided meanwhile: a new mapping then does not join the doomed segment.
            let life = t.header.life.load(Ordering::SeqCst);
            match state(life) {
                IDLE | REMOVING => {}
                REMOVED => return Ok(Attach::Doomed),
                _ => {
                    return Err(Error::corrupted(
                        path,
                        life::Damage::BadState(life).to_string(),
                    ))
                }
            }
            l.refs += 1;
            self.gen.store(gen, Ordering::Relaxed);
            return Ok(Attach::Attached);
        }
        let word = process::my_word();
        let (r, registered) = t.attach(word, path)?;
        if let Some(Registered { place, lock }) = registered {
            g.push(Local {
                dev: self.dev,
                ino: self.ino,
                gen,
                word,
                place,
                lock,
                refs: 1,
            });
            self.gen.store(gen, Ordering::Relaxed);
        }
        Ok(r)
    }

    /// In a fork child, registers an inherited mapping (once); elsewhere does nothing. A
    /// removal already decided leaves it unregistered (the mapping stays usable).
    pub(crate) fn refresh(&self, t: Table<'_>, path: &Path) {
        let mine = self.gen.load(Ordering::Relaxed);
        if mine == u64::MAX || mine == generation() {
            return;
        }
        let _ = self.join(t, path, true);
    }

    /// Whether this mapping is registered (in this process, not inherited).
    pub(crate) fn registered(&self) -> bool {
        self.gen.load(Ordering::Relaxed) == generation()
    }

    /// Drops this mapping's share; returns `true` if it was the process's last mapping of the
    /// file, whose slot is now released.
    pub(crate) fn detach(&self, t: Table<'_>) -> bool {
        let gen = self.gen.swap(u64::MAX, Ordering::Relaxed);
        if gen == u64::MAX || gen != generation() {
            return false;
        }
        let Some(mut g) = local() else {
            return false;
        };
        let Some(i) = g
            .iter()
            .position(|l| l.dev == self.dev && l.ino == self.ino)
        else {
            return false;
        };
        g[i].refs -= 1;
        if g[i].refs > 0 {
            return false;
        }
        let l = g.swap_remove(i);
        t.words().release(l.place, l.word);
        // Uncounted first, then unlocked (see `overflow`).
        drop(l.lock);
        true
    }

    /// The file's device and inode.
    pub(crate) fn file_id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}
