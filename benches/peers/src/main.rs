//! The heavy peers of shmkit's ring bench (`benches/ring.rs`): ipc-channel and iceoryx2, in a
//! cargo workspace of their own so that building or testing shmkit never builds them. The bench
//! builds this binary on first use (`cargo build --release --manifest-path benches/peers/Cargo.toml
//! --target-dir target/ring-peers`) and drives it through stdin/stdout.
//!
//! Usage: `shmkit-ring-peers MODE`, where MODE is
//!
//! | mode | processes | what one unit of `run N` is |
//! | --- | --- | --- |
//! | `ipc-spsc` | this one receives, a child sends | one `u64` through an `ipc::channel::<u64>()` |
//! | `ipc-pingpong` | this one pings, a child echoes | one round trip through two `ipc::channel::<u64>()`s (blocking `recv`) |
//! | `iox2-pingpong` | this one pings, a child echoes | one round trip through two iceoryx2 publish-subscribe services of `u64` (`send_copy`, busy-polled `receive`) |
//!
//! Protocol, one line each: prints `ready`; then `run N` runs N units and prints the nanoseconds
//! they took (measured here on `CLOCK_MONOTONIC`); `lat N` (ping-pong modes) prints N
//! round-trip times in nanoseconds, space-separated; EOF or `quit` stops the child and exits.
//! Every item is checked (order, value): a wrong one aborts with a message on stderr.
//!
//! The child is this binary again (`shmkit-ring-peers child MODE ARG`); it exits when told to,
//! when its channel closes, or when its parent is gone.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Failed polls a busy-polling side spins before it yields between polls (the same rule as the
/// spinning sides of `benches/ring.rs`).
const SPIN_TRIES: u32 = 1 << 12;

/// One failed poll: `spin_loop` for the first [`SPIN_TRIES`], then `yield_now`, so that a peer
/// that lost its CPU gets it back soon on a busy machine.
#[inline]
fn spin(fails: &mut u32) {
    *fails = fails.wrapping_add(1);
    if *fails < SPIN_TRIES {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Tells a child to stop (never a real item: items count up from 1).
const QUIT: u64 = u64::MAX;

/// Nanoseconds on `CLOCK_MONOTONIC`, the same clock in every process of the machine.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn parent_alive(parent: libc::pid_t) -> bool {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() == parent }
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("shmkit-ring-peers: {msg}");
    std::process::exit(1);
}

/// What the parent side of a mode does.
trait Peer {
    /// Runs `n` units; returns the nanoseconds they took.
    fn run(&mut self, n: u64) -> u64;
    /// `n` round trips, each timed (ping-pong modes only).
    fn lat(&mut self, n: u64) -> Option<Vec<u64>>;
    /// Stops the child.
    fn quit(&mut self);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => {
            let mode = args.get(2).unwrap_or_else(|| fail("child: mode missing"));
            let arg = args
                .get(3)
                .unwrap_or_else(|| fail("child: argument missing"));
            match mode.as_str() {
                "ipc-spsc" => ipc::spsc_child(arg),
                "ipc-pingpong" => ipc::pingpong_child(arg),
                "iox2-pingpong" => iox2::pingpong_child(arg),
                other => fail(format!("unknown child mode {other:?}")),
            }
        }
        Some(mode) => {
            let mut peer: Box<dyn Peer> = match mode {
                "ipc-spsc" => Box::new(ipc::Spsc::start()),
                "ipc-pingpong" => Box::new(ipc::PingPong::start()),
                "iox2-pingpong" => Box::new(iox2::PingPong::start()),
                other => fail(format!("unknown mode {other:?}")),
            };
            serve(peer.as_mut());
        }
        None => fail("usage: shmkit-ring-peers ipc-spsc|ipc-pingpong|iox2-pingpong"),
    }
}

fn serve(peer: &mut dyn Peer) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready").and_then(|()| out.flush()).ok();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, n) = match words.as_slice() {
            [] | ["quit"] => break,
            [cmd, n] => match n.parse::<u64>() {
                Ok(n) => (*cmd, n),
                Err(_) => fail(format!("bad command {line:?}")),
            },
            _ => fail(format!("bad command {line:?}")),
        };
        let answer = match cmd {
            "run" => peer.run(n).to_string(),
            "lat" => match peer.lat(n) {
                Some(v) => v.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
                None => fail("`lat` needs a ping-pong mode"),
            },
            _ => fail(format!("bad command {line:?}")),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    peer.quit();
}

/// Spawns this binary as the child of `mode`.
fn spawn_child(mode: &str, arg: &str, stdout: Stdio) -> Child {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(format!("current_exe: {e}")));
    Command::new(exe)
        .args(["child", mode, arg])
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .unwrap_or_else(|e| fail(format!("spawning the {mode} child: {e}")))
}

/// Waits up to 2 s for `child` to exit, then kills it; reaps it.
fn reap(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

mod ipc {
    //! ipc-channel 0.23: typed channels over Unix sockets, items serialized with bincode.
    use super::*;
    use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};

    /// What the child hands the parent: where to send to it, where to receive from it.
    type Bootstrap = (IpcSender<u64>, IpcReceiver<u64>);

    /// Starts the child and returns (child, to child, from child).
    fn connect(mode: &str) -> (Child, IpcSender<u64>, IpcReceiver<u64>) {
        let (server, name) = IpcOneShotServer::<Bootstrap>::new()
            .unwrap_or_else(|e| fail(format!("ipc one-shot server: {e}")));
        let child = spawn_child(mode, &name, Stdio::null());
        let (_, (to_child, from_child)) = server
            .accept()
            .unwrap_or_else(|e| fail(format!("ipc accept: {e:?}")));
        (child, to_child, from_child)
    }

    /// Child side of [`connect`]: returns (from parent, to parent).
    fn child_connect(name: &str) -> (IpcReceiver<u64>, IpcSender<u64>) {
        let (to_child, from_parent) = ipc::channel::<u64>().unwrap_or_else(|e| fail(e));
        let (to_parent, from_child) = ipc::channel::<u64>().unwrap_or_else(|e| fail(e));
        let boot = IpcSender::<Bootstrap>::connect(name.to_owned()).unwrap_or_else(|e| fail(e));
        boot.send((to_child, from_child))
            .unwrap_or_else(|e| fail(format!("ipc bootstrap: {e:?}")));
        (from_parent, to_parent)
    }

    /// `ipc-spsc`: the child sends, this process receives.
    pub struct Spsc {
        child: Child,
        to_child: IpcSender<u64>,
        from_child: IpcReceiver<u64>,
        next: u64,
    }

    impl Spsc {
        pub fn start() -> Spsc {
            let (child, to_child, from_child) = connect("ipc-spsc");
            Spsc {
                child,
                to_child,
                from_child,
                next: 1,
            }
        }
    }

    impl Peer for Spsc {
        /// The child reads the clock, sends `n` items, then sends the instant it started; the
        /// round is that instant to the moment the last item arrived here.
        fn run(&mut self, n: u64) -> u64 {
            self.to_child
                .send(n)
                .unwrap_or_else(|e| fail(format!("ipc send: {e:?}")));
            for _ in 0..n {
                let v = self
                    .from_child
                    .recv()
                    .unwrap_or_else(|e| fail(format!("ipc recv: {e:?}")));
                if v != self.next {
                    fail(format!("ipc-spsc: got {v}, expected {}", self.next));
                }
                self.next += 1;
            }
            let end = now_ns();
            let start = self
                .from_child
                .recv()
                .unwrap_or_else(|e| fail(format!("ipc recv: {e:?}")));
            end.saturating_sub(start)
        }

        fn lat(&mut self, _: u64) -> Option<Vec<u64>> {
            None
        }

        fn quit(&mut self) {
            let _ = self.to_child.send(QUIT);
            reap(&mut self.child);
        }
    }

    pub fn spsc_child(name: &str) {
        let (from_parent, to_parent) = child_connect(name);
        let mut next = 1u64;
        while let Ok(n) = from_parent.recv() {
            if n == QUIT {
                return;
            }
            let start = now_ns();
            for _ in 0..n {
                if to_parent.send(next).is_err() {
                    return;
                }
                next += 1;
            }
            if to_parent.send(start).is_err() {
                return;
            }
        }
    }

    /// `ipc-pingpong`: this process pings, the child echoes.
    pub struct PingPong {
        child: Child,
        to_child: IpcSender<u64>,
        from_child: IpcReceiver<u64>,
        k: u64,
    }

    impl PingPong {
        pub fn start() -> PingPong {
            let (child, to_child, from_child) = connect("ipc-pingpong");
            PingPong {
                child,
                to_child,
                from_child,
                k: 0,
            }
        }

        #[inline]
        fn trip(&mut self) {
            self.k += 1;
            self.to_child
                .send(self.k)
                .unwrap_or_else(|e| fail(format!("ipc send: {e:?}")));
            match self.from_child.recv() {
                Ok(v) if v == self.k => {}
                other => fail(format!("ipc-pingpong: got {other:?}, expected {}", self.k)),
            }
        }
    }

    impl Peer for PingPong {
        fn run(&mut self, n: u64) -> u64 {
            let start = now_ns();
            for _ in 0..n {
                self.trip();
            }
            now_ns() - start
        }

        fn lat(&mut self, n: u64) -> Option<Vec<u64>> {
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let t = now_ns();
                self.trip();
                out.push(now_ns() - t);
            }
            Some(out)
        }

        fn quit(&mut self) {
            let _ = self.to_child.send(QUIT);
            reap(&mut self.child);
        }
    }

    pub fn pingpong_child(name: &str) {
        let (from_parent, to_parent) = child_connect(name);
        while let Ok(v) = from_parent.recv() {
            if v == QUIT || to_parent.send(v).is_err() {
                return;
            }
        }
    }
}

mod iox2 {
    //! iceoryx2 0.10: zero-copy publish-subscribe in shared memory. Two services per run,
    //! `shmkit-ring-bench/<pid>/ping` and `.../pong`, each one publisher and one subscriber of
    //! `u64`, no history, a subscriber buffer of 1 (as iceoryx2's own ping-pong benchmark).
    use super::{fail, now_ns, parent_alive, reap, spawn_child, spin, Peer, QUIT};
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};

    type Svc = iceoryx2::service::ipc::Service;

    type Pub = Publisher<Svc, u64, ()>;
    type Sub = Subscriber<Svc, u64, ()>;
    type Factory = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, u64, ()>;

    fn service(node: &Node<Svc>, name: &str, create: bool) -> Factory {
        let name = ServiceName::new(name).unwrap_or_else(|e| fail(format!("{name}: {e:?}")));
        let b = node
            .service_builder(&name)
            .publish_subscribe::<u64>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(1)
            .enable_safe_overflow(true);
        if create {
            b.create()
                .unwrap_or_else(|e| fail(format!("iceoryx2 service {name}: {e:?}")))
        } else {
            b.open()
                .unwrap_or_else(|e| fail(format!("iceoryx2 service {name}: {e:?}")))
        }
    }

    fn ports(node: &Node<Svc>, base: &str, create: bool, ping: bool) -> (Pub, Sub) {
        let a = service(node, &format!("{base}/ping"), create);
        let b = service(node, &format!("{base}/pong"), create);
        let (out, inp) = if ping { (&a, &b) } else { (&b, &a) };
        let publisher = out
            .publisher_builder()
            .create()
            .unwrap_or_else(|e| fail(format!("iceoryx2 publisher: {e:?}")));
        let subscriber = inp
            .subscriber_builder()
            .create()
            .unwrap_or_else(|e| fail(format!("iceoryx2 subscriber: {e:?}")));
        (publisher, subscriber)
    }

    fn node() -> Node<Svc> {
        set_log_level(LogLevel::Error);
        NodeBuilder::new()
            .create::<Svc>()
            .unwrap_or_else(|e| fail(format!("iceoryx2 node: {e:?}")))
    }

    /// `iox2-pingpong`: this process pings, the child echoes. The ports are declared before the
    /// node so that they drop first.
    pub struct PingPong {
        publisher: Pub,
        subscriber: Sub,
        _services: (Factory, Factory),
        _node: Node<Svc>,
        child: Child,
        k: u64,
    }

    impl PingPong {
        pub fn start() -> PingPong {
            let node = node();
            let base = format!("shmkit-ring-bench/{}", std::process::id());
            // Create both services here (the child opens them) and keep the factories alive.
            let services = (
                service(&node, &format!("{base}/ping"), true),
                service(&node, &format!("{base}/pong"), true),
            );
            let (publisher, subscriber) = ports(&node, &base, false, true);
            let mut child = spawn_child("iox2-pingpong", &base, Stdio::piped());
            // The child prints one line once its ports exist.
            let mut line = String::new();
            let read = child
                .stdout
                .take()
                .map(|s| BufReader::new(s).read_line(&mut line));
            if !matches!(read, Some(Ok(n)) if n > 0) {
                reap(&mut child);
                fail("the iceoryx2 child did not start");
            }
            let mut p = PingPong {
                publisher,
                subscriber,
                _services: services,
                _node: node,
                child,
                k: 0,
            };
            p.handshake();
            p
        }

        /// Pings 1 until it comes back: the first pings may go out before the publisher has
        /// connected to the child's subscriber.
        fn handshake(&mut self) {
            self.k = 1;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                self.send(1);
                let resend = Instant::now() + Duration::from_millis(10);
                while Instant::now() < resend {
                    if self.recv_once() == Some(1) {
                        return;
                    }
                }
            }
            fail("iceoryx2: the child never answered");
        }

        fn send(&self, v: u64) {
            self.publisher
                .send_copy(v)
                .unwrap_or_else(|e| fail(format!("iceoryx2 send: {e:?}")));
        }

        #[inline]
        fn recv_once(&self) -> Option<u64> {
            match self.subscriber.receive() {
                Ok(Some(sample)) => Some(*sample),
                Ok(None) => None,
                Err(e) => fail(format!("iceoryx2 receive: {e:?}")),
            }
        }

        /// Gives up (rather than hang the bench) when no answer came for 20 s: the child died.
        #[cold]
        fn check_stall(&mut self, since: &mut Option<Instant>) {
            let now = Instant::now();
            match *since {
                None => *since = Some(now),
                Some(t) if now - t > Duration::from_secs(20) => {
                    let status = self.child.try_wait();
                    fail(format!("iceoryx2: no answer for 20 s (child: {status:?})"))
                }
                Some(_) => {}
            }
        }

        #[inline]
        fn trip(&mut self) {
            self.k += 1;
            self.send(self.k);
            // Busy-poll (as iceoryx2's own benchmark; yielding after SPIN_TRIES, as the ring
            // bench's spinning sides do); answers to stale handshake pings are skipped.
            let mut fails = 0u32;
            let mut since: Option<Instant> = None;
            loop {
                match self.recv_once() {
                    Some(v) if v == self.k => return,
                    Some(v) if v > self.k => fail(format!("iceoryx2: got {v}, sent {}", self.k)),
                    _ => {
                        spin(&mut fails);
                        if fails.is_multiple_of(1 << 16) {
                            self.check_stall(&mut since);
                        }
                    }
                }
            }
        }
    }

    impl Peer for PingPong {
        fn run(&mut self, n: u64) -> u64 {
            let start = now_ns();
            for _ in 0..n {
                self.trip();
            }
            now_ns() - start
        }

        fn lat(&mut self, n: u64) -> Option<Vec<u64>> {
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let t = now_ns();
                self.trip();
                out.push(now_ns() - t);
            }
            Some(out)
        }

        fn quit(&mut self) {
            // Sent a few times: a single sample could be overwritten (buffer of 1) only by a
            // later one, and there is none, but be sure.
            for _ in 0..3 {
                self.send(QUIT);
            }
            reap(&mut self.child);
        }
    }

    /// The echoing side: busy-polls its subscriber and sends every new value back. Leaves on
    /// [`QUIT`] or when the parent is gone (checked every ~million empty polls).
    pub fn pingpong_child(base: &str) {
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        let node = node();
        let (publisher, subscriber) = ports(&node, base, false, false);
        println!("ready");
        let _ = std::io::stdout().flush();
        let mut last = 0u64;
        let mut idle = 0u32;
        let mut fails = 0u32;
        loop {
            match subscriber.receive() {
                Ok(Some(sample)) => {
                    let v = *sample;
                    drop(sample);
                    if v == QUIT {
                        return;
                    }
                    if v > last {
                        last = v;
                        if publisher.send_copy(v).is_err() {
                            return;
                        }
                    }
                    idle = 0;
                    fails = 0;
                }
                Ok(None) => {
                    idle = idle.wrapping_add(1);
                    if idle.is_multiple_of(1 << 20) && !parent_alive(parent) {
                        return;
                    }
                    spin(&mut fails);
                }
                Err(_) => return,
            }
        }
    }
}
