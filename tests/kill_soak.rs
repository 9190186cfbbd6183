//! Kill soak (issue 10): producers and consumers of `MpmcRing`, `MpmcBytes`, `SpscRing` and
//! `ByteRing`, and the holders of a `Mutex`, are SIGKILLed at random instants and restarted, for
//! about 20 s in all (`SHMKIT_SOAK_SECS` sets the total; the four queues and the mutex share it).
//!
//! Every message carries its producer's id, the producer's incarnation, a sequence number and a
//! checksum (byte messages add a filler of varying length derived from them). Consumers check
//! what they can and journal every message they receive into an `SpscRing` read by this test
//! (the test process is never killed). A producer stores how many messages it has attempted
//! (in a counter, before each push) so the test knows what could have arrived.
//!
//! Checks, per queue: no corrupt message, no duplicate, each producer incarnation's messages in
//! order within each consumer's stream, nothing received that was never attempted, progress
//! (more messages received) after every kill, and loss bounded by the kills: each killed
//! process loses at most the one message it had in flight. Where the queue reports its loss
//! (`lost()`, MPMC), `lost() <= missing <= kills`: every slot it reaped is a message missing,
//! and the rest of what is missing are messages a killed producer attempted before claiming a
//! slot or a killed consumer popped before journaling them (neither is visible to the queue).
//!
//! The mutex part ([`soak_mutex`]) keeps a pair of values equal under the lock: a counter
//! outside the mutex and the two words inside it. Each holder checks the invariant on entry,
//! bumps the counter, holds the lock a random while, then bumps both words (written back at
//! unlock). A holder killed anywhere in there breaks the pair; the next locker gets `OwnerDied`,
//! repairs it and marks the lock consistent. Checks: the invariant on every entry and at the end,
//! progress after every kill, and `1 <= repairs <= kills` (half the kills aim at the holder).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard};
use shmkit::{Consumer, Error, LockError, Segment};
use shmkit::{PopError, PushError, RecvError, SendError};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const SIZE: u64 = 8 << 20;
/// Slots of the queue under test (MPMC, SPSC) or its bytes (byte ring).
const CAP: u64 = 256;
const BYTE_CAP: u64 = 16 << 10;
const MAX_MSG: u64 = 80;
/// Entries of each consumer's journal ring (the test drains it every few milliseconds).
const JOURNAL: u64 = 1 << 15;
/// How long a child's bounded waits last before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(200);
/// How long the test waits for progress after a kill (a loaded 2-core CI machine).
const PROGRESS: Duration = Duration::from_secs(30);

/// One message: producer id, incarnation, sequence, checksum.
type Msg = [u64; 4];

fn check(id: u64, inc: u64, seq: u64) -> u64 {
    let mut z = (id << 48 ^ inc << 32 ^ seq).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

fn msg(id: u64, inc: u64, seq: u64) -> Msg {
    [id, inc, seq, check(id, inc, seq)]
}

/// A byte message: the four words, then `seq % 41` filler bytes derived from the checksum.
fn encode(m: &Msg, buf: &mut Vec<u8>) {
    buf.clear();
    for w in m {
        buf.extend_from_slice(&w.to_le_bytes());
    }
    let f = m[3];
    buf.extend((0..m[2] % 41).map(|i| (f >> (i % 8 * 8)) as u8 ^ i as u8));
}

/// Decodes a byte message; a wrong length or filler gives a record with checksum 0 (corrupt).
fn decode(b: &[u8]) -> Msg {
    if b.len() < 32 {
        return [0; 4];
    }
    let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    let mut m = [w(0), w(1), w(2), w(3)];
    let mut want = Vec::new();
    encode(&m, &mut want);
    if want != b {
        m[3] = 0;
    }
    m
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Mpmc,
    MpmcBytes,
    Spsc,
    Bytes,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "mpmc" => Kind::Mpmc,
            "mpmc_bytes" => Kind::MpmcBytes,
            "spsc" => Kind::Spsc,
            "bytes" => Kind::Bytes,
            other => panic!("unknown kind {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Mpmc => "mpmc",
            Kind::MpmcBytes => "mpmc_bytes",
            Kind::Spsc => "spsc",
            Kind::Bytes => "bytes",
        }
    }

    /// (producers, consumers).
    fn sides(self) -> (u64, u64) {
        match self {
            Kind::Mpmc | Kind::MpmcBytes => (2, 2),
            Kind::Spsc | Kind::Bytes => (1, 1),
        }
    }

    /// Creates (or opens) the queue under test in `seg`.
    fn open(self, seg: &Segment) {
        match self {
            Kind::Mpmc => drop(seg.mpmc::<Msg>("q", CAP).unwrap()),
            Kind::MpmcBytes => drop(seg.mpmc_bytes("q", CAP, MAX_MSG).unwrap()),
            Kind::Spsc => drop(seg.spsc::<Msg>("q", CAP).unwrap()),
            Kind::Bytes => drop(seg.byte_ring("q", BYTE_CAP, MAX_MSG).unwrap()),
        }
    }

    fn close(self, seg: &Segment) {
        match self {
            Kind::Mpmc => seg.mpmc::<Msg>("q", CAP).unwrap().close(),
            Kind::MpmcBytes => seg.mpmc_bytes("q", CAP, MAX_MSG).unwrap().close(),
            Kind::Spsc => seg.spsc::<Msg>("q", CAP).unwrap().close(),
            Kind::Bytes => seg.byte_ring("q", BYTE_CAP, MAX_MSG).unwrap().close(),
        }
    }

    fn lost(self, seg: &Segment) -> Option<u64> {
        match self {
            Kind::Mpmc => Some(seg.mpmc::<Msg>("q", CAP).unwrap().lost()),
            Kind::MpmcBytes => Some(seg.mpmc_bytes("q", CAP, MAX_MSG).unwrap().lost()),
            Kind::Spsc | Kind::Bytes => None,
        }
    }
}

/// What a push or pop came to, whatever the queue.
enum Got {
    Done,
    Msg(Msg),
    /// Timed out, or the peer died (single-producer queues): try again.
    Again,
    Closed,
}

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            // args: kind, id, incarnation. Pushes messages until the stop flag is set.
            "produce" => produce(&seg, Kind::parse(ctx.arg_str(0)), ctx.arg(1), ctx.arg(2)),
            // args: kind, slot. Pops until the queue is closed, journaling each message.
            "consume" => consume(&seg, Kind::parse(ctx.arg_str(0)), ctx.arg(1)),
            // args: slot. Takes the mutex over and over until the stop flag is set.
            "hold" => hold(&seg, ctx.arg(0)),
            other => panic!("unknown role {other}"),
        }
    });
}

fn produce(seg: &Segment, kind: Kind, id: u64, inc: u64) {
    let attempted = seg.counter(&format!("a{id}")).unwrap();
    let stop = seg.counter("stop").unwrap();
    let mut buf = Vec::new();
    // The push of one message: Done, Again (retry the same message) or Closed.
    let mut push: Box<dyn FnMut(&Msg) -> Got> = match kind {
        Kind::Mpmc => {
            let q = seg.mpmc::<Msg>("q", CAP).unwrap();
            Box::new(move |m| match q.push_timeout(*m, POLL) {
                Ok(()) => Got::Done,
                Err(PushError::Timeout(_)) => Got::Again,
                Err(PushError::Closed(_)) => Got::Closed,
                Err(e) => panic!("push: {e}"),
            })
        }
        Kind::MpmcBytes => {
            let q = seg.mpmc_bytes("q", CAP, MAX_MSG).unwrap();
            Box::new(move |m| {
                encode(m, &mut buf);
                match q.send_timeout(&buf, POLL) {
                    Ok(()) => Got::Done,
                    Err(SendError::Timeout) => Got::Again,
                    Err(SendError::Closed) => Got::Closed,
                    Err(e) => panic!("send: {e}"),
                }
            })
        }
        Kind::Spsc => {
            let ring = seg.spsc::<Msg>("q", CAP).unwrap();
            let mut tx = ring.producer().unwrap();
            Box::new(move |m| match tx.push_timeout(*m, POLL) {
                Ok(()) => Got::Done,
                // `Closed` with the ring open: the consumer died; a new one takes over.
                Err(PushError::Timeout(_)) => Got::Again,
                Err(PushError::Closed(_)) if !tx.is_closed() => Got::Again,
                Err(PushError::Closed(_)) => Got::Closed,
                Err(e) => panic!("push: {e}"),
            })
        }
        Kind::Bytes => {
            let ring = seg.byte_ring("q", BYTE_CAP, MAX_MSG).unwrap();
            let mut tx = ring.sender().unwrap();
            Box::new(move |m| {
                encode(m, &mut buf);
                match tx.send_timeout(&buf, POLL) {
                    Ok(()) => Got::Done,
                    Err(SendError::Timeout) => Got::Again,
                    Err(SendError::Closed) if !tx.is_closed() => Got::Again,
                    Err(SendError::Closed) => Got::Closed,
                    Err(e) => panic!("send: {e}"),
                }
            })
        }
    };
    let mut seq = 0;
    while stop.load() == 0 {
        let m = msg(id, inc, seq);
        // Before the push: what could have arrived is never more than this.
        attempted.store(seq + 1);
        loop {
            match push(&m) {
                Got::Done => break,
                Got::Again if stop.load() == 0 => {}
                Got::Again | Got::Closed | Got::Msg(_) => return,
            }
        }
        seq += 1;
        // About 60 000 messages a second per producer at most: enough to keep every slot
        // busy, few enough for the test's bookkeeping on a loaded machine.
        if seq % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn consume(seg: &Segment, kind: Kind, slot: u64) {
    let journal = seg.spsc::<Msg>(&format!("j{slot}"), JOURNAL).unwrap();
    let mut out = journal.producer().unwrap();
    let mut buf = Vec::new();
    let mut pop: Box<dyn FnMut() -> Got> = match kind {
        Kind::Mpmc => {
            let q = seg.mpmc::<Msg>("q", CAP).unwrap();
            Box::new(move || match q.pop_timeout(POLL) {
                Ok(m) => Got::Msg(m),
                Err(PopError::Timeout) => Got::Again,
                Err(PopError::Closed) => Got::Closed,
                Err(e) => panic!("pop: {e}"),
            })
        }
        Kind::MpmcBytes => {
            let q = seg.mpmc_bytes("q", CAP, MAX_MSG).unwrap();
            Box::new(move || match q.recv_into_timeout(&mut buf, POLL) {
                Ok(_) => Got::Msg(decode(&buf)),
                Err(RecvError::Timeout) => Got::Again,
                Err(RecvError::Closed) => Got::Closed,
                Err(e) => panic!("recv: {e}"),
            })
        }
        Kind::Spsc => {
            let ring = seg.spsc::<Msg>("q", CAP).unwrap();
            let mut rx = ring.consumer().unwrap();
            Box::new(move || match rx.pop_timeout(POLL) {
                Ok(m) => Got::Msg(m),
                Err(PopError::Timeout) => Got::Again,
                // `Closed` with the ring open: the producer died; a new one takes over.
                Err(PopError::Closed) if !rx.is_closed() => Got::Again,
                Err(PopError::Closed) => Got::Closed,
                Err(e) => panic!("pop: {e}"),
            })
        }
        Kind::Bytes => {
            let ring = seg.byte_ring("q", BYTE_CAP, MAX_MSG).unwrap();
            let mut rx = ring.receiver().unwrap();
            Box::new(move || match rx.recv_into_timeout(&mut buf, POLL) {
                Ok(_) => Got::Msg(decode(&buf)),
                Err(RecvError::Timeout) => Got::Again,
                Err(RecvError::Closed) if !rx.is_closed() => Got::Again,
                Err(RecvError::Closed) => Got::Closed,
                Err(e) => panic!("recv: {e}"),
            })
        }
    };
    loop {
        match pop() {
            Got::Msg(m) => out.push(m).expect("journal"),
            Got::Again | Got::Done => {}
            Got::Closed => return,
        }
    }
}

/// The mutex soak's holder: see the module docs and [`soak_mutex`].
fn hold(seg: &Segment, slot: u64) {
    let m = seg.mutex::<[u64; 2]>("m", [0, 0]).unwrap();
    let outside = seg.counter("outside").unwrap();
    let repairs = seg.counter("repairs").unwrap();
    let stop = seg.counter("stop").unwrap();
    let mut rng = Rng(u64::from(std::process::id()) << 20 | slot | 1);
    while stop.load() == 0 {
        let mut g = match m.lock_timeout(POLL) {
            Ok(g) => g,
            Err(LockError::OwnerDied(mut g)) => {
                // A holder died between its two halves (or in the middle of the write-back):
                // the counter outside is the truth, the words follow it.
                let n = outside.load();
                *g = [n, n];
                repairs.inc();
                g.mark_consistent();
                g
            }
            Err(LockError::Error(Error::Timeout { .. })) => continue,
            Err(e) => panic!("lock: {e}"),
        };
        let [a, b] = *g;
        let n = outside.load();
        assert!(
            a == n && b == n,
            "holder {slot}: pair broken under a consistent lock: words {a}, {b}, outside {n}"
        );
        outside.inc();
        // Hold it a while: the window in which a kill leaves the pair broken.
        std::thread::sleep(Duration::from_micros(rng.below(1500)));
        *g = [a + 1, b + 1];
        drop(g);
    }
}

/// Mutex holders killed at random (half of the kills aim at the current holder) and restarted;
/// see the module docs.
fn soak_mutex(secs: f64, rng: &mut Rng) {
    const HOLDERS: usize = 3;
    let g = SegGuard::new("soak_mutex");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let m = seg.mutex::<[u64; 2]>("m", [0, 0]).unwrap();
    let outside = seg.counter("outside").unwrap();
    let repairs = seg.counter("repairs").unwrap();
    let stop = seg.counter("stop").unwrap();
    let mut kids = Children::new();
    let mut holders: Vec<usize> = (0..HOLDERS)
        .map(|i| kids.spawn("hold", g.name(), &[&i]))
        .collect();
    let (mut kills, mut aimed) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50 + rng.below(200)));
        let before = outside.load();
        let owner = m.state().owner_pid;
        let at_holder = rng.below(2) == 0;
        let victim = match holders.iter().position(|&i| Some(kids.pid(i)) == owner) {
            Some(h) if at_holder => {
                aimed += 1;
                h
            }
            _ => rng.below(HOLDERS as u64) as usize,
        };
        expect_killed(kids.kill(holders[victim]), "mutex", "holder");
        holders[victim] = kids.spawn("hold", g.name(), &[&victim]);
        kills += 1;
        // Progress after every kill (a survivor repairs the pair if the victim held the lock).
        let t = Instant::now();
        while outside.load() < before + 8 {
            // A holder that exited on its own (it found the pair broken): fail with its stderr.
            for &i in &holders {
                if kids.exited(i).is_some() {
                    kids.wait_ok(i, PROGRESS);
                }
            }
            assert!(
                t.elapsed() < PROGRESS,
                "mutex: no progress within {PROGRESS:?} after kill {kills} ({} operations)",
                outside.load()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    stop.store(1);
    for &i in &holders {
        kids.wait_ok(i, PROGRESS);
    }
    // The last kill may have hit a holder after which no survivor locked: repair as they do.
    let mut last = match m.lock_timeout(PROGRESS) {
        Ok(g) => g,
        Err(LockError::OwnerDied(mut g)) => {
            let n = outside.load();
            *g = [n, n];
            repairs.inc();
            g.mark_consistent();
            g
        }
        Err(e) => panic!("mutex: the final lock: {e}"),
    };
    let n = outside.load();
    let repaired = repairs.load();
    eprintln!(
        "mutex: {secs:.1} s, {n} operations, {kills} kills ({aimed} aimed at the holder), \
         {repaired} repairs"
    );
    assert_eq!(*last, [n, n], "mutex: the pair is broken at the end");
    *last = [0, 0];
    drop(last);
    assert!(kills > 0, "mutex: no kill happened");
    assert!(
        repaired >= 1 || aimed == 0,
        "mutex: {aimed} kills aimed at the holder, but no locker ever got OwnerDied"
    );
    assert!(
        repaired <= kills,
        "mutex: {repaired} repairs after only {kills} kills"
    );
    assert!(!m.state().owner_died && !m.state().not_recoverable);
}

/// A small deterministic generator (xorshift), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the test read from the journals.
#[derive(Default)]
struct Tally {
    received: u64,
    corrupt: Vec<Msg>,
    seen: HashSet<(u64, u64, u64)>,
    duplicates: Vec<Msg>,
    /// Per journal, per (producer, incarnation): the last sequence seen.
    last: HashMap<(u64, u64, u64), u64>,
    disorder: Vec<String>,
}

impl Tally {
    fn drain(&mut self, journals: &mut [Consumer<Msg>]) {
        for (j, rx) in journals.iter_mut().enumerate() {
            while let Ok(m) = rx.try_pop() {
                self.received += 1;
                let [id, inc, seq, sum] = m;
                if sum != check(id, inc, seq) {
                    self.corrupt.push(m);
                    continue;
                }
                if !self.seen.insert((id, inc, seq)) {
                    self.duplicates.push(m);
                }
                let key = (j as u64, id, inc);
                if let Some(&l) = self.last.get(&key) {
                    if seq <= l {
                        self.disorder
                            .push(format!("journal {j}: {id}/{inc}: {seq} after {l}"));
                    }
                }
                self.last.insert(key, seq);
            }
        }
    }
}

/// Fails the test unless `status` is the SIGKILL the test sent (a child that failed on its own
/// before it was killed is a failure too).
fn expect_killed(status: std::process::ExitStatus, k: &str, who: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{k}: the {who} had exited on its own: {}",
        common::describe(status)
    );
}

/// Waits until every child in `which` exited with status 0, draining the journals meanwhile.
fn wait_draining(
    kids: &mut Children,
    which: &[usize],
    tally: &mut Tally,
    journals: &mut [Consumer<Msg>],
    k: &str,
) {
    let t = Instant::now();
    for &i in which {
        loop {
            tally.drain(journals);
            if kids.exited(i).is_some() {
                kids.wait_ok(i, PROGRESS); // fails, quoting its stderr, unless it exited 0
                break;
            }
            assert!(
                t.elapsed() < PROGRESS,
                "{k}: children still running after {PROGRESS:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn soak(kind: Kind, secs: f64, rng: &mut Rng) {
    let g = SegGuard::new(&format!("soak_{}", kind.name()));
    let seg = Segment::create(g.name(), SIZE).unwrap();
    kind.open(&seg);
    let (np, nc) = kind.sides();
    let mut journals: Vec<Consumer<Msg>> = (0..nc)
        .map(|c| {
            seg.spsc::<Msg>(&format!("j{c}"), JOURNAL)
                .unwrap()
                .consumer()
                .unwrap()
        })
        .collect();
    for id in 0..np {
        seg.counter(&format!("a{id}")).unwrap();
    }
    let stop = seg.counter("stop").unwrap();
    let mut kids = Children::new();
    let k = kind.name();
    let mut inc = vec![0u64; np as usize];
    let mut producers: Vec<usize> = (0..np)
        .map(|id| kids.spawn("produce", g.name(), &[&k, &id, &0]))
        .collect();
    let mut consumers: Vec<usize> = (0..nc)
        .map(|c| kids.spawn("consume", g.name(), &[&k, &c]))
        .collect();
    // What each (producer, incarnation) attempted.
    let mut attempted: HashMap<(u64, u64), u64> = HashMap::new();
    let mut tally = Tally::default();
    let (mut producer_kills, mut consumer_kills) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        // Let the queue run a little (draining the journals), then kill someone.
        let pause = Instant::now() + Duration::from_millis(50 + rng.below(200));
        while Instant::now() < pause {
            tally.drain(&mut journals);
            std::thread::sleep(Duration::from_millis(2));
        }
        let before = tally.received;
        let victim = rng.below(np + nc);
        if victim < np {
            let id = victim as usize;
            expect_killed(kids.kill(producers[id]), k, "producer");
            let a = seg.counter(&format!("a{id}")).unwrap();
            attempted.insert((victim, inc[id]), a.load());
            a.store(0);
            inc[id] += 1;
            producers[id] = kids.spawn("produce", g.name(), &[&k, &victim, &inc[id]]);
            producer_kills += 1;
        } else {
            let c = (victim - np) as usize;
            expect_killed(kids.kill(consumers[c]), k, "consumer");
            consumers[c] = kids.spawn("consume", g.name(), &[&k, &c]);
            consumer_kills += 1;
        }
        // Progress after every kill.
        let t = Instant::now();
        while tally.received < before + 8 {
            assert!(
                t.elapsed() < PROGRESS,
                "{k}: no progress within {PROGRESS:?} after kill {} ({} received)",
                producer_kills + consumer_kills,
                tally.received
            );
            tally.drain(&mut journals);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Stop the producers, then close the queue: the consumers drain it and exit (the test
    // keeps draining the journals meanwhile, so that no consumer waits on a full one).
    stop.store(1);
    wait_draining(&mut kids, &producers, &mut tally, &mut journals, k);
    for (id, _) in producers.iter().enumerate() {
        let a = seg.counter(&format!("a{id}")).unwrap().load();
        attempted.insert((id as u64, inc[id]), a);
    }
    kind.close(&seg);
    wait_draining(&mut kids, &consumers, &mut tally, &mut journals, k);
    tally.drain(&mut journals);

    let kills = producer_kills + consumer_kills;
    let total: u64 = attempted.values().sum();
    let mut unattempted = Vec::new();
    for &(id, inc, seq) in &tally.seen {
        if seq >= attempted.get(&(id, inc)).copied().unwrap_or(0) {
            unattempted.push((id, inc, seq));
        }
    }
    let missing = total.saturating_sub(tally.seen.len() as u64);
    let lost = kind.lost(&seg);
    eprintln!(
        "{k}: {secs:.1} s, {} received of {total} attempted, {producer_kills} producer and \
         {consumer_kills} consumer kills, {missing} missing, lost() = {lost:?}",
        tally.received
    );
    assert!(
        tally.corrupt.is_empty(),
        "{k}: corrupt messages {:?}",
        tally.corrupt
    );
    assert!(
        tally.duplicates.is_empty(),
        "{k}: duplicates {:?}",
        tally.duplicates
    );
    assert!(
        tally.disorder.is_empty(),
        "{k}: out of order: {:?}",
        tally.disorder
    );
    assert!(
        unattempted.is_empty(),
        "{k}: never attempted: {unattempted:?}"
    );
    assert!(kills > 0, "{k}: no kill happened");
    assert!(
        missing <= kills,
        "{k}: {missing} messages missing after {kills} kills"
    );
    if let Some(lost) = lost {
        assert!(lost <= kills, "{k}: lost() = {lost} after {kills} kills");
        assert!(
            lost <= missing,
            "{k}: lost() = {lost} but only {missing} messages are missing"
        );
    }
}

#[test]
fn kill_soak() {
    let total: f64 = std::env::var("SHMKIT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill soak: {total} s, seed {seed}");
    let mut rng = Rng(seed);
    for kind in [Kind::Mpmc, Kind::MpmcBytes, Kind::Spsc, Kind::Bytes] {
        soak(kind, total / 5.0, &mut rng);
    }
    soak_mutex(total / 5.0, &mut rng);
}
