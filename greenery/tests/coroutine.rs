//! The asymmetric primitive: resume and suspend, values of every shape,
//! panics, unwinding on drop, backtraces, nesting, threads.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenery::{Builder, Coroutine, CoroutineResult, Yielder};

mod reports;

/// Counts drops of the values it guards.
#[derive(Clone)]
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".into()
    }
}

#[test]
fn resume_passes_inputs_and_yields() {
    let mut co = Coroutine::new(|yielder, first: i32| {
        let second = yielder.suspend(first * 10);
        let third = yielder.suspend(first + second);
        format!("{first} {second} {third}")
    });
    assert!(!co.is_started());
    assert_eq!(co.resume(1), CoroutineResult::Yield(10));
    assert!(co.is_started() && !co.is_done());
    assert_eq!(co.resume(2), CoroutineResult::Yield(3));
    assert_eq!(co.resume(3), CoroutineResult::Return("1 2 3".to_string()));
    assert!(co.is_done());
    assert_eq!(co.stack_size(), None);
}

/// Values travel in a register when they fit in a word and through memory
/// otherwise; every shape must arrive intact and be dropped exactly once.
#[test]
fn values_of_every_size_cross_intact() {
    fn echo_twice<T: Clone + PartialEq + std::fmt::Debug + 'static>(a: T, b: T) {
        let mut co = Coroutine::new(|yielder: &Yielder<T, T>, first: T| {
            let second = yielder.suspend(first.clone());
            yielder.suspend(second.clone());
            (first, second)
        });
        assert_eq!(co.resume(a.clone()), CoroutineResult::Yield(a.clone()));
        assert_eq!(co.resume(b.clone()), CoroutineResult::Yield(b.clone()));
        assert_eq!(co.resume(a.clone()), CoroutineResult::Return((a, b)));
    }
    echo_twice((), ());
    echo_twice(true, false);
    echo_twice(0xABu8, 0xCDu8);
    echo_twice((1u8, 2u16), (3u8, 4u16)); // padding inside a word
    echo_twice(u64::MAX, 7u64);
    echo_twice(Some(Box::new(5)), None);
    echo_twice(1.5f64, -0.0f64);
    echo_twice(u128::MAX, 1u128); // more aligned than a word
    echo_twice([1u64, 2, 3, 4], [5, 6, 7, 8]);
    echo_twice(String::from("over"), String::from("the wire"));
    echo_twice(vec![1, 2, 3], Vec::new());
}

#[test]
fn owned_values_are_dropped_exactly_once() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(drops.clone());
    let mut co = Coroutine::new(|yielder: &Yielder<DropCounter, DropCounter>, input: DropCounter| {
        let back = yielder.suspend(input);
        drop(back);
        yielder.suspend(DropCounter(Rc::new(Cell::new(0))));
    });
    let yielded = co.resume(counter.clone()).into_yield().unwrap();
    assert_eq!(drops.get(), 0);
    drop(yielded);
    assert_eq!(drops.get(), 1);
    let _ = co.resume(counter.clone());
    assert_eq!(drops.get(), 2);
    drop(co); // unwinds the last suspend: nothing of ours left on the stack
    drop(counter);
    assert_eq!(drops.get(), 3);
}

#[test]
fn a_panic_continues_in_the_resumer_with_its_payload() {
    let mut co = Coroutine::<(), (), ()>::new(|yielder, ()| {
        yielder.suspend(());
        panic::panic_any(42u32);
    });
    co.resume(());
    let payload = panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    assert!(co.is_done());
}

#[test]
fn resuming_a_finished_coroutine_panics_with_a_clear_message() {
    let mut co = Builder::new().name("short-lived").coroutine(|_: &Yielder<(), ()>, ()| 1).unwrap();
    assert_eq!(co.resume(()), CoroutineResult::Return(1));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(panic_text(&*payload), "resumed coroutine 'short-lived' after it finished");
}

#[test]
fn dropping_an_unstarted_coroutine_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let ran = Rc::new(Cell::new(false));
    let ran2 = ran.clone();
    let co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _guard = guard;
        ran2.set(true);
    });
    drop(co);
    assert_eq!(drops.get(), 1);
    assert!(!ran.get());
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_its_stack() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let log2 = log.clone();
    let mut co = Coroutine::<(), u32, ()>::new(move |yielder, ()| {
        struct Guard(Rc<RefCell<Vec<String>>>, &'static str);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.borrow_mut().push(format!("drop {}", self.1));
            }
        }
        let _outer = Guard(log2.clone(), "outer");
        fn deeper(yielder: &Yielder<(), u32>, log: &Rc<RefCell<Vec<String>>>) {
            let _inner = Guard(log.clone(), "inner");
            let caught = panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(1))).unwrap_err();
            log.borrow_mut().push(format!("forced: {}", greenery::is_forced_unwind(&*caught)));
            panic::resume_unwind(caught);
        }
        deeper(yielder, &log2);
        log2.borrow_mut().push("not reached".into());
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(1));
    drop(co);
    assert_eq!(*log.borrow(), ["forced: true", "drop inner", "drop outer"]);
}

/// A body that swallows the forced unwind and suspends again is unwound
/// again at that suspend (corosensei's rule); what it yields is dropped.
#[test]
fn a_swallowed_forced_unwind_is_repeated_at_the_next_suspend() {
    let reports = reports::capture();
    let drops = Rc::new(Cell::new(0));
    let drops2 = drops.clone();
    let attempts = Rc::new(Cell::new(0));
    let attempts2 = attempts.clone();
    let mut co = Coroutine::<(), DropCounter, ()>::new(move |yielder, ()| {
        loop {
            let outcome =
                panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(DropCounter(drops2.clone()))));
            attempts2.set(attempts2.get() + 1);
            if let Err(payload) = outcome
                && attempts2.get() == 3
            {
                panic::resume_unwind(payload);
            }
        }
    });
    drop(co.resume(()).into_yield());
    drop(co);
    assert_eq!(attempts.get(), 3);
    assert_eq!(drops.get(), 3); // the first yield, and the two during unwinding
    reports.assert_one(&["caught its ForcedUnwind and suspended again while being dropped"]);
}

#[test]
fn a_coroutine_dropped_while_its_owner_unwinds_is_torn_down_too() {
    let drops = Rc::new(Cell::new(0));
    let drops2 = drops.clone();
    let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
        let mut co = Coroutine::<(), (), ()>::new(move |yielder, ()| {
            let _guard = DropCounter(drops2);
            yielder.suspend(());
        });
        co.resume(());
        panic!("owner fails");
    }));
    assert_eq!(panic_text(&*outcome.unwrap_err()), "owner fails");
    assert_eq!(drops.get(), 1);
}

#[test]
fn suspend_works_from_any_depth_of_calls() {
    fn count_down(yielder: &Yielder<(), u32>, n: u32) {
        if n == 0 {
            return;
        }
        yielder.suspend(n);
        count_down(yielder, n - 1);
    }
    let mut co = Coroutine::new(|yielder, ()| count_down(yielder, 500));
    let mut seen = Vec::new();
    while let CoroutineResult::Yield(n) = co.resume(()) {
        seen.push(n);
    }
    assert_eq!(seen, (1..=500).rev().collect::<Vec<_>>());
}

#[test]
fn coroutines_nest_and_can_be_resumed_from_different_places() {
    let inner = Rc::new(RefCell::new(Coroutine::<u32, u32, ()>::new(|yielder, mut n| {
        loop {
            n = yielder.suspend(n * 2);
        }
    })));
    let inner2 = inner.clone();
    let mut outer = Coroutine::<u32, u32, ()>::new(move |yielder, mut n| {
        loop {
            // Resumed from inside another coroutine's stack...
            let doubled = inner2.borrow_mut().resume(n).into_yield().unwrap();
            n = yielder.suspend(doubled + 1);
        }
    });
    assert_eq!(outer.resume(1), CoroutineResult::Yield(3));
    // ...and from the main stack, in between.
    assert_eq!(inner.borrow_mut().resume(10), CoroutineResult::Yield(20));
    assert_eq!(outer.resume(5), CoroutineResult::Yield(11));
}

#[test]
fn many_coroutines_interleave() {
    let mut all: Vec<Coroutine<u64, u64, u64>> = (0..1000u64)
        .map(|id| {
            Coroutine::new(move |yielder, mut total: u64| {
                for _ in 0..10 {
                    total += id;
                    total = yielder.suspend(total);
                }
                total
            })
        })
        .collect();
    let mut totals = vec![0u64; all.len()];
    for round in 0..=10 {
        for (id, co) in all.iter_mut().enumerate() {
            match co.resume(totals[id]) {
                CoroutineResult::Yield(t) => totals[id] = t,
                CoroutineResult::Return(t) => {
                    assert_eq!(round, 10);
                    totals[id] = t;
                }
            }
        }
    }
    for (id, total) in totals.iter().enumerate() {
        assert_eq!(*total, id as u64 * 10);
    }
}

#[test]
fn deep_recursion_fits_in_the_default_stack() {
    #[inline(never)]
    fn depth(n: u32, buf: [u8; 64]) -> u32 {
        if n == 0 {
            return buf[0] as u32;
        }
        let mut copy = buf;
        copy[0] = copy[0].wrapping_add(1);
        std::hint::black_box(depth(n - 1, std::hint::black_box(copy)))
    }
    // About 1000 frames of ~100+ bytes: well inside 256 KiB.
    let mut co = Coroutine::<(), (), u32>::new(|_, ()| depth(1000, [0; 64]));
    assert_eq!(co.resume(()), CoroutineResult::Return(1000 % 256));
}

#[test]
fn backtraces_continue_into_the_resumer() {
    #[inline(never)]
    fn resumer_frame_marker(co: &mut Coroutine<(), String, ()>) -> String {
        co.resume(()).into_yield().unwrap()
    }
    let mut co = Coroutine::<(), String, ()>::new(|yielder, ()| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        yielder.suspend(trace);
    });
    let trace = resumer_frame_marker(&mut co);
    assert!(trace.contains("backtraces_continue_into_the_resumer"), "{trace}");
    assert!(trace.contains("resumer_frame_marker"), "the backtrace stops at the coroutine's root:\n{trace}");
}

#[test]
fn names_default_to_the_closure_type_and_can_be_set() {
    let co = Coroutine::<(), (), ()>::new(|_, ()| {});
    assert!(co.name().contains("names_default_to_the_closure_type"), "{}", co.name());
    let named =
        Builder::new().name(String::from("worker-7")).coroutine(|_: &Yielder<(), ()>, ()| {}).unwrap();
    assert_eq!(named.name(), "worker-7");
    assert!(format!("{named:?}").contains("worker-7"));
}

#[test]
fn stack_sizes_are_rounded_to_pages_and_checked() {
    let co = Builder::new().stack_size(20_000).coroutine(|_: &Yielder<(), ()>, ()| {}).unwrap();
    let size = co.stack_size().unwrap();
    assert!(size >= 20_000 && size.is_multiple_of(4096), "{size}");

    let big = [0u8; 16 * 1024];
    let err = Builder::new()
        .stack_size(8 * 1024)
        .coroutine(move |_: &Yielder<(), ()>, ()| {
            std::hint::black_box(big);
        })
        .unwrap_err();
    assert!(!err.is_os_limit());
    assert!(err.to_string().contains("too small"), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn coroutines_run_on_other_threads_with_their_own_pools() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut sum = 0;
                for i in 0..200u64 {
                    let mut co =
                        Coroutine::<u64, u64, u64>::new(move |yielder, x| yielder.suspend(x + t) + i);
                    sum += co.resume(1).into_yield().unwrap();
                    sum += co.resume(0).into_return().unwrap();
                }
                sum
            })
        })
        .collect();
    for (t, handle) in handles.into_iter().enumerate() {
        let t = t as u64;
        assert_eq!(handle.join().unwrap(), 200 * (1 + t) + (0..200).sum::<u64>());
    }
}
