//! Generator round trips and creation: greenery against corosensei and the
//! `generator` crate ("generator-rs" in figure names).
//!
//! Every peer uses a stack of greenery's default size (256 KiB unless
//! `GREENERY_STACK_SIZE` says otherwise), and every round checks the values it
//! got back, so that a peer cannot win by doing nothing.

use std::hint::black_box;

use greenery::CoroutineResult;

use crate::measure::{self, Peer};
use crate::{report_ratio, report_timing};

/// The stack size every peer gets, in bytes.
fn stack_bytes() -> usize {
    greenery::stack::default_size()
}

/// The same size in the `generator` crate's unit: `usize` words. (An odd
/// word count would make it fill the whole stack with a sentinel; greenery's
/// sizes are whole pages, so this is even.)
fn generator_rs_stack_words() -> usize {
    stack_bytes() / std::mem::size_of::<usize>()
}

/// Checks the sum of `k` results `i + 1` for `i` in `0..k`.
fn check_sum(peer: &str, k: u64, sum: u64) {
    // 1 + 2 + ... + k, modulo 2^64 like the sums.
    let expected = (u128::from(k) * (u128::from(k) + 1) / 2) as u64;
    assert_eq!(sum, expected, "{peer} returned wrong values");
}

/// Round trips: the caller sends `i` into a suspended generator, which
/// yields `i + 1` back. Each peer's generator is made once, before the
/// rounds, and loops forever; it is dropped (unwound) at the end.
pub(crate) fn switch(n: u64) {
    let mut greenery_generator = greenery::Generator::<u64, u64, ()>::new(|co, mut x| {
        loop {
            x = co.yield_(x + 1);
        }
    });
    let mut greenery_coroutine = greenery::Coroutine::<u64, u64, ()>::new(|y, mut x| {
        loop {
            x = y.suspend(x + 1);
        }
    });
    let mut corosensei = corosensei::Coroutine::<u64, u64, ()>::with_stack(
        corosensei::stack::DefaultStack::new(stack_bytes()).expect("corosensei stack"),
        |y, mut x| loop {
            x = y.suspend(x + 1);
        },
    );
    let mut generator_rs = generator::Gn::<u64>::new_scoped_opt(generator_rs_stack_words(), |mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x + 1).unwrap_or(0);
        }
    });

    let [greenery_generator, greenery_coroutine, corosensei, generator_rs] = measure::interleaved([
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                if let Ok(CoroutineResult::Yield(y)) = greenery_generator.resume(black_box(i)) {
                    sum = sum.wrapping_add(y);
                }
            }
            check_sum("greenery::Generator", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                if let CoroutineResult::Yield(y) = greenery_coroutine.resume(black_box(i)) {
                    sum = sum.wrapping_add(y);
                }
            }
            check_sum("greenery::Coroutine", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                if let corosensei::CoroutineResult::Yield(y) = corosensei.resume(black_box(i)) {
                    sum = sum.wrapping_add(y);
                }
            }
            check_sum("corosensei", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                sum = sum.wrapping_add(generator_rs.send(black_box(i)));
            }
            check_sum("generator-rs", k, black_box(sum));
        }),
    ]);

    report_timing("greenery_generator_roundtrip_ns", &greenery_generator);
    report_timing("greenery_coroutine_roundtrip_ns", &greenery_coroutine);
    report_timing("corosensei_roundtrip_ns", &corosensei);
    report_timing("generator_rs_roundtrip_ns", &generator_rs);
    report_ratio("greenery_vs_corosensei_roundtrip_ratio", &greenery_generator, &corosensei);
    report_ratio("generator_rs_vs_corosensei_roundtrip_ratio", &generator_rs, &corosensei);
}

/// The most iterations the `generator` crate runs in [`create`]. It maps,
/// guards and unmaps a fresh stack for every generator: its median round is
/// about 5 us an iteration here (300 times greenery's), but stretches of the
/// mmap/munmap traffic run at 200-300 us, and a plain timed loop averaged
/// about 30 us. At the default N = 1_000_000 that was half a minute for this
/// peer alone; N/100 iterations, at most 20_000, keep it to a fraction of a
/// second, plenty for a figure in microseconds.
const GENERATOR_RS_CREATE_MAX: u64 = 20_000;

/// Creates a generator, resumes it with `i` so that it returns `i + 1`, and
/// drops it. greenery takes its stack from the thread's pool; corosensei gets a
/// stack it hands back through `into_stack`, the nearest it has to a pool;
/// the `generator` crate has no way to reuse a stack.
pub(crate) fn create(n: u64) {
    let mut spare_stack =
        Some(corosensei::stack::DefaultStack::new(stack_bytes()).expect("corosensei stack"));
    let generator_rs_stack_words = generator_rs_stack_words();
    let generator_rs_n = (n / 100).min(GENERATOR_RS_CREATE_MAX);

    let [greenery_generator, greenery_coroutine, corosensei, generator_rs] = measure::interleaved([
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let mut g = greenery::Generator::<u64, (), u64>::new(|_co, x| x + 1);
                if let Ok(CoroutineResult::Return(r)) = g.resume(black_box(i)) {
                    sum = sum.wrapping_add(r);
                }
            }
            check_sum("greenery::Generator", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let mut c = greenery::Coroutine::<u64, (), u64>::new(|_y, x| x + 1);
                if let CoroutineResult::Return(r) = c.resume(black_box(i)) {
                    sum = sum.wrapping_add(r);
                }
            }
            check_sum("greenery::Coroutine", k, black_box(sum));
        }),
        Peer::new(n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let stack = spare_stack.take().expect("the spare stack came back");
                let mut c = corosensei::Coroutine::<u64, (), u64, _>::with_stack(stack, |_y, x| x + 1);
                if let corosensei::CoroutineResult::Return(r) = c.resume(black_box(i)) {
                    sum = sum.wrapping_add(r);
                }
                spare_stack = Some(c.into_stack());
            }
            check_sum("corosensei", k, black_box(sum));
        }),
        Peer::new(generator_rs_n, |k| {
            let mut sum = 0u64;
            for i in 0..k {
                let mut g = generator::Gn::<u64>::new_scoped_opt(generator_rs_stack_words, |mut s| {
                    s.get_yield().unwrap_or(0) + 1
                });
                sum = sum.wrapping_add(g.send(black_box(i)));
            }
            check_sum("generator-rs", k, black_box(sum));
        }),
    ]);

    report_timing("greenery_generator_create_ns", &greenery_generator);
    report_timing("greenery_coroutine_create_ns", &greenery_coroutine);
    report_timing("corosensei_create_ns", &corosensei);
    report_timing("generator_rs_create_ns", &generator_rs);
    report_ratio("greenery_vs_corosensei_create_ratio", &greenery_generator, &corosensei);
}
