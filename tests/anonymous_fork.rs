//! Anonymous segments shared with `fork()`ed children.
//!
//! This target runs with `harness = false` (see Cargo.toml): libtest runs tests on several
//! threads, and a `fork()` from a threaded process may leave the child holding locks of threads
//! that do not exist there. Here `main` runs every test on the main thread, no thread is ever
//! started, and each child only touches the shared segment and then `_exit`s. The output mimics
//! libtest's (`test result: ok. N passed; 0 failed`) so that runners recognise it.

#[cfg(feature = "loom")]
fn main() {}

#[cfg(not(feature = "loom"))]
fn main() {
    imp::main()
}

#[cfg(not(feature = "loom"))]
mod imp {
    use shmkit::RecvError;
    use shmkit::{Counter, Error, PipeEnd, Segment};
    use std::time::{Duration, Instant};

    const SIZE: u64 = 1 << 20;
    const TIMEOUT: Duration = Duration::from_secs(60);

    /// Forked children, killed (SIGKILL) and reaped on Drop if a test fails before waiting.
    struct Forked {
        pids: Vec<libc::pid_t>,
    }

    impl Forked {
        fn new() -> Self {
            Forked { pids: Vec::new() }
        }

        /// Forks a child that runs `body` and exits 0, or 101 if `body` panics. The child never
        /// returns into the caller.
        fn fork(&mut self, body: impl FnOnce()) {
            // SAFETY: this process has a single thread (harness = false, no thread started),
            // so the child inherits no lock held by another thread.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_ok();
                // SAFETY: _exit ends the child at once, without running the parent's atexit
                // handlers or destructors (which would, e.g., flush duplicated buffers).
                unsafe { libc::_exit(if ok { 0 } else { 101 }) };
            }
            self.pids.push(pid);
        }

        /// Waits for every child (bounded) and asserts each exited with status 0.
        fn wait_all(&mut self) {
            let deadline = Instant::now() + TIMEOUT;
            while let Some(&pid) = self.pids.first() {
                let mut status = 0;
                // SAFETY: waitpid on our own child, writing only to `status`.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
                if r == 0 {
                    assert!(Instant::now() < deadline, "child {pid} hangs");
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                self.pids.remove(0);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "child {pid} failed: wait status {status:#x}"
                );
            }
        }
    }

    impl Forked {
        /// SIGKILLs and reaps every child.
        fn kill_all(&mut self) {
            for pid in self.pids.drain(..) {
                // SAFETY: kill and waitpid on our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    impl Drop for Forked {
        fn drop(&mut self) {
            for &pid in &self.pids {
                // SAFETY: kill and waitpid on our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    fn child_increments_parent_sees() {
        let seg = Segment::anonymous(SIZE).unwrap();
        let hits = seg.counter("hits").unwrap();
        let sharded = seg.sharded_counter("sharded").unwrap();
        let temp = seg.value::<f64>("temp", 0.0).unwrap();
        let mut kids = Forked::new();
        kids.fork(|| {
            for _ in 0..1000 {
                hits.inc();
                sharded.inc();
            }
            temp.store(36.6);
            // An object created after the fork lands in the shared directory.
            seg.counter("late").unwrap().add(5);
        });
        kids.wait_all();
        assert_eq!(hits.load(), 1000);
        assert_eq!(sharded.sum(), 1000);
        assert_eq!(temp.load(), 36.6);
        assert_eq!(seg.open_object::<Counter>("late").unwrap().load(), 5);
        assert_eq!(seg.entries().unwrap().len(), 4);
    }

    fn four_children_race_on_one_counter() {
        const KIDS: u64 = 4;
        const ADDS: u64 = 100_000;
        let seg = Segment::anonymous(SIZE).unwrap();
        let hits = seg.counter("hits").unwrap();
        let sharded = seg.sharded_counter("sharded").unwrap();
        let arrived = seg.counter("arrived").unwrap();
        let go = seg.counter("go").unwrap();
        let mut kids = Forked::new();
        for _ in 0..KIDS {
            kids.fork(|| {
                arrived.inc();
                let deadline = Instant::now() + TIMEOUT;
                while go.load() == 0 {
                    assert!(Instant::now() < deadline, "never started");
                    std::hint::spin_loop();
                }
                for _ in 0..ADDS {
                    hits.add(1);
                    sharded.add(1);
                }
            });
        }
        let deadline = Instant::now() + TIMEOUT;
        while arrived.load() < KIDS {
            assert!(Instant::now() < deadline, "children did not arrive");
            std::thread::sleep(Duration::from_millis(1));
        }
        go.store(1);
        kids.wait_all();
        assert_eq!(hits.load(), KIDS * ADDS);
        assert_eq!(sharded.sum(), KIDS * ADDS);
    }

    /// A forked child is a process of its own: its claims (ring side, seqlock writer, pipe end,
    /// mutex) stand while it lives, and fall to the parent once it is killed. Before the process
    /// identity was recomputed after fork, the child inherited the parent's cached start time
    /// and the parent took every claim of the live child (issue 10, item 1).
    fn claims_of_live_fork_children_stand() {
        // Start times have a resolution of one clock tick (10 ms): a child forked within the
        // tick its parent started in has the parent's start time, which would hide the bug.
        std::thread::sleep(Duration::from_millis(50));
        let seg = Segment::anonymous(SIZE).unwrap();
        let ring = seg.spsc::<u64>("ring", 16).unwrap();
        let sl = seg.seqlock::<u64>("sl", 0).unwrap();
        let pipe = seg.pipe("pipe", 1024, 64).unwrap();
        let m = seg.mutex::<u64>("m", 0).unwrap();
        let ready = seg.counter("ready").unwrap();
        let child = seg.counter("child").unwrap();
        let mut kids = Forked::new();
        kids.fork(|| {
            let _p = ring.producer().unwrap();
            let _w = sl.writer().unwrap();
            let _end = pipe.end(PipeEnd::A).unwrap();
            let _g = m.lock().unwrap();
            child.store(u64::from(std::process::id()));
            ready.inc();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        while ready.load() == 0 {
            assert!(Instant::now() < deadline, "child never took its claims");
            std::thread::sleep(Duration::from_millis(1));
        }
        let pid = child.load() as u32;
        // Alive: every claim stands, however often it is checked.
        for _ in 0..3 {
            assert!(
                matches!(ring.producer(), Err(Error::RingSideTaken { pid: p, .. }) if p == pid),
                "the parent took the producer side of a live child"
            );
            assert!(
                matches!(sl.try_writer(), Err(Error::WriterBusy { pid: p }) if p == pid),
                "the parent took the seqlock writer of a live child"
            );
            assert!(matches!(m.try_lock(), Err(e) if !e.is_owner_died()));
        }
        let mut b = pipe.end(PipeEnd::B).unwrap();
        assert_eq!(b.peer(), Some(pid));
        assert_eq!(
            b.recv_timeout(Duration::from_millis(100)),
            Err(RecvError::Timeout),
            "a live child's pipe end read as closed"
        );
        // Dead: every claim can be taken.
        kids.kill_all();
        ring.producer().unwrap();
        drop(sl.try_writer().unwrap());
        assert_eq!(b.peer(), None);
        assert_eq!(
            b.recv_timeout(Duration::from_secs(5)),
            Err(RecvError::Closed)
        );
        assert!(m.lock().unwrap_err().is_owner_died());
    }

    /// A guard inherited by a forked child is inert there: the child is a copy, the lock is the
    /// parent's thread's. Dropping the copy must neither write the child's value back nor unlock
    /// behind the parent (issue 10, item 9: it did both).
    fn guards_are_inert_in_a_forked_child() {
        let seg = Segment::anonymous(SIZE).unwrap();
        let m = seg.mutex::<u64>("m", 0).unwrap();
        let r = seg.reentrant_mutex("r").unwrap();
        let mut g = m.lock().unwrap();
        *g = 5; // not written back yet
        let held = std::cell::Cell::new(Some(g));
        let rg = std::cell::Cell::new(Some((r.lock().unwrap(), r.lock().unwrap())));
        let owner = m.state().owner_tid;
        assert!(owner.is_some());
        let mut kids = Forked::new();
        kids.fork(|| {
            let mut g = held.take().unwrap();
            *g = 99;
            drop(g); // the child's copy
            drop(rg.take());
            assert_eq!(
                m.state().owner_tid,
                owner,
                "the child unlocked the parent's mutex"
            );
            assert_eq!(
                r.state().owner_tid,
                owner,
                "the child unlocked the parent's rlock"
            );
            assert_eq!(r.depth(), 2, "the child changed the parent's depth");
            assert!(
                matches!(m.try_lock(), Err(e) if !e.is_owner_died()),
                "the child took the parent's mutex"
            );
            assert!(
                matches!(r.try_lock(), Err(e) if !e.is_owner_died()),
                "the child took the parent's rlock"
            );
        });
        kids.wait_all();
        // The parent still holds both, and its own guards work as before.
        assert_eq!(m.state().owner_tid, owner);
        assert_eq!(r.depth(), 2);
        drop(held.take());
        assert_eq!(*m.lock().unwrap(), 5, "the child's value was written back");
        drop(rg.take());
        assert_eq!(r.state().owner_tid, None);
        assert_eq!(r.depth(), 0);
    }

    /// A forked child holding a semaphore permit and a barrier party: the parent sees it alive
    /// while it lives (no reclaim, no break for a dead party) and dead once it is killed.
    fn lock_claims_of_a_forked_child() {
        std::thread::sleep(Duration::from_millis(50)); // see claims_of_live_fork_children_stand
        let seg = Segment::anonymous(SIZE).unwrap();
        let s = seg.semaphore("s", 1).unwrap();
        let alive_b = seg.barrier("alive", 2).unwrap();
        let dead_b = seg.barrier("dead", 2).unwrap();
        let ready = seg.counter("ready").unwrap();
        let mut kids = Forked::new();
        kids.fork(|| {
            s.acquire().unwrap();
            // Generation 0 of both barriers, with the parent: the child is a recorded party.
            alive_b.wait_timeout(TIMEOUT).unwrap();
            dead_b.wait_timeout(TIMEOUT).unwrap();
            ready.inc();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        alive_b.wait_timeout(TIMEOUT).unwrap();
        dead_b.wait_timeout(TIMEOUT).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while ready.load() == 0 {
            assert!(Instant::now() < deadline, "child never took its claims");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Alive: the permit stays the child's, the barrier waits out its timeout.
        for _ in 0..3 {
            assert!(matches!(s.try_acquire(), Err(Error::WouldBlock { .. })));
        }
        assert!(matches!(
            s.acquire_timeout(Duration::from_millis(50)),
            Err(Error::Timeout { .. })
        ));
        assert_eq!(s.reclaimed(), 0);
        let t = Instant::now();
        assert!(alive_b.wait_timeout(Duration::from_millis(300)).is_err());
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "a live child was taken for a dead party after {:?}",
            t.elapsed()
        );
        // Dead: the permit comes back, the other barrier breaks at once.
        kids.kill_all();
        s.acquire_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(s.reclaimed(), 1);
        let t = Instant::now();
        assert!(matches!(
            dead_b.wait_timeout(Duration::from_secs(5)),
            Err(Error::BarrierBroken { .. })
        ));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// Removes a named segment on drop.
    struct Unlink(String);

    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
        }
    }

    fn live_pids(seg: &Segment) -> Vec<u32> {
        let mut v: Vec<u32> = seg.users().live.iter().map(|u| u.pid).collect();
        v.sort_unstable();
        v
    }

    /// The user table and fork: a child inherits the mapping, not the registration. Dropping an
    /// inherited segment does not unregister the parent; a child that uses the segment registers
    /// itself, and its own last drop releases only its own slot.
    fn fork_children_register_themselves_and_never_unregister_the_parent() {
        let name = format!("shmkit-t-fork-users-{}", std::process::id());
        let _guard = Unlink(name.clone());
        let me = std::process::id();
        // The only reference to this mapping, so that a child can drop all of it.
        let mut held = Some(Segment::create(&name, SIZE).unwrap());
        let obs = shmkit::SegmentOptions::new()
            .register(false)
            .open(&name)
            .unwrap();
        assert_eq!(live_pids(&obs), [me]);
        let mut kids = Forked::new();
        kids.fork(|| drop(held.take()));
        kids.wait_all();
        assert_eq!(
            live_pids(&obs),
            [me],
            "a child's drop unregistered the parent"
        );

        let step = obs.counter("step").unwrap();
        let go = obs.counter("go").unwrap();
        let wait_for = |c: &Counter, v: u64| {
            let deadline = Instant::now() + TIMEOUT;
            while c.load() < v {
                assert!(Instant::now() < deadline, "timed out");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        kids.fork(|| {
            let seg = held.as_ref().unwrap();
            let users = seg.users(); // registers this child
            assert!(users
                .live
                .iter()
                .any(|u| u.is_me && u.pid == std::process::id()));
            assert!(users.live.iter().any(|u| u.pid == me && !u.is_me));
            step.inc();
            wait_for(&go, 1);
            drop(held.take());
            step.inc();
            wait_for(&go, 2);
        });
        wait_for(&step, 1);
        let child = kids.pids[0] as u32;
        let mut both = vec![me, child];
        both.sort_unstable();
        assert_eq!(live_pids(&obs), both);
        go.inc();
        wait_for(&step, 2);
        // The child, still alive, released its slot and only its slot.
        assert_eq!(live_pids(&obs), [me]);
        go.inc();
        kids.wait_all();
        drop(held);
        assert!(obs.users().is_stale());
    }

    /// A seqlock writer guard inherited by a forked child is inert there: the writer lock is the
    /// parent's, so the child's copy must not write (each write is an `Error::InheritedGuard`)
    /// nor free the parent's lock on drop. Before, the release was already skipped but every
    /// write through the copy went through, beside the parent's own writes (issue 10, item 8).
    fn seqlock_writers_are_inert_in_a_forked_child() {
        let seg = Segment::anonymous(SIZE).unwrap();
        let sl = seg.seqlock::<u64>("sl", 1).unwrap();
        let arr = seg.array::<u64>("arr", 4).unwrap();
        let w = std::cell::Cell::new(Some(sl.writer().unwrap()));
        let aw = std::cell::Cell::new(Some(arr.writer().unwrap()));
        let parent = std::process::id();
        let mut kids = Forked::new();
        kids.fork(|| {
            let mut w = w.take().unwrap();
            let mut aw = aw.take().unwrap();
            let wrote = w.write(&99);
            let updated = w.update(|v| *v = 98);
            let set = aw.set(0, 99);
            let all = aw.write_from(&[99; 4]);
            let ranged = aw.update_range(0..2, |v| v.fill(98));
            assert_eq!(
                sl.read(),
                1,
                "the child wrote through the parent's seqlock writer"
            );
            assert_eq!(
                arr.snapshot(),
                [0; 4],
                "the child wrote through the parent's array writer"
            );
            assert!(
                matches!(wrote, Err(Error::InheritedGuard { .. })),
                "write: {wrote:?}"
            );
            assert!(
                matches!(updated, Err(Error::InheritedGuard { .. })),
                "update: {updated:?}"
            );
            for r in [set, all, ranged] {
                assert!(matches!(r, Err(Error::InheritedGuard { .. })), "{r:?}");
            }
            drop(w);
            drop(aw);
            assert!(
                matches!(sl.try_writer(), Err(Error::WriterBusy { pid }) if pid == parent),
                "the child's drop freed the parent's seqlock writer lock"
            );
            assert!(
                matches!(arr.try_writer(), Err(Error::WriterBusy { pid }) if pid == parent),
                "the child's drop freed the parent's array writer lock"
            );
        });
        kids.wait_all();
        // The parent's own guards write as before, and free their locks.
        let mut w = w.take().unwrap();
        w.write(&2).unwrap();
        assert_eq!(sl.read(), 2);
        drop(w);
        let mut aw = aw.take().unwrap();
        aw.set(3, 7).unwrap();
        drop(aw);
        assert_eq!(arr.snapshot(), [0, 0, 0, 7]);
        drop(sl.try_writer().unwrap());
        drop(arr.try_writer().unwrap());
    }

    /// The object name whose creation stops its creator (see `main`).
    #[cfg(feature = "test-hooks")]
    const STALLED: &str = "stalled";

    /// A forked child stopped (SIGSTOP, at the `directory.create.named` test point) in the middle
    /// of creating an object: the entry is named but not initialized. The parent must not take
    /// the live child for dead, and must not wait past its deadline; once the child is killed the
    /// creation is taken over and the object works.
    #[cfg(feature = "test-hooks")]
    fn directory_creation_of_a_stalled_fork_child() {
        std::thread::sleep(Duration::from_millis(50)); // see claims_of_live_fork_children_stand
        let wait = Duration::from_millis(300);
        let seg = shmkit::SegmentOptions::new()
            .wait_timeout(wait)
            .anonymous(SIZE)
            .unwrap();
        let mut kids = Forked::new();
        kids.fork(|| {
            let _ = seg.counter(STALLED);
            unreachable!("the stop point returned");
        });
        let pid = kids.pids[0];
        // Wait until the child stopped itself at the point (the entry is named by then).
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing only to `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(libc::WIFSTOPPED(status), "child not stopped: {status:#x}");
        // Alive (stopped): never judged dead, and every wait ends by its deadline.
        for _ in 0..2 {
            let t = Instant::now();
            match seg.counter(STALLED) {
                Err(Error::Timeout { .. }) => {}
                other => panic!("find-or-create of a live child's entry: {other:?}"),
            }
            let took = t.elapsed();
            assert!(
                took >= wait - Duration::from_millis(50),
                "gave up early: {took:?}"
            );
            assert!(
                took < Duration::from_secs(3),
                "blocked past the deadline: {took:?}"
            );
            let t = Instant::now();
            match seg.open_object::<Counter>(STALLED) {
                Err(Error::Timeout { .. }) => {}
                other => panic!("open of a live child's entry: {other:?}"),
            }
            assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        }
        // Other objects are still created and found meanwhile.
        seg.counter("other").unwrap().inc();
        // Dead: reported as such, then the creation is recovered.
        kids.kill_all();
        match seg.open_object::<Counter>(STALLED) {
            Err(Error::CreatorDied { pid: p, .. }) => assert_eq!(p, pid as u32),
            other => panic!("open after the creator died: {other:?}"),
        }
        let c = seg.counter(STALLED).unwrap();
        assert_eq!(c.load(), 0);
        c.add(3);
        assert_eq!(seg.open_object::<Counter>(STALLED).unwrap().load(), 3);
        assert_eq!(seg.open_object::<Counter>("other").unwrap().load(), 1);
    }

    pub fn main() {
        // Arm the stop point before anything reads it (once per process): only the creation of
        // the object STALLED stops, and only the forked child creates it first.
        #[cfg(feature = "test-hooks")]
        std::env::set_var(
            "SHMKIT_HOOK",
            format!("stop:directory.create.named:{STALLED}"),
        );
        #[cfg_attr(not(feature = "test-hooks"), allow(unused_mut))]
        let mut tests: Vec<(&str, fn())> = vec![
            (
                "fork_children_register_themselves_and_never_unregister_the_parent",
                fork_children_register_themselves_and_never_unregister_the_parent,
            ),
            (
                "seqlock_writers_are_inert_in_a_forked_child",
                seqlock_writers_are_inert_in_a_forked_child,
            ),
            (
                "claims_of_live_fork_children_stand",
                claims_of_live_fork_children_stand,
            ),
            (
                "guards_are_inert_in_a_forked_child",
                guards_are_inert_in_a_forked_child,
            ),
            (
                "lock_claims_of_a_forked_child",
                lock_claims_of_a_forked_child,
            ),
            ("child_increments_parent_sees", child_increments_parent_sees),
            (
                "four_children_race_on_one_counter",
                four_children_race_on_one_counter,
            ),
        ];
        #[cfg(feature = "test-hooks")]
        tests.push((
            "directory_creation_of_a_stalled_fork_child",
            directory_creation_of_a_stalled_fork_child,
        ));
        // Name filters as libtest takes them: free arguments, not options or their values.
        let mut filter = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if [
                "--skip",
                "--test-threads",
                "--format",
                "--color",
                "--logfile",
            ]
            .contains(&a.as_str())
            {
                args.next();
            } else if !a.starts_with('-') {
                filter.push(a);
            }
        }
        if std::env::args().any(|a| a == "--list") {
            for (name, _) in &tests {
                println!("{name}: test");
            }
            return;
        }
        println!("\nrunning {} tests", tests.len());
        let start = Instant::now();
        let (mut passed, mut failed, mut filtered) = (0, 0, 0);
        for (name, test) in tests {
            if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
                filtered += 1;
                continue;
            }
            let ok = std::panic::catch_unwind(test).is_ok();
            println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        println!(
            "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
             {filtered} filtered out; finished in {:.2}s\n",
            if failed == 0 { "ok" } else { "FAILED" },
            start.elapsed().as_secs_f64()
        );
        if failed > 0 {
            std::process::exit(101);
        }
    }
}
