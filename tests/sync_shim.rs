//! Enforces rule 2 of ARCHITECTURE.md's "Rules for shared memory": every atomic, fence and futex
//! call comes from the shim in `src/sync/`, so that the `loom` feature swaps all of them.
//! (clippy's `disallowed-types` cannot express "except through this one module": it sees through
//! the re-export and flags every use.)

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "core::sync::atomic",
    "std::sync::atomic",
    "loom::",
    "SYS_futex",
    "read_volatile",
    "write_volatile",
];

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn atomics_only_through_the_sync_shim() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let shim = src.join("sync");
    // The CLI is a user of the crate: its own flags (the signal handler's) are process-local
    // and never run under loom.
    let bin = src.join("bin");
    let mut files = Vec::new();
    walk(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let mut bad = Vec::new();
    for f in files {
        if f.starts_with(&shim) || f.starts_with(&bin) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in FORBIDDEN {
                if code.contains(pat) {
                    bad.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "use crate::sync instead:\n{}",
        bad.join("\n")
    );
}
