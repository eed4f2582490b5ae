//! The per-thread pool of finished stacks.
//!
//! Stacks never cross threads (coroutines are `!Send`), so each thread keeps
//! its own pool and no locking is needed. The pool is a singly linked list
//! threaded through the [`Header`](super::Header)s of the pooled stacks
//! themselves, so taking and giving are a few loads and stores; system calls
//! happen only when the pool is empty (mmap), full (munmap), or a stack comes
//! back deep (madvise).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Stack, StackError, mmap};

/// How deep a coroutine may go before its stack is trimmed on return to the
/// pool.
const WARM_DEPTH: usize = 64 * 1024;

static LIMIT: AtomicUsize = AtomicUsize::new(128);

/// The most stacks each thread keeps for reuse (128 unless changed).
pub fn pool_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sets how many finished stacks each thread keeps for reuse.
///
/// Pools above the new limit shrink the next time a stack is given back.
/// `0` turns pooling off: every coroutine maps a fresh stack.
pub fn set_pool_limit(limit: usize) {
    LIMIT.store(limit, Ordering::Relaxed);
}

/// Gives the memory of this thread's pooled stacks back to the kernel,
/// keeping only the top page of each, and that of every finished stack kept
/// warm for reuse in any thread's slabs.
///
/// Pooled stacks keep the pages their last coroutine touched (down to 64
/// KiB), and so do up to 15 finished stacks per slab. Call this after a
/// burst of work to return that memory; the stacks stay mapped.
pub fn trim() {
    trim_pool();
    super::slab::release_dirty();
}

/// Gives back every page of this thread's pooled stacks but the top one.
fn trim_pool() {
    let _ = POOL.try_with(|pool| {
        let mut stacks = pool.drain();
        for stack in &mut stacks {
            let keep_from = stack.top() - mmap::page_size();
            stack.release_below(keep_from);
        }
        pool.refill(stacks);
    });
}

/// The default of [`release_after`]: ten seconds (jemalloc's decay of
/// dirty pages is ten seconds too).
pub const DEFAULT_RELEASE_AFTER: Duration = Duration::from_secs(10);

/// [`release_after`] in milliseconds; 0 when off.
static RELEASE_AFTER_MS: AtomicU64 = AtomicU64::new(DEFAULT_RELEASE_AFTER.as_millis() as u64);

/// How long a hub waits, once its green threads stop finishing, before it
/// gives back the memory kept for the next ones: `None` if it never does.
///
/// Finished green threads leave memory behind for reuse: the pages of the
/// stacks in this thread's pool and of the finished stacks in the slabs,
/// and the heap that malloc keeps after `free`. After a burst (thousands of
/// connections served at once, then gone) that is most of what the burst
/// took. Once no green thread of a hub has finished for `release_after`,
/// the hub gives it back, as [`trim`] does, and asks malloc to return its
/// free memory too (`malloc_trim`, with glibc), so that a server that
/// handled a burst goes back to about the memory it had before. The pages
/// given back are faulted in again by the next burst, at about a
/// microsecond per page.
///
/// The default is [`DEFAULT_RELEASE_AFTER`]; [`set_release_after`] changes
/// it.
///
/// ```
/// assert_eq!(greenery::stack::release_after(), Some(greenery::stack::DEFAULT_RELEASE_AFTER));
/// ```
pub fn release_after() -> Option<Duration> {
    match RELEASE_AFTER_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// Sets how long a hub waits, once its green threads stop finishing, before
/// it gives back the memory kept for the next ones (see [`release_after`]);
/// `None` turns that off for every hub (memory is then given back only as
/// stacks come and go, and by [`trim`]).
pub fn set_release_after(after: Option<Duration>) {
    let ms = after.map_or(0, |after| (after.as_millis() as u64).max(1));
    RELEASE_AFTER_MS.store(ms, Ordering::Relaxed);
}

/// Whether a stack came back to this thread's pool since the last call
/// (the hub's cue that green threads are finishing: see
/// [`release_after`]).
pub(crate) fn take_returned() -> bool {
    POOL.try_with(|pool| pool.returned.replace(false)).unwrap_or(false)
}

/// Gives back the memory this thread's finished stacks keep: every page of
/// its pooled stacks but the top one, and the pages of the finished stacks
/// in slabs whose oldest came back `idle` ago or more (this thread's, once
/// it has returned none for that long).
pub(crate) fn release_idle(idle: Duration) {
    trim_pool();
    super::slab::release_stale(idle);
}

/// The stacks of one thread, chained through their headers.
struct Pool {
    head: Cell<Option<Stack>>,
    len: Cell<usize>,
    /// A stack was given back since [`take_returned`] last looked.
    returned: Cell<bool>,
}

impl Pool {
    #[inline]
    fn pop(&self) -> Option<Stack> {
        let mut stack = self.head.take()?;
        self.head.set(stack.take_next());
        self.len.set(self.len.get() - 1);
        Some(stack)
    }

    #[inline]
    fn push(&self, mut stack: Stack) {
        stack.set_next(self.head.take());
        self.head.set(Some(stack));
        self.len.set(self.len.get() + 1);
    }

    fn drain(&self) -> Vec<Stack> {
        let mut stacks = Vec::with_capacity(self.len.get());
        while let Some(stack) = self.pop() {
            stacks.push(stack);
        }
        stacks
    }

    fn refill(&self, stacks: Vec<Stack>) {
        for stack in stacks.into_iter().rev() {
            self.push(stack);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        while let Some(stack) = self.pop() {
            drop(stack);
        }
    }
}

thread_local! {
    static POOL: Pool =
        const { Pool { head: Cell::new(None), len: Cell::new(0), returned: Cell::new(false) } };
}

/// A stack with `size` usable bytes (a multiple of the page size), from the
/// pool if it has one.
#[inline]
pub(crate) fn take(size: usize) -> Result<Stack, StackError> {
    let pooled = POOL.try_with(|pool| {
        // Most coroutines use the default size, so the first stack usually fits.
        let head = pool.head.take()?;
        let fits = head.size() == size;
        pool.head.set(Some(head));
        if fits { pool.pop() } else { take_other(pool, size) }
    });
    let stack = match pooled {
        Ok(Some(stack)) => stack,
        _ => Stack::new(size)?,
    };
    crate::sanitizer::forget_frames(stack.bottom(), stack.top());
    Ok(stack)
}

#[cold]
fn take_other(pool: &Pool, size: usize) -> Option<Stack> {
    let mut stacks = pool.drain();
    let found = stacks.iter().position(|stack| stack.size() == size).map(|index| stacks.remove(index));
    pool.refill(stacks);
    found
}

/// Returns a stack whose coroutine has finished.
#[inline]
pub(crate) fn give(mut stack: Stack) {
    let limit = pool_limit();
    // If the thread-local is gone (thread teardown), the closure and the
    // stack it owns are dropped, which unmaps the stack.
    let _ = POOL.try_with(move |pool| {
        pool.returned.set(true);
        if pool.len.get() >= limit {
            // Full: the stack goes back to its slab (or is unmapped).
            shrink(pool, limit);
            return;
        }
        if stack.size() > WARM_DEPTH {
            let probe = stack.top() - WARM_DEPTH;
            // SAFETY: `probe` lies inside the stack's usable range, which is
            // mapped readable; any bit pattern is a valid usize. An untouched
            // page reads as zero (the kernel maps its zero page, which costs
            // no memory); a page the coroutine's frames reached almost
            // always holds a return address or saved register there.
            let touched = unsafe { std::ptr::read_volatile(probe as *const usize) } != 0;
            if touched {
                release_deep(&mut stack);
            }
        }
        pool.push(stack);
    });
}

#[cold]
fn shrink(pool: &Pool, limit: usize) {
    while pool.len.get() > limit {
        drop(pool.pop());
    }
}

#[cold]
fn release_deep(stack: &mut Stack) {
    stack.release_below(stack.top() - WARM_DEPTH + mmap::page_size());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the page holding `addr` is resident (mincore(2)).
    fn resident(addr: usize) -> bool {
        let page = mmap::page_size();
        let mut vec = 0u8;
        // SAFETY: one page-aligned page inside a mapping we own; mincore
        // writes one byte per page into `vec`.
        let rc = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, &mut vec) };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        vec & 1 == 1
    }

    /// Writes a non-zero word at `addr`, inside a stack we hold.
    fn touch(addr: usize) {
        // SAFETY: callers pass addresses in the usable range of a stack they
        // own and on which no coroutine runs.
        unsafe { std::ptr::write_volatile(addr as *mut usize, usize::MAX) };
    }

    /// A size no other test uses, so that the pool's stack of this size is
    /// the one this test gave back.
    fn odd_size(pages: usize) -> usize {
        pages * mmap::page_size()
    }

    #[test]
    fn a_stack_that_ran_deep_gives_its_deep_pages_back_when_pooled() {
        let page = mmap::page_size();
        let stack = take(odd_size(97)).unwrap();
        let (top, bottom) = (stack.top(), stack.bottom());
        let deep = bottom + page;
        let shallow = top - 2 * page;
        for addr in [deep, shallow, top - WARM_DEPTH] {
            touch(addr);
        }
        assert!(resident(deep) && resident(shallow));
        give(stack);
        assert!(!resident(deep), "pages below the warm depth go back to the kernel");
        assert!(resident(shallow), "pages above it stay warm");
        let again = take(odd_size(97)).unwrap();
        assert_eq!(again.top(), top, "the pooled stack is reused");
        drop(again);
    }

    #[test]
    fn a_shallow_stack_keeps_its_pages_when_pooled_and_trim_releases_them() {
        let page = mmap::page_size();
        let stack = take(odd_size(89)).unwrap();
        let top = stack.top();
        let below_top = top - 3 * page;
        touch(below_top);
        give(stack);
        assert!(resident(below_top), "a shallow stack is pooled as it is");
        trim();
        assert!(!resident(below_top), "trim gives back every pooled page but the top one");
        let again = take(odd_size(89)).unwrap();
        assert_eq!(again.top(), top);
        assert!(resident(top - page), "the top page (the header) stays");
        drop(again);
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit_of_stacks_per_thread() {
        // On a thread of its own: pools are per thread, the limit is global.
        std::thread::spawn(|| {
            let before = pool_limit();
            set_pool_limit(2);
            let stacks: Vec<Stack> = (0..4).map(|_| take(odd_size(83)).unwrap()).collect();
            for stack in stacks {
                give(stack);
            }
            let pooled = POOL.with(|pool| pool.len.get());
            set_pool_limit(before);
            assert_eq!(pooled, 2);
            set_pool_limit(0);
            give(take(odd_size(83)).unwrap());
            POOL.with(|pool| shrink(pool, 0));
            let pooled = POOL.with(|pool| pool.len.get());
            set_pool_limit(before);
            assert_eq!(pooled, 0, "a limit of 0 pools nothing");
        })
        .join()
        .unwrap();
    }
}
