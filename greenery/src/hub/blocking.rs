//! [`spawn_blocking`]: blocking code on a thread pool, awaited without
//! blocking the hub (gevent's threadpool).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::remote::ExternalWork;
use super::{Waiter, park};

/// The most pool threads at once; more jobs wait in line.
const MAX_THREADS: usize = 64;
/// How long a pool thread waits for work before it exits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState { jobs: VecDeque::new(), threads: 0, idle: 0 }),
    work: Condvar::new(),
};

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        state.jobs.push_back(job);
        if state.idle > 0 {
            self.work.notify_one();
            return;
        }
        if state.threads < MAX_THREADS {
            let spawned =
                thread::Builder::new().name("greenery-blocking".into()).spawn(move || self.work_loop());
            match spawned {
                Ok(_) => state.threads += 1,
                // Queued: a running pool thread will take it. With none
                // running, nothing ever would.
                Err(err) if state.threads == 0 => {
                    let job = state.jobs.pop_back();
                    drop(state);
                    drop(job);
                    panic!("spawn_blocking: cannot start a pool thread: {err}");
                }
                Err(_) => {}
            }
        }
    }

    fn work_loop(&'static self) {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                job(); // jobs catch their own panics
                state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
                continue;
            }
            state.idle += 1;
            let (next, timeout) =
                self.work.wait_timeout(state, IDLE_TIMEOUT).unwrap_or_else(|poison| poison.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.jobs.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}

thread_local! {
    /// The waiters of this hub's green threads waiting for a blocking job,
    /// by key: the job's completion (a `Send` callback run on the hub) wakes
    /// the waiter under its key, if it is still there.
    static WAITING: RefCell<Vec<Option<Rc<Waiter>>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a thread of a shared pool and waits for it without blocking
/// the hub: other green threads run meanwhile. Returns what `f` returned, or
/// its panic's payload (as [`std::thread::JoinHandle::join`] does).
///
/// The pool is made on first use, holds at most 64 threads (more jobs wait
/// their turn), and its threads exit after 5 seconds without work. Use it for
/// calls that block in the kernel or in foreign code: file I/O, DNS
/// resolution, CPU-heavy work.
///
/// If the waiting green thread is killed, `f` still runs to the end on the
/// pool; its result is dropped.
///
/// ```
/// let sum = greenery::hub::spawn_blocking(|| (1..=1000u64).sum::<u64>()).unwrap();
/// assert_eq!(sum, 500500);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> thread::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let waiter = Waiter::new();
    let key = WAITING.with(|waiting| {
        let mut waiting = waiting.borrow_mut();
        match waiting.iter().position(Option::is_none) {
            Some(key) => {
                waiting[key] = Some(waiter.clone());
                key
            }
            None => {
                waiting.push(Some(waiter.clone()));
                waiting.len() - 1
            }
        }
    });
    struct Forget(usize);
    impl Drop for Forget {
        fn drop(&mut self) {
            let _ = WAITING.try_with(|waiting| waiting.borrow_mut()[self.0] = None);
        }
    }
    let _forget = Forget(key);
    let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let result = slot.clone();
    let work = ExternalWork::start();
    POOL.submit(Box::new(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        *result.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(outcome);
        work.finish(move || {
            let waiter = WAITING.with(|waiting| waiting.borrow().get(key).cloned().flatten());
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        });
    }));
    loop {
        if let Some(outcome) = slot.lock().unwrap_or_else(|poison| poison.into_inner()).take() {
            return outcome;
        }
        // Only the job's completion wakes us, and it keeps the hub alive
        // meanwhile: no deadlock can be reported here.
        park(&waiter, super::Wait::Blocking, None);
    }
}
