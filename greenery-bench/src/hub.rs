//! The hub's green threads against tokio's current-thread runtime and may
//! with one worker: spawning, yielding and sleeping.
//!
//! Each peer runs on one OS thread's worth of scheduler: greenery's hub on the
//! benchmark's main thread, a tokio current-thread runtime driven by
//! `block_on` on the same thread, and may configured with a single worker
//! (its coroutines run there; the main thread spawns and joins them).

use std::hint::black_box;
use std::time::Duration;

use crate::measure::{self, Peer};
use crate::{report, report_ratio, report_timing};

/// Rounds for the batch cases (each round spawns a whole batch, so they are
/// long; an odd count for a true median).
const BATCH_ROUNDS: usize = 9;

/// How long every green thread sleeps in the `sleep` case.
const NAP: Duration = Duration::from_millis(1);

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

/// may reads its configuration when it first starts its workers: this must
/// run before any may coroutine is spawned.
pub(crate) fn configure_may() {
    may::config().set_workers(1);
}

/// Spawns `k` may coroutines running `f(i)`.
fn may_spawn_all<F, T>(k: u64, f: F) -> Vec<may::coroutine::JoinHandle<T>>
where
    F: Fn(u64) -> T + Send + Copy + 'static,
    T: Send + 'static,
{
    (0..k)
        .map(|i| {
            // SAFETY: the coroutines touch no thread-local storage (may's
            // requirement: they can run on any of its worker threads).
            unsafe { may::coroutine::spawn(move || f(i)) }
        })
        .collect()
}

/// Checks the sum of `i` for `i` in `0..k`.
fn check_sum(peer: &str, k: u64, sum: u64) {
    let expected = (u128::from(k) * u128::from(k.saturating_sub(1)) / 2) as u64;
    assert_eq!(sum, expected, "{peer} returned wrong values");
}

/// Spawn `N` green threads (tasks, coroutines) that each return their index,
/// then join them all in order; the figure is per green thread. Every round
/// is a whole batch of `N`.
pub(crate) fn spawn(n: u64) {
    configure_may();
    let runtime = tokio_runtime();
    let [greenery, tokio, may] = measure::interleaved_rounds(
        BATCH_ROUNDS,
        [
            Peer::per_round(n, |k| {
                let handles: Vec<_> = (0..k).map(|i| greenery::spawn(move || black_box(i))).collect();
                let sum = handles.into_iter().map(|h| h.get().expect("returns")).sum();
                check_sum("greenery", k, sum);
            }),
            Peer::per_round(n, |k| {
                let sum = runtime.block_on(async {
                    let handles: Vec<_> = (0..k).map(|i| tokio::spawn(async move { black_box(i) })).collect();
                    let mut sum = 0;
                    for handle in handles {
                        sum += handle.await.expect("returns");
                    }
                    sum
                });
                check_sum("tokio", k, sum);
            }),
            Peer::per_round(n, |k| {
                let handles = may_spawn_all(k, black_box);
                let sum = handles.into_iter().map(|h| h.join().expect("returns")).sum();
                check_sum("may", k, sum);
            }),
        ],
    );
    report_timing("greenery_spawn_join_ns", &greenery);
    report_timing("tokio_current_thread_spawn_join_ns", &tokio);
    report_timing("may_1_worker_spawn_join_ns", &may);
    report_ratio("greenery_vs_tokio_spawn_join_ratio", &greenery, &tokio);
    report_ratio("greenery_vs_may_spawn_join_ratio", &greenery, &may);
}

/// Two green threads alternating with `yield_now()`, `k` times each; the
/// figure is per yield (one switch out to the scheduler and one into the
/// other green thread).
pub(crate) fn yield_now(n: u64) {
    configure_may();
    let runtime = tokio_runtime();
    let [greenery, tokio, may] = measure::interleaved([
        Peer::new(n, |k| {
            let each = k / 2;
            let threads = [(); 2].map(|()| {
                greenery::spawn(move || {
                    for _ in 0..each {
                        greenery::yield_now();
                    }
                    each
                })
            });
            let done: u64 = threads.into_iter().map(|t| t.get().expect("returns")).sum();
            assert_eq!(done, 2 * each);
        }),
        Peer::new(n, |k| {
            let each = k / 2;
            let done = runtime.block_on(async {
                let tasks = [(); 2].map(|()| {
                    tokio::spawn(async move {
                        for _ in 0..each {
                            tokio::task::yield_now().await;
                        }
                        each
                    })
                });
                let mut done = 0;
                for task in tasks {
                    done += task.await.expect("returns");
                }
                done
            });
            assert_eq!(done, 2 * each);
        }),
        Peer::new(n, |k| {
            let each = k / 2;
            let coroutines = may_spawn_all(2, move |_| {
                for _ in 0..each {
                    may::coroutine::yield_now();
                }
                each
            });
            let done: u64 = coroutines.into_iter().map(|c| c.join().expect("returns")).sum();
            assert_eq!(done, 2 * each);
        }),
    ]);
    report_timing("greenery_yield_ns", &greenery);
    report_timing("tokio_current_thread_yield_ns", &tokio);
    report_timing("may_1_worker_yield_ns", &may);
    report_ratio("greenery_vs_tokio_yield_ratio", &greenery, &tokio);
    report_ratio("greenery_vs_may_yield_ratio", &greenery, &may);
}

/// `N` green threads each sleep 1 ms at once, and are joined: the figure is
/// the wall time of the whole batch, less the 1 ms, per green thread (so it
/// covers spawning, arming the timer, firing it and joining).
pub(crate) fn sleep(n: u64) {
    configure_may();
    let runtime = tokio_runtime();
    let nap_ns = NAP.as_nanos() as f64;
    let [greenery, tokio, may] = measure::interleaved_rounds(
        BATCH_ROUNDS,
        [
            Peer::per_round(n, |k| {
                let handles: Vec<_> = (0..k).map(|_| greenery::spawn(|| greenery::sleep(NAP))).collect();
                let woke = handles.into_iter().filter_map(|h| h.get().ok()).count();
                assert_eq!(woke as u64, k, "every greenery sleeper wakes");
            }),
            Peer::per_round(n, |k| {
                let woke = runtime.block_on(async {
                    let handles: Vec<_> = (0..k).map(|_| tokio::spawn(tokio::time::sleep(NAP))).collect();
                    let mut woke = 0;
                    for handle in handles {
                        woke += u64::from(handle.await.is_ok());
                    }
                    woke
                });
                assert_eq!(woke, k, "every tokio sleeper wakes");
            }),
            Peer::per_round(n, |k| {
                let handles = may_spawn_all(k, |_| may::coroutine::sleep(NAP));
                let woke = handles.into_iter().filter_map(|h| h.join().ok()).count();
                assert_eq!(woke as u64, k, "every may sleeper wakes");
            }),
        ],
    );
    let less_nap = |t: measure::Timing| {
        let per_thread = |ns: f64| (ns - nap_ns / t.round_iters as f64).max(0.0);
        measure::Timing { median: per_thread(t.median), min: per_thread(t.min), max: per_thread(t.max), ..t }
    };
    let (greenery, tokio, may) = (less_nap(greenery), less_nap(tokio), less_nap(may));
    report_timing("greenery_sleep_ns", &greenery);
    report_timing("tokio_current_thread_sleep_ns", &tokio);
    report_timing("may_1_worker_sleep_ns", &may);
    report_ratio("greenery_vs_tokio_sleep_ratio", &greenery, &tokio);
    report_ratio("greenery_vs_may_sleep_ratio", &greenery, &may);
    report("sleep_batch_size", n as f64, "green_threads");
}

/// This process's resident memory, in bytes (Linux: /proc/self/statm).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|field| field.parse().ok()).expect("statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// `N` green threads each blocked on one `Event`: the resident memory they
/// add, per green thread (their stacks, their handles and their places in
/// the event's wait queue). Then the event is set and all are joined.
pub(crate) fn idle(n: u64) {
    let started = std::time::Instant::now();
    let event = std::rc::Rc::new(greenery::sync::Event::new());
    greenery::yield_now(); // the hub exists before the baseline is read
    greenery::stack::trim(); // stacks kept warm by earlier cases would hide the cost
    let before = resident_bytes();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let event = event.clone();
            greenery::spawn(move || event.wait().expect("the event is set"))
        })
        .collect();
    greenery::hub::idle().expect("every green thread blocks on the event");
    let fresh = resident_bytes();
    // Green threads that stay parked have their stacks stashed: between one
    // and two periods of `stash_after` later, the hub has done it.
    let stashing = greenery::stack::stash_after();
    if let Some(period) = stashing {
        greenery::sleep(period * 5 / 2);
    }
    let settled = resident_bytes();
    let woken = std::time::Instant::now();
    event.set();
    greenery::hub::joinall(&handles, None, false).expect("every green thread finishes");
    let wake_ns = woken.elapsed().as_nanos() as f64 / n as f64;
    let per_thread = |after: usize| after.saturating_sub(before) as f64 / n as f64;
    report("greenery_idle_green_thread_rss_bytes", per_thread(settled), "bytes");
    report("greenery_idle_green_thread_fresh_rss_bytes", per_thread(fresh), "bytes");
    report("greenery_idle_wake_join_ns", wake_ns, "ns");
    report("idle_green_threads", n as f64, "green_threads");
    eprintln!(
        "# idle: {n} green threads blocked at once ({}), set free and joined in {:.2?}; \
         the first figure is read {}",
        if stashing.is_some() { "stacks stashed" } else { "stashing off or unsupported" },
        started.elapsed(),
        match stashing {
            Some(period) => format!("{:.1?} after they parked (stash_after = {period:?})", period * 5 / 2),
            None => "as soon as they parked".to_owned(),
        }
    );
}

/// Capacity of the bounded queues in the `queue` case.
const QUEUE_CAPACITY: usize = 64;

/// One producer and one consumer green thread pass `k` messages through a
/// bounded queue (capacity 64): greenery's `Queue` against tokio's bounded
/// `mpsc` on its current-thread runtime and may's `mpsc` with one worker (may
/// has no bounded channel; its sender never waits). The figure is the time
/// per message; messages per second are printed from it.
pub(crate) fn queue(n: u64) {
    configure_may();
    let runtime = tokio_runtime();
    let [greenery, tokio, may] = measure::interleaved([
        Peer::new(n, |k| {
            let queue = std::rc::Rc::new(greenery::sync::Queue::bounded(QUEUE_CAPACITY));
            let sender = queue.clone();
            let producer = greenery::spawn(move || {
                for i in 0..k {
                    sender.put(black_box(i)).expect("the queue is open");
                }
            });
            let sum: u64 = (0..k).map(|_| queue.get().expect("a message")).sum();
            producer.get().expect("the producer finishes");
            check_sum("greenery", k, sum);
        }),
        Peer::new(n, |k| {
            let sum = runtime.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE_CAPACITY);
                let producer = tokio::spawn(async move {
                    for i in 0..k {
                        tx.send(black_box(i)).await.expect("the channel is open");
                    }
                });
                let mut sum = 0;
                for _ in 0..k {
                    sum += rx.recv().await.expect("a message");
                }
                producer.await.expect("the producer finishes");
                sum
            });
            check_sum("tokio", k, sum);
        }),
        Peer::new(n, |k| {
            let (tx, rx) = may::sync::mpsc::channel();
            // SAFETY: the coroutines touch no thread-local storage.
            let consumer = unsafe {
                may::coroutine::spawn(move || (0..k).map(|_| rx.recv().expect("a message")).sum::<u64>())
            };
            // SAFETY: as above.
            let producer = unsafe {
                may::coroutine::spawn(move || {
                    for i in 0..k {
                        tx.send(black_box(i)).expect("the channel is open");
                    }
                })
            };
            producer.join().expect("the producer finishes");
            let sum: u64 = consumer.join().expect("the consumer finishes");
            check_sum("may", k, sum);
        }),
    ]);
    report_timing("greenery_queue_message_ns", &greenery);
    report_timing("tokio_current_thread_mpsc_message_ns", &tokio);
    report_timing("may_1_worker_mpsc_message_ns", &may);
    report("greenery_queue_messages_per_s", 1e9 / greenery.median, "msgs/s");
    report("tokio_current_thread_mpsc_messages_per_s", 1e9 / tokio.median, "msgs/s");
    report("may_1_worker_mpsc_messages_per_s", 1e9 / may.median, "msgs/s");
    report_ratio("greenery_vs_tokio_queue_ratio", &greenery, &tokio);
    report_ratio("greenery_vs_may_queue_ratio", &greenery, &may);
}

/// A future completed by another green thread, `k` times: the main green
/// thread sends a number to an echoing green thread over one channel and
/// awaits the reply on another, both with `block_on`; against the same two
/// channels between two tasks on tokio's current-thread runtime. The
/// channels are tokio's (they work on any executor), so the figure compares
/// the executors' handoffs: per round trip (two wakes, two parks).
pub(crate) fn block_on(n: u64) {
    use tokio::sync::mpsc::unbounded_channel;
    let runtime = tokio_runtime();
    let [greenery, tokio] = measure::interleaved([
        Peer::new(n, |k| {
            let (ping, mut pings) = unbounded_channel::<u64>();
            let (pong, mut pongs) = unbounded_channel::<u64>();
            let echo = greenery::spawn(move || {
                while let Some(value) = greenery::block_on(pings.recv()) {
                    pong.send(value + 1).expect("the main green thread waits");
                }
            });
            let mut value = 0;
            for _ in 0..k {
                ping.send(value).expect("the echo waits");
                value = greenery::block_on(pongs.recv()).expect("a reply");
            }
            drop(ping);
            echo.get().expect("the echo ends");
            assert_eq!(value, k);
        }),
        Peer::new(n, |k| {
            let value = runtime.block_on(async {
                let (ping, mut pings) = unbounded_channel::<u64>();
                let (pong, mut pongs) = unbounded_channel::<u64>();
                let echo = tokio::spawn(async move {
                    while let Some(value) = pings.recv().await {
                        pong.send(value + 1).expect("the main task waits");
                    }
                });
                let mut value = 0;
                for _ in 0..k {
                    ping.send(value).expect("the echo waits");
                    value = pongs.recv().await.expect("a reply");
                }
                drop(ping);
                echo.await.expect("the echo ends");
                value
            });
            assert_eq!(value, k);
        }),
    ]);
    report_timing("greenery_block_on_roundtrip_ns", &greenery);
    report_timing("tokio_current_thread_task_roundtrip_ns", &tokio);
    report_ratio("greenery_vs_tokio_block_on_roundtrip_ratio", &greenery, &tokio);
}
