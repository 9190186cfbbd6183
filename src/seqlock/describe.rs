//! One-line descriptions of seqlocks and arrays for `shmkit stat` (see [`crate::inspect`]).

use super::{SeqArray, SeqLock};
use crate::segment::directory::EntryInfo;
use crate::{Result, Segment};

/// How many leading elements of an array are shown.
const SHOWN: usize = 8;

/// `SeqLock<T>`: the value for primitive numbers, version and writer state; the type and size
/// for other element types.
pub(crate) fn seqlock(seg: &Segment, entry: &EntryInfo) -> Result<String> {
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
pub(crate) fn array(seg: &Segment, entry: &EntryInfo) -> Result<String> {
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

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::inspect::describe;

    #[test]
    fn stat_lines() {
        let name = format!("shmkit-seqlock-describe-{}", std::process::id());
        let seg = crate::Segment::create(&name, 1 << 20).unwrap();
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
}
