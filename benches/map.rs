//! Shared map: `get` and `insert` (update of a present key) in a map of 100,000 entries, half
//! full, with 8-byte keys and values (`8B`) and with 32-byte keys and 256-byte values
//! (`32B-256B`), against what users would pick instead, in one run.
//!
//! - `map-get`: the bench process reads random present keys while another process (for
//!   shmkit) or thread (for the in-process peers) updates random keys as fast as it can;
//! - `map-insert`: the bench process updates random present keys, alone (`…-alone`) and while
//!   another process or thread does the same (`…-2-writers`).
//!
//! Peers: `std::sync::RwLock<HashMap>` and `dashmap::DashMap` between two threads of one process
//! (an in-process map cannot be shared by processes), and Python's `Manager().dict()` between
//! processes (`benches/python/map_peer.py`, run from here; a get or set is a socket round trip
//! to the manager's server and a pickle; skipped with a message if `python3` is missing), and
//! LMDB through `heed` between processes (`benches/map_peers/lmdb.rs`: its readers are lock-free
//! across processes, its writers serialize on one lock and a commit).
//!
//! After criterion's medians, a latency pass prints p50 and p99 of single operations (each timed
//! with two clock reads, whose own cost is measured and subtracted).
//!
//! Run: `cargo bench --bench map` (smoke: `-- --warm-up-time 1 --measurement-time 2`).

fn main() {
    #[cfg(not(feature = "loom"))]
    bench::main();
}

#[cfg(not(feature = "loom"))]
#[path = "map_peers/lmdb.rs"]
mod lmdb;

#[cfg(not(feature = "loom"))]
#[path = "common/python_peer.rs"]
mod python_peer;

#[cfg(not(feature = "loom"))]
mod bench {
    use super::lmdb;
    use super::python_peer::PythonPeer;
    use criterion::{BenchmarkId, Criterion};
    use dashmap::DashMap;
    use shmkit::{MapOptions, PodMap, Segment};
    use std::collections::HashMap;
    use std::hint::black_box;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, RwLock};
    use std::time::{Duration, Instant};

    pub(crate) const ROLE: &str = "SHMKIT_BENCH_MAP_ROLE";
    const SEG: &str = "SHMKIT_BENCH_MAP_SEG";
    /// Capacity of every map, and the entries present (half).
    const CAP: u64 = 100_000;
    pub(crate) const FILLED: u64 = CAP / 2;

    pub(crate) type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

    /// The two entry shapes.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) enum Shape {
        Small,
        Large,
    }

    impl Shape {
        pub(crate) fn label(self) -> &'static str {
            match self {
                Shape::Small => "8B",
                Shape::Large => "32B-256B",
            }
        }
        fn opts(self) -> MapOptions {
            match self {
                Shape::Small => PodMap::<u64, u64>::options(CAP),
                Shape::Large => MapOptions::new(CAP).key_max(32).value_max(256),
            }
        }
        pub(crate) fn key(self, k: u64) -> Vec<u8> {
            match self {
                Shape::Small => k.to_ne_bytes().to_vec(),
                Shape::Large => {
                    let mut v = vec![0x5a; 32];
                    v[..8].copy_from_slice(&k.to_ne_bytes());
                    v
                }
            }
        }
        pub(crate) fn value(self, x: u64) -> Vec<u8> {
            match self {
                Shape::Small => x.to_ne_bytes().to_vec(),
                Shape::Large => x.to_ne_bytes().repeat(32),
            }
        }
    }

    /// Random present keys (a fixed sequence), so every peer reads the same ones.
    pub(crate) fn keys() -> Vec<u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % FILLED
            })
            .collect()
    }

    pub fn main() {
        if let Ok(role) = std::env::var(ROLE) {
            child(&role);
            return;
        }
        let mut c = Criterion::default().configure_from_args();
        let keys = keys();
        for shape in [Shape::Small, Shape::Large] {
            let shm = Shm::new(shape);
            let lmdb = lmdb::Lmdb::new(shape);
            {
                let mut g = c.benchmark_group("map-get");
                shm.get(&mut g, &keys);
                lmdb.get(&mut g, &keys);
                in_process(&mut g, shape, &keys, Op::Get);
                python(&mut g, shape, "get");
                g.finish();
            }
            {
                let mut g = c.benchmark_group("map-insert");
                shm.insert(&mut g, &keys, false);
                shm.insert(&mut g, &keys, true);
                lmdb.insert(&mut g, &keys, false);
                lmdb.insert(&mut g, &keys, true);
                in_process(&mut g, shape, &keys, Op::Insert);
                python(&mut g, shape, "set");
                g.finish();
            }
            shm.latency(&keys);
        }
        c.final_summary();
    }

    // ---------- shmkit: a map in a named segment, a writer process ----------

    struct Shm {
        shape: Shape,
        name: String,
        seg: Segment,
    }

    impl Drop for Shm {
        fn drop(&mut self) {
            let _ = self.seg.unlink();
        }
    }

    /// A child process writing until dropped (then killed and reaped).
    struct Writer(Child);

    impl Drop for Writer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    impl Shm {
        fn new(shape: Shape) -> Shm {
            let name = format!("shmkit-bench-map-{}-{}", shape.label(), std::process::id());
            let seg = Segment::create(&name, 96 << 20).expect("bench segment");
            if shape == Shape::Small {
                let m = seg.pod_map::<u64, u64>("m", CAP).unwrap();
                for k in 0..FILLED {
                    m.insert(&k, &k).unwrap();
                }
            } else {
                let m = seg.map("m", shape.opts()).unwrap();
                for k in 0..FILLED {
                    m.set(&shape.key(k), &shape.value(k)).unwrap();
                }
            }
            Shm { shape, name, seg }
        }

        fn writer(&self) -> Writer {
            let child = Command::new(std::env::current_exe().unwrap())
                .env(ROLE, format!("writer-{}", self.shape.label()))
                .env(SEG, &self.name)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn writer");
            // Let it map the segment and start.
            std::thread::sleep(Duration::from_millis(200));
            Writer(child)
        }

        fn get(&self, g: &mut Group<'_>, keys: &[u64]) {
            let _w = self.writer();
            let id = BenchmarkId::new("shmkit-xproc-writer", self.shape.label());
            match self.shape {
                Shape::Small => {
                    let m = self.seg.pod_map::<u64, u64>("m", CAP).unwrap();
                    g.bench_function(id, |b| {
                        let mut i = 0;
                        b.iter(|| {
                            i = (i + 1) & (keys.len() - 1);
                            black_box(m.get(&keys[i]).unwrap())
                        })
                    });
                }
                Shape::Large => {
                    let m = self.seg.map("m", self.shape.opts()).unwrap();
                    let ks: Vec<Vec<u8>> = keys.iter().map(|&k| self.shape.key(k)).collect();
                    let mut out = Vec::with_capacity(256);
                    g.bench_function(id, |b| {
                        let mut i = 0;
                        b.iter(|| {
                            i = (i + 1) & (ks.len() - 1);
                            black_box(m.get_into(&ks[i], &mut out).unwrap())
                        })
                    });
                }
            }
        }

        fn insert(&self, g: &mut Group<'_>, keys: &[u64], contended: bool) {
            let _w = contended.then(|| self.writer());
            let label = if contended {
                "shmkit-xproc-2-writers"
            } else {
                "shmkit-alone"
            };
            let id = BenchmarkId::new(label, self.shape.label());
            let ks: Vec<Vec<u8>> = keys.iter().map(|&k| self.shape.key(k)).collect();
            let v = self.shape.value(7);
            match self.shape {
                Shape::Small => {
                    let m = self.seg.pod_map::<u64, u64>("m", CAP).unwrap();
                    g.bench_function(id, |b| {
                        let mut i = 0;
                        b.iter(|| {
                            i = (i + 1) & (keys.len() - 1);
                            black_box(m.insert(&keys[i], &7).unwrap())
                        })
                    });
                }
                Shape::Large => {
                    let m = self.seg.map("m", self.shape.opts()).unwrap();
                    g.bench_function(id, |b| {
                        let mut i = 0;
                        b.iter(|| {
                            i = (i + 1) & (ks.len() - 1);
                            // `set`: no copy of the old value out.
                            m.set(&ks[i], &v).unwrap()
                        })
                    });
                }
            }
        }

        /// p50 and p99 of single operations (get with a writer process, insert alone).
        fn latency(&self, keys: &[u64]) {
            const N: usize = 200_000;
            let clock = {
                let mut h = Vec::with_capacity(N);
                for _ in 0..N {
                    let t = Instant::now();
                    h.push(t.elapsed().as_nanos() as u64);
                }
                pct(&mut h, 50)
            };
            // Every face of a map shares its layout: the tools' way in (`open_entry_as`) reads
            // a typed map as bytes.
            let entry = self
                .seg
                .entries()
                .unwrap()
                .into_iter()
                .find(|e| e.name == "m");
            let m = self
                .seg
                .open_entry_as::<shmkit::ByteMap>(&entry.unwrap())
                .unwrap();
            let ks: Vec<Vec<u8>> = keys.iter().map(|&k| self.shape.key(k)).collect();
            let mut out = Vec::with_capacity(256);
            let run = |what: &str, f: &mut dyn FnMut(usize)| {
                let mut h = Vec::with_capacity(N);
                for i in 0..N {
                    let t = Instant::now();
                    f(i & (ks.len() - 1));
                    h.push((t.elapsed().as_nanos() as u64).saturating_sub(clock));
                }
                println!(
                    "latency {what}/{}: p50 {} ns, p99 {} ns (clock {clock} ns subtracted)",
                    self.shape.label(),
                    pct(&mut h, 50),
                    pct(&mut h, 99)
                );
            };
            {
                let _w = self.writer();
                run("get-xproc-writer", &mut |i| {
                    black_box(m.get_into(&ks[i], &mut out).unwrap());
                });
            }
            let v = self.shape.value(9);
            run("insert-alone", &mut |i| {
                m.set(&ks[i], &v).unwrap();
            });
        }
    }

    fn pct(h: &mut [u64], p: usize) -> u64 {
        h.sort_unstable();
        h[(h.len() * p / 100).min(h.len() - 1)]
    }

    fn child(role: &str) {
        match role {
            "lmdb-writer-8B" => return lmdb::writer(Shape::Small),
            "lmdb-writer-32B-256B" => return lmdb::writer(Shape::Large),
            _ => {}
        }
        let seg = Segment::open(&std::env::var(SEG).unwrap()).unwrap();
        let keys = keys();
        match role {
            "writer-8B" => {
                let m = seg.pod_map::<u64, u64>("m", CAP).unwrap();
                for (n, &k) in keys.iter().cycle().enumerate() {
                    m.insert(&k, &(n as u64)).unwrap();
                }
            }
            "writer-32B-256B" => {
                let shape = Shape::Large;
                let m = seg.map("m", shape.opts()).unwrap();
                let ks: Vec<Vec<u8>> = keys.iter().map(|&k| shape.key(k)).collect();
                let v = shape.value(3);
                for k in ks.iter().cycle() {
                    m.set(k, &v).unwrap();
                }
            }
            other => panic!("unknown role {other}"),
        }
    }

    // ---------- in-process peers: RwLock<HashMap> and DashMap, two threads ----------

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Op {
        Get,
        Insert,
    }

    fn in_process(g: &mut Group<'_>, shape: Shape, keys: &[u64], op: Op) {
        let ks: Arc<Vec<Vec<u8>>> = Arc::new(keys.iter().map(|&k| shape.key(k)).collect());
        let rw: Arc<RwLock<HashMap<Vec<u8>, Vec<u8>>>> = Arc::new(RwLock::new(
            (0..FILLED)
                .map(|k| (shape.key(k), shape.value(k)))
                .collect(),
        ));
        let dm: Arc<DashMap<Vec<u8>, Vec<u8>>> = Arc::new(
            (0..FILLED)
                .map(|k| (shape.key(k), shape.value(k)))
                .collect(),
        );
        let label = shape.label();
        let (suffix, v) = (
            if op == Op::Get {
                "threads-writer"
            } else {
                "threads-2-writers"
            },
            shape.value(5),
        );
        {
            let stop = Arc::new(AtomicBool::new(false));
            let w = {
                let (rw, ks, stop, v) = (rw.clone(), ks.clone(), stop.clone(), v.clone());
                std::thread::spawn(move || {
                    for k in ks.iter().cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        rw.write().unwrap().insert(k.clone(), v.clone());
                    }
                })
            };
            g.bench_function(
                BenchmarkId::new(format!("rwlock-hashmap-{suffix}"), label),
                |b| {
                    let mut i = 0;
                    b.iter(|| {
                        i = (i + 1) & (ks.len() - 1);
                        match op {
                            Op::Get => black_box(rw.read().unwrap().get(&ks[i]).cloned()),
                            Op::Insert => {
                                black_box(rw.write().unwrap().insert(ks[i].clone(), v.clone()))
                            }
                        }
                    })
                },
            );
            stop.store(true, Ordering::Relaxed);
            w.join().unwrap();
        }
        {
            let stop = Arc::new(AtomicBool::new(false));
            let w = {
                let (dm, ks, stop, v) = (dm.clone(), ks.clone(), stop.clone(), v.clone());
                std::thread::spawn(move || {
                    for k in ks.iter().cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        dm.insert(k.clone(), v.clone());
                    }
                })
            };
            g.bench_function(BenchmarkId::new(format!("dashmap-{suffix}"), label), |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) & (ks.len() - 1);
                    match op {
                        Op::Get => black_box(dm.get(&ks[i]).map(|v| v.clone())),
                        Op::Insert => black_box(dm.insert(ks[i].clone(), v.clone())),
                    }
                })
            });
            stop.store(true, Ordering::Relaxed);
            w.join().unwrap();
        }
    }

    // ---------- python3 multiprocessing Manager().dict() ----------

    fn python(g: &mut Group<'_>, shape: Shape, op: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/map_peer.py");
        let size = if shape == Shape::Small { "8" } else { "256" };
        let args = [size.to_string(), FILLED.to_string(), op.to_string()];
        let Some(mut py) = PythonPeer::start("python-manager-dict", script, &args) else {
            return;
        };
        let label = if op == "get" {
            "python-manager-dict-writer"
        } else {
            "python-manager-dict-2-writers"
        };
        g.bench_function(BenchmarkId::new(label, shape.label()), |b| {
            b.iter_custom(|iters| py.run(iters))
        });
    }
}
