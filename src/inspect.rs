//! Describing what a segment holds, for tools (`shmkit stat`, `shmkit watch`).
//!
//! Each object kind contributes one arm to [`describe`]; it opens the object with the tag found
//! in the directory (validated like any open) and prints its current state in one line.

use crate::segment::directory::EntryInfo;
use crate::segment::object::Kind;
use crate::{AtomicValue, Counter, Result, Segment, ShardedCounter};

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
        Kind::SEQLOCK => crate::seqlock::describe::seqlock(seg, entry)?,
        Kind::SEQ_ARRAY => crate::seqlock::describe::array(seg, entry)?,
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
