//! Generator round trips and creation: sprig against corosensei and the
//! `generator` crate.

use std::hint::black_box;

use crate::{ns_per_iter, report};

/// Sends `n` values through a generator that yields each one plus one.
pub(crate) fn switch(n: u64) {
    let sprig = ns_per_iter(n, || {
        let mut g = sprig::Generator::<u64, u64, ()>::new(|co, mut x| loop {
            x = co.yield_(x + 1);
        });
        let mut sum = 0u64;
        for i in 0..n {
            if let Ok(sprig::CoroutineResult::Yield(y)) = g.resume(black_box(i)) {
                sum = sum.wrapping_add(y);
            }
        }
        black_box(sum);
    });
    let sprig_raw = ns_per_iter(n, || {
        let mut c = sprig::Coroutine::<u64, u64, ()>::new(|y, mut x| loop {
            x = y.suspend(x + 1);
        });
        let mut sum = 0u64;
        for i in 0..n {
            if let sprig::CoroutineResult::Yield(y) = c.resume(black_box(i)) {
                sum = sum.wrapping_add(y);
            }
        }
        black_box(sum);
    });
    let corosensei = ns_per_iter(n, || {
        let mut c = corosensei::Coroutine::<u64, u64, ()>::new(|y, mut x| loop {
            x = y.suspend(x + 1);
        });
        let mut sum = 0u64;
        for i in 0..n {
            if let corosensei::CoroutineResult::Yield(y) = c.resume(black_box(i)) {
                sum = sum.wrapping_add(y);
            }
        }
        black_box(sum);
        // SAFETY: nothing on the coroutine's stack needs dropping.
        unsafe { c.force_reset() };
    });
    let generator_rs = ns_per_iter(n, || {
        let mut g = generator::Gn::<u64>::new_scoped(|mut s| {
            let mut x = s.get_yield().unwrap_or(0);
            loop {
                x = s.yield_(x + 1).unwrap_or(0);
            }
        });
        let mut sum = 0u64;
        for i in 0..n {
            sum = sum.wrapping_add(g.send(black_box(i)));
        }
        black_box(sum);
    });
    report("sprig_generator_roundtrip_ns", sprig, "ns");
    report("sprig_coroutine_roundtrip_ns", sprig_raw, "ns");
    report("corosensei_roundtrip_ns", corosensei, "ns");
    report("generator_rs_roundtrip_ns", generator_rs, "ns");
    report(
        "sprig_vs_corosensei_roundtrip_ratio",
        sprig / corosensei,
        "x",
    );
}

/// Creates, runs to completion and drops `n` generators.
pub(crate) fn create(n: u64) {
    let sprig = ns_per_iter(n, || {
        for i in 0..n {
            let mut g = sprig::Generator::<u64, (), u64>::new(|_co, x| x + 1);
            black_box(g.resume(black_box(i)).ok());
        }
    });
    let corosensei = ns_per_iter(n, || {
        let mut stack = Some(corosensei::stack::DefaultStack::new(256 * 1024).expect("stack"));
        for i in 0..n {
            let mut c = corosensei::Coroutine::<u64, (), u64, _>::with_stack(
                stack.take().unwrap(),
                |_y, x| x + 1,
            );
            black_box(c.resume(black_box(i)));
            stack = Some(c.into_stack());
        }
    });
    let generator_rs = ns_per_iter(n, || {
        for i in 0..n {
            let mut g = generator::Gn::<u64>::new_scoped_opt(256 * 1024, |mut s| {
                s.get_yield().unwrap_or(0) + 1
            });
            black_box(g.send(black_box(i)));
        }
    });
    report("sprig_generator_create_ns", sprig, "ns");
    report("corosensei_create_ns", corosensei, "ns");
    report("generator_rs_create_ns", generator_rs, "ns");
    report("sprig_vs_corosensei_create_ratio", sprig / corosensei, "x");
}
