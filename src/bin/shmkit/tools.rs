//! What the commands share: the `Target` of `stat`/`watch` and table printing (`ls`, `rm` and
//! `gc` are in `lifecycle.rs`; `stat.rs`, `watch.rs`, `export.rs` and `serve.rs` show what is
//! inside a segment).

use shmkit::{Segment, SegmentOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The segment a command looks at: a name in /dev/shm or a file path.
pub enum Target {
    /// A named segment.
    Named(String),
    /// A file-backed segment.
    File(PathBuf),
}

impl Target {
    /// From the `NAME` / `--file PATH` arguments (clap makes sure that one is given).
    pub fn new(name: Option<String>, file: Option<PathBuf>) -> Self {
        match (name, file) {
            (_, Some(p)) => Target::File(p),
            (Some(n), None) => Target::Named(n),
            (None, None) => Target::Named(String::new()),
        }
    }

    /// Opens it without waiting for a creator.
    pub fn open(&self) -> shmkit::Result<Segment> {
        // Do not wait for a creator: a tool shows what is there now. A tool only looks: it is
        // not a user of the segment (it does not keep a stale segment from `gc`).
        let opts = SegmentOptions::new()
            .wait_timeout(Duration::from_millis(100))
            .register(false);
        match self {
            Target::Named(n) => opts.open(n),
            Target::File(p) => opts.open_file(p),
        }
    }

    /// Its name or path, as shown.
    pub fn label(&self) -> String {
        match self {
            Target::Named(n) => n.clone(),
            Target::File(p) => p.display().to_string(),
        }
    }
}

/// Prints rows as left-aligned columns (the last column is not padded).
pub fn print_table(rows: &[Vec<String>], indent: &str) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        out.push_str(indent);
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push('\n');
    }
    print!("{out}");
}
