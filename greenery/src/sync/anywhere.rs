//! Waiting for something another thread does, from wherever the caller is:
//! what the blocking calls of [`mpsc`](super::mpsc) and
//! [`threadsafe`](super::threadsafe) stand on.
//!
//! Each of those calls is a future (the `*_async` forms), run to completion
//! here: in [`block_on`](crate::block_on) on a thread that has a hub (only
//! the calling green thread waits; a [`Timeout`](crate::Timeout) or a kill
//! reaches it), by parking the OS thread on a plain thread. The futures'
//! wakers may be called from any thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

/// Runs `future` to completion on this thread (see the module
/// documentation). `Err(())` if `deadline` passed first.
pub(crate) fn wait_anywhere<F: Future>(future: F, deadline: Option<Instant>) -> Result<F::Output, ()> {
    if crate::hub::has_hub() {
        return match deadline {
            None => Ok(crate::block_on(future)),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                crate::with_timeout(left, || crate::block_on(future)).map_err(drop)
            }
        };
    }
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(());
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}

/// A waker that unparks a plain OS thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The wakers of the futures waiting for one thing, each under the id of
/// its future: a later poll replaces its waker, a dropped future takes its
/// own out, and the thing, when it happens, takes them all to wake them
/// (after its lock is released).
#[derive(Default)]
pub(crate) struct Wakers {
    waiting: Vec<(u64, Waker)>,
}

impl Wakers {
    /// A new id for a waiting future.
    pub(crate) fn id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static IDS: AtomicU64 = AtomicU64::new(0);
        IDS.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps `waker` for the future `id`, in place of its earlier one.
    pub(crate) fn register(&mut self, id: u64, waker: &Waker) {
        match self.waiting.iter_mut().find(|(waiting, _)| *waiting == id) {
            Some((_, kept)) => kept.clone_from(waker),
            None => self.waiting.push((id, waker.clone())),
        }
    }

    /// Forgets the future `id`'s waker, if it has one here.
    pub(crate) fn remove(&mut self, id: u64) {
        self.waiting.retain(|(waiting, _)| *waiting != id);
    }

    /// Takes every waker, to wake once the lock is released.
    pub(crate) fn take(&mut self) -> Vec<Waker> {
        self.waiting.drain(..).map(|(_, waker)| waker).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}
