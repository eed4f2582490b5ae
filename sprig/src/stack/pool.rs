//! The per-thread pool of finished stacks.
//!
//! Stacks never cross threads (coroutines are `!Send`), so each thread keeps
//! its own pool and no locking is needed. The pool is a singly linked list
//! threaded through the [`Header`](super::Header)s of the pooled stacks
//! themselves, so taking and giving are a few loads and stores; system calls
//! happen only when the pool is empty (mmap), full (munmap), or a stack comes
//! back deep (madvise).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    let _ = POOL.try_with(|pool| {
        let mut stacks = pool.drain();
        for stack in &mut stacks {
            let keep_from = stack.top() - mmap::page_size();
            stack.release_below(keep_from);
        }
        pool.refill(stacks);
    });
    super::slab::release_dirty();
}

/// The stacks of one thread, chained through their headers.
struct Pool {
    head: Cell<Option<Stack>>,
    len: Cell<usize>,
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
    static POOL: Pool = const { Pool { head: Cell::new(None), len: Cell::new(0) } };
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
    match pooled {
        Ok(Some(stack)) => Ok(stack),
        _ => Stack::new(size),
    }
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
