//! Unit tests of [`SeqArray`] on the heap (cross-process tests: `tests/seqlock_procs.rs`).

use super::*;

#[test]
fn length_round_trips() {
    fn check<T: Pod>() {
        for len in (0..300).chain([1000, 4097]) {
            let a = SeqArray::<T>::new(len);
            assert_eq!(a.len(), len, "{} len {len}", core::any::type_name::<T>());
        }
    }
    check::<u8>();
    check::<f64>();
    check::<[u32; 3]>();
    check::<[u64; 128]>();
    check::<()>();
}

#[test]
fn ops_against_a_vec() {
    let a = SeqArray::<u16>::new(200);
    let mut model = vec![0u16; 200];
    for i in (0..200).step_by(7) {
        a.set(i, i as u16 * 3).unwrap();
        model[i] = i as u16 * 3;
    }
    a.update_range(50..150, |xs| xs.iter_mut().for_each(|x| *x ^= 0xff))
        .unwrap();
    model[50..150].iter_mut().for_each(|x| *x ^= 0xff);
    assert_eq!(a.snapshot(), model);
    let mut part = [0u16; 70];
    a.read_range(60, &mut part).unwrap();
    assert_eq!(part[..], model[60..130]);
    assert!(matches!(
        a.get(200),
        Err(Error::IndexOutOfBounds {
            index: 200,
            len: 200
        })
    ));
    assert!(a.read_range(150, &mut part).is_err());
    assert!(a.read_range(usize::MAX, &mut part).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 10..5;
    assert!(a.update_range(reversed, |_| ()).is_err());
    assert!(matches!(
        a.write_from(&[1; 3]),
        Err(Error::LengthMismatch {
            expected: 200,
            found: 3
        })
    ));
    a.write_from(&[9; 200]).unwrap();
    let mut all = vec![0; 200];
    a.read_into(&mut all).unwrap();
    assert!(all.iter().all(|&x| x == 9));
}

/// Writes of single elements and ranges, then reads after each: the copy being filled is
/// brought up to date from the changed ranges, so no earlier write is lost or resurrected.
#[test]
fn rotation_keeps_every_write() {
    fn run<T: Pod + PartialEq + core::fmt::Debug>(len: usize, mk: impl Fn(u64) -> T) {
        let a = SeqArray::<T>::new(len);
        let mut m = vec![T::zeroed(); len];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % len as u64) as usize;
            match step % 5 {
                0..=2 => {
                    a.set(i, mk(step)).unwrap();
                    m[i] = mk(step);
                }
                3 => {
                    let end = (i + (x >> 20) as usize % 90).min(len);
                    let mut w = a.writer().unwrap();
                    w.update_range(i..end, |xs| xs.iter_mut().for_each(|v| *v = mk(step)))
                        .unwrap();
                    m[i..end].iter_mut().for_each(|v| *v = mk(step));
                    assert_eq!(w.get(i).unwrap(), m[i]);
                }
                _ => assert_eq!(a.get(i).unwrap(), m[i], "step {step}"),
            }
            if step % 97 == 0 {
                assert_eq!(a.snapshot(), m, "step {step}");
            }
        }
        assert_eq!(a.snapshot(), m);
    }
    run::<u64>(300, |k| k);
    run::<[u32; 3]>(100, |k| [k as u32, !(k as u32), 7]);
    run::<u8>(5, |k| k as u8);
}

#[test]
fn dead_writer_mid_block_is_repaired() {
    let a = SeqArray::<u64>::new(300);
    a.write_from(&[5; 300]).unwrap();
    // The block's last write changed element 131 only: the copy the dead writer scribbled on
    // is caught up from that range alone, so only the repair removes its 77.
    a.set(131, 5).unwrap();
    let dead = (1 << 22) - 11; // above any pid in use (pids are below 2²²)
    a.__abandon_set(130, 77, dead).unwrap();
    assert_eq!(a.get(130).unwrap(), 5, "the old value stays readable");
    assert!(matches!(a.check_writer(), Err(Error::WriterDied { pid }) if pid == dead));
    let mut w = a.writer().unwrap();
    assert_eq!(w.took_over_from(), Some(dead));
    assert_eq!(w.get(130).unwrap(), 5);
    w.set(131, 6).unwrap();
    drop(w);
    assert_eq!(a.get(131).unwrap(), 6);
    // The next copy of the block was made whole again: more writes there lose nothing.
    for k in 0..5 {
        a.set(129, k).unwrap();
    }
    assert_eq!(a.get(130).unwrap(), 5);
    a.set(129, 5).unwrap();
    assert!(a
        .snapshot()
        .iter()
        .enumerate()
        .all(|(i, &x)| x == if i == 131 { 6 } else { 5 }));
}
