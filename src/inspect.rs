//! Describing what a segment holds, for tools (`shmkit stat`, `shmkit watch`).
//!
//! Each object kind contributes one arm to [`describe`]; it opens the object with the tag found
//! in the directory (validated like any open) and prints its current state in one line.

mod collections;

pub use collections::{list_state, map_state, ListState, MapState};

use crate::object::Kind;
use crate::segment::directory::EntryInfo;
use crate::{AtomicValue, Counter, Result, Segment, SeqArray, SeqLock, ShardedCounter};

/// A one-line description of the current state of the object `entry` in `seg`.
///
/// Values whose element type is a primitive number are decoded; others are shown as raw bits.
pub fn describe(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    if !entry.ready {
        return Ok("(being initialized)".to_string());
    }
    let name = entry.name.as_str();
    Ok(match entry.tag.kind {
        Kind::COUNTER => seg.open_object::<Counter>(name)?.load().to_string(),
        Kind::SHARDED_COUNTER => {
            let c = seg.open_object::<ShardedCounter>(name)?;
            let busy = c.stripes().iter().filter(|&&s| s != 0).count();
            format!("{} (over {busy} busy stripes)", c.sum())
        }
        Kind::VALUE => describe_value(seg, entry)?,
        Kind::MUTEX => describe_lock(seg.open_entry_as::<crate::Mutex<()>>(entry)?.state()),
        Kind::REENTRANT_MUTEX => {
            let m = seg.open_object::<crate::ReentrantMutex>(name)?;
            let s = m.state();
            let mut out = describe_lock(s);
            if s.owner_tid.is_some() {
                out.push_str(&format!(", depth {}", m.depth()));
            }
            out
        }
        Kind::CONDVAR => {
            let c = seg.open_object::<crate::Condvar>(name)?;
            format!("{} waiters, {} notifies", c.waiters(), c.generation())
        }
        Kind::SEMAPHORE => {
            let s = seg.open_object::<crate::Semaphore>(name)?;
            let mut out = format!("{} permits free", s.available());
            if let Some(b) = s.bound() {
                out.push_str(&format!(" (bound {b})"));
            }
            let held: Vec<String> = s
                .holders()
                .iter()
                .map(|(p, n)| format!("pid {p}: {n}"))
                .collect();
            if !held.is_empty() {
                out.push_str(&format!(", held by {}", held.join(", ")));
            }
            if s.reclaimed() != 0 {
                out.push_str(&format!(", {} reclaimed from dead holders", s.reclaimed()));
            }
            out
        }
        Kind::BARRIER => {
            let b = seg.open_object::<crate::Barrier>(name)?;
            format!(
                "generation {}, {}/{} arrived{}",
                b.generation(),
                b.arrived(),
                b.parties(),
                if b.is_broken() { ", broken" } else { "" }
            )
        }
        Kind::EVENT => {
            let e = seg.open_object::<crate::Event>(name)?;
            let state = if e.is_set() { "set" } else { "clear" };
            format!("{state}, {} waiters", e.waiters())
        }
        Kind::SEQLOCK => describe_seqlock(seg, entry)?,
        Kind::SEQ_ARRAY => describe_array(seg, entry)?,
        Kind::SPSC => describe_spsc(seg, entry)?,
        Kind::MPMC => describe_mpmc(seg, entry)?,
        Kind::BYTES_QUEUE => seg.open_entry_as::<crate::ByteRing>(entry)?.describe(),
        Kind::PIPE => seg.open_entry_as::<crate::Pipe>(entry)?.describe(),
        Kind::MPMC_BYTES => {
            let q = seg.open_entry_as::<crate::ring::MpmcBytes>(entry)?;
            format!(
                "~{}/{} messages of at most {} bytes, {} sends claimed{}{}",
                q.len(),
                q.capacity(),
                q.max_msg(),
                q.positions().1,
                match q.lost() {
                    0 => String::new(),
                    n => format!(", {n} lost with dead processes"),
                },
                if q.is_closed() { ", closed" } else { "" }
            )
        }
        Kind::MAP => collections::map_state(seg, entry)?.to_string(),
        Kind::LIST => collections::list_state(seg, entry)?.to_string(),
        _ => format!("{} bytes at offset {}", entry.size, entry.offset),
    })
}

fn describe_value(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    macro_rules! try_types {
        ($($t:ty),*) => {
            $(
                if entry.tag.type_name == core::any::type_name::<$t>() {
                    return Ok(format!("{:?}", seg.open_object::<AtomicValue<$t>>(&entry.name)?.load()));
                }
            )*
        };
    }
    try_types!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);
    // An element type this tool does not know: show the raw bits of the value's word.
    // Every AtomicValue<T> has the layout of AtomicValue<u64>; the low bytes hold T.
    let v = seg.open_entry_as::<AtomicValue<u64>>(entry)?;
    let bits = v.load() & (u64::MAX >> (64 - 8 * entry.tag.elem_size.clamp(1, 8)));
    Ok(format!("{} bits {bits:#x}", entry.tag.type_name))
}

/// How many leading elements of a [`SeqArray`] are shown.
const SHOWN: usize = 8;

/// `SeqLock<T>`: the value for primitive numbers, version and writer state; the type and size
/// for other element types.
fn describe_seqlock(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if entry.tag.type_name == core::any::type_name::<$t>() {
                let s = seg.open_object::<SeqLock<$t>>(&entry.name)?;
                return Ok(format!(
                    "{:?} (version {}{})",
                    s.read(),
                    s.version(),
                    writer_note(s.check_writer())
                ));
            }
        )*};
    }
    try_types!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);
    Ok(format!(
        "{} ({} bytes)",
        entry.tag.type_name, entry.tag.elem_size
    ))
}

/// `SeqArray<T>`: the length and, for primitive numbers, the first elements.
fn describe_array(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if entry.tag.type_name == core::any::type_name::<$t>() {
                let a = seg.open_object::<SeqArray<$t>>(&entry.name)?;
                let n = a.len().min(SHOWN);
                let mut first = vec![<$t>::default(); n];
                a.read_range(0, &mut first)?;
                let more = if a.len() > n { ", …" } else { "" };
                let items: Vec<String> = first.iter().map(|x| format!("{x:?}")).collect();
                return Ok(format!(
                    "len {}: [{}{more}]{}",
                    a.len(),
                    items.join(", "),
                    writer_note(a.check_writer())
                ));
            }
        )*};
    }
    try_types!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);
    Ok(format!("len {} of {}", entry.tag.len, entry.tag.type_name))
}

fn writer_note(r: Result<()>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(e) => format!("; {e}"),
    }
}

/// A lock word's state in words: `unlocked`, `locked by tid 812 (pid 800), waiters`, …
fn describe_lock(s: crate::lock::LockState) -> String {
    if s.not_recoverable {
        return "not recoverable (a holder declared the data beyond repair)".into();
    }
    let mut out = match (s.owner_tid, s.owner_pid) {
        (None, _) => "unlocked".to_string(),
        (Some(t), Some(p)) => format!("locked by tid {t} (pid {p})"),
        (Some(t), None) => format!("locked by tid {t}"),
    };
    if s.waiters {
        out.push_str(", waiters");
    }
    if s.owner_died {
        out.push_str(", owner died (data not yet marked consistent)");
    }
    out
}

fn describe_spsc(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    // The ring's head, positions and claims do not depend on the element type; the element size
    // (and so the layout) comes from the tag, so any element type opens it for inspection.
    let r = seg.open_entry_as::<crate::SpscRing<u8>>(entry)?;
    let cap = entry.tag.len;
    let (head, tail) = r.positions();
    let len = tail.wrapping_sub(head);
    let (p, c) = r.holders();
    let closed = if r.is_closed() { ", closed" } else { "" };
    if len > cap {
        return Ok(format!(
            "corrupted positions (head {head}, tail {tail}, capacity {cap}){closed}"
        ));
    }
    Ok(format!(
        "{len}/{cap} items, {tail} pushed, producer pid {p}, consumer pid {c}{closed}"
    ))
}

fn describe_mpmc(seg: &Segment, entry: &EntryInfo) -> Result<String> {
    // As for SPSC: the element size comes from the tag, so any element type opens it.
    let r = seg.open_entry_as::<crate::MpmcRing<u8>>(entry)?;
    let cap = entry.tag.len;
    let (head, tail) = r.positions();
    let closed = if r.is_closed() { ", closed" } else { "" };
    let lost = match r.lost() {
        0 => String::new(),
        n => format!(", {n} lost with dead processes"),
    };
    match tail.checked_sub(head) {
        Some(len) if len <= cap => Ok(format!(
            "~{len}/{cap} items, {tail} pushes claimed{lost}{closed}"
        )),
        _ => Ok(format!(
            "corrupted positions (head {head}, tail {tail}, capacity {cap}){closed}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::ring::PipeEnd;
    use crate::Segment;

    fn line_of(seg: &Segment, name: &str) -> String {
        let entry = seg
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap();
        describe(seg, &entry).unwrap()
    }

    #[test]
    fn seqlock_and_array_lines() {
        let name = format!("shmkit-seqlock-describe-{}", std::process::id());
        let seg = Segment::create(&name, 1 << 20).unwrap();
        seg.seqlock::<f64>("temp", 21.5).unwrap();
        seg.seqlock::<[u8; 3]>("rgb", [1, 2, 3]).unwrap();
        let a = seg.array::<i32>("w", 100).unwrap();
        a.set(1, -4).unwrap();
        seg.array::<u32>("short", 2).unwrap();
        let lines: Vec<String> = seg
            .entries()
            .unwrap()
            .iter()
            .map(|e| describe(&seg, e).unwrap())
            .collect();
        seg.unlink().unwrap();
        assert_eq!(lines[0], "21.5 (version 0)");
        assert_eq!(lines[1], "[u8; 3] (3 bytes)");
        assert_eq!(lines[2], "len 100: [0, -4, 0, 0, 0, 0, 0, 0, …]");
        assert_eq!(lines[3], "len 2: [0, 0]");
    }

    #[test]
    fn byte_ring_line() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let r = seg.byte_ring("r", 1000, 200).unwrap();
        let (mut tx, mut rx) = r.split().unwrap();
        tx.send(b"in a segment").unwrap();
        assert_eq!(rx.recv().unwrap(), b"in a segment");
        let line = line_of(&seg, "r");
        assert!(
            line.contains("0/1024 bytes used") && line.contains("max_msg 200"),
            "{line}"
        );
    }

    #[test]
    fn pipe_line() {
        let seg = Segment::anonymous(1 << 16).unwrap();
        let p = seg.pipe("p", 512, 64).unwrap();
        let mut a = p.end(PipeEnd::A).unwrap();
        let b = seg.pipe("p", 512, 64).unwrap();
        let mut b = b.end(PipeEnd::B).unwrap();
        a.send(b"hi").unwrap();
        assert_eq!(b.recv().unwrap(), b"hi");
        b.send(b"hey").unwrap();
        let line = line_of(&seg, "p");
        let me = std::process::id();
        assert!(
            line.contains("B->A 16 bytes used")
                && line.contains("capacity 512")
                && line.contains(&format!("end A pid {me}")),
            "{line}"
        );
        let _ = a.recv();
    }
}
