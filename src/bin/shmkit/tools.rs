//! `shmkit ls`, `stat`, `watch` and `rm`: looking at and cleaning up segments.

use crate::fmt::{self, CmdResult};
use shmkit::{Error, Segment, SegmentOptions};
use shmkit::{FORMAT_VERSION, MAGIC, SHM_DIR};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Marker in the names of the temporary files in which segments are built.
const INIT_MARK: &str = ".shmkit-init.";

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

    fn open(&self) -> shmkit::Result<Segment> {
        // Do not wait for a creator: a tool shows what is there now.
        let opts = SegmentOptions::new().wait_timeout(Duration::from_millis(100));
        match self {
            Target::Named(n) => opts.open(n),
            Target::File(p) => opts.open_file(p),
        }
    }

    fn label(&self) -> String {
        match self {
            Target::Named(n) => n.clone(),
            Target::File(p) => p.display().to_string(),
        }
    }
}

/// If `file_name` is a temporary file of a segment being created, the creator's pid.
fn init_file_pid(file_name: &str) -> Option<u32> {
    if !file_name.starts_with('.') {
        return None;
    }
    let rest = &file_name[file_name.rfind(INIT_MARK)? + INIT_MARK.len()..];
    let (pid, n) = rest.split_once('.')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn alive(pid: u32) -> &'static str {
    if shmkit::process::pid_alive(pid) {
        "yes"
    } else {
        "no"
    }
}

/// Prints rows as left-aligned columns (the last column is not padded).
fn print_table(rows: &[Vec<String>], indent: &str) {
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

/// `shmkit ls [--all]`.
pub fn ls(all: bool) -> CmdResult {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| format!("reading {SHM_DIR}: {e}"))?;
    let mut names: Vec<(String, std::fs::Metadata)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.path().symlink_metadata().ok()?;
            meta.is_file()
                .then(|| (e.file_name().to_string_lossy().into_owned(), meta))
        })
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let header = ["NAME", "SIZE", "OBJECTS", "CREATOR", "ALIVE", "AGE"];
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    let mut hidden = 0;
    for (name, meta) in names {
        let path = Path::new(SHM_DIR).join(&name);
        let mtime_age = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map_or("?".to_string(), fmt::age);
        if let Some(pid) = init_file_pid(&name) {
            if all {
                let state = if shmkit::process::pid_alive(pid) {
                    "temporary file of a segment being created"
                } else {
                    "leftover temporary file of a dead creator (shmkit rm removes it)"
                };
                rows.push(vec![
                    name,
                    fmt::bytes(meta.len()),
                    "-".into(),
                    pid.to_string(),
                    alive(pid).into(),
                    mtime_age,
                    state.into(),
                ]);
            } else {
                hidden += 1;
            }
            continue;
        }
        match SegmentOptions::new()
            .wait_timeout(Duration::ZERO)
            .open_file(&path)
        {
            Ok(seg) => {
                let (pid, created) = seg.creator();
                let objects = seg
                    .entries()
                    .map_or_else(|e| format!("error: {e}"), |v| v.len().to_string());
                rows.push(vec![
                    name,
                    fmt::bytes(seg.size()),
                    objects,
                    pid.to_string(),
                    if seg.creator_alive() { "yes" } else { "no" }.into(),
                    fmt::age(fmt::since(created)),
                ]);
            }
            Err(e) if all => rows.push(vec![
                name,
                fmt::bytes(meta.len()),
                "-".into(),
                "-".into(),
                "-".into(),
                mtime_age,
                e.to_string(),
            ]),
            Err(_) => hidden += 1,
        }
    }
    if rows.len() == 1 {
        println!("no shmkit segments in {SHM_DIR}");
    } else {
        print_table(&rows, "");
    }
    if hidden > 0 {
        println!("({hidden} other files in {SHM_DIR} not shown; `shmkit ls --all` shows them)");
    }
    Ok(0)
}

/// The text of `shmkit stat`.
fn stat_text(target: &Target, seg: &Segment) -> shmkit::Result<String> {
    let mut s = String::new();
    let path = seg
        .path()
        .map_or("<anonymous>".to_string(), |p| p.display().to_string());
    let (pid, created) = seg.creator();
    let entries = seg.entries()?;
    s.push_str(&format!("segment   {}  ({path})\n", target.label()));
    s.push_str(&format!(
        "size      {} ({} bytes), {} free\n",
        fmt::bytes(seg.size()),
        fmt::thousands(seg.size()),
        fmt::bytes(seg.free_bytes())
    ));
    s.push_str(&format!(
        "objects   {} of {} directory entries\n",
        entries.len(),
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
    if entries.is_empty() {
        s.push_str("\n(no objects)\n");
        return Ok(s);
    }
    let mut rows = vec![["NAME", "KIND", "TYPE", "OFFSET", "SIZE", "VALUE"]
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()];
    for e in &entries {
        let value = shmkit::inspect::describe(seg, e).unwrap_or_else(|err| format!("error: {err}"));
        let ty = if e.tag.type_name.is_empty() {
            "-".to_string()
        } else {
            e.tag.type_name.clone()
        };
        rows.push(vec![
            e.name.clone(),
            e.tag.kind.to_string(),
            ty,
            e.offset.to_string(),
            e.size.to_string(),
            value,
        ]);
    }
    s.push('\n');
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                s.push_str(cell);
            } else if c == 3 || c == 4 {
                s.push_str(&format!("{cell:>w$}  ", w = widths[c]));
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        s.push('\n');
    }
    Ok(s)
}

/// `shmkit stat NAME`.
pub fn stat(target: &Target) -> CmdResult {
    let seg = target.open()?;
    print!("{}", stat_text(target, &seg)?);
    Ok(0)
}

/// `shmkit watch NAME`.
pub fn watch(target: &Target, interval_ms: u64, count: Option<u64>) -> CmdResult {
    crate::signal::install();
    let tty = std::io::stdout().is_terminal();
    let mut shown = 0u64;
    let mut out = std::io::stdout();
    loop {
        let text = match target.open().and_then(|seg| stat_text(target, &seg)) {
            Ok(t) => t,
            // It was there and is gone: the watched program removed it.
            Err(Error::NotFound { .. }) if shown > 0 => {
                println!("segment {} was removed", target.label());
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        if tty {
            // Home the cursor, clear the screen, draw.
            let _ = write!(
                out,
                "\x1b[H\x1b[2J{text}\nrefreshed every {interval_ms} ms; Ctrl-C stops\n"
            );
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
        shown += 1;
        if count.is_some_and(|c| shown >= c) {
            return Ok(0);
        }
        let deadline = std::time::Instant::now() + Duration::from_millis(interval_ms);
        while std::time::Instant::now() < deadline {
            if crate::signal::interrupted() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(10).min(Duration::from_millis(interval_ms)));
        }
    }
}

/// Why `name` may or may not be removed.
enum Verdict {
    Segment(PathBuf),
    Leftover(PathBuf),
    Refuse(String),
}

fn judge(name: &str, force: bool) -> Result<Verdict, String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!(
            "invalid name {name:?}: give the name of a file in {SHM_DIR}"
        ));
    }
    let path = match init_file_pid(name) {
        Some(_) => Path::new(SHM_DIR).join(name),
        None => Segment::path_of(name).map_err(|e| e.to_string())?,
    };
    let meta = path.symlink_metadata().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: path.clone() }.to_string(),
        _ => format!("{}: {e}", path.display()),
    })?;
    if !meta.is_file() {
        return Ok(if force && meta.file_type().is_symlink() {
            Verdict::Leftover(path)
        } else {
            Verdict::Refuse(format!(
                "{} is not a regular file; not removing it",
                path.display()
            ))
        });
    }
    if let Some(pid) = init_file_pid(name) {
        return Ok(if !shmkit::process::pid_alive(pid) || force {
            Verdict::Leftover(path)
        } else {
            Verdict::Refuse(format!(
                "{} is being created by process {pid}, which is alive (use --force to remove it anyway)",
                path.display()
            ))
        });
    }
    // Every file under a final name was fully initialized before it was linked there, so the
    // magic in its first 8 bytes says whether it is a shmkit segment (of any format version).
    let mut magic = [0u8; 8];
    let is_shmkit = std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && u64::from_le_bytes(magic) == MAGIC;
    Ok(if is_shmkit {
        Verdict::Segment(path)
    } else if force {
        Verdict::Leftover(path)
    } else {
        Verdict::Refuse(format!(
            "{} is not a shmkit segment; not removing it (use --force to remove it anyway)",
            path.display()
        ))
    })
}

/// `shmkit rm NAME...`.
pub fn rm(names: &[String], force: bool) -> CmdResult {
    let mut failed = 0;
    for name in names {
        let result = judge(name, force).and_then(|v| match v {
            Verdict::Segment(p) | Verdict::Leftover(p) => match std::fs::remove_file(&p) {
                Ok(()) => Ok(p),
                Err(e) => Err(format!("removing {}: {e}", p.display())),
            },
            Verdict::Refuse(why) => Err(why),
        });
        match result {
            Ok(p) => println!("removed {}", p.display()),
            Err(e) => {
                eprintln!("shmkit: {e}");
                failed += 1;
            }
        }
    }
    Ok(i32::from(failed > 0))
}
