//! Criterion micro-benchmarks of the operations the `greenery-bench` binary
//! measures (`switch` and `create`), for criterion's statistics and reports:
//!
//! - `roundtrip`: send a `u64` into a suspended generator, which yields it
//!   plus one;
//! - `create`: create a generator, resume it once so that it returns, drop it
//!   (greenery on a pooled stack, corosensei on a stack it hands back, the
//!   `generator` crate on a fresh mapping each time).
//!
//! Run with `cargo bench -p greenery-bench`, or `-- --quick` for a short pass.
//! On a noisy machine prefer the binary, which interleaves the peers.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use greenery::CoroutineResult;

/// The stack size every peer gets, in bytes: greenery's default.
fn stack_bytes() -> usize {
    greenery::stack::default_size()
}

/// The same size in `usize` words, the `generator` crate's unit.
fn generator_rs_stack_words() -> usize {
    stack_bytes() / std::mem::size_of::<usize>()
}

fn roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("roundtrip");

    let mut g = greenery::Generator::<u64, u64, ()>::new(|co, mut x| {
        loop {
            x = co.yield_(x + 1);
        }
    });
    group.bench_function("greenery_generator", |b| {
        b.iter(|| g.resume(black_box(1)).ok().and_then(CoroutineResult::into_yield))
    });
    drop(g);

    let mut co = greenery::Coroutine::<u64, u64, ()>::new(|y, mut x| {
        loop {
            x = y.suspend(x + 1);
        }
    });
    group.bench_function("greenery_coroutine", |b| b.iter(|| co.resume(black_box(1)).into_yield()));
    drop(co);

    let mut co = corosensei::Coroutine::<u64, u64, ()>::with_stack(
        corosensei::stack::DefaultStack::new(stack_bytes()).expect("corosensei stack"),
        |y, mut x| loop {
            x = y.suspend(x + 1);
        },
    );
    group.bench_function("corosensei", |b| b.iter(|| co.resume(black_box(1)).as_yield()));
    drop(co);

    let mut g = generator::Gn::<u64>::new_scoped_opt(generator_rs_stack_words(), |mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x + 1).unwrap_or(0);
        }
    });
    group.bench_function("generator_rs", |b| b.iter(|| g.send(black_box(1))));
    drop(g);

    group.finish();
}

fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");

    group.bench_function("greenery_generator", |b| {
        b.iter(|| {
            let mut g = greenery::Generator::<u64, (), u64>::new(|_co, x| x + 1);
            g.resume(black_box(1)).ok().and_then(CoroutineResult::into_return)
        })
    });

    group.bench_function("greenery_coroutine", |b| {
        b.iter(|| {
            let mut c = greenery::Coroutine::<u64, (), u64>::new(|_y, x| x + 1);
            c.resume(black_box(1)).into_return()
        })
    });

    let mut spare_stack =
        Some(corosensei::stack::DefaultStack::new(stack_bytes()).expect("corosensei stack"));
    group.bench_function("corosensei", |b| {
        b.iter(|| {
            let stack = spare_stack.take().expect("the spare stack came back");
            let mut c = corosensei::Coroutine::<u64, (), u64, _>::with_stack(stack, |_y, x| x + 1);
            let r = c.resume(black_box(1)).as_return();
            spare_stack = Some(c.into_stack());
            r
        })
    });

    // About 30 us an iteration (a fresh mmap'd stack each time): criterion
    // sizes its samples to the time, so this only needs fewer of them.
    group.sample_size(20);
    let words = generator_rs_stack_words();
    group.bench_function("generator_rs", |b| {
        b.iter(|| {
            let mut g = generator::Gn::<u64>::new_scoped_opt(words, |mut s| s.get_yield().unwrap_or(0) + 1);
            g.send(black_box(1))
        })
    });

    group.finish();
}

/// Shorter than criterion's defaults (3 s warm-up, 5 s measurement), so that
/// a full run of the eight benchmarks takes about half a minute; command-line
/// options (`--quick`, `--measurement-time`) still take precedence.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = roundtrip, create
}
criterion_main!(benches);
