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
//! pointer to a chunk or a slot stays valid forever. Each slot's fields are
//! published under a sequence lock: the writer makes the sequence odd,
//! writes, and makes it even again; a reader trusts fields only if it read
//! the same even sequence before and after them. A slot that is
//! unregistered and reused between a reader's two reads therefore never
//! gives the reader a mix of two stacks' fields, and the sequence a reader
//! got tells it, later, whether the slot still describes the same stack.
//! Registering and unregistering (when a stack is mapped and unmapped, never
//! on a context switch) take a mutex that readers never touch.

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{self, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One stack's entry.
pub(super) struct Slot {
    /// The sequence lock over the three fields below: odd while they are
    /// being written. A slot whose `top` is 0 is free.
    seq: AtomicU32,
    guard_lo: AtomicUsize,
    guard_hi: AtomicUsize,
    top: AtomicUsize,
    /// Where the stack's contents are, for [`stash`](super::stash): one of
    /// its states with the token of the process whose thread set it, and
    /// the stash itself (owned by the stack's owner, valid while the state
    /// says the stack is stashed).
    pub(super) stash: AtomicU64,
    pub(super) stash_meta: AtomicPtr<super::stash::Meta>,
    /// Faults at this stack that found it not stashed, since it was last
    /// stashed (see [`stash`](super::stash)'s fault path).
    pub(super) stray_faults: AtomicU32,
    /// The stashes and restores of this stack that have ended (their range
    /// accessible again, the state no longer saying otherwise), counted
    /// modulo 2^32; and a hash of the last fault that found the stack not
    /// stashed (the faulting thread, the access, and this count as it read
    /// it; see [`stash`](super::stash)'s fault path).
    pub(super) windows_ended: AtomicU32,
    pub(super) last_stray: AtomicU64,
    /// The thread (its id) of this process that is restoring the stack, 0
    /// when none is (see [`stash`](super::stash)'s fault path).
    pub(super) restorer: AtomicI32,
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
            seq: AtomicU32::new(0),
            guard_lo: AtomicUsize::new(0),
            guard_hi: AtomicUsize::new(0),
            top: AtomicUsize::new(0),
            stash: AtomicU64::new(0),
            stash_meta: AtomicPtr::new(ptr::null_mut()),
            stray_faults: AtomicU32::new(0),
            windows_ended: AtomicU32::new(0),
            last_stray: AtomicU64::new(0),
            restorer: AtomicI32::new(0),
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
    slot.write(guard_lo, guard_hi, top);
    Registration(slot)
}

impl Slot {
    /// Publishes new fields under the sequence lock. Only the registering
    /// side writes, one thread at a time per slot (a slot is written when it
    /// is handed out and when it is given back, by its holder).
    fn write(&self, guard_lo: usize, guard_hi: usize, top: usize) {
        let seq = self.seq.load(Ordering::Relaxed);
        debug_assert!(seq.is_multiple_of(2));
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Readers that see any of the writes below see the odd sequence.
        atomic::fence(Ordering::Release);
        self.guard_lo.store(guard_lo, Ordering::Relaxed);
        self.guard_hi.store(guard_hi, Ordering::Relaxed);
        self.top.store(top, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The fields and the sequence they were read under, or `None` if they
    /// were being written. Async-signal-safe.
    fn read(&self) -> Option<(u32, usize, usize, usize)> {
        let before = self.seq.load(Ordering::Acquire);
        if !before.is_multiple_of(2) {
            return None;
        }
        let lo = self.guard_lo.load(Ordering::Relaxed);
        let hi = self.guard_hi.load(Ordering::Relaxed);
        let top = self.top.load(Ordering::Relaxed);
        // The field loads above happen before the second sequence load.
        atomic::fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == before).then_some((before, lo, hi, top))
    }

    /// Whether the slot still describes the stack it described when a
    /// reader got sequence `seq` from it. Async-signal-safe.
    pub(super) fn unchanged_since(&self, seq: u32) -> bool {
        self.seq.load(Ordering::Acquire) == seq
    }
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
        slot.write(0, 0, 0);
        let mut guard = ALLOCATOR.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(alloc) = guard.as_mut() {
            alloc.free.push(slot);
        }
    }
}

/// The first live slot for which `matches(guard_lo, guard_hi, top)` holds:
/// the slot, the sequence its fields were read under, and those fields.
/// Async-signal-safe.
fn find(matches: impl Fn(usize, usize, usize) -> bool) -> Option<(&'static Slot, u32, usize, usize, usize)> {
    let mut chunk: &'static Chunk = &FIRST_CHUNK;
    loop {
        for slot in &chunk.slots {
            // A slot being written is skipped: it is being handed out (no
            // coroutine runs on it yet) or given back (its stack is no
            // longer used).
            if let Some((seq, lo, hi, top)) = slot.read()
                && top != 0
                && matches(lo, hi, top)
            {
                return Some((slot, seq, lo, hi, top));
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
    find(|lo, hi, _| lo <= addr && addr < hi).map(|(_, _, lo, _, top)| (lo, top))
}

/// The live stack whose usable range holds `addr`, and the sequence its
/// slot was read under (see [`Slot::unchanged_since`]). Async-signal-safe.
pub(super) fn find_usable(addr: usize) -> Option<(&'static Slot, u32)> {
    find(|_, hi, top| hi <= addr && addr < top).map(|(slot, seq, ..)| (slot, seq))
}

/// The usable range of the live stack that holds `addr`, for
/// [`sanitizer`](crate::sanitizer).
#[cfg(greenery_asan)]
pub(super) fn usable_range(addr: usize) -> Option<(usize, usize)> {
    find(|_, hi, top| hi <= addr && addr < top).map(|(_, _, _, hi, top)| (hi, top))
}
