//! One process identity for every claim in the crate: who am I, how a claim names its holder, and
//! the one rule that decides whether that holder still runs.
//!
//! # Identity
//!
//! A pid alone is not an identity: the kernel reuses pids, and a pid means nothing outside its pid
//! namespace (containers sharing `/dev/shm`). An [`Identity`] is the triple
//!
//! | field    | source                                            | why                          |
//! | -------- | ------------------------------------------------- | ---------------------------- |
//! | `pid`    | `getpid()`                                        | who, in its own namespace    |
//! | `start`  | field 22 of `/proc/self/stat` (ticks since boot)  | tells a reused pid apart     |
//! | `pid_ns` | inode of `/proc/self/ns/pid`                      | which namespace `pid` is in  |
//!
//! [`me`] caches it per thread and recomputes it after `fork()` (a `pthread_atfork` handler bumps
//! a generation): a forked child is a new process with a new pid and start time, and a cache
//! inherited from the parent would make the child look dead to the parent (and the parent's claims
//! look like the child's).
//!
//! # The owner word
//!
//! Every claim that must survive its holder's death (ring sides, MPMC registry entries, the seqlock
//! writer, directory entries, the segment creator, lock owners, semaphore holders, barrier parties)
//! records its holder as one `u64`, written by the same atomic operation that makes the claim:
//!
//! | bits    | field      | contents                                                         |
//! | ------- | ---------- | ---------------------------------------------------------------- |
//! | 0..22   | pid        | the holder's pid in its namespace (Linux caps pids below 2²²)    |
//! | 22..43  | start tag  | `start % (2²¹ − 1) + 1`; 0 = start time unknown                  |
//! | 43..63  | ns tag     | `pid_ns % (2²⁰ − 1) + 1`; 0 = namespace unknown                  |
//! | 63      | [`FLAG`]   | always 0 in an owner word: free for the claim's own use          |
//!
//! A real holder's word is never 0 (pid ≥ 1), so 0 means "free" wherever a claim word is used.
//!
//! # The liveness rule ([`word_alive`])
//!
//! 1. A holder whose namespace tag differs from ours is **never judged by its pid**: the number
//!    names another process (or none) here. It is taken for alive, so no claim of a process in
//!    another pid namespace is ever taken over from this one. The price: a holder that dies in
//!    another namespace is only recovered by a process of its own namespace (or by an explicit
//!    reset). Kernel namespace inodes are allocated densely, so two live namespaces share a tag
//!    only after about a million namespaces exist at once.
//! 2. Otherwise the holder is dead when no process with its pid runs (zombies count as dead), or
//!    when the process with that pid started at another time (the pid was reused).
//! 3. Unknown fields (tag 0, as written where `/proc` is missing) leave the decision to the rest.

/// A process, as recorded in claims: pid, start time and pid namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Process id, in the process's own pid namespace.
    pub pid: u32,
    /// Start time in clock ticks since boot (0 if `/proc` is unavailable).
    pub start: u64,
    /// Inode number of the process's pid namespace (0 if unknown).
    pub pid_ns: u64,
}

const PID_BITS: u32 = 22;
const START_BITS: u32 = 21;
const NS_BITS: u32 = 20;
const PID_MASK: u64 = (1 << PID_BITS) - 1;
const START_MASK: u64 = (1 << START_BITS) - 1;
const NS_MASK: u64 = (1 << NS_BITS) - 1;
const START_SHIFT: u32 = PID_BITS;
const NS_SHIFT: u32 = PID_BITS + START_BITS;

/// Bit 63 of an owner word: never set by [`Identity::word`], so a claim may use it as a flag of
/// its own (the MPMC registry marks an entry being swept with it). Mask it off before judging.
pub const FLAG: u64 = 1 << 63;

/// Folds a 64-bit quantity into a non-zero tag below `mask` (0 stays 0: unknown).
#[inline]
const fn tag(v: u64, mask: u64) -> u64 {
    if v == 0 {
        0
    } else {
        v % mask + 1
    }
}

#[inline]
const fn start_tag(start: u64) -> u64 {
    tag(start, START_MASK)
}

#[inline]
const fn ns_tag(ns: u64) -> u64 {
    tag(ns, NS_MASK)
}

impl Identity {
    /// This identity as an owner word (see the module docs); never 0.
    #[inline]
    pub const fn word(&self) -> u64 {
        (self.pid as u64 & PID_MASK)
            | (start_tag(self.start) << START_SHIFT)
            | (ns_tag(self.pid_ns) << NS_SHIFT)
    }

    /// The identity of process `pid` as seen from this process (its start time and, readable
    /// for processes of this user, its pid namespace), or `None` if no such process runs here.
    pub fn of_pid(pid: u32) -> Option<Identity> {
        let start = start_time_of(pid)?;
        Some(Identity {
            pid,
            start,
            pid_ns: ns_inode(&format!("/proc/{pid}/ns/pid")).unwrap_or(0),
        })
    }

    /// Whether this process still runs, by the crate's one liveness rule.
    pub fn alive(&self) -> bool {
        word_alive(self.word())
    }
}

/// The pid recorded in owner word `w`.
#[inline]
pub const fn word_pid(w: u64) -> u32 {
    (w & PID_MASK) as u32
}

/// Whether owner word `w` was written by a process in another pid namespace than this one.
/// Such a holder is never judged by its pid (see the module docs).
#[inline]
pub fn word_is_foreign(w: u64) -> bool {
    tag_is_foreign((w >> NS_SHIFT) & NS_MASK)
}

/// Whether a namespace tag names another pid namespace than ours (0, unknown, never does).
#[inline]
fn tag_is_foreign(theirs: u64) -> bool {
    let mine = ns_tag(me().pid_ns);
    theirs != 0 && mine != 0 && theirs != mine
}

/// The one liveness rule: whether the holder recorded in owner word `w` still runs. `0` (free) is
/// not alive; [`FLAG`] is ignored.
pub fn word_alive(w: u64) -> bool {
    let w = w & !FLAG;
    if w == 0 {
        return false;
    }
    if word_is_foreign(w) {
        return true;
    }
    let pid = word_pid(w);
    if !pid_alive(pid) {
        return false;
    }
    let want = (w >> START_SHIFT) & START_MASK;
    if want == 0 {
        return true;
    }
    match start_time_of(pid) {
        Some(s) => start_tag(s) == want,
        // No /proc entry for a pid that answered kill(): /proc is not mounted; trust the pid.
        None => pid_alive(pid) && me().start == 0,
    }
}

/// Whether the holder recorded as (`pid`, full `start` time) in this pid namespace still runs.
/// For records that keep the start time in a word of its own beside an owner word; `start == 0`
/// leaves the decision to the pid.
pub fn owner_alive(pid: u32, start: u64) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    if start == 0 {
        return true;
    }
    match start_time_of(pid) {
        Some(s) => s == start,
        None => pid_alive(pid) && me().start == 0,
    }
}

/// This process's pid-namespace tag (the owner word's 20-bit field; 0 = unknown), for records
/// that keep pid and start time in words of their own (the directory).
#[inline]
pub fn my_ns_tag() -> u32 {
    ns_tag(me().pid_ns) as u32
}

/// The liveness rule for a record kept as pid, full start time (0: unknown) and namespace tag
/// ([`my_ns_tag`] of its writer; 0: unknown): a holder in another namespace is alive, else
/// [`owner_alive`] decides.
pub fn record_alive(pid: u32, start: u64, ns_tag: u32) -> bool {
    tag_is_foreign(u64::from(ns_tag)) || owner_alive(pid, start)
}

/// This process's id (after a `fork()`, the child's).
#[inline]
pub fn pid() -> u32 {
    me().pid
}

/// Start time of this process, in clock ticks since boot (0 if `/proc` is unavailable);
/// recomputed in a forked child.
#[inline]
pub fn start_time() -> u64 {
    me().start
}

/// This thread's kernel thread id (`gettid`).
#[inline]
pub fn tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Reads the identity of the calling process from the kernel (no cache).
fn compute() -> Identity {
    let pid = std::process::id();
    Identity {
        pid,
        start: start_time_of(pid).unwrap_or(0),
        pid_ns: ns_inode("/proc/self/ns/pid").unwrap_or(0),
    }
}

/// The inode number behind a namespace link such as `/proc/self/ns/pid` (`pid:[4026531836]`).
fn ns_inode(path: &str) -> Option<u64> {
    let link = std::fs::read_link(path).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(not(feature = "loom"))]
mod cache {
    use super::{compute, Identity};
    use crate::sync::{AtomicU64, Ordering};
    use std::cell::Cell;
    use std::sync::Once;

    /// Bumped in the child after every `fork()`, so identities cached before the fork are
    /// recomputed (the child has another pid and start time).
    static FORKS: AtomicU64 = AtomicU64::new(0);
    static AT_FORK: Once = Once::new();

    extern "C" fn after_fork_in_child() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }

    thread_local! {
        /// The fork generation and the identity.
        static CACHE: Cell<Option<(u64, Identity)>> = const { Cell::new(None) };
        /// The fork generation and the identity's owner word (`u64::MAX`: not computed yet),
        /// kept apart so that [`my_word`], on every claim's fast path, copies two words out of
        /// the thread's storage, not the whole identity.
        static WORD: Cell<(u64, u64)> = const { Cell::new((u64::MAX, 0)) };
    }

    /// The fork generation: changes in a child after each `fork()`.
    #[inline]
    pub(crate) fn fork_generation() -> u64 {
        FORKS.load(Ordering::Relaxed)
    }

    /// This process's identity, cached per thread and recomputed after `fork()`.
    #[inline]
    pub fn me() -> Identity {
        let gen = FORKS.load(Ordering::Relaxed);
        match CACHE.with(|c| c.get()) {
            Some((g, m)) if g == gen => m,
            _ => refresh(),
        }
    }

    /// This process's owner word, cached with the identity.
    #[inline]
    pub fn my_word() -> u64 {
        let gen = FORKS.load(Ordering::Relaxed);
        match WORD.with(|c| c.get()) {
            (g, w) if g == gen => w,
            _ => refresh().word(),
        }
    }

    #[cold]
    fn refresh() -> Identity {
        AT_FORK.call_once(|| {
            // SAFETY: registers a handler that only does an atomic add (async-signal-safe); no
            // pointers are passed.
            unsafe {
                libc::pthread_atfork(None, None, Some(after_fork_in_child));
            }
        });
        // Read the generation before computing: a fork racing with this leaves a stale
        // generation in the cache, and the next call recomputes.
        let gen = FORKS.load(Ordering::Relaxed);
        let m = compute();
        CACHE.with(|c| c.set(Some((gen, m))));
        WORD.with(|c| c.set((gen, m.word())));
        m
    }
}

#[cfg(feature = "loom")]
mod cache {
    use super::{compute, Identity};

    /// This process's identity (not cached: loom's atomics cannot live in statics).
    pub fn me() -> Identity {
        compute()
    }

    /// This process's owner word.
    pub fn my_word() -> u64 {
        compute().word()
    }
}

#[cfg(not(feature = "loom"))]
pub(crate) use cache::fork_generation;
pub use cache::{me, my_word};

/// Start time of process `pid` in clock ticks since boot, or `None` if it does not exist.
pub fn start_time_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces or ')': split after the
    // last ')'. Fields after it start with field 3 (state); start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether a process with this pid exists now in this pid namespace (zombies count as dead).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some(i) = stat.rfind(')') {
            let state = stat[i + 1..].split_ascii_whitespace().next();
            return !matches!(state, Some("Z") | Some("X") | Some("x"));
        }
        return true;
    }
    // No /proc entry: fall back to kill(pid, 0). Miri has no `kill`; it does read /proc.
    if cfg!(miri) {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check; nothing is delivered.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive_and_stable() {
        let me = me();
        assert!(me.start > 0);
        assert!(me.pid_ns > 0);
        assert_eq!(me, compute());
        assert!(owner_alive(pid(), start_time()));
        assert!(word_alive(my_word()));
        assert_eq!(word_pid(my_word()), std::process::id());
        assert!(
            !owner_alive(pid(), start_time() + 1),
            "start time must be compared"
        );
        let reused = Identity {
            start: me.start + 1,
            ..me
        };
        assert!(!word_alive(reused.word()), "start tag must be compared");
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        assert!(!word_alive(0));
    }

    #[test]
    fn foreign_namespace_is_never_judged_dead() {
        let me = me();
        // A pid that does not exist here, recorded by a process of another namespace.
        let ghost = Identity {
            pid: (1 << PID_BITS) - 3,
            start: 12345,
            pid_ns: me.pid_ns + 1,
        };
        assert!(!pid_alive(ghost.pid));
        assert!(word_is_foreign(ghost.word()));
        assert!(word_alive(ghost.word()));
        // The same record in our namespace is dead.
        let local = Identity {
            pid_ns: me.pid_ns,
            ..ghost
        };
        assert!(!word_is_foreign(local.word()));
        assert!(!word_alive(local.word()));
    }

    #[test]
    fn word_fields_do_not_overlap() {
        let id = Identity {
            pid: (1 << PID_BITS) - 1,
            start: u64::MAX,
            pid_ns: u64::MAX - 7,
        };
        let w = id.word();
        assert_eq!(word_pid(w), id.pid);
        assert_eq!((w >> START_SHIFT) & START_MASK, start_tag(id.start));
        assert_eq!((w >> NS_SHIFT) & NS_MASK, ns_tag(id.pid_ns));
        assert_eq!(w & FLAG, 0);
        assert_ne!(ns_tag(1), 0);
        assert_ne!(ns_tag(NS_MASK), 0);
        assert!(ns_tag(u64::MAX) <= NS_MASK);
        assert_eq!(start_tag(0), 0);
        assert!(word_alive(my_word() | FLAG));
    }

    #[test]
    fn of_pid_matches_me() {
        assert_eq!(Identity::of_pid(pid()), Some(me()));
    }

    #[test]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = child.id();
        let id = Identity::of_pid(p);
        child.wait().unwrap();
        if let Some(id) = id {
            // The pid may in theory be reused at once; with its start time recorded that is
            // harmless unless the new process started in the same tick.
            assert!(!id.alive() || start_time_of(p) == Some(id.start));
        }
    }
}
