//! Coroutine stacks: guarded mappings, a per-thread pool, overflow reports.
//!
//! Every coroutine runs on a stack of its own:
//!
//! ```text
//!   top  ->+----------------------+  end of the mapping
//!          | header (name)        |  read by the overflow handler
//!          | coroutine data       |  closure, bookkeeping
//!          | frames ...           |  grow downwards
//!          |                      |
//!          |   (untouched pages   |  committed only when first touched
//!          |    cost no memory)   |
//!  bottom ->+----------------------+
//!          | guard page           |  PROT_NONE: touching it is an overflow
//!  base  ->+----------------------+
//! ```
//!
//! - **Size.** [`default_size`] unless the coroutine's
//!   [`Builder::stack_size`](crate::Builder::stack_size) says otherwise. The
//!   default is 256 KiB, or `GREENERY_STACK_SIZE` (bytes, or with a `K`/`M`
//!   suffix) when set. Sizes are rounded up to whole pages. Pages are
//!   committed lazily, so a coroutine that uses 8 KiB of its stack costs 8 KiB
//!   of memory, whatever its size.
//! - **Overflow.** Running off the bottom touches the guard page. A signal
//!   handler recognises the fault, prints which coroutine overflowed and how
//!   large its stack was, and aborts the process. Rust's stack probes make
//!   sure large frames touch the guard page before they can reach past it.
//! - **Pool.** A finished coroutine gives its stack to a pool owned by the
//!   thread, and new coroutines take from it first, so creating a coroutine
//!   usually involves no system call. The pool holds at most
//!   [`pool_limit`] stacks per thread; stacks beyond that are unmapped. A
//!   stack that came back after its coroutine ran deep (more than 64 KiB down)
//!   gives those deeper pages back to the kernel before it is pooled, and
//!   [`trim`] gives back every page of every pooled stack but the top one.
//! - **Memory of finished stacks.** Beyond the pool, a finished stack that
//!   is a slab slot keeps its pages for reuse, like memory a malloc has
//!   freed: a burst of green threads that follows another reuses warm stacks
//!   instead of faulting in fresh pages. Pages kept this way go back to the
//!   kernel after 10 seconds (checked as stacks come and go), or at once with
//!   [`trim`].
//! - **After a burst.** Once no green thread of a hub has finished for
//!   [`release_after`] (10 seconds by default), the hub gives back what its
//!   finished stacks kept (its pool's pages, its stacks' pages in the slabs)
//!   and asks malloc to return its free memory, so that a process goes back
//!   to about its memory before the burst.
//! - **Stashing.** A green thread that stays parked on its hub for
//!   [`stash_after`] (one second by default) has the live part of its stack,
//!   typically a kilobyte or two, copied to the heap, and the stack's pages
//!   given back to the kernel behind a guard region; they come back before
//!   it runs again, or as soon as any thread touches them. A hundred
//!   thousand idle green threads then cost about 1.3 KB each rather than a
//!   page and more. Only stacks in slabs (see below) can be stashed;
//!   [`set_stash_after`] or `GREENERY_STASH=off` turn it off. No thread
//!   ever sees a stack half stashed or half restored; the one visible
//!   effect, on system calls that another thread makes with a buffer lent
//!   from a stashed stack, is described in [`stash_after`], and a
//!   [`NoStash`] guard keeps a green thread's stack in place while it lends
//!   it that way.
//! - **Guards and limits.** Linux caps a process at `vm.max_map_count`
//!   mappings (65530 by default). Where the kernel has guard regions (Linux
//!   6.13 and later), stacks are slots in slabs of up to 64, one mapping per
//!   slab, each slot guarded by a guard region that does not split the
//!   mapping: a default process can hold millions of stacks, as memory
//!   allows. Elsewhere (older kernels, emulators such as qemu-user, or
//!   `GREENERY_STACK_GUARD=mprotect`), each stack is a mapping of its own with an
//!   mprotect(2)ed guard page, two mappings a stack, which caps a default
//!   process at about 32,000 stacks. Hitting the map limit, `RLIMIT_AS`, or
//!   strict overcommit gives a [`StackError`] that names the limit and says
//!   how to raise it.

mod error;
mod fork_gate;
mod mmap;
mod no_stash;
mod overflow;
mod pool;
mod proc_mem;
mod process_local;
mod raw_sys;
mod registry;
mod slab;
mod stash;

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use error::StackError;
pub use no_stash::NoStash;
pub use pool::{DEFAULT_RELEASE_AFTER, pool_limit, release_after, set_pool_limit, set_release_after, trim};
pub use stash::{DEFAULT_STASH_AFTER, StashCounts, set_stash_after, stash_after, stash_counts};

pub(crate) use error::Limit;
pub(crate) use pool::{give, release_idle, take, take_returned};
pub(crate) use stash::{Request as StashRequest, Stash, stash_all};

/// The usable range of the coroutine stack that holds `addr`, if any.
#[cfg(greenery_asan)]
pub(crate) fn usable_range_at(addr: usize) -> Option<(usize, usize)> {
    registry::usable_range(addr)
}

/// The default stack size when `GREENERY_STACK_SIZE` is not set: 256 KiB.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The stack size used when a coroutine does not ask for one.
///
/// [`DEFAULT_STACK_SIZE`], unless the environment variable `GREENERY_STACK_SIZE`
/// held a size (`131072`, `128K`, `2M`) when this was first called, rounded
/// up to whole pages. An unreadable value is reported once on stderr and
/// ignored.
#[inline]
pub fn default_size() -> usize {
    static DEFAULT: AtomicUsize = AtomicUsize::new(0);
    match DEFAULT.load(Ordering::Relaxed) {
        0 => read_default_size(&DEFAULT),
        size => size,
    }
}

#[cold]
fn read_default_size(cache: &AtomicUsize) -> usize {
    let size = match std::env::var("GREENERY_STACK_SIZE") {
        Ok(text) => parse_size(&text).unwrap_or_else(|| {
            eprintln!(
                "greenery: ignoring GREENERY_STACK_SIZE={text:?}: expected a number of bytes, \
                 optionally with a K or M suffix; using {DEFAULT_STACK_SIZE}"
            );
            DEFAULT_STACK_SIZE
        }),
        Err(_) => DEFAULT_STACK_SIZE,
    };
    let size = page_round(size);
    cache.store(size, Ordering::Relaxed);
    size
}

fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1024),
        b'm' | b'M' => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let size = digits.trim().parse::<usize>().ok()?.checked_mul(unit)?;
    (size > 0).then_some(size)
}

/// The bookkeeping kept in the top bytes of every stack.
///
/// Keeping it on the stack itself makes a [`Stack`] handle one pointer wide
/// and lets the pool chain free stacks through `next` without allocating.
#[repr(C)]
pub(crate) struct Header {
    /// The running coroutine's name, for the overflow report.
    pub(crate) name_ptr: *const u8,
    pub(crate) name_len: usize,
    /// Usable bytes below this header's stack top.
    size: usize,
    /// The stack's entry in the overflow registry.
    registration: registry::Registration,
    /// The next stack in this thread's pool, while pooled.
    next: Option<Stack>,
    /// The slab the stack is a slot of, if it is one (else it is a mapping
    /// of its own).
    slab: Option<NonNull<slab::Slab>>,
}

/// The bytes [`Header`] takes at the top of a stack.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<Header>();

/// One guarded stack: a guard page, then `size()` usable bytes, the top
/// [`HEADER_SIZE`] of which hold its [`Header`]. It is a slot of a slab
/// (guard regions) or a mapping of its own (an mprotect guard page).
///
/// The handle owns the stack: on drop it gives the slot back to its slab, or
/// unmaps its mapping.
pub(crate) struct Stack {
    /// The end of the stack; the header is just below.
    top: NonNull<u8>,
}

/// `size` rounded up to whole pages (at least one).
#[inline]
pub(crate) fn page_round(size: usize) -> usize {
    let page = mmap::page_size();
    size.max(1).saturating_add(page - 1) & !(page - 1)
}

impl Stack {
    /// Maps a new stack with `size` usable bytes, a multiple of the page size.
    #[cold]
    pub(crate) fn new(size: usize) -> Result<Stack, StackError> {
        overflow::prepare_thread();
        let page = mmap::page_size();
        debug_assert_eq!(size % page, 0);
        let len = size.checked_add(page).ok_or_else(|| {
            StackError::new(Limit::Os(std::io::Error::from(std::io::ErrorKind::InvalidInput)), size)
        })?;
        let (guard_lo, slab) = if mmap::guard_regions() {
            let (start, slab) = slab::allocate(len, size)?;
            (start, Some(slab))
        } else {
            (mmap::map_guarded(len, page, size)?.as_ptr() as usize, None)
        };
        let top = guard_lo + len;
        let registration = registry::register(guard_lo, guard_lo + page, top);
        let header = (top - HEADER_SIZE) as *mut Header;
        // SAFETY: the header lies in the usable part of the stack just made.
        unsafe {
            header.write(Header {
                name_ptr: std::ptr::null(),
                name_len: 0,
                size,
                registration,
                next: None,
                slab,
            })
        };
        // SAFETY: the end of a mapping is not null.
        let top = unsafe { NonNull::new_unchecked(top as *mut u8) };
        Ok(Stack { top })
    }

    #[inline]
    fn header(&self) -> *mut Header {
        (self.top() - HEADER_SIZE) as *mut Header
    }

    /// One past the highest usable address.
    #[inline]
    pub(crate) fn top(&self) -> usize {
        self.top.as_ptr() as usize
    }

    /// Usable bytes (the header included).
    #[inline]
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the header of a stack we own is initialised and mapped.
        unsafe { (*self.header()).size }
    }

    /// The lowest usable address (just above the guard page).
    #[inline]
    pub(crate) fn bottom(&self) -> usize {
        self.top() - self.size()
    }

    /// The stack's entry in the registry.
    #[inline]
    fn slot(&self) -> &'static registry::Slot {
        // SAFETY: the header of a stack we own is initialised and mapped.
        unsafe { (*self.header()).registration.slot() }
    }

    /// Records the name the overflow handler will report.
    #[inline]
    pub(crate) fn set_name(&mut self, name: &str) {
        // SAFETY: the header of a stack we own, and no coroutine runs on this
        // stack while we hold it mutably.
        unsafe {
            (*self.header()).name_ptr = name.as_ptr();
            (*self.header()).name_len = name.len();
        }
    }

    /// Unlinks and returns the next stack in the pool's chain.
    #[inline]
    fn take_next(&mut self) -> Option<Stack> {
        // SAFETY: the header of a stack we own.
        unsafe { (*self.header()).next.take() }
    }

    /// Links `next` after this stack in the pool's chain.
    #[inline]
    fn set_next(&mut self, next: Option<Stack>) {
        // SAFETY: the header of a stack we own; the slot is empty (stacks
        // leave the pool through `take_next`), so nothing is leaked.
        unsafe { ptr::write(&mut (*self.header()).next, next) }
    }

    /// Gives the pages in `[bottom, end)` back to the kernel.
    fn release_below(&mut self, end: usize) {
        let bottom = self.bottom();
        let end = end & !(mmap::page_size() - 1);
        if end > bottom {
            // SAFETY: the range is page-aligned, inside our mapping (below
            // the header's page), and no coroutine runs on this stack while
            // we hold it mutably.
            unsafe { mmap::release(bottom, end - bottom) };
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let page = mmap::page_size();
        let size = self.size();
        let guard_lo = self.top() - size - page;
        // SAFETY: our header is initialised; after this we no longer read it.
        let (registration, slab) =
            unsafe { (ptr::read(&(*self.header()).registration), (*self.header()).slab) };
        // Unregister first, so that the overflow handler never looks at a
        // header that is gone.
        registration.unregister();
        match slab {
            // SAFETY: the slot is ours, from `slab::allocate`, and unused.
            Some(slab) => unsafe { slab::free(slab, guard_lo) },
            // SAFETY: the mapping (guard page included) is ours and unused.
            None => unsafe { mmap::unmap(NonNull::new_unchecked(guard_lo as *mut u8), size + page) },
        }
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("bottom", &(self.bottom() as *const u8))
            .field("size", &self.size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sizes() {
        assert_eq!(parse_size("131072"), Some(131072));
        assert_eq!(parse_size("128K"), Some(128 * 1024));
        assert_eq!(parse_size(" 2m "), Some(2 * 1024 * 1024));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn stacks_are_page_rounded_and_writable() {
        let mut stack = Stack::new(page_round(10_000)).unwrap();
        assert_eq!(stack.size() % mmap::page_size(), 0);
        assert!(stack.size() >= 10_000);
        stack.set_name("test");
        let bottom = stack.bottom() as *mut u8;
        // SAFETY: the usable range of a stack we own, below its header.
        unsafe {
            bottom.write(1);
            bottom.add(stack.size() - HEADER_SIZE - 1).write(2);
        }
        stack.release_below(stack.top() - HEADER_SIZE);
        // SAFETY: as above; released pages read as zero.
        assert_eq!(unsafe { bottom.read() }, 0);
    }
}
