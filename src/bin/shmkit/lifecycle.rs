//! `shmkit ls`, `rm` and `gc`: which segments exist, who uses them, and removing them safely.
//!
//! A segment's users are the live processes in its user table (`Segment::users`); a segment
//! with none (and no unknown users) is **stale**. `rm` removes a stale segment and refuses one
//! in use unless `--force`; `gc` removes every stale one. Both go through
//! `Segment::remove_if_stale`, so of several cleaners racing exactly one removes a segment, and
//! one that gains a user during the check is kept.

use crate::fmt::{self, CmdResult};
use crate::tools::print_table;
use shmkit::{DraftFile, Error, Removal, Segment, SegmentOptions, Users};
use shmkit::{MAGIC, SHM_DIR};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options for looking: no wait for creators, and the tool is not a user.
fn observer() -> SegmentOptions {
    SegmentOptions::new()
        .wait_timeout(Duration::from_millis(100))
        .register(false)
}

/// The regular files in /dev/shm, sorted by name.
fn shm_files() -> Result<Vec<(String, std::fs::Metadata)>, String> {
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
    Ok(names)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The USERS column: `2`, or `2+1?` with unknown users.
fn users_cell(u: &Users) -> String {
    if u.unknown > 0 {
        format!("{}+{}?", u.live.len(), u.unknown)
    } else {
        u.live.len().to_string()
    }
}

fn users_json(u: &Users) -> String {
    let list: Vec<String> = u
        .live
        .iter()
        .map(|x| format!("{{\"pid\":{},\"foreign\":{}}}", x.pid, x.foreign))
        .collect();
    format!(
        "\"users\":[{}],\"unknown_users\":{},\"stale\":{}",
        list.join(","),
        u.unknown,
        u.is_stale()
    )
}

/// `shmkit ls [--all] [--json]`.
pub fn ls(all: bool, json: bool) -> CmdResult {
    let header = [
        "NAME", "SIZE", "OBJECTS", "CREATOR", "ALIVE", "USERS", "STALE", "AGE",
    ];
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    let mut lines = Vec::new();
    let mut hidden = 0;
    for (name, meta) in shm_files()? {
        let path = Path::new(SHM_DIR).join(&name);
        let mtime_age = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map_or("?".to_string(), fmt::age);
        if let Some(draft) = DraftFile::parse(&name) {
            if !all {
                hidden += 1;
                continue;
            }
            let pid = draft.creator_pid;
            let live = draft.creator_alive();
            let state = if live {
                "temporary file of a segment being created"
            } else {
                "leftover temporary file of a dead creator (shmkit rm and gc remove it)"
            };
            lines.push(format!(
                "{{\"name\":{},\"kind\":\"temporary\",\"size\":{},\"creator_pid\":{pid},\
                 \"creator_alive\":{live},\"stale\":{}}}",
                json_str(&name),
                meta.len(),
                !live
            ));
            rows.push(vec![
                name,
                fmt::bytes(meta.len()),
                "-".into(),
                pid.to_string(),
                if live { "yes" } else { "no" }.into(),
                "-".into(),
                if live { "no" } else { "yes" }.into(),
                mtime_age,
                state.into(),
            ]);
            continue;
        }
        match observer().wait_timeout(Duration::ZERO).open_file(&path) {
            Ok(seg) => {
                let (pid, created) = seg.creator();
                let entries = seg.entries();
                let users = seg.users();
                lines.push(format!(
                    "{{\"name\":{},\"kind\":\"segment\",\"size\":{},\"objects\":{},\
                     \"creator_pid\":{pid},\"creator_alive\":{},\"created_unix_ns\":{created},{}}}",
                    json_str(&name),
                    seg.size(),
                    entries
                        .as_ref()
                        .map_or_else(|e| json_str(&e.to_string()), |v| v.len().to_string()),
                    seg.creator_alive(),
                    users_json(&users)
                ));
                rows.push(vec![
                    name,
                    fmt::bytes(seg.size()),
                    entries.map_or_else(|e| format!("error: {e}"), |v| v.len().to_string()),
                    pid.to_string(),
                    if seg.creator_alive() { "yes" } else { "no" }.into(),
                    users_cell(&users),
                    if users.is_stale() { "yes" } else { "no" }.into(),
                    fmt::age(fmt::since(created)),
                ]);
            }
            Err(e) if all => {
                lines.push(format!(
                    "{{\"name\":{},\"kind\":\"other\",\"size\":{},\"error\":{}}}",
                    json_str(&name),
                    meta.len(),
                    json_str(&e.to_string())
                ));
                rows.push(vec![
                    name,
                    fmt::bytes(meta.len()),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    mtime_age,
                    e.to_string(),
                ]);
            }
            Err(_) => hidden += 1,
        }
    }
    if json {
        // JSON Lines: one object per file, nothing else on stdout.
        let mut out = String::new();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
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

/// What `name` in /dev/shm is, for removal.
enum Verdict {
    /// A shmkit segment (by its magic).
    Segment(PathBuf),
    /// Something to unlink as it is (a creator's leftover temporary file; with `--force`,
    /// anything).
    Leftover(PathBuf),
    /// Not to be removed, and why.
    Refuse(String),
}

fn judge(name: &str, force: bool) -> Result<Verdict, String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!(
            "invalid name {name:?}: give the name of a file in {SHM_DIR}"
        ));
    }
    let path = match DraftFile::parse(name) {
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
    if let Some(draft) = DraftFile::parse(name) {
        let pid = draft.creator_pid;
        return Ok(if !draft.creator_alive() || force {
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

fn pids(u: &Users) -> String {
    let mut v: Vec<String> = u.live.iter().map(|x| x.pid.to_string()).collect();
    if u.unknown > 0 {
        v.push(format!("{} unknown", u.unknown));
    }
    v.join(", ")
}

/// Removes the segment `name` if stale (or whatever its users with `force`).
fn remove_segment(name: &str, path: &Path, force: bool) -> Result<(), String> {
    if force {
        return Segment::remove(name).map_err(|e| e.to_string());
    }
    match observer().remove_if_stale(name) {
        Ok(Removal::Removed) => Ok(()),
        Ok(Removal::InUse(u)) => Err(format!(
            "{} is in use by {} live process{} ({}); not removing it (use --force to remove it \
             anyway)",
            path.display(),
            u.count(),
            if u.count() == 1 { "" } else { "es" },
            pids(&u)
        )),
        Ok(Removal::Busy { cleaner_pid }) => Err(format!(
            "{} is being removed by process {cleaner_pid}; not removing it",
            path.display()
        )),
        Ok(Removal::Gone) => Err(Error::NotFound {
            path: path.to_path_buf(),
        }
        .to_string()),
        Err(e) => Err(format!(
            "cannot tell who uses {}: {e}; not removing it (use --force to remove it anyway)",
            path.display()
        )),
    }
}

/// `shmkit rm [--force] NAME...`.
pub fn rm(names: &[String], force: bool) -> CmdResult {
    let mut failed = 0;
    for name in names {
        let result = judge(name, force).and_then(|v| match v {
            Verdict::Segment(p) => remove_segment(name, &p, force).map(|()| p),
            Verdict::Leftover(p) => match std::fs::remove_file(&p) {
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

/// `shmkit gc [--dry-run] [--prefix P]`: removes every stale segment (whose name starts with
/// `prefix`) and every leftover temporary file of a dead creator. Segments it cannot judge
/// (another format version, damaged) are left alone.
pub fn gc(dry_run: bool, prefix: &str) -> CmdResult {
    let mut found = 0u32;
    let mut failed = 0u32;
    let verb = if dry_run { "would remove" } else { "removed" };
    for (name, _) in shm_files()? {
        let path = Path::new(SHM_DIR).join(&name);
        if let Some(draft) = DraftFile::parse(&name) {
            // `.NAME.shmkit-init.PID.N`: judged by the segment's name.
            if draft.creator_alive() || !draft.segment.starts_with(prefix) {
                continue;
            }
            found += 1;
            if !dry_run {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        eprintln!("shmkit: removing {}: {e}", path.display());
                        failed += 1;
                    }
                    continue;
                }
            }
            println!(
                "{verb} {} (temporary file of dead process {})",
                path.display(),
                draft.creator_pid
            );
            continue;
        }
        let Ok(seg) = observer().wait_timeout(Duration::ZERO).open_file(&path) else {
            continue;
        };
        if !seg.users().is_stale() {
            continue;
        }
        drop(seg);
        if dry_run {
            found += 1;
            println!("{verb} {} (no live user)", path.display());
            continue;
        }
        match observer().remove_if_stale(&name) {
            Ok(Removal::Removed) => {
                found += 1;
                println!("{verb} {} (no live user)", path.display());
            }
            // Gained a user, another cleaner is on it or removed it first: not ours to report.
            Ok(Removal::InUse(_) | Removal::Busy { .. } | Removal::Gone) => {}
            Err(e) => {
                eprintln!("shmkit: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    if found == 0 {
        println!("no stale segments in {SHM_DIR}");
    }
    Ok(i32::from(failed > 0))
}
