//! loom models of the MPMC ring (capacity 2, strict futex so a forgotten wake is a deadlock):
//! two producers and one consumer, one producer and two consumers, close while a consumer sleeps,
//! a push racing with close (the item is popped or handed back, never stranded), a pop's copy
//! (made before it takes its position) racing with the push one lap later, and death (a dead
//! producer is staged as an announcement line whose owner is dead): a producer dead between its
//! CAS and its publish is reaped by the other side (a consumer, or a producer one lap later) and
//! counted lost; one dead between its announcement and its CAS loses nothing; a dead process's
//! stale announcement of a position a live thread holds never gets that position reaped; a
//! consumer dead after taking its item blocks nobody.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::sync::loom_futex;
use shmkit::{MpmcRing, PopError, PushError};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

fn ring() -> Arc<MpmcRing<u64>> {
    MpmcRing::<u64>::new(2).unwrap()
}

#[test]
fn two_producers_one_consumer() {
    strict_model(|| {
        let q = ring();
        let ts: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || q.push(10 + p).unwrap())
            })
            .collect();
        let mut got = [q.pop().unwrap(), q.pop().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [10, 11]);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn one_producer_two_consumers_in_order() {
    strict_model(|| {
        let q = ring();
        let q2 = q.clone();
        let c = thread::spawn(move || q2.pop().unwrap());
        // Three items through two slots: the producer may have to sleep until a pop.
        for i in 1..=3 {
            q.push(i).unwrap();
        }
        let a = q.pop().unwrap();
        let b = c.join().unwrap();
        // Pops claim positions in order: the two pops took items 1 and 2, whoever got which.
        let mut got = [a, b];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        let dump = format!("{:x?}", q.loom_dump());
        assert_eq!(q.try_pop(), Ok(3), "{dump}");
    });
}

#[test]
fn close_wakes_a_sleeping_consumer_after_draining() {
    strict_model(|| {
        let q = ring();
        let q2 = q.clone();
        let t = thread::spawn(move || {
            q2.push(4).unwrap();
            q2.close();
        });
        assert_eq!(q.pop(), Ok(4));
        assert_eq!(q.pop(), Err(PopError::Closed));
        t.join().unwrap();
    });
}

#[test]
fn push_racing_close_is_popped_or_handed_back() {
    strict_model(|| {
        let q = ring();
        let (q1, q2) = (q.clone(), q.clone());
        let p = thread::spawn(move || q1.push(7));
        let c = thread::spawn(move || q2.close());
        let mut got = Vec::new();
        loop {
            match q.pop() {
                Ok(v) => got.push(v),
                Err(PopError::Closed) => break,
                Err(e) => panic!("pop: {e:?}"),
            }
        }
        c.join().unwrap();
        match p.join().unwrap() {
            Ok(()) => assert_eq!(got, [7], "a pushed item must be popped"),
            Err(PushError::Closed(7)) => assert!(got.is_empty(), "a refused item was popped"),
            Err(e) => panic!("push: {e:?}"),
        }
    });
}

/// The line the models stage a dead process in (the live threads take lines 0 and 1).
const DEAD_LINE: usize = 2;

#[test]
fn dead_producer_slot_is_skipped_and_counted() {
    // Non-strict futex: the consumer finds the dead owner when it is about to sleep.
    common::model(|| {
        let q = ring();
        // A producer announced position 0, took it (tail 1) and died before publishing.
        q.loom_stage_dead_announcer(DEAD_LINE, 0);
        q.loom_stage_slot(0, 0, 0, 1);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(5).unwrap());
        assert_eq!(q.pop(), Ok(5));
        p.join().unwrap();
        assert_eq!(q.lost(), 1);
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

/// A consumer copies its item before it takes the position: one that took item 8 (head 1) and
/// died has finished with the slot, so a producer reuses it at once and nothing is lost (the
/// item went with the consumer, as if it had died just after `pop` returned).
#[test]
fn consumer_dead_after_taking_blocks_nobody() {
    strict_model(|| {
        let q = ring();
        q.push(8).unwrap();
        q.push(9).unwrap();
        q.loom_stage_slot(0, 1, 1, 2);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(10).unwrap());
        assert_eq!(q.pop(), Ok(9));
        assert_eq!(q.pop(), Ok(10));
        p.join().unwrap();
        assert_eq!(q.lost(), 0);
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

/// A pop copies the oldest item before its CAS while a producer waits to reuse that slot one
/// lap later: the producer writes only after the head passed the position, so the copy the
/// consumer keeps (its CAS succeeded) is never torn, and a copy that lost the race is dropped.
#[test]
fn pop_copy_races_the_push_one_lap_later() {
    strict_model(|| {
        let q = ring();
        q.push(1).unwrap();
        q.push(2).unwrap();
        let q2 = q.clone();
        let c = thread::spawn(move || q2.pop().unwrap());
        q.push(3).unwrap();
        let a = c.join().unwrap();
        let b = q.pop().unwrap();
        let d = q.pop().unwrap();
        assert_eq!((a, b, d), (1, 2, 3));
        assert_eq!(q.lost(), 0);
    });
}

/// A producer that died between its announcement and its CAS took nothing: nobody reaps the
/// position it announced, a live producer takes it, nothing is lost.
#[test]
fn producer_dead_between_announce_and_cas_loses_nothing() {
    common::model(|| {
        let q = ring();
        q.loom_stage_dead_announcer(DEAD_LINE, 0);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(5).unwrap());
        assert_eq!(q.pop(), Ok(5));
        p.join().unwrap();
        assert_eq!(q.lost(), 0);
        assert_eq!(q.try_pop(), Err(PopError::Empty));
        assert_eq!(q.reap_dead(), 0);
    });
}

/// A dead process's stale announcement of the position a live producer is taking (it lost the
/// CAS for it, then died) must not let a waiting consumer reap the live producer's position:
/// reaping needs the absence of a LIVE announcer, not the presence of a dead one.
#[test]
fn dead_loser_announcement_does_not_reap_a_live_push() {
    common::model(|| {
        let q = ring();
        q.loom_stage_dead_announcer(DEAD_LINE, 0);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(7).unwrap());
        // Every look after the spin phase may reap under loom: the consumer judges position 0
        // while the producer is between its CAS and its publish in some executions.
        assert_eq!(q.pop(), Ok(7));
        p.join().unwrap();
        assert_eq!(q.lost(), 0);
    });
}

/// The same for the judge one lap later: a producer waiting on a full ring whose oldest
/// position a live producer took and is writing does not reap it because a dead process once
/// announced that position.
#[test]
fn dead_loser_announcement_does_not_reap_a_live_push_a_lap_later() {
    common::model(|| {
        let q = ring();
        q.loom_stage_dead_announcer(DEAD_LINE, 0);
        let q2 = q.clone();
        let p = thread::spawn(move || {
            q2.push(1).unwrap();
        });
        // Three pushes through two slots: whoever takes position 2 needs slot 0 again, and may
        // find position 0 taken by a live producer that has not published it yet.
        q.push(2).unwrap();
        let c = thread::spawn({
            let q = q.clone();
            move || [q.pop().unwrap(), q.pop().unwrap()]
        });
        q.push(3).unwrap();
        p.join().unwrap();
        let [a, b] = c.join().unwrap();
        let mut got = [a, b, q.pop().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(q.lost(), 0);
    });
}

/// A dead producer's position one lap behind the tail: the next producer finds the head not
/// past it and its slot unpublished, and reaps it instead of failing.
#[test]
fn producer_a_lap_ahead_of_a_dead_producer_reaps_it() {
    common::model(|| {
        let q = ring();
        q.loom_stage_dead_announcer(DEAD_LINE, 0);
        q.loom_stage_slot(0, 0, 0, 1);
        // Position 1, then position 2 in the dead producer's slot (nobody else reaps it first).
        q.push(5).unwrap();
        q.push(6).unwrap();
        let q2 = q.clone();
        let c = thread::spawn(move || q2.pop().unwrap());
        assert_eq!(q.pop().unwrap() + c.join().unwrap(), 11);
        assert_eq!(q.lost(), 1);
    });
}
