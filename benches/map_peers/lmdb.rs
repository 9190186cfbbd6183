//! LMDB (through `heed`) as the cross-process peer of the map bench: an environment in
//! `/dev/shm` (no disk), opened by the bench process and by a writer process, with the
//! workload of the shmkit rows (100,000-entry capacity, half full, the same random keys).
//!
//! LMDB is given its fastest safe setting for this comparison: `NO_SYNC | NO_META_SYNC` (a
//! commit does not flush, like shmkit, which keeps nothing across a reboot either) and the
//! `/dev/shm` file. A get is a read transaction, a lookup and a copy of the value out (a reader
//! must open a new transaction to see other processes' commits); an insert is a write
//! transaction, a put and a commit (each insert visible to others at once, as shmkit's is).

use crate::bench::{Group, Shape, FILLED};
use criterion::BenchmarkId;
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The environment variable naming the writer child's directory.
pub const DIR: &str = "SHMKIT_BENCH_MAP_LMDB";

fn open(dir: &Path) -> (Env, Database<Bytes, Bytes>) {
    let mut opts = EnvOpenOptions::new();
    opts.map_size(1 << 30).max_dbs(1);
    // SAFETY: no-sync flags only weaken durability across a crash of the machine, which no
    // bench row needs.
    unsafe {
        opts.flags(EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC);
    }
    // SAFETY: the directory is this bench's own and each process opens it once.
    let env = unsafe { opts.open(dir) }.expect("open the LMDB environment");
    let mut wtxn = env.write_txn().unwrap();
    let db = env.create_database(&mut wtxn, None).unwrap();
    wtxn.commit().unwrap();
    (env, db)
}

/// An LMDB environment filled like the shmkit map; removed on drop.
pub struct Lmdb {
    shape: Shape,
    dir: PathBuf,
    env: Env,
    db: Database<Bytes, Bytes>,
}

impl Drop for Lmdb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The writer child, killed and reaped on drop.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Lmdb {
    pub fn new(shape: Shape) -> Lmdb {
        let dir = PathBuf::from(format!(
            "/dev/shm/shmkit-bench-lmdb-{}-{}",
            shape.label(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("LMDB directory");
        let (env, db) = open(&dir);
        let mut wtxn = env.write_txn().unwrap();
        for k in 0..FILLED {
            db.put(&mut wtxn, &shape.key(k), &shape.value(k)).unwrap();
        }
        wtxn.commit().unwrap();
        Lmdb {
            shape,
            dir,
            env,
            db,
        }
    }

    fn writer(&self) -> Writer {
        let child = Command::new(std::env::current_exe().unwrap())
            .env(
                crate::bench::ROLE,
                format!("lmdb-writer-{}", self.shape.label()),
            )
            .env(DIR, &self.dir)
            .spawn()
            .expect("spawn LMDB writer");
        std::thread::sleep(Duration::from_millis(200));
        Writer(child)
    }

    pub fn get(&self, g: &mut Group<'_>, keys: &[u64]) {
        let _w = self.writer();
        let ks: Vec<Vec<u8>> = keys.iter().map(|&k| self.shape.key(k)).collect();
        let mut out = Vec::with_capacity(256);
        let id = BenchmarkId::new("lmdb-xproc-writer", self.shape.label());
        g.bench_function(id, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (ks.len() - 1);
                let rtxn = self.env.read_txn().unwrap();
                let v = self.db.get(&rtxn, &ks[i]).unwrap();
                out.clear();
                out.extend_from_slice(v.unwrap_or(&[]));
                black_box(&out);
            })
        });
    }

    pub fn insert(&self, g: &mut Group<'_>, keys: &[u64], contended: bool) {
        let _w = contended.then(|| self.writer());
        let label = if contended {
            "lmdb-xproc-2-writers"
        } else {
            "lmdb-alone"
        };
        let ks: Vec<Vec<u8>> = keys.iter().map(|&k| self.shape.key(k)).collect();
        let v = self.shape.value(7);
        g.bench_function(BenchmarkId::new(label, self.shape.label()), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (ks.len() - 1);
                let mut wtxn = self.env.write_txn().unwrap();
                self.db.put(&mut wtxn, &ks[i], &v).unwrap();
                wtxn.commit().unwrap();
            })
        });
    }
}

/// The writer child's loop: a put and a commit per key, for ever.
pub fn writer(shape: Shape) {
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let (env, db) = open(&dir);
    let ks: Vec<Vec<u8>> = crate::bench::keys().iter().map(|&k| shape.key(k)).collect();
    let v = shape.value(3);
    for k in ks.iter().cycle() {
        let mut wtxn = env.write_txn().unwrap();
        db.put(&mut wtxn, k, &v).unwrap();
        wtxn.commit().unwrap();
    }
}
