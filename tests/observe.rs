//! `shmkit stat --json`, `watch`, `export` and `serve`, run as real processes over a segment
//! that this test process writes; the exposition is checked by the Debian `prometheus` package's
//! `promtool` when it is installed (`tests/prometheus.rs` says how the absence is reported).
#![cfg(not(feature = "loom"))]

mod common;
mod metrics_util;

use common::SegGuard;
use metrics_util::{get, promtool, Reap, Serve, SHMKIT};
use serde_json::Value;
use shmkit::Segment;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn shmkit(args: &[&str]) -> Output {
    Command::new(SHMKIT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running shmkit")
}

fn ok(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// A segment with one object of most kinds.
fn sample(g: &SegGuard) -> Segment {
    let seg = Segment::create(g.name(), 1 << 20).unwrap();
    seg.counter("hits").unwrap().add(1_234_567);
    seg.sharded_counter("events").unwrap().add(5);
    seg.value::<f64>("temp", 52093.761000000006).unwrap();
    seg.value::<i32>("delta", -4).unwrap();
    seg.counter("weird name-\"q\"\\").unwrap().add(2);
    let q = seg.mpmc::<u64>("jobs", 8).unwrap();
    q.try_push(1).unwrap();
    q.try_push(2).unwrap();
    seg.mutex("state", 0u64).unwrap();
    let m = seg.pod_map::<u32, u32>("scores", 16).unwrap();
    m.insert(&1, &2).unwrap();
    seg.list::<u16>("ids", 4).unwrap().push(9).unwrap();
    seg
}

#[test]
fn stat_json_has_the_numbers() {
    let g = SegGuard::new("statjson");
    let _seg = sample(&g);
    let v: Value = serde_json::from_str(&ok(&shmkit(&["stat", "--json", g.name()]))).unwrap();
    assert_eq!(v["segment"], g.name());
    let obj = |n: &str| -> Value {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {v}"))
            .clone()
    };
    assert_eq!(obj("hits")["value"], 1_234_567);
    assert_eq!(obj("hits")["kind"], "counter");
    assert_eq!(obj("events")["value"], 5);
    assert_eq!(obj("temp")["value"], 52093.761000000006);
    assert_eq!(obj("delta")["value"], -4);
    assert_eq!(obj("jobs")["ring"]["len"], 2);
    assert_eq!(obj("jobs")["ring"]["capacity"], 8);
    assert_eq!(obj("state")["locked"], false);
    assert_eq!(obj("scores")["len"], 1);
    assert_eq!(obj("ids")["len"], 1);
    // The text `stat` prints is there too, unchanged.
    assert_eq!(obj("hits")["text"], "1234567");
}

#[test]
fn watch_shows_rates_and_numbers_for_people() {
    let g = SegGuard::new("watchrate");
    let seg = sample(&g);
    let hits = seg.counter("hits").unwrap();
    let mut child = Reap(
        Command::new(SHMKIT)
            .args([
                "watch",
                "--json",
                "--count",
                "3",
                "--interval",
                "300",
                g.name(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The writer runs here while `watch` samples from its own process.
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    while lines.len() < 3 && start.elapsed() < Duration::from_secs(60) {
        hits.add(1000);
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        lines.push(l);
    }
    assert!(child.0.wait().unwrap().success());
    assert_eq!(lines.len(), 3, "{lines:?}");
    let samples: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hits_of = |s: &Value| -> Value {
        s["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "hits")
            .unwrap()
            .clone()
    };
    assert!(hits_of(&samples[0])["rate"].is_null(), "{}", samples[0]);
    for w in samples.windows(2) {
        let (a, b) = (hits_of(&w[0]), hits_of(&w[1]));
        let delta = b["value"].as_u64().unwrap() - a["value"].as_u64().unwrap();
        let rate = b["rate"].as_f64().unwrap();
        let dt = w[1]["elapsed_s"].as_f64().unwrap();
        assert!(dt >= 0.29, "{dt}");
        assert!(
            (rate * dt - delta as f64).abs() < 1e-6 * delta.max(1) as f64,
            "rate {rate}/s over {dt} s for +{delta}"
        );
        assert!(delta > 0, "the writer added between samples");
    }

    // The table: thousands separators, a float printed for people, a rate column.
    let text = ok(&shmkit(&[
        "watch",
        "--count",
        "2",
        "--interval",
        "50",
        g.name(),
    ]));
    let row = |name: &str| {
        text.lines()
            .rev()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(
        row("hits").ends_with("1,237,567") || row("hits").contains(",567"),
        "{}",
        row("hits")
    );
    assert!(row("hits").contains("0/s"), "{}", row("hits"));
    assert!(row("temp").ends_with(" 52,093.76"), "{}", row("temp"));
    assert!(!text.contains("52093.761000000006"), "{text}");
}

#[test]
fn export_formats() {
    let g = SegGuard::new("export");
    let _seg = sample(&g);
    let om = ok(&shmkit(&["export", "--format", "openmetrics", g.name()]));
    let n = g.name();
    for line in [
        "# TYPE shmkit_hits counter".to_string(),
        format!("shmkit_hits_total{{segment=\"{n}\",object=\"hits\"}} 1234567"),
        format!("shmkit_events_total{{segment=\"{n}\",object=\"events\"}} 5"),
        format!("shmkit_temp{{segment=\"{n}\",object=\"temp\"}} 52093.761000000006"),
        format!("shmkit_delta{{segment=\"{n}\",object=\"delta\"}} -4.0"),
        format!("shmkit_jobs_length{{segment=\"{n}\",object=\"jobs\"}} 2"),
        format!("shmkit_jobs_capacity{{segment=\"{n}\",object=\"jobs\"}} 8"),
        format!("shmkit_jobs_lost_total{{segment=\"{n}\",object=\"jobs\"}} 0"),
        format!("shmkit_state_waiters{{segment=\"{n}\",object=\"state\"}} 0"),
        format!("shmkit_state_owner_died{{segment=\"{n}\",object=\"state\"}} 0"),
        format!("shmkit_scores_length{{segment=\"{n}\",object=\"scores\"}} 1"),
        format!("shmkit_ids_capacity{{segment=\"{n}\",object=\"ids\"}} 4"),
        format!(
            "shmkit_weird_name__q___total{{segment=\"{n}\",object=\"weird name-\\\"q\\\"\\\\\"}} 2"
        ),
        format!("shmkit_segment_up{{segment=\"{n}\"}} 1"),
    ] {
        assert!(om.lines().any(|l| l == line), "no line {line:?} in:\n{om}");
    }
    assert!(om.ends_with("# EOF\n"));
    let prom = ok(&shmkit(&["export", "--format", "prometheus", g.name()]));
    assert!(
        prom.contains("# TYPE shmkit_hits_total counter\n"),
        "{prom}"
    );
    assert!(!prom.contains("# EOF"));
    let json: Value =
        serde_json::from_str(&ok(&shmkit(&["export", "--format", "json", g.name()]))).unwrap();
    assert_eq!(json["segments"][0]["segment"], g.name());
    // promtool reads the Prometheus text format only (the OpenMetrics parser is checked by a
    // real Prometheus scraping `serve`, in tests/prometheus.rs).
    if promtool(&prom).is_none() {
        // Straight to stderr: libtest captures `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "NOTE export_formats: promtool is not installed (Debian package `prometheus`): the \
             exposition was not checked by Prometheus's linter"
        );
        assert_ne!(
            std::env::var("SHMKIT_REQUIRE_PROMETHEUS").as_deref(),
            Ok("1"),
            "SHMKIT_REQUIRE_PROMETHEUS=1 but promtool is missing"
        );
    }
    // A missing segment: `segment_up` 0 and exit code 1, the others still exported.
    let missing = SegGuard::new("export-missing");
    let out = shmkit(&["export", g.name(), missing.name()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!(
        "shmkit_segment_up{{segment=\"{}\"}} 0",
        missing.name()
    )));
    assert!(text.contains("shmkit_hits_total"));
}

#[test]
fn serve_negotiates_and_rereads() {
    let g = SegGuard::new("serve");
    let seg = sample(&g);
    let serve = Serve::start(&[g.name()]);
    let (status, ct, body) = serve.get("/metrics", "");
    assert!(status.contains("200"), "{status}");
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        body.contains("shmkit_hits_total{") && body.contains("} 1234567\n"),
        "{body}"
    );
    // Prometheus's own Accept header asks for OpenMetrics first.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                  version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let (_, ct, body) = serve.get("/metrics", accept);
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(body.ends_with("# EOF\n"));
    // Each scrape reads the segment again.
    seg.counter("hits").unwrap().add(1);
    let (_, _, body) = serve.get("/metrics", "");
    assert!(body.contains("} 1234568\n"), "{body}");
    let (status, _, _) = serve.get("/nothing", "");
    assert!(status.contains("404"), "{status}");
}

#[test]
fn reading_never_blocks_a_writer() {
    // A lock held here and a seqlock written here all along, while another process scrapes:
    // every scrape completes, and every try_ call of the writer succeeds at once (no reader ever
    // holds what a writer takes).
    let g = SegGuard::new("noblock");
    let seg = sample(&g);
    let m = seg.mutex("held", 0u64).unwrap();
    let sl = seg.seqlock::<u64>("sl", 0).unwrap();
    let c = seg.counter("hits").unwrap();
    let guard = m.lock().unwrap();
    let serve = Serve::start(&[g.name()]);
    // Scrapes complete while the lock is held here.
    for _ in 0..2 {
        let (status, _, body) = serve.get("/metrics", "");
        assert!(status.contains("200"), "{status}");
        assert!(
            body.contains("_held_locked{") && body.contains("\"held\"} 1\n"),
            "{body}"
        );
    }
    drop(guard);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let (addr, stop) = (serve.addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 3 {
                let (status, _, body) = get(&addr, "/metrics", "");
                assert!(status.contains("200") && body.contains("shmkit_held_locked"));
                n += 1;
            }
            n
        })
    };
    let t = Instant::now();
    let mut writes = 0u64;
    while t.elapsed() < Duration::from_millis(1500) {
        let g = m.try_lock().expect("a scrape never holds the lock");
        drop(g);
        sl.write(&writes).unwrap();
        c.inc();
        writes += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scrapes = scraper.join().unwrap();
    assert!(
        scrapes >= 3 && writes > 1000,
        "{scrapes} scrapes, {writes} writes"
    );
}
