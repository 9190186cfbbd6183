//! The public face (issue 11, item 5 and 10): every public type is re-exported once at the crate
//! root and has a runnable example in its docs. The sources are read as text, like
//! `tests/sync_shim.rs` does: a new `pub struct`/`enum`/`trait`/`type` anywhere in `src/` fails
//! here until it is re-exported in `src/lib.rs` with an example (or listed below as internal,
//! with the reason).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Public types that are not the crate's API, each with why.
const INTERNAL: &[(&str, &str)] = &[
    (
        "Identity",
        "process identity: the #[doc(hidden)] `process` module",
    ),
    ("Deadline", "the #[doc(hidden)] `sync` shim"),
    ("Spin", "the #[doc(hidden)] `sync` shim"),
    (
        "Directory",
        "the directory algorithm, for the loom model (`internals`)",
    ),
    (
        "DirEntry",
        "the directory algorithm, for the loom model (`internals`)",
    ),
    (
        "Words",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Place",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Attach",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Damage",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Scan",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Claim",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "NoClaim",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    (
        "Decision",
        "the segment lifecycle protocol, for its loom models (`internals::life`)",
    ),
    ("Header", "the segment header, crate-internal"),
    ("Geometry", "the segment header, crate-internal"),
    ("State", "the segment header, crate-internal"),
    ("RawList", "the list protocol under List/ByteList/SerdeList"),
    (
        "Serde",
        "the element marker of serde maps and lists (a type name in the directory)",
    ),
    (
        "MapState",
        "`shmkit::inspect`, a public module of its own (checked below)",
    ),
    (
        "ListState",
        "`shmkit::inspect`, a public module of its own (checked below)",
    ),
    ("ReadmeDoctests", "cfg(doctest) only: the README's examples"),
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names `src/lib.rs` re-exports at the root (`pub use …;` before the `guide` module).
fn root_names(lib: &str) -> BTreeSet<String> {
    let head = lib.split("pub mod guide").next().unwrap();
    let mut names = BTreeSet::new();
    for part in head.split("pub use ").skip(1) {
        let stmt = part.split(';').next().unwrap();
        for word in stmt.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with(|c: char| c.is_ascii_uppercase()) {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// `(file, line, name, has_example)` for every `pub struct|enum|trait|type` in the files that
/// `keep` accepts.
fn public_types(src: &Path, keep: impl Fn(&Path) -> bool) -> Vec<(String, usize, String, bool)> {
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| keep(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let Some(rest) = [
                "pub struct ",
                "pub enum ",
                "pub trait ",
                "pub unsafe trait ",
                "pub type ",
            ]
            .iter()
            .find_map(|k| t.strip_prefix(k)) else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The doc block above it (attributes may sit between).
            let mut j = i;
            let mut example = false;
            while j > 0 {
                let above = lines[j - 1].trim_start();
                if above.starts_with("///") {
                    example |= above.contains("```");
                } else if !above.starts_with("#[") {
                    break;
                }
                j -= 1;
            }
            found.push((f.display().to_string(), i + 1, name, example));
        }
    }
    found
}

#[test]
fn every_public_type_is_at_the_root_with_an_example() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let root = root_names(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(
        root.contains("Segment") && root.contains("PopError"),
        "{root:?}"
    );
    let internal: BTreeSet<&str> = INTERNAL.iter().map(|(n, _)| *n).collect();
    let types = public_types(&src, |f| !outside_the_root(&src, f));
    assert!(types.len() > 40, "found the public types");
    let mut problems = Vec::new();
    for (file, line, name, example) in &types {
        if internal.contains(name.as_str()) {
            continue;
        }
        if !root.contains(name) {
            problems.push(format!(
                "{file}:{line}: {name} is public but not re-exported at the crate root \
                 (add it to src/lib.rs, or to INTERNAL here with the reason)"
            ));
        } else if !example {
            problems.push(format!("{file}:{line}: {name} has no example in its docs"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `src/bin` (the tool) and the two public modules of their own, `shmkit::inspect` (structured
/// state, for tools) and `shmkit::export` (metrics exposition): their items have one path each,
/// under their module, rather than the crate root.
fn outside_the_root(src: &Path, f: &Path) -> bool {
    f.starts_with(src.join("bin"))
        || f.starts_with(src.join("inspect"))
        || f.ends_with("src/inspect.rs")
        || f.starts_with(src.join("export"))
}

#[test]
fn the_tool_modules_document_their_types() {
    // `shmkit::inspect` and `shmkit::export`: every public type has an example in its docs or in
    // its module's (the module example shows `report` and the `State` it returns).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let types = public_types(&src, |f| {
        outside_the_root(&src, f) && !f.starts_with(src.join("bin"))
    });
    let names: BTreeSet<&str> = types.iter().map(|t| t.2.as_str()).collect();
    for must in ["State", "ObjectReport", "Metrics", "Format"] {
        assert!(names.contains(must), "{must} not found in {names:?}");
    }
    let module_examples = ["State", "ObjectReport", "Number", "Reading", "Positions"];
    let missing: Vec<String> = types
        .iter()
        .filter(|(_, _, name, example)| {
            !example
                && !module_examples.contains(&name.as_str())
                && !["MapState", "ListState"].contains(&name.as_str())
        })
        .map(|(f, l, n, _)| format!("{f}:{l}: {n} has no example in its docs"))
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
