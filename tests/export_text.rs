//! The exposition's exact text for a segment that exercises every naming rule: names that
//! sanitize alike (joined into one family, even far apart and across segments), a counter named
//! `…_total`, clashes with another type's family and with a counter's sample names (the kind
//! appended, then a number), escaping, pipes' `direction`, rings' `lost`, locks, an unreadable
//! segment. The expected text was produced by the renderer before it was rewritten as a single
//! pass (commit a244bf7), so it pins that the rewrite changed no byte.
#![cfg(not(feature = "loom"))]

mod common;

use common::TempDir;
use shmkit::export::{Format, Metrics};
use shmkit::Segment;
use std::os::unix::fs::FileExt;

fn segments() -> (Segment, Segment) {
    let a = Segment::anonymous(1 << 20).unwrap();
    a.counter("requests").unwrap().add(3);
    a.value::<f64>("a.b", 1.5).unwrap();
    a.counter("requests_total").unwrap().add(4);
    a.counter("x").unwrap().add(1);
    a.value::<u64>("x_total", 7).unwrap();
    a.value::<i32>("y_total", -2).unwrap();
    a.counter("y").unwrap().add(2);
    a.value::<u64>("z", 5).unwrap();
    a.counter("t").unwrap();
    a.value::<u64>("t_created", 1).unwrap();
    a.value::<u64>("u_created", 2).unwrap();
    a.counter("u").unwrap();
    a.counter("v").unwrap();
    a.counter("v_value").unwrap().add(9);
    a.value::<u64>("a-b", 2).unwrap();
    a.value::<f64>("nan", f64::NAN).unwrap();
    a.value::<f64>("inf", f64::NEG_INFINITY).unwrap();
    a.counter("weird\n\"q\"\\ ünï").unwrap().add(u64::MAX);
    a.sharded_counter("sc").unwrap().add(11);
    a.mutex("m", 0u32).unwrap();
    let jobs = a.mpmc::<u64>("jobs", 8).unwrap();
    jobs.push(1).unwrap();
    a.pipe("p", 512, 64).unwrap();
    a.semaphore("sem", 3).unwrap();
    let b = Segment::anonymous(1 << 16).unwrap();
    b.counter("requests").unwrap().add(100);
    b.value::<u64>("a_b", 0).unwrap();
    // One name is one object in a segment: these clash with the families of `a`.
    b.counter("z").unwrap().add(6);
    b.value::<f32>("v", 0.25).unwrap();
    (a, b)
}

fn render(format: Format) -> String {
    let (a, b) = segments();
    let mut m = Metrics::new();
    m.add_segment("a", &a).unwrap();
    m.add_unavailable("gone \"one\"");
    m.add_segment("b", &b).unwrap();
    let mut out = Vec::new();
    m.write(format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const OPENMETRICS: &str = include_str!("export_text/openmetrics.txt");
const PROMETHEUS: &str = include_str!("export_text/prometheus.txt");

#[test]
fn openmetrics_text_is_unchanged() {
    let text = render(Format::OpenMetrics);
    if std::env::var_os("SHMKIT_WRITE_EXPECTED").is_some() {
        std::fs::write("tests/export_text/openmetrics.txt", &text).unwrap();
    }
    assert_eq!(text, OPENMETRICS);
}

#[test]
fn prometheus_text_is_unchanged() {
    let text = render(Format::Prometheus);
    if std::env::var_os("SHMKIT_WRITE_EXPECTED").is_some() {
        std::fs::write("tests/export_text/prometheus.txt", &text).unwrap();
    }
    assert_eq!(text, PROMETHEUS);
}

#[test]
fn single_segment_writers_match_metrics() {
    let (a, _) = segments();
    let mut one = Vec::new();
    shmkit::export::write_prometheus(&a, &mut one).unwrap();
    let mut m = Metrics::new();
    m.add_segment("anonymous", &a).unwrap();
    let mut all = Vec::new();
    m.write(Format::Prometheus, &mut all).unwrap();
    assert_eq!(one, all);
}

/// Where directory entry `i` of a segment starts, and its fields' offsets in it (docs/FORMAT.md).
fn entry(i: u64) -> u64 {
    256 + 256 * i
}
const STATE: u64 = 0;
const OFFSET: u64 = 48;

fn text(m: &Metrics) -> String {
    let mut out = Vec::new();
    m.write(Format::OpenMetrics, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A segment whose directory cannot be read adds nothing, not the objects before the bad entry
/// (which a single pass has read by then), and the families it had joined are as they were.
#[test]
fn a_directory_that_cannot_be_read_adds_nothing() {
    let dir = TempDir::new("export-scribbled");
    let good = Segment::anonymous(1 << 16).unwrap();
    good.counter("c0").unwrap().add(1);
    good.value::<u64>("g", 1).unwrap();
    let path = dir.join("bad.shm");
    let bad = Segment::file(&path, 1 << 16).unwrap();
    for i in 0..5 {
        bad.counter(&format!("c{i}")).unwrap().add(10 + i);
    }
    drop(bad);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&9u64.to_le_bytes(), entry(3) + STATE)
        .unwrap();
    let bad = Segment::open_file(&path).unwrap();
    let mut only_good = Metrics::new();
    only_good.add_segment("good", &good).unwrap();
    let mut m = Metrics::new();
    m.add_segment("good", &good).unwrap();
    let err = m.add_segment("bad", &bad).unwrap_err();
    assert!(err.to_string().contains("state 9"), "{err}");
    assert_eq!(text(&m), text(&only_good));
    // What is added next lands as if the failed segment had never been tried.
    m.add_unavailable("bad");
    only_good.add_unavailable("bad");
    m.add_segment("again", &good).unwrap();
    only_good.add_segment("again", &good).unwrap();
    assert_eq!(text(&m), text(&only_good));
}

/// Objects whose directory entries make them share bytes are left out; the others are exported.
#[test]
fn overlapping_objects_are_left_out() {
    let dir = TempDir::new("export-overlap");
    let path = dir.join("o.shm");
    let seg = Segment::file(&path, 1 << 16).unwrap();
    for name in ["a", "b", "c"] {
        seg.counter(name).unwrap().add(1);
    }
    let entries = seg.entries().unwrap();
    drop(seg);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // b's object moved onto a's.
    f.write_all_at(&entries[0].offset.to_le_bytes(), entry(1) + OFFSET)
        .unwrap();
    let seg = Segment::open_file(&path).unwrap();
    let mut m = Metrics::new();
    m.add_segment("o", &seg).unwrap();
    let t = text(&m);
    assert!(
        t.contains("shmkit_c_total{segment=\"o\",object=\"c\"} 1\n"),
        "{t}"
    );
    assert!(
        !t.contains("object=\"a\"") && !t.contains("object=\"b\""),
        "{t}"
    );
}
