//! `docs/FORMAT.md`'s directory-entry table, pinned to `DirEntry`.

use super::DirEntry;
use core::mem::{offset_of, size_of};

#[test]
fn the_documented_entry_table_matches_the_code() {
    let code = [
        (offset_of!(DirEntry, state), 8, "state"),
        (offset_of!(DirEntry, claimer_start), 8, "claimer_start"),
        (offset_of!(DirEntry, kind), 8, "kind"),
        (offset_of!(DirEntry, elem), 8, "elem"),
        (offset_of!(DirEntry, len), 8, "len"),
        (offset_of!(DirEntry, extra), 8, "extra"),
        (offset_of!(DirEntry, offset), 8, "offset"),
        (offset_of!(DirEntry, size), 8, "size"),
        (offset_of!(DirEntry, type_hash), 8, "type_hash"),
        (offset_of!(DirEntry, lens), 8, "lens"),
        (offset_of!(DirEntry, name), super::NAME_MAX, "name"),
        (
            offset_of!(DirEntry, type_name),
            crate::object::TYPE_NAME_MAX,
            "type_name",
        ),
        (offset_of!(DirEntry, _reserved), 16, "_reserved"),
    ];
    let code: Vec<(usize, usize, String)> = code
        .iter()
        .map(|&(o, s, n)| (o, s, n.to_string()))
        .collect();
    assert_eq!(crate::segment::header::format_doc_table("entry"), code);
    let last = code.last().unwrap();
    assert_eq!(last.0 + last.1, size_of::<DirEntry>());
}
