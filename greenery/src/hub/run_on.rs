//! [`run_on`]: one hub per core.

use std::panic;
use std::thread;

/// Runs `f(i)` for each `i` in `0..hubs`, each on an OS thread of its own
/// with a hub of its own, and returns what they returned, in order.
///
/// This is how a program uses every core: gevent's hub is one thread, and
/// so is each of greenery's; `run_on` starts several and gives each the same
/// entry function and its index. Green threads never move between the hubs
/// (nor between any OS threads): a green thread stays on the hub it was
/// spawned on, with its thread-locals, for its whole life. Hubs talk through
/// `Send` things: [`sync::mpsc`](crate::sync::mpsc) channels, a
/// [`Handle`](super::Handle), atomics. A server spreads its connections over
/// the hubs with a listener per hub on one address (`SO_REUSEPORT`: the
/// kernel balances), not one listener shared by all.
///
/// `run_on` returns when every hub is done: `f` has returned on it, and its
/// hub has run until none of its green threads could run again (every one
/// has finished, or waits for something that will never come: those are
/// left where they are, as on any thread that ends). If `f` panicked on any
/// hub, the first such panic is raised again here, once all the threads
/// are joined.
///
/// [`cores`] is the usual number of hubs.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let served = AtomicUsize::new(0);
/// let per_hub = greenery::hub::run_on(2, |i| {
///     // Each hub runs green threads of its own.
///     let workers: Vec<_> = (0..100).map(|_| greenery::spawn(|| 1)).collect();
///     let done: usize = workers.into_iter().map(|w| w.get().unwrap()).sum();
///     served.fetch_add(done, Ordering::Relaxed);
///     (i, done)
/// });
/// assert_eq!(per_hub, [(0, 100), (1, 100)]);
/// assert_eq!(served.into_inner(), 200);
/// ```
///
/// # Panics
///
/// If an OS thread cannot be started (the error names the limit), or
/// again with the first panic of `f`.
pub fn run_on<F, T>(hubs: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> T + Sync,
    T: Send,
{
    let f = &f;
    let outcomes: Vec<thread::Result<T>> = thread::scope(|scope| {
        let threads: Vec<_> = (0..hubs)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("greenery-hub-{i}"))
                    .spawn_scoped(scope, move || {
                        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| f(i)));
                        settle();
                        outcome
                    })
                    .unwrap_or_else(|err| panic!("greenery: cannot start the thread of hub {i}: {err}"))
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap_or_else(Err)).collect()
    });
    let mut values = Vec::with_capacity(hubs);
    for outcome in outcomes {
        match outcome {
            Ok(value) => values.push(value),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
    values
}

/// Runs this thread's hub until none of its green threads can run again.
fn settle() {
    if !super::has_hub() {
        return;
    }
    // An event nobody sets: the wait ends with a deadlock once nothing
    // else can run (or at once, if nothing is left).
    let _ = crate::sync::Event::new().wait();
}

/// The number of hubs that uses every core this process may run on (at
/// least 1).
pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}
