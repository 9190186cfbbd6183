//! The state of maps and lists, for tools: size, capacity and the first entries (structured;
//! `Display` gives `shmkit stat`'s one line). Read lock-free, like any reader: a watcher never
//! takes a lock a writer takes.

use super::At;
use crate::object::TypeTag;
use crate::segment::directory::EntryInfo;
use crate::{ByteMap, Result, Segment};
use core::fmt;

/// How many entries or elements a state shows.
const SHOWN: usize = 5;

/// A map's dimensions, size and first entries (decoded as text where the element type allows).
#[derive(Clone, Debug, PartialEq)]
pub struct MapState {
    /// Entries now.
    pub len: usize,
    /// Entries at most.
    pub capacity: usize,
    /// Longest key and value, in bytes.
    pub key_max: usize,
    /// Longest value, in bytes.
    pub value_max: usize,
    /// The first five entries (in slot order), as text.
    pub first: Vec<(String, String)>,
}

/// A list's dimensions, length and first elements.
#[derive(Clone, Debug, PartialEq)]
pub struct ListState {
    /// Published length (holes included).
    pub len: usize,
    /// Elements at most.
    pub capacity: usize,
    /// Longest element, in bytes.
    pub elem_max: usize,
    /// Holes left by pushers that died.
    pub holes: usize,
    /// The first five elements, as text (`-` for a hole).
    pub first: Vec<String>,
}

/// The state of the map `entry` (any of its faces: they share one layout).
///
/// # Errors
/// As [`Segment::open_entry_as`].
pub fn map_state(seg: &Segment, entry: &EntryInfo) -> Result<MapState> {
    map_at(At::each(seg), entry)
}

pub(super) fn map_at(at: At<'_>, entry: &EntryInfo) -> Result<MapState> {
    let m = at.open::<ByteMap>(entry)?;
    let o = m.options();
    let (kt, vt) = split_pair(&entry.tag);
    let first = m
        .iter()
        .take(SHOWN)
        .map(|(k, v)| (show(&k, &kt), show(&v, &vt)))
        .collect();
    Ok(MapState {
        len: m.len(),
        capacity: o.capacity as usize,
        key_max: o.key_max as usize,
        value_max: o.value_max as usize,
        first,
    })
}

/// The state of the list `entry` (any of its faces).
///
/// # Errors
/// As [`Segment::open_entry_as`].
pub fn list_state(seg: &Segment, entry: &EntryInfo) -> Result<ListState> {
    list_at(At::each(seg), entry)
}

pub(super) fn list_at(at: At<'_>, entry: &EntryInfo) -> Result<ListState> {
    let l = at.open::<crate::ByteList>(entry)?;
    let ty = Elem::of(&entry.tag.type_name);
    let len = l.len();
    let first = (0..len.min(SHOWN))
        .map(|i| match l.get(i) {
            Ok(Some(b)) => show(&b, &ty),
            _ => "-".to_string(),
        })
        .collect();
    Ok(ListState {
        len,
        capacity: l.capacity(),
        elem_max: l.elem_max(),
        holes: l.holes(),
        first,
    })
}

impl fmt::Display for MapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} entries (keys ≤ {} B, values ≤ {} B)",
            self.len, self.capacity, self.key_max, self.value_max
        )?;
        if !self.first.is_empty() {
            let items: Vec<String> = self
                .first
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let more = if self.len > self.first.len() {
                ", …"
            } else {
                ""
            };
            write!(f, ": {{{}{more}}}", items.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for ListState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} elements (≤ {} B each)",
            self.len, self.capacity, self.elem_max
        )?;
        if self.holes != 0 {
            write!(f, ", {} holes", self.holes)?;
        }
        let more = if self.len > self.first.len() {
            ", …"
        } else {
            ""
        };
        write!(f, ": [{}{more}]", self.first.join(", "))
    }
}

/// How stored bytes of an element type are shown.
#[derive(Clone, Debug, PartialEq)]
enum Elem {
    /// A primitive number of that name.
    Number(String),
    /// A serde (postcard) encoding.
    Serde,
    /// Anything else: text if printable, else hex.
    Bytes,
}

impl Elem {
    fn of(name: &str) -> Elem {
        const NUMBERS: [&str; 12] = [
            "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64",
        ];
        if NUMBERS.contains(&name) {
            Elem::Number(name.to_string())
        } else if name.starts_with("shmkit::map::serde_depth::Serde<") {
            Elem::Serde
        } else {
            Elem::Bytes
        }
    }
}

/// The key and value types of a map's tag: `(K, V)` for plain-data maps, serde for serde maps.
fn split_pair(tag: &TypeTag) -> (Elem, Elem) {
    let name = tag.type_name.as_str();
    if name.starts_with("shmkit::map::serde_depth::Serde<") {
        return (Elem::Serde, Elem::Serde);
    }
    let inner = name.strip_prefix('(').and_then(|n| n.strip_suffix(')'));
    if let Some((k, v)) = inner.and_then(|n| n.split_once(", ")) {
        if !k.contains(['(', '[', '<']) {
            return (Elem::of(k), Elem::of(v));
        }
    }
    (Elem::Bytes, Elem::Bytes)
}

/// Stored bytes as text.
fn show(b: &[u8], ty: &Elem) -> String {
    macro_rules! num {
        ($name:expr, $($t:ty),*) => {$(
            if $name == core::any::type_name::<$t>() && b.len() == core::mem::size_of::<$t>() {
                return format!("{:?}", bytemuck::pod_read_unaligned::<$t>(b));
            }
        )*};
    }
    match ty {
        Elem::Number(n) => {
            num!(n, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);
        }
        Elem::Serde => {
            // A postcard string (varint length, then UTF-8): the common key of a serde dict.
            if let Some((&n, rest)) = b.split_first() {
                if n < 0x80 && rest.len() == n as usize {
                    if let Ok(s) = core::str::from_utf8(rest) {
                        return format!("{s:?}");
                    }
                }
            }
        }
        Elem::Bytes => {}
    }
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        return format!("{:?}", String::from_utf8_lossy(b));
    }
    let hex: String = b.iter().take(16).map(|c| format!("{c:02x}")).collect();
    format!("0x{hex}{}", if b.len() > 16 { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapOptions;

    fn entry(seg: &Segment, name: &str) -> EntryInfo {
        seg.entries()
            .unwrap()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap()
    }

    #[test]
    fn map_and_list_lines() {
        let seg = Segment::anonymous(1 << 20).unwrap();
        let m = seg.pod_map::<u32, f64>("scores", 10).unwrap();
        m.insert(&7, &2.5).unwrap();
        let st = map_state(&seg, &entry(&seg, "scores")).unwrap();
        assert_eq!(st.first, [("7".to_string(), "2.5".to_string())]);
        assert_eq!(
            st.to_string(),
            "1/10 entries (keys ≤ 4 B, values ≤ 8 B): {7: 2.5}"
        );
        let d = seg
            .map("d", MapOptions::new(4).key_max(8).value_max(8))
            .unwrap();
        d.insert(b"job", &[0, 1]).unwrap();
        let st = map_state(&seg, &entry(&seg, "d")).unwrap();
        assert_eq!(
            st.to_string(),
            "1/4 entries (keys ≤ 8 B, values ≤ 8 B): {\"job\": 0x0001}"
        );
        let l = seg.list::<i16>("l", 8).unwrap();
        for i in 0..7 {
            l.push(-i).unwrap();
        }
        let st = list_state(&seg, &entry(&seg, "l")).unwrap();
        assert_eq!(
            st.to_string(),
            "7/8 elements (≤ 2 B each): [0, -1, -2, -3, -4, …]"
        );
        assert_eq!(
            crate::inspect::state(&seg, &entry(&seg, "l"))
                .unwrap()
                .to_string(),
            st.to_string()
        );
    }
}
