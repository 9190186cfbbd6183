//! `Display` of the structured states: the one-line text of `shmkit stat`.

use super::state::{Number, Positions, Reading, State};
use crate::lock::LockState;
use core::fmt;

impl fmt::Display for Number {
    /// As the element type's own `Debug` (`2.0`, `-4`, `0.1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Unsigned(n) => write!(f, "{n}"),
            Number::Signed(n) => write!(f, "{n}"),
            Number::F32(x) => write!(f, "{x:?}"),
            Number::F64(x) => write!(f, "{x:?}"),
        }
    }
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reading::Number(n) => write!(f, "{n}"),
            Reading::Bits { type_name, bits } => write!(f, "{type_name} bits {bits:#x}"),
            Reading::Opaque { type_name, size } => write!(f, "{type_name} ({size} bytes)"),
        }
    }
}

/// `, closed` or nothing.
fn closed(c: bool) -> &'static str {
    if c {
        ", closed"
    } else {
        ""
    }
}

fn lost(f: &mut fmt::Formatter<'_>, n: u64, what: &str) -> fmt::Result {
    if n != 0 {
        write!(f, ", {n} {what} with dead processes")?;
    }
    Ok(())
}

fn corrupted(f: &mut fmt::Formatter<'_>, p: &Positions, c: bool) -> fmt::Result {
    write!(
        f,
        "corrupted positions (head {}, tail {}, capacity {}){}",
        p.head,
        p.tail,
        p.capacity,
        closed(c)
    )
}

fn writer_note(f: &mut fmt::Formatter<'_>, note: &Option<String>) -> fmt::Result {
    match note {
        Some(n) => write!(f, "; {n}"),
        None => Ok(()),
    }
}

/// A lock word's state in words: `unlocked`, `locked by tid 812 (pid 800), waiters`, …
fn lock(f: &mut fmt::Formatter<'_>, s: &LockState, depth: Option<u64>) -> fmt::Result {
    if s.not_recoverable {
        return f.write_str("not recoverable (a holder declared the data beyond repair)");
    }
    match (s.owner_tid, s.owner_pid) {
        (None, _) => f.write_str("unlocked")?,
        (Some(t), Some(p)) => write!(f, "locked by tid {t} (pid {p})")?,
        (Some(t), None) => write!(f, "locked by tid {t}")?,
    }
    if s.waiters {
        f.write_str(", waiters")?;
    }
    if s.owner_died {
        f.write_str(", owner died (data not yet marked consistent)")?;
    }
    if let (Some(d), Some(_)) = (depth, s.owner_tid) {
        write!(f, ", depth {d}")?;
    }
    Ok(())
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Initializing => f.write_str("(being initialized)"),
            State::Counter { value } => write!(f, "{value}"),
            State::ShardedCounter { sum, busy_stripes } => {
                write!(f, "{sum} (over {busy_stripes} busy stripes)")
            }
            State::Value(r) => write!(f, "{r}"),
            State::Lock { state, depth } => lock(f, state, *depth),
            State::Condvar { waiters, notifies } => {
                write!(f, "{waiters} waiters, {notifies} notifies")
            }
            State::Semaphore {
                available,
                bound,
                holders,
                reclaimed,
            } => {
                write!(f, "{available} permits free")?;
                if let Some(b) = bound {
                    write!(f, " (bound {b})")?;
                }
                for (i, (p, n)) in holders.iter().enumerate() {
                    let lead = if i == 0 { ", held by " } else { ", " };
                    write!(f, "{lead}pid {p}: {n}")?;
                }
                if *reclaimed != 0 {
                    write!(f, ", {reclaimed} reclaimed from dead holders")?;
                }
                Ok(())
            }
            State::Barrier {
                generation,
                arrived,
                parties,
                broken,
            } => write!(
                f,
                "generation {generation}, {arrived}/{parties} arrived{}",
                if *broken { ", broken" } else { "" }
            ),
            State::Event { set, waiters } => {
                let s = if *set { "set" } else { "clear" };
                write!(f, "{s}, {waiters} waiters")
            }
            State::SeqLock {
                value,
                version,
                writer_note: note,
            } => match value {
                Reading::Number(n) => {
                    write!(f, "{n} (version {version}")?;
                    writer_note(f, note)?;
                    f.write_str(")")
                }
                other => write!(f, "{other}"),
            },
            State::SeqArray {
                len,
                type_name,
                first,
                writer_note: note,
            } => match first {
                Some(items) => {
                    write!(f, "len {len}: [")?;
                    for (i, x) in items.iter().enumerate() {
                        let sep = if i == 0 { "" } else { ", " };
                        write!(f, "{sep}{x}")?;
                    }
                    let more = if *len > items.len() as u64 {
                        ", …"
                    } else {
                        ""
                    };
                    write!(f, "{more}]")?;
                    writer_note(f, note)
                }
                None => write!(f, "len {len} of {type_name}"),
            },
            State::Spsc {
                positions: p,
                holders: (prod, cons),
                closed: c,
            } => match p.len() {
                Some(len) => write!(
                    f,
                    "{len}/{} items, {} pushed, producer pid {prod}, consumer pid {cons}{}",
                    p.capacity,
                    p.tail,
                    closed(*c)
                ),
                None => corrupted(f, p, *c),
            },
            State::Mpmc {
                positions: p,
                lost: n,
                closed: c,
            } => match p.len() {
                Some(len) => {
                    write!(f, "~{len}/{} items, {} pushes claimed", p.capacity, p.tail)?;
                    lost(f, *n, "lost")?;
                    f.write_str(closed(*c))
                }
                None => corrupted(f, p, *c),
            },
            State::ByteRing {
                positions: p,
                max_msg,
                holders: (s, r),
                closed: c,
            } => match p.len() {
                Some(used) => write!(
                    f,
                    "{used}/{} bytes used, max_msg {max_msg}, {} bytes written, sender pid {s}, \
                     receiver pid {r}{}",
                    p.capacity,
                    p.tail,
                    closed(*c)
                ),
                None => corrupted(f, p, *c),
            },
            State::Pipe {
                a_to_b,
                b_to_a,
                max_msg,
                holders: (a, b),
                closed: c,
            } => {
                let dir = |p: &Positions| match p.len() {
                    Some(u) => format!("{u} bytes used"),
                    None => format!("corrupted positions (head {}, tail {})", p.head, p.tail),
                };
                write!(
                    f,
                    "A->B {}, B->A {}, capacity {} each, max_msg {max_msg}, end A pid {a}, \
                     end B pid {b}{}",
                    dir(a_to_b),
                    dir(b_to_a),
                    a_to_b.capacity,
                    closed(*c)
                )
            }
            State::MpmcBytes {
                positions: p,
                max_msg,
                lost: n,
                closed: c,
            } => {
                // The length is the queue's own estimate (0 while positions race), as before.
                let len = p.len().unwrap_or(0);
                write!(
                    f,
                    "~{len}/{} messages of at most {max_msg} bytes, {} sends claimed",
                    p.capacity, p.tail
                )?;
                lost(f, *n, "lost")?;
                f.write_str(closed(*c))
            }
            State::Map(m) => write!(f, "{m}"),
            State::List(l) => write!(f, "{l}"),
            State::Other { offset, size, .. } => write!(f, "{size} bytes at offset {offset}"),
        }
    }
}
