//! [`NoStash`]: keeping a green thread's stack in place while it is lent.

use std::fmt;

use crate::greenlet::{self, Greenlet};

/// While a `NoStash` lives, the stack of the green thread (the greenlet)
/// that made it is never [stashed](super::stash_after).
///
/// Stashing is invisible to user-space code, on any thread. It is not
/// invisible to the kernel: a system call that another OS thread makes with
/// a pointer into a stashed stack fails with `EFAULT`, possibly after doing
/// part of its work, and I/O the kernel completes later into pinned pages
/// (`O_DIRECT`, io_uring, AIO) is lost without an error (see
/// [`stash_after`](super::stash_after)). A green thread that lends buffers
/// on its stack to system calls on other threads, typically through
/// `std::thread::scope`, holds a `NoStash` for as long as they may use
/// them.
///
/// Guards nest and cost a counter update each way. A `NoStash` belongs to
/// the greenlet that made it, wherever it is dropped.
///
/// ```
/// use std::io::Write;
///
/// let (mut tx, mut rx) = std::os::unix::net::UnixStream::pair()?;
/// let handle = greenery::spawn(move || {
///     let buffer = [7u8; 4096]; // on this green thread's stack
///     let _keep = greenery::stack::NoStash::new();
///     std::thread::scope(|scope| {
///         // Another OS thread hands the buffer to the kernel...
///         let writer = scope.spawn(|| tx.write_all(&buffer));
///         // ...while this green thread parks: its stack stays in place.
///         greenery::sleep(std::time::Duration::from_millis(10));
///         writer.join().unwrap()
///     })
/// });
/// handle.get().unwrap()?;
/// let mut received = [0u8; 4096];
/// std::io::Read::read_exact(&mut rx, &mut received)?;
/// assert_eq!(received, [7u8; 4096]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct NoStash {
    greenlet: Greenlet,
}

impl NoStash {
    /// Keeps the current greenlet's stack from being stashed until the
    /// guard is dropped.
    pub fn new() -> NoStash {
        let greenlet = greenlet::getcurrent();
        greenlet.hold_stack(true);
        NoStash { greenlet }
    }
}

impl Default for NoStash {
    fn default() -> Self {
        NoStash::new()
    }
}

impl Drop for NoStash {
    fn drop(&mut self) {
        self.greenlet.hold_stack(false);
    }
}

impl fmt::Debug for NoStash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoStash").field("greenlet", &self.greenlet).finish()
    }
}
