//! The process-wide registry of coroutine stacks, readable from a signal
//! handler.
//!
//! Every stack has an entry (a [`Slot`]) from the moment it is mapped until
//! just before it is unmapped: where its guard page is, where its usable
//! range ends, and whether its contents are stashed away (see
//! [`stash`](super::stash)). The SIGSEGV handler looks fault addresses up
//! here, on whatever thread faulted, to tell a stack overflow (the address is
//! in a guard page) and a touch of a stashed stack (the address is in its
//! usable range) from every other fault.
//!
//! # Async-signal safety
//!
//! The registry is a list of fixed-size chunks that are never freed, so a
//! pointer to a chunk or a slot stays valid forever. Each slot is published
//! with a state word (`FREE`, `BUSY`, `LIVE`): a reader only trusts a slot
//! that reads `LIVE` before and after it reads the fields. Registering and
//! unregistering (when a stack is mapped and unmapped, never on a context
//! switch) take a mutex that readers never touch.

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

const FREE: u8 = 0;
const BUSY: u8 = 1;
const LIVE: u8 = 2;

/// One stack's entry.
pub(super) struct Slot {
    state: AtomicU8,
    guard_lo: AtomicUsize,
    guard_hi: AtomicUsize,
    top: AtomicUsize,
    /// Where the stack's contents are, for [`stash`](super::stash): one of
    /// its `STASH_*` states, and the buffer and length of a stash.
    pub(super) stash: AtomicU8,
    pub(super) stash_buf: AtomicPtr<u8>,
    pub(super) stash_len: AtomicUsize,
}

const SLOTS_PER_CHUNK: usize = 256;

struct Chunk {
    slots: [Slot; SLOTS_PER_CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: Slot = Slot {
            state: AtomicU8::new(FREE),
            guard_lo: AtomicUsize::new(0),
            guard_hi: AtomicUsize::new(0),
            top: AtomicUsize::new(0),
            stash: AtomicU8::new(0),
            stash_buf: AtomicPtr::new(ptr::null_mut()),
            stash_len: AtomicUsize::new(0),
        };
        Chunk { slots: [EMPTY; SLOTS_PER_CHUNK], next: AtomicPtr::new(ptr::null_mut()) }
    }
}

static FIRST_CHUNK: Chunk = Chunk::new();

/// Slots handed out so far, for the registering side only.
struct Allocator {
    free: Vec<&'static Slot>,
    tail: &'static Chunk,
    tail_used: usize,
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// A stack's entry in the registry.
pub(crate) struct Registration(&'static Slot);

/// Records that `[guard_lo, guard_hi)` is the guard page of the stack whose
/// mapping ends at `top`.
pub(super) fn register(guard_lo: usize, guard_hi: usize, top: usize) -> Registration {
    let slot = {
        let mut guard = ALLOCATOR.lock().unwrap_or_else(|poison| poison.into_inner());
        let alloc =
            guard.get_or_insert_with(|| Allocator { free: Vec::new(), tail: &FIRST_CHUNK, tail_used: 0 });
        match alloc.free.pop() {
            Some(slot) => slot,
            None => {
                if alloc.tail_used == SLOTS_PER_CHUNK {
                    let chunk: &'static Chunk = Box::leak(Box::new(Chunk::new()));
                    alloc.tail.next.store(chunk as *const Chunk as *mut Chunk, Ordering::Release);
                    alloc.tail = chunk;
                    alloc.tail_used = 0;
                }
                alloc.tail_used += 1;
                &alloc.tail.slots[alloc.tail_used - 1]
            }
        }
    };
    slot.state.store(BUSY, Ordering::Relaxed);
    slot.guard_lo.store(guard_lo, Ordering::Relaxed);
    slot.guard_hi.store(guard_hi, Ordering::Relaxed);
    slot.top.store(top, Ordering::Relaxed);
    slot.state.store(LIVE, Ordering::Release);
    Registration(slot)
}

impl Registration {
    /// The entry itself.
    pub(super) fn slot(&self) -> &'static Slot {
        self.0
    }

    /// Removes the entry: called just before the stack is unmapped.
    pub(super) fn unregister(self) {
        let slot = self.0;
        debug_assert_eq!(slot.stash.load(Ordering::Relaxed), 0, "a stack unmapped while stashed");
        slot.state.store(BUSY, Ordering::Relaxed);
        slot.guard_lo.store(0, Ordering::Relaxed);
        slot.guard_hi.store(0, Ordering::Relaxed);
        slot.top.store(0, Ordering::Relaxed);
        slot.state.store(FREE, Ordering::Release);
        let mut guard = ALLOCATOR.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(alloc) = guard.as_mut() {
            alloc.free.push(slot);
        }
    }
}

/// The first live slot for which `matches(guard_lo, guard_hi, top)` holds,
/// with those three values as they were read. Async-signal-safe.
fn find(matches: impl Fn(usize, usize, usize) -> bool) -> Option<(&'static Slot, usize, usize, usize)> {
    let mut chunk: &'static Chunk = &FIRST_CHUNK;
    loop {
        for slot in &chunk.slots {
            if slot.state.load(Ordering::Acquire) != LIVE {
                continue;
            }
            let lo = slot.guard_lo.load(Ordering::Relaxed);
            let hi = slot.guard_hi.load(Ordering::Relaxed);
            let top = slot.top.load(Ordering::Relaxed);
            if slot.state.load(Ordering::Acquire) == LIVE && matches(lo, hi, top) {
                return Some((slot, lo, hi, top));
            }
        }
        let next = chunk.next.load(Ordering::Acquire);
        if next.is_null() {
            return None;
        }
        // SAFETY: chunks are leaked, so a published pointer stays valid.
        chunk = unsafe { &*next };
    }
}

/// The live stack whose guard page holds `addr`: `(guard_lo, top)`.
/// Async-signal-safe.
pub(super) fn find_guard(addr: usize) -> Option<(usize, usize)> {
    find(|lo, hi, _| lo <= addr && addr < hi).map(|(_, lo, _, top)| (lo, top))
}

/// The live stack whose usable range holds `addr`, and that range.
/// Async-signal-safe.
pub(super) fn find_usable(addr: usize) -> Option<(&'static Slot, usize, usize)> {
    find(|_, hi, top| hi <= addr && addr < top).map(|(slot, _, hi, top)| (slot, hi, top))
}
