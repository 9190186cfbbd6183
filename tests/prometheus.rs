//! A real Prometheus (the Debian `prometheus` package) scrapes `shmkit serve` on loopback every
//! second; the counter's value is read back through Prometheus's query API.
//!
//! Without a `prometheus` binary on PATH the test prints why it did not run. CI installs the
//! package and sets `SHMKIT_REQUIRE_PROMETHEUS=1`, which turns that absence into a failure.
#![cfg(not(feature = "loom"))]

mod common;
mod metrics_util;

use common::{SegGuard, TempDir};
use metrics_util::{get, try_get, Reap, Serve};
use serde_json::Value;
use shmkit::Segment;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `prometheus` can run here; otherwise prints why the test is skipped (or fails when
/// `SHMKIT_REQUIRE_PROMETHEUS=1`).
fn prometheus_available() -> bool {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let why = "`prometheus` is not installed (Debian: apt-get install prometheus)";
        if std::env::var("SHMKIT_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("SHMKIT_REQUIRE_PROMETHEUS=1 but {why}");
        }
        // Straight to stderr: libtest captures `eprintln!` of a passing test, and this must show.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED prometheus_scrapes_serve: {why}; nothing was checked"
        );
    }
    found
}

/// A free loopback port (bound and released: another process could take it in between, which
/// then shows as Prometheus failing to start, not as a wrong result).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the single series `query` returns now, if there is one.
fn query(prom: &str, query: &str) -> Option<String> {
    let (status, _, body) = try_get(prom, &format!("/api/v1/query?query={query}"), "").ok()?;
    if !status.contains("200") {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let r = v["data"]["result"].as_array()?;
    (r.len() == 1).then(|| r[0]["value"][1].as_str().map(str::to_string))?
}

fn wait_for(prom: &str, q: &str, want: &str, log: &std::path::Path) {
    let t = Instant::now();
    let mut last = None;
    while t.elapsed() < Duration::from_secs(90) {
        last = query(prom, q);
        if last.as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{q}: Prometheus had {last:?}, not {want:?}, after 90 s. Its log:\n{log}");
}

#[test]
fn prometheus_scrapes_serve() {
    if !prometheus_available() {
        return;
    }
    let g = SegGuard::new("prom");
    let seg = Segment::create(g.name(), 1 << 16).unwrap();
    let c = seg.counter("scraped").unwrap();
    c.add(424_242);
    let serve = Serve::start(&[g.name()]);

    let dir = TempDir::new("prom");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: shmkit\n    static_configs:\n      \
             - targets: ['{}']\n",
            serve.addr
        ),
    )
    .unwrap();
    let prom = format!("127.0.0.1:{}", free_port());
    let log = dir.join("prometheus.log");
    let _prometheus = Reap(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // The scraped value equals the counter's, then follows it (every scrape reads again).
    wait_for(&prom, "shmkit_scraped_total", "424242", &log);
    c.add(1);
    wait_for(&prom, "shmkit_scraped_total", "424243", &log);
    // The target is healthy: the OpenMetrics Prometheus asked for parsed without error.
    wait_for(&prom, "up", "1", &log);
    let (_, _, targets) = get(&prom, "/api/v1/targets", "");
    let v: Value = serde_json::from_str(&targets).unwrap();
    let t = &v["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{targets}");
    assert_eq!(t["lastError"], "", "{targets}");
}
