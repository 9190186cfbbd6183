//! Benchmark `export`: rendering the metrics of a segment of 10,000 counters (the goal: ≤ 5 ms),
//! alone and while a writer adds to every counter, and what the rendering costs the writer.
//!
//! Run: `cargo bench --bench export` (about 30 s; a quick smoke:
//! `cargo bench --bench export -- --warm-up-time 1 --measurement-time 2`).
//!
//! | id | what it measures |
//! | --- | --- |
//! | `openmetrics-10k-counters` | `Metrics::add_segment` + `write(OpenMetrics)` into a `Vec` (the whole of a scrape but the HTTP) |
//! | `prometheus-10k-counters` | the same in the Prometheus text format |
//! | `openmetrics-10k-counters-writer` | the same while a writer thread adds to every counter in turn (on 2 CPUs it competes for a CPU, but it never waits: the renderer takes no lock) |
//!
//! After criterion: the best CPU time of one render (on a shared machine the wall-clock time
//! above also counts the time the renderer waited for a CPU), then the writer's increments per
//! second with no renderer and with renders back to back, and its worst single `add` in each
//! case (on 2 CPUs both are dominated by the scheduler: the renderer takes a CPU, never a lock;
//! `tests/observe.rs` shows that every `try_lock` of a writer succeeds while `serve` scrapes).

#[cfg(not(feature = "loom"))]
fn main() {
    bench::main();
}

#[cfg(feature = "loom")]
fn main() {}

#[cfg(not(feature = "loom"))]
mod bench {
    use criterion::Criterion;
    use shmkit::export::{Format, Metrics};
    use shmkit::{Counter, Handle, Segment, SegmentOptions};
    use std::hint::black_box;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const N: usize = 10_000;

    fn segment() -> (Segment, Vec<Handle<Counter>>) {
        let seg = SegmentOptions::new()
            .dir_capacity(N as u32 + 16)
            .anonymous(64 << 20)
            .expect("a segment for 10,000 counters");
        let counters = (0..N)
            .map(|i| {
                let c = seg.counter(&format!("requests_{i}")).unwrap();
                c.add(i as u64 * 1000);
                c
            })
            .collect();
        (seg, counters)
    }

    fn render(seg: &Segment, format: Format, out: &mut Vec<u8>) {
        out.clear();
        let mut m = Metrics::new();
        m.add_segment("bench", seg).unwrap();
        m.write(format, out).unwrap();
    }

    /// A writer adding to every counter in turn until `stop`; returns (adds, worst add).
    fn writer(
        counters: Arc<Vec<Handle<Counter>>>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<(u64, Duration)> {
        std::thread::spawn(move || {
            let (mut n, mut worst) = (0u64, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                for c in counters.iter().take(1000) {
                    let t = Instant::now();
                    c.add(1);
                    worst = worst.max(t.elapsed());
                }
                n += 1000;
            }
            (n, worst)
        })
    }

    pub fn main() {
        let (seg, counters) = segment();
        let counters = Arc::new(counters);
        let mut out = Vec::with_capacity(2 << 20);
        render(&seg, Format::OpenMetrics, &mut out);
        assert!(out.len() > N * 50, "{} bytes", out.len());

        let mut c = Criterion::default()
            .sample_size(30)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5))
            .configure_from_args();
        let mut g = c.benchmark_group("export");
        g.bench_function("openmetrics-10k-counters", |b| {
            b.iter(|| render(black_box(&seg), Format::OpenMetrics, &mut out))
        });
        g.bench_function("prometheus-10k-counters", |b| {
            b.iter(|| render(black_box(&seg), Format::Prometheus, &mut out))
        });
        // As `shmkit serve` renders: one `Metrics` cleared and refilled at each scrape.
        let mut kept = Metrics::new();
        g.bench_function("openmetrics-10k-counters-reused", |b| {
            b.iter(|| {
                out.clear();
                kept.clear();
                kept.add_segment("bench", black_box(&seg)).unwrap();
                kept.write(Format::OpenMetrics, &mut out).unwrap();
            })
        });
        let stop = Arc::new(AtomicBool::new(false));
        let w = writer(counters.clone(), stop.clone());
        g.bench_function("openmetrics-10k-counters-writer", |b| {
            b.iter(|| render(black_box(&seg), Format::OpenMetrics, &mut out))
        });
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap();
        g.finish();

        // The writer alone, then with renders back to back (1 s each).
        let run = |with_renders: bool| {
            let stop = Arc::new(AtomicBool::new(false));
            let w = writer(counters.clone(), stop.clone());
            let t = Instant::now();
            let mut renders = 0u32;
            let mut out = Vec::new();
            while t.elapsed() < Duration::from_secs(1) {
                if with_renders {
                    render(&seg, Format::OpenMetrics, &mut out);
                    renders += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            stop.store(true, Ordering::Relaxed);
            let (n, worst) = w.join().unwrap();
            (n as f64 / t.elapsed().as_secs_f64(), worst, renders)
        };
        // The CPU time of one render (the wall-clock time above also counts the time this thread
        // waited for a CPU, which on a shared machine is most of it).
        let cpu = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec into the valid `ts`.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        };
        let mut best = Duration::MAX;
        for _ in 0..20 {
            let t = cpu();
            render(&seg, Format::OpenMetrics, &mut out);
            best = best.min(cpu() - t);
        }
        println!("render of 10,000 counters (OpenMetrics): best CPU time of 20 runs {best:?}");
        let (alone, worst_alone, _) = run(false);
        let (with, worst_with, renders) = run(true);
        println!(
            "writer alone: {:.1} M adds/s (worst add {worst_alone:?}); with {renders} renders \
             in 1 s: {:.1} M adds/s (worst add {worst_with:?})",
            alone / 1e6,
            with / 1e6
        );
        c.final_summary();
    }
}
