//! Slabs: many guarded stacks in one memory mapping.
//!
//! Linux caps a process at `vm.max_map_count` mappings (65530 by default),
//! and a stack guarded with mprotect(2) takes two of them, so a process could
//! hold only about 32,000 such stacks. A *guard region* (`MADV_GUARD_INSTALL`,
//! Linux 6.13) faults on any access like a `PROT_NONE` page but lives in the
//! page tables, not in the mapping, so it does not split it. This module maps
//! slabs of up to [`MAX_SLOTS`] stacks each, as one mapping, and guards every
//! slot with a guard region:
//!
//! ```text
//!  base ->+-------+----------------+-------+----------------+-- ...
//!         | guard | slot 0 usable  | guard | slot 1 usable  |
//!         +-------+----------------+-------+----------------+-- ...
//!         <-------- stride -------->
//! ```
//!
//! A slot's guard sits right above the previous slot's top, so running off the
//! bottom of any stack faults in its own guard, which the overflow handler
//! finds in its registry as it does for mprotect guards.
//!
//! Slots are handed out and taken back under one process-wide mutex; that is
//! the slow path behind the per-thread [`pool`](super::pool). A slot that
//! comes back keeps its pages at first (*dirty*), and is the first to be
//! handed out again, so a burst of short-lived coroutines reuses warm memory
//! without faulting it in again. Once [`DIRTY_BATCH`] slots of a slab are
//! dirty, their pages go back to the kernel together: adjacent slots in one
//! `madvise` (guard regions survive `MADV_DONTNEED`), so the cost of giving
//! memory back, mostly a TLB flush, is paid per run of slots rather than per
//! stack. A slab whose slots are all back is unmapped, unless it is the only
//! one of its size with room (so a thread that creates and drops one
//! coroutine at a time does not map and unmap a slab each time).
//! [`release_dirty`] gives back the pages of every dirty slot at once.
//!
//! Where guard regions are missing (older kernels, emulators that ignore the
//! advice: see [`mmap::guard_regions`]), stacks are mapped one by one with an
//! mprotect guard instead and this module is not used.

use std::ptr::NonNull;
use std::sync::Mutex;

use super::{mmap, Limit, StackError};

/// The most slots in one slab.
pub(crate) const MAX_SLOTS: usize = 64;

/// The most address space one slab takes, unless a single stack needs more.
const MAX_SLAB_BYTES: usize = 32 << 20;

/// Dirty slots a slab holds before their pages go back to the kernel.
const DIRTY_BATCH: usize = 16;

/// One mapping holding `slots` stacks of `stride` bytes each (guard
/// included).
pub(crate) struct Slab {
    base: usize,
    stride: usize,
    slots: usize,
    /// Slots `fresh..slots` were never handed out (and have no guard yet).
    fresh: usize,
    /// Slots handed out and back again: guarded, pages given back.
    clean: Vec<usize>,
    /// Slots handed out and back again, pages still committed (warm).
    dirty: Vec<usize>,
    /// Slots in use.
    live: usize,
}

impl Slab {
    fn is_full(&self) -> bool {
        self.fresh == self.slots && self.clean.is_empty() && self.dirty.is_empty()
    }

    fn slot_start(&self, slot: usize) -> usize {
        self.base + slot * self.stride
    }
}

/// The slabs with room, by stride. Full slabs are reachable only through the
/// stacks in them (their headers point to their slab).
struct Slabs {
    with_room: Vec<NonNull<Slab>>,
}

// SAFETY: the slabs are only touched under the `SLABS` mutex (or through a
// stack's pointer to its own slab, also under the mutex).
unsafe impl Send for Slabs {}

static SLABS: Mutex<Slabs> = Mutex::new(Slabs { with_room: Vec::new() });

/// A guarded slot of `stride` bytes: the lowest page is its guard. Returns the
/// slot's start (its guard page) and its slab, to give back to [`free`].
pub(crate) fn allocate(stride: usize, usable: usize) -> Result<(usize, NonNull<Slab>), StackError> {
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    let found = slabs.with_room.iter().rposition(|slab| {
        // SAFETY: slabs in the list are alive (unmapped only after leaving
        // it), and we hold the lock.
        unsafe { slab.as_ref().stride == stride }
    });
    let slab_ptr = match found {
        Some(index) => slabs.with_room[index],
        None => {
            let slab = map(stride, usable)?;
            slabs.with_room.push(slab);
            slab
        }
    };
    // SAFETY: as above.
    let slab = unsafe { &mut *slab_ptr.as_ptr() };
    let start = match slab.dirty.pop().or_else(|| slab.clean.pop()) {
        Some(slot) => slab.slot_start(slot),
        None => {
            let start = slab.slot_start(slab.fresh);
            // SAFETY: the slot's lowest page lies in the slab, and nothing
            // was ever stored there.
            if let Err(err) = unsafe { mmap::install_guard(start, mmap::page_size()) } {
                return Err(StackError::new(Limit::Os(err), usable));
            }
            slab.fresh += 1;
            start
        }
    };
    slab.live += 1;
    if slab.is_full() {
        slabs.with_room.retain(|other| *other != slab_ptr);
    }
    Ok((start, slab_ptr))
}

/// Maps a slab for stacks of `stride` bytes.
fn map(stride: usize, usable: usize) -> Result<NonNull<Slab>, StackError> {
    let slots = (MAX_SLAB_BYTES / stride).clamp(1, MAX_SLOTS);
    let base = match mmap::map_slab(slots * stride, usable) {
        Ok(base) => (base, slots),
        // Under an address-space limit, one stack may still fit.
        Err(err) if slots > 1 && err.is_os_limit() => (mmap::map_slab(stride, usable)?, 1),
        Err(err) => return Err(err),
    };
    let slab = Box::new(Slab {
        base: base.0.as_ptr() as usize,
        stride,
        slots: base.1,
        fresh: 0,
        clean: Vec::new(),
        dirty: Vec::new(),
        live: 0,
    });
    Ok(NonNull::from(Box::leak(slab)))
}

/// Takes back the slot starting at `start` (its guard page) of `slab`.
///
/// # Safety
///
/// The slot must come from [`allocate`] with this `slab`, and nothing may use
/// its memory any more.
pub(crate) unsafe fn free(slab_ptr: NonNull<Slab>, start: usize) {
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    // SAFETY: the slab outlives its live slots, ours among them; we hold the
    // lock.
    let slab = unsafe { &mut *slab_ptr.as_ptr() };
    let was_full = slab.is_full();
    slab.live -= 1;
    let same_size_with_room = || {
        slabs.with_room.iter().filter(|other| **other != slab_ptr).any(|other| {
            // SAFETY: listed slabs are alive; we hold the lock.
            unsafe { other.as_ref().stride == slab.stride }
        })
    };
    if slab.live == 0 && (was_full || same_size_with_room()) {
        slabs.with_room.retain(|other| *other != slab_ptr);
        drop(slabs);
        // SAFETY: no slot of the slab is in use, and it has left the list, so
        // nothing refers to its memory or its bookkeeping any more.
        unsafe {
            let slab = Box::from_raw(slab_ptr.as_ptr());
            mmap::unmap(NonNull::new_unchecked(slab.base as *mut u8), slab.slots * slab.stride);
        }
        mmap::forget_slab();
        return;
    }
    slab.dirty.push((start - slab.base) / slab.stride);
    if slab.dirty.len() >= DIRTY_BATCH {
        // SAFETY: we hold the lock, and dirty slots are unused.
        unsafe { release_slots(slab) };
    }
    if was_full {
        slabs.with_room.push(slab_ptr);
    }
}

/// Gives the pages of `slab`'s dirty slots back to the kernel, one
/// `madvise` per run of adjacent slots, and marks them clean.
///
/// # Safety
///
/// The caller holds the `SLABS` lock (which guards `slab`).
unsafe fn release_slots(slab: &mut Slab) {
    let page = mmap::page_size();
    slab.dirty.sort_unstable();
    for run in slab.dirty.chunk_by(|a, b| a + 1 == *b) {
        let (first, last) = (run[0], run[run.len() - 1]);
        let start = slab.slot_start(first) + page;
        let end = slab.slot_start(last) + slab.stride;
        // SAFETY: the range covers whole dirty slots (from above the first
        // one's guard to the last one's top), none in use. Guard regions
        // inside it survive MADV_DONTNEED.
        unsafe { mmap::release(start, end - start) };
    }
    slab.clean.append(&mut slab.dirty);
}

/// Gives the pages of every dirty slot of every slab back to the kernel
/// (for [`trim`](super::trim)).
pub(crate) fn release_dirty() {
    let slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    for slab in &slabs.with_room {
        // SAFETY: listed slabs are alive, and we hold the lock.
        unsafe { release_slots(&mut *slab.as_ptr()) };
    }
}

impl std::fmt::Debug for Slab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("base", &(self.base as *const u8))
            .field("stride", &self.stride)
            .field("slots", &self.slots)
            .field("live", &self.live)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots come back dirty and are reused first; once a batch is dirty,
    /// their pages are given back and the guards stay.
    #[test]
    fn dirty_slots_are_reused_then_released_in_a_batch() {
        if !mmap::guard_regions() {
            return; // slabs are not used here
        }
        let page = mmap::page_size();
        // A stride no other test uses, so that the slab is ours alone.
        let stride = 7 * page;
        let slots: Vec<_> = (0..DIRTY_BATCH + 2).map(|_| allocate(stride, stride - page).unwrap()).collect();
        let top = |start: usize| (start + stride - 1) as *mut u8;
        for &(start, _) in &slots {
            // SAFETY: the top byte of a slot we hold.
            unsafe { top(start).write(7) };
        }
        let (first, slab) = slots[0];
        // SAFETY: the slot is ours and unused from here on.
        unsafe { free(slab, first) };
        let (again, _) = allocate(stride, stride - page).unwrap();
        assert_eq!(again, first, "the dirty slot is handed out first");
        // SAFETY: its top byte, still committed.
        assert_eq!(unsafe { top(again).read() }, 7, "a dirty slot keeps its pages");
        for &(start, slab) in &slots[..DIRTY_BATCH] {
            // SAFETY: as above.
            unsafe { free(slab, start) };
        }
        for &(start, _) in &slots[..DIRTY_BATCH] {
            // SAFETY: still mapped (the slab has live slots); released pages
            // read as zero.
            assert_eq!(unsafe { top(start).read() }, 0, "a full batch of dirty slots is released");
        }
        for &(start, slab) in &slots[DIRTY_BATCH..] {
            // SAFETY: as above.
            unsafe { free(slab, start) };
        }
    }
}
