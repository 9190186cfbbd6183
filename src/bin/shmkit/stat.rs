//! `shmkit stat NAME [--json]`: a segment's header and every object with its current state.

use crate::fmt::{self, CmdResult};
use crate::tools::Target;
use shmkit::inspect::{self, ObjectReport};
use shmkit::Segment;
use shmkit::FORMAT_VERSION;

/// The header lines of `stat` and `watch`.
pub fn header(label: &str, seg: &Segment, objects: usize) -> String {
    let mut s = String::new();
    let path = seg
        .path()
        .map_or("<anonymous>".to_string(), |p| p.display().to_string());
    let (pid, created) = seg.creator();
    s.push_str(&format!("segment   {label}  ({path})\n"));
    s.push_str(&format!(
        "size      {} ({} bytes), {} free\n",
        fmt::bytes(seg.size()),
        fmt::thousands(seg.size()),
        fmt::bytes(seg.free_bytes())
    ));
    s.push_str(&format!(
        "objects   {objects} of {} directory entries\n",
        seg.dir_capacity()
    ));
    let state = if seg.creator_alive() {
        "alive"
    } else {
        "exited"
    };
    s.push_str(&format!(
        "creator   pid {pid} ({state}), created {} ({} ago)\n",
        fmt::utc(created),
        fmt::age(fmt::since(created))
    ));
    s.push_str(&format!("format    version {FORMAT_VERSION}\n"));
    s
}

/// Rows as columns: the columns in `right` are right-aligned, the last one is not padded.
pub fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let mut s = String::new();
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                s.push_str(cell);
            } else if right.contains(&c) {
                s.push_str(&format!("{cell:>w$}  ", w = widths[c]));
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        s.push('\n');
    }
    s
}

/// The type column: `-` for kinds without an element type.
pub fn type_cell(r: &ObjectReport) -> String {
    if r.type_name.is_empty() {
        "-".to_string()
    } else {
        r.type_name.clone()
    }
}

/// The text of `shmkit stat`.
fn text(label: &str, seg: &Segment, objects: &[ObjectReport]) -> String {
    let mut s = header(label, seg, objects.len());
    if objects.is_empty() {
        s.push_str("\n(no objects)\n");
        return s;
    }
    let mut rows = vec![["NAME", "KIND", "TYPE", "OFFSET", "SIZE", "VALUE"]
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()];
    for r in objects {
        let value = match &r.state {
            Ok(st) => st.to_string(),
            Err(err) => format!("error: {err}"),
        };
        rows.push(vec![
            r.name.clone(),
            r.kind.to_string(),
            type_cell(r),
            r.offset.to_string(),
            r.size.to_string(),
            value,
        ]);
    }
    s.push('\n');
    s.push_str(&table(&rows, &[3, 4]));
    s
}

/// `shmkit stat NAME [--json]`.
pub fn stat(target: &Target, json: bool) -> CmdResult {
    let seg = target.open()?;
    let objects = inspect::report(&seg)?;
    if json {
        println!("{}", crate::json::segment(&target.label(), &seg, &objects));
    } else {
        print!("{}", text(&target.label(), &seg, &objects));
    }
    Ok(0)
}
