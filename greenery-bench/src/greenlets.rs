//! Greenlet switches and creation, measured against greenery's own generator
//! round trip in the same run (the target is within 1.5x of it).

use std::hint::black_box;

use greenery::CoroutineResult;
use greenery::greenlet::{self, Greenlet};

use crate::measure::{self, Peer};
use crate::{report_ratio, report_timing};

/// Ping-pong: the main greenlet switches `i` to a second greenlet, which
/// switches `i + 1` back; one round trip is two switches. greenery's generator
/// round trip runs alongside for the ratio.
pub(crate) fn switch(n: u64) {
    let main = greenlet::getcurrent();
    let pong = Greenlet::new(move |mut ball| {
        loop {
            let n = ball.downcast::<u64>().expect("a u64");
            ball = main.switch(n + 1).expect("nothing is thrown");
        }
    });
    let mut generator = greenery::Generator::<u64, u64, ()>::new(|co, mut x| {
        loop {
            x = co.yield_(x + 1);
        }
    });
    let [greenlets, generators] = measure::interleaved([
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let back = pong.switch(black_box(i)).expect("nothing is thrown");
                sum = sum.wrapping_add(back.downcast::<u64>().expect("a u64"));
            }
            check_sum("greenlet", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                if let Ok(CoroutineResult::Yield(y)) = generator.resume(black_box(i)) {
                    sum = sum.wrapping_add(y);
                }
            }
            check_sum("generator", k, black_box(sum));
        }),
    ]);
    report_timing("greenery_greenlet_switch_roundtrip_ns", &greenlets);
    report_timing("greenery_generator_roundtrip_ns", &generators);
    report_ratio("greenery_greenlet_vs_generator_roundtrip_ratio", &greenlets, &generators);
}

/// Create a greenlet on a pooled stack, switch to it, let it finish (its
/// value comes back to the main greenlet, its parent), drop it.
pub(crate) fn create(n: u64) {
    let [greenlets, generators] = measure::interleaved([
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let g = Greenlet::new(|v| v.downcast::<u64>().expect("a u64") + 1);
                sum = sum
                    .wrapping_add(g.switch(black_box(i)).expect("returns").downcast::<u64>().expect("a u64"));
            }
            check_sum("greenlet", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let mut g = greenery::Generator::<u64, (), u64>::new(|_, x| x + 1);
                if let Ok(CoroutineResult::Return(r)) = g.resume(black_box(i)) {
                    sum = sum.wrapping_add(r);
                }
            }
            check_sum("generator", k, black_box(sum));
        }),
    ]);
    report_timing("greenery_greenlet_create_ns", &greenlets);
    report_timing("greenery_generator_create_ns", &generators);
    report_ratio("greenery_greenlet_vs_generator_create_ratio", &greenlets, &generators);
}

/// Checks the sum of `k` results `i + 1` for `i` in `0..k`.
fn check_sum(peer: &str, k: u64, sum: u64) {
    let expected = (u128::from(k) * (u128::from(k) + 1) / 2) as u64;
    assert_eq!(sum, expected, "{peer} returned wrong values");
}
