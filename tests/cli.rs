//! The `shmkit` command-line tool, run as a real binary.
#![cfg(not(feature = "loom"))]

use shmkit::Segment;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SHMKIT: &str = env!("CARGO_BIN_EXE_shmkit");

/// A unique segment name for this test, removed (if still there) when dropped.
struct Name(String);

impl Name {
    fn new(test: &str) -> Name {
        static N: AtomicU32 = AtomicU32::new(0);
        Name(format!(
            "shmkit-cli-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
    fn path(&self) -> PathBuf {
        Path::new("/dev/shm").join(&self.0)
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

fn shmkit(args: &[&str]) -> Output {
    Command::new(SHMKIT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running shmkit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command failed with exit code 1 and printed exactly one line `shmkit: ...` containing
/// `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("shmkit: "), "got: {err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

/// The value in the line of `out` that starts with `label` (after spaces), as a number.
fn number_after(out: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in:\n{out}"));
    line[line.find(label).unwrap() + label.len()..]
        .trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Processes whose command line contains `needle` (the demo's workers name their segment).
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = text(&cmd).replace('\0', " ");
            if cmd.contains("__worker") && cmd.contains(needle) && shmkit::process::pid_alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a file with mode 0600 whatever the umask: a file others may write is refused as
/// untrusted before its contents are looked at.
fn write_private(
    path: impl AsRef<std::path::Path>,
    bytes: impl AsRef<[u8]>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes.as_ref())
}

#[test]
fn demo_counts_exactly_and_removes_its_segment() {
    let name = Name::new("demo");
    let out = shmkit(&[
        "demo",
        "--workers",
        "2",
        "--increments",
        "20000",
        "--name",
        &name.0,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(number_after(&stdout, "sum of the worker counters"), 40_000);
    assert_eq!(number_after(&stdout, "Counter \"total\""), 40_000);
    assert_eq!(number_after(&stdout, "ShardedCounter \"sharded\""), 40_000);
    assert_eq!(number_after(&stdout, "Mutex<u64> \"locked_total\""), 40_000);
    assert_eq!(number_after(&stdout, "expected 2 x 20,000"), 40_000);
    assert!(stdout.contains("check: OK"), "{stdout}");
    for i in 0..2 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("worker.{i} ")))
            .unwrap_or_else(|| panic!("no worker.{i} line in {stdout}"));
        assert!(line.trim_end().ends_with("20,000"), "{line}");
    }
    assert!(stdout.contains("std::sync::Mutex"), "{stdout}");
    assert!(stdout.contains("ns/increment"), "{stdout}");
    assert!(!name.path().exists(), "the demo left its segment behind");
    assert!(processes_with(&name.0).is_empty(), "workers left running");
}

#[test]
fn demo_for_a_time_agrees_with_itself() {
    let name = Name::new("seconds");
    let out = shmkit(&[
        "demo",
        "--workers",
        "2",
        "--seconds",
        "0.3",
        "--name",
        &name.0,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let sum = number_after(&stdout, "sum of the worker counters");
    assert!(sum > 0);
    assert_eq!(number_after(&stdout, "Counter \"total\""), sum);
    assert_eq!(number_after(&stdout, "ShardedCounter \"sharded\""), sum);
    assert_eq!(number_after(&stdout, "Mutex<u64> \"locked_total\""), sum);
    assert!(stdout.contains("check: OK"), "{stdout}");
    assert!(!name.path().exists());
}

/// Kills and reaps a child still running when dropped (a failed assertion must not leave it).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// The count shown by a progress line of the Mutex phase
/// (`  Mutex<u64>      running   1.53 s      1,310,973 / 12,148,736 (11%)  858.2 k/s`).
fn mutex_progress(line: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["Mutex<u64>", "running", _, "s", count, ..] => count.replace(',', "").parse().ok(),
        _ => None,
    }
}

/// The progress of the Mutex phase is read without taking the lock the workers take: while
/// another process holds that lock (here: this test, as a slow worker would), the line keeps
/// showing the count reached so far. It used to peek with `try_lock` and show 0 whenever the
/// lock was busy.
#[test]
fn demo_mutex_progress_does_not_drop_to_zero_while_the_lock_is_held() {
    let name = Name::new("progress");
    let mut demo = Reap(
        Command::new(SHMKIT)
            .args(["demo", "--workers", "2", "--increments", "1000000"])
            .args(["--name", &name.0])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Lines as they come (stdout is a pipe: a progress line every 500 ms).
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let t = Instant::now();
    let deadline = |seen: &[String]| {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the Mutex phase never got under way:\n{}",
            seen.join("\n")
        );
    };
    let lock = loop {
        deadline(&seen);
        seen.extend(lines.try_iter());
        let open = Segment::open(&name.0)
            .and_then(|seg| seg.open_object::<shmkit::Mutex<u64>>("locked_total"));
        if let Ok(m) = open {
            break m;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // Wait until the workers have done well over a batch each under the lock, then take it.
    let (guard, held_at) = loop {
        deadline(&seen);
        seen.extend(lines.try_iter());
        if let Ok(g) = lock.try_lock() {
            if *g >= 100_000 {
                let v = *g;
                break (g, v);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // Hold it (as a slow worker would) until the demo printed three progress lines.
    let mut during = Vec::new();
    let t = Instant::now();
    while during.len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no progress lines while the lock was held"
        );
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            if let Some(c) = mutex_progress(&line) {
                during.push((c, line));
            }
        }
    }
    drop(guard);
    // The first line may have left the demo just before the lock was taken; the others were
    // printed while it was held.
    for (count, line) in &during[1..] {
        assert!(
            *count > 0 && *count <= held_at,
            "progress while the lock was held at {held_at}: {line:?}"
        );
    }
    let status = demo.0.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    assert!(status.success(), "{}", seen.join("\n"));
    assert!(
        seen.iter().any(|l| l.contains("check: OK")),
        "{}",
        seen.join("\n")
    );
    assert!(!name.path().exists(), "the demo left its segment behind");
}

#[test]
fn demo_refuses_an_existing_name_and_leaves_it_alone() {
    let name = Name::new("taken");
    let seg = Segment::create(&name.0, 1 << 20).unwrap();
    seg.counter("mine").unwrap().add(5);
    let out = shmkit(&["demo", "--workers", "1", "--name", &name.0]);
    assert_one_line_error(&out, "already exists");
    assert!(
        name.path().exists(),
        "the demo removed a segment it did not create"
    );
    assert_eq!(
        Segment::open(&name.0)
            .unwrap()
            .counter("mine")
            .unwrap()
            .load(),
        5
    );
}

#[test]
fn demo_interrupted_stops_workers_and_removes_segment() {
    let name = Name::new("sigint");
    let mut demo = Command::new(SHMKIT)
        .args([
            "demo",
            "--workers",
            "2",
            "--seconds",
            "60",
            "--name",
            &name.0,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both workers run.
    let mut started = false;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(seg) = Segment::open(&name.0) {
            if seg.counter("total").map(|c| c.load() > 0).unwrap_or(false) {
                started = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !started {
        let _ = demo.kill();
        let _ = demo.wait();
        panic!("the demo's workers did not start");
    }
    assert_eq!(processes_with(&name.0).len(), 2);
    // SAFETY: sending SIGINT to our own child, whose pid we hold (not yet reaped).
    unsafe { libc::kill(demo.id() as libc::pid_t, libc::SIGINT) };
    let out = demo.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(text(&out.stderr).contains("interrupted"));
    assert!(!name.path().exists(), "segment left behind after Ctrl-C");
    assert!(processes_with(&name.0).is_empty(), "workers left running");
}

#[test]
fn workers_die_with_a_killed_demo() {
    let name = Name::new("sigkill");
    let mut demo = Command::new(SHMKIT)
        .args([
            "demo",
            "--workers",
            "2",
            "--seconds",
            "60",
            "--name",
            &name.0,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("workers", Duration::from_secs(20), || {
        processes_with(&name.0).len() == 2
    });
    let workers = processes_with(&name.0);
    demo.kill().unwrap();
    demo.wait().unwrap();
    // Dead as the library judges it (exited or a zombie), not merely gone from the command-line
    // scan: an exiting process's cmdline reads empty before it has finished dying, and `rm`
    // would then still count it as a live user.
    wait_until("workers to die", Duration::from_secs(5), || {
        workers.iter().all(|&p| !shmkit::process::pid_alive(p))
    });
    // A killed demo cannot remove its segment; `shmkit rm` can.
    assert!(name.path().exists());
    let out = shmkit(&["rm", &name.0]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!name.path().exists());
}

/// `shmkit stat` shows a map's and a list's size, capacity and first entries.
#[test]
fn stat_shows_maps_and_lists() {
    let name = Name::new("statmap");
    let seg = Segment::create(&name.0, 1 << 20).unwrap();
    let scores = seg.pod_map::<u32, f64>("scores", 10).unwrap();
    scores.insert(&7, &2.5).unwrap();
    let d = seg
        .map("dict", shmkit::MapOptions::new(4).key_max(8).value_max(8))
        .unwrap();
    d.insert(b"job", b"done").unwrap();
    let l = seg.list::<i16>("l", 8).unwrap();
    for i in 0..7 {
        l.push(-i).unwrap();
    }
    let out = shmkit(&["stat", &name.0]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = |obj: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{obj} ")))
            .unwrap_or_else(|| panic!("no row {obj} in:\n{stdout}"))
            .to_string()
    };
    assert!(
        row("scores").ends_with("1/10 entries (keys ≤ 4 B, values ≤ 8 B): {7: 2.5}"),
        "{stdout}"
    );
    assert!(row("dict").contains("1/4 entries"), "{stdout}");
    assert!(row("dict").contains("\"job\": \"done\""), "{stdout}");
    assert!(
        row("l").ends_with("7/8 elements (≤ 2 B each): [0, -1, -2, -3, -4, …]"),
        "{stdout}"
    );
}

#[test]
fn stat_ls_and_rm_a_segment() {
    let name = Name::new("stat");
    let seg = Segment::create(&name.0, 1 << 20).unwrap();
    seg.counter("hits").unwrap().add(7);
    seg.value::<f64>("temp", 21.5).unwrap();
    seg.sharded_counter("events").unwrap().add(3);

    let out = shmkit(&["stat", &name.0]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains(&name.0));
    assert!(
        stdout.contains(&format!("pid {} (alive)", std::process::id())),
        "{stdout}"
    );
    assert!(stdout.contains("3 of 64 directory entries"), "{stdout}");
    let row = |obj: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{obj} ")))
            .unwrap_or_else(|| panic!("no row {obj} in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let hits = row("hits");
    assert_eq!(hits[1], "counter");
    assert_eq!(hits[5], "7");
    let temp = row("temp");
    assert_eq!((temp[1].as_str(), temp[2].as_str()), ("value", "f64"));
    assert_eq!(temp[5], "21.5");
    assert_eq!(row("events")[5], "3");

    // The value changes and stat shows it.
    seg.counter("hits").unwrap().add(1);
    let stdout = text(&shmkit(&["stat", &name.0]).stdout);
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("hits ") && l.ends_with(" 8")));

    let out = shmkit(&["watch", &name.0, "--count", "2", "--interval", "20"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).matches("segment   ").count(), 2);

    let ls = text(&shmkit(&["ls"]).stdout);
    let line = ls
        .lines()
        .find(|l| l.starts_with(&format!("{} ", name.0)))
        .unwrap_or_else(|| panic!("{} not listed:\n{ls}", name.0));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1..4], ["1.0", "MiB", "3"], "{line}");
    assert_eq!(cols[4], std::process::id().to_string());
    assert_eq!(cols[5], "yes");
    // One user (this process; the tool only looks), so not stale.
    assert_eq!(cols[6..8], ["1", "no"], "{line}");

    // In use: refused, and left in place.
    let out = shmkit(&["rm", &name.0]);
    assert_one_line_error(&out, "in use by 1 live process");
    assert!(text(&out.stderr).contains(&std::process::id().to_string()));
    assert!(name.path().exists());
    let out = shmkit(&["rm", "--force", &name.0]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!name.path().exists());
    // Our mapping keeps working after the name is gone.
    assert_eq!(seg.counter("hits").unwrap().load(), 8);
    let ls = text(&shmkit(&["ls"]).stdout);
    assert!(!ls.contains(&name.0));
    // Removing it again: an error.
    assert_one_line_error(&shmkit(&["rm", &name.0]), "does not exist");
}

#[test]
fn stat_of_a_file_backed_segment() {
    let dir = std::env::temp_dir().join(format!("shmkit-cli-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stats.shm");
    let seg = Segment::file(&path, 1 << 16).unwrap();
    seg.counter("saved").unwrap().add(42);
    let out = shmkit(&["stat", "--file", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("saved ") && l.ends_with(" 42")),
        "{stdout}"
    );
}

#[test]
fn errors_are_one_line() {
    let missing = Name::new("missing");
    assert_one_line_error(&shmkit(&["stat", &missing.0]), "does not exist");
    assert_one_line_error(&shmkit(&["watch", &missing.0]), "does not exist");
    assert_one_line_error(&shmkit(&["stat", "bad/name"]), "invalid name");

    // A file that is not a shmkit segment.
    let garbage = Name::new("garbage");
    write_private(garbage.path(), vec![0xA5u8; 8192]).unwrap();
    assert_one_line_error(&shmkit(&["stat", &garbage.0]), "not a shmkit segment");
    let ls = text(&shmkit(&["ls"]).stdout);
    assert!(!ls.contains(&garbage.0), "ls lists a foreign file:\n{ls}");
    let ls = text(&shmkit(&["ls", "--all"]).stdout);
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&garbage.0) && l.contains("not a shmkit segment")),
        "{ls}"
    );
    assert_one_line_error(&shmkit(&["rm", &garbage.0]), "--force");
    assert!(garbage.path().exists(), "rm removed a foreign file");
    assert!(shmkit(&["rm", "--force", &garbage.0]).status.success());
    assert!(!garbage.path().exists());

    // Usage errors: exit code 2.
    assert_eq!(shmkit(&["stat"]).status.code(), Some(2));
    assert_eq!(shmkit(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(shmkit(&["demo", "--workers", "0"]).status.code(), Some(2));
}

#[test]
fn leftover_temporary_files_are_shown_and_removed() {
    // A pid that is dead: a child we started and reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let base = Name::new("leftover");
    let file = format!(".{}.shmkit-init.{dead}.0", base.0);
    let path = Path::new("/dev/shm").join(&file);
    write_private(&path, vec![0u8; 4096]).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(path.clone());
    assert!(!text(&shmkit(&["ls"]).stdout).contains(&file));
    let ls = text(&shmkit(&["ls", "--all"]).stdout);
    if !shmkit::process::pid_alive(dead) {
        assert!(
            ls.lines()
                .any(|l| l.starts_with(&file) && l.contains("dead creator")),
            "{ls}"
        );
    }
    let out = shmkit(&["rm", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!path.exists());
}

#[test]
fn ls_shows_users_and_gc_removes_only_stale_segments() {
    let prefix = format!("shmkit-cli-gc-{}-", std::process::id());
    let stale = Name::new("gc");
    let used = Name::new("gc");
    drop(Segment::create(&stale.0, 1 << 16).unwrap());
    let held = Segment::create(&used.0, 1 << 16).unwrap();

    let ls = text(&shmkit(&["ls"]).stdout);
    let cols = |name: &str| -> Vec<String> {
        ls.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{ls}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // NAME SIZE(2) OBJECTS CREATOR ALIVE USERS STALE AGE
    assert_eq!(cols(&stale.0)[6..8], ["0", "yes"]);
    assert_eq!(cols(&used.0)[6..8], ["1", "no"]);

    // JSON Lines: one object per segment, nothing else.
    let out = shmkit(&["ls", "--json"]);
    assert!(out.status.success());
    let json = text(&out.stdout);
    assert!(json.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
    let line = |name: &str| -> String {
        json.lines()
            .find(|l| l.contains(&format!("\"name\":\"{name}\"")))
            .unwrap_or_else(|| panic!("{name} not in:\n{json}"))
            .to_string()
    };
    assert!(
        line(&stale.0).contains("\"users\":[],\"unknown_users\":0,\"stale\":true"),
        "{}",
        line(&stale.0)
    );
    let me = format!(
        "\"users\":[{{\"pid\":{},\"foreign\":false}}]",
        std::process::id()
    );
    assert!(line(&used.0).contains(&me), "{}", line(&used.0));
    assert!(line(&used.0).contains("\"stale\":false"));

    // A dry run lists the stale one and removes nothing.
    let out = shmkit(&["gc", "--dry-run", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("would remove /dev/shm/{}", stale.0)),
        "{said}"
    );
    assert!(!said.contains(&used.0), "{said}");
    assert!(stale.path().exists() && used.path().exists());

    let out = shmkit(&["gc", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed /dev/shm/{}", stale.0)));
    assert!(!stale.path().exists(), "gc left the stale segment");
    assert!(used.path().exists(), "gc removed a segment in use");
    drop(held);
    // Now stale too: a plain `rm` takes it.
    let out = shmkit(&["rm", &used.0]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!used.path().exists());
}
