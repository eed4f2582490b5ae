//! tokio-based futures from green threads (the `tokio` feature).
//!
//! Many async crates need tokio's reactor and timers: their futures panic
//! ("there is no reactor running") when polled anywhere else, including in
//! [`block_on`](crate::block_on). [`run`] hands such a future to a shared
//! background tokio runtime and parks the calling green thread until it
//! completes: the hub runs the other green threads meanwhile.
//!
//! The runtime is multi-threaded, started on first use, and lives as long
//! as the process. Its worker threads are [`worker_threads`]: the value set
//! with [`set_worker_threads`] before first use, else the environment
//! variable `GREENERY_TOKIO_THREADS`, else 2.
//!
//! ```
//! use std::time::Duration;
//!
//! // Ten green threads, each awaiting a tokio timer: they wait at once.
//! let sleepers: Vec<_> = (0..10u64)
//!     .map(|i| {
//!         greenery::spawn(move || {
//!             greenery::tokio::run(async move {
//!                 tokio::time::sleep(Duration::from_millis(10)).await;
//!                 i
//!             })
//!         })
//!     })
//!     .collect();
//! let done: u64 = sleepers.into_iter().map(|sleeper| sleeper.get().unwrap()).sum();
//! assert_eq!(done, 45);
//! ```

use std::future::Future;
use std::panic;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::tokio::runtime::{Builder, Handle, Runtime};

/// The worker threads set with [`set_worker_threads`]; 0 if none was.
static WORKERS: AtomicUsize = AtomicUsize::new(0);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// How many worker threads the shared runtime has (or will have, if it
/// has not started yet).
pub fn worker_threads() -> usize {
    match WORKERS.load(Ordering::Relaxed) {
        0 => std::env::var("GREENERY_TOKIO_THREADS")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .filter(|&threads| threads > 0)
            .unwrap_or(2),
        threads => threads,
    }
}

/// Sets the shared runtime's worker threads (at least 1), for when it
/// starts. Returns `false` if it has started already: the setting then
/// comes too late to matter.
pub fn set_worker_threads(threads: usize) -> bool {
    WORKERS.store(threads.max(1), Ordering::Relaxed);
    RUNTIME.get().is_none()
}

/// The shared runtime's handle (the runtime starts if need be): to spawn
/// tasks on it, or to enter its context for APIs that need one.
///
/// # Panics
///
/// If the runtime cannot start (the system refuses to create its threads).
pub fn handle() -> Handle {
    runtime().handle().clone()
}

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("greenery-tokio")
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("greenery: cannot start the shared tokio runtime: {err}"))
    })
}

/// Runs `future` on the shared tokio runtime and parks the calling green
/// thread (or the main greenlet) until it completes; returns its output.
///
/// A panic in the future is raised again here. If the green thread is
/// killed, or a [`Timeout`](crate::Timeout) expires, while it waits, the
/// tokio task is cancelled.
///
/// ```
/// // A tokio-based future: it needs tokio's reactor and timers.
/// let answer = greenery::tokio::run(async {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
///     listener.local_addr().unwrap().ip().is_loopback()
/// });
/// assert!(answer);
/// ```
///
/// # Panics
///
/// If the runtime cannot start; when called on the hub itself.
pub fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = runtime().spawn(future);
    // Cancels the task if this green thread stops waiting for it.
    struct AbortOnDrop(::tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _abort = AbortOnDrop(task.abort_handle());
    match crate::block_on(task) {
        Ok(output) => output,
        Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("greenery: the tokio task was cancelled: {err}"),
    }
}
