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
//! the slow path behind the per-thread [`pool`](super::pool).
//!
//! Memory is given back the way a malloc gives back freed pages, with a
//! decay. A slot that comes back keeps its pages (it is *dirty*) and is the
//! first to be handed out again, so the next burst of green threads reuses
//! warm memory instead of faulting in and zeroing fresh pages. A slab whose
//! oldest dirty slot came back more than [`DECAY`] ago gives its dirty
//! slots' pages back: adjacent slots in one `madvise` (guard regions survive
//! `MADV_DONTNEED`), so the cost, mostly a TLB flush, is paid per run of
//! slots rather than per stack; if none of its slots is in use, it is
//! unmapped instead. Returning stacks check for such slabs at most every
//! [`SWEEP_EVERY`]; [`release_dirty`] ([`trim`](super::trim)) gives back
//! everything at once.
//!
//! Where guard regions are missing (older kernels, emulators that ignore the
//! advice: see [`mmap::guard_regions`]), stacks are mapped one by one with an
//! mprotect guard instead and this module is not used.

use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Limit, StackError, mmap};

/// The most slots in one slab.
pub(crate) const MAX_SLOTS: usize = 64;

/// The most address space one slab takes, unless a single stack needs more.
const MAX_SLAB_BYTES: usize = 32 << 20;

/// How long the pages of finished stacks are kept for reuse before they go
/// back to the kernel (jemalloc's dirty-page decay is 10 s too).
pub(crate) const DECAY: Duration = Duration::from_secs(10);

/// How often, at most, a returning stack makes the slabs be checked for
/// memory to give back.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

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
    /// When the oldest dirty slot came back.
    dirty_since: Option<Instant>,
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
    /// When a returning stack next checks for memory to give back.
    next_sweep: Option<Instant>,
}

// SAFETY: the slabs are only touched under the `SLABS` mutex (or through a
// stack's pointer to its own slab, also under the mutex).
unsafe impl Send for Slabs {}

static SLABS: Mutex<Slabs> = Mutex::new(Slabs { with_room: Vec::new(), next_sweep: None });

/// A guarded slot of `stride` bytes: the lowest page is its guard. Returns the
/// slot's start (its guard page) and its slab, to give back to [`free`].
pub(crate) fn allocate(stride: usize, usable: usize) -> Result<(usize, NonNull<Slab>), StackError> {
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    let found = slabs.with_room.iter().rposition(|slab| {
        // SAFETY: slabs in the list are alive (unmapped only after leaving
        // it), and we hold the lock.
        unsafe { slab.as_ref().stride == stride }
    });
    let (index, slab_ptr) = match found {
        Some(index) => (index, slabs.with_room[index]),
        None => {
            let slab = map(stride, usable)?;
            slabs.with_room.push(slab);
            (slabs.with_room.len() - 1, slab)
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
        slabs.with_room.swap_remove(index);
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
        dirty_since: None,
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
    let now = Instant::now();
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    // SAFETY: the slab outlives its live slots, ours among them; we hold the
    // lock.
    let slab = unsafe { &mut *slab_ptr.as_ptr() };
    let was_full = slab.is_full();
    slab.live -= 1;
    slab.dirty.push((start - slab.base) / slab.stride);
    slab.dirty_since.get_or_insert(now);
    if was_full {
        slabs.with_room.push(slab_ptr);
    }
    if slabs.next_sweep.is_some_and(|at| now < at) {
        return;
    }
    slabs.next_sweep = Some(now + SWEEP_EVERY);
    let empty = sweep(&mut slabs, |since| now.saturating_duration_since(since) >= DECAY);
    drop(slabs);
    // SAFETY: `sweep` took these empty slabs off the list.
    unsafe { unmap_all(empty) };
}

/// Gives back the pages of the dirty slots of every slab whose oldest dirty
/// slot is `stale`, and takes the empty ones among them off the list, to be
/// unmapped (outside the lock) by [`unmap_all`].
fn sweep(slabs: &mut Slabs, stale: impl Fn(Instant) -> bool) -> Vec<NonNull<Slab>> {
    let mut empty = Vec::new();
    slabs.with_room.retain(|&slab_ptr| {
        // SAFETY: listed slabs are alive, and the caller holds the lock.
        let slab = unsafe { &mut *slab_ptr.as_ptr() };
        if !slab.dirty_since.is_some_and(&stale) {
            return true;
        }
        if slab.live == 0 {
            empty.push(slab_ptr);
            return false;
        }
        // SAFETY: we hold the lock.
        unsafe { release_slots(slab) };
        true
    });
    empty
}

/// Unmaps slabs with no slot in use that have left the list.
///
/// # Safety
///
/// Each slab must come from [`sweep`]: alive, with no slot in use, and off
/// the list, so that nothing else can reach it.
unsafe fn unmap_all(empty: Vec<NonNull<Slab>>) {
    for slab_ptr in empty {
        // SAFETY: guaranteed by the caller: nothing refers to the slab's
        // memory or its bookkeeping any more.
        unsafe {
            let slab = Box::from_raw(slab_ptr.as_ptr());
            mmap::unmap(NonNull::new_unchecked(slab.base as *mut u8), slab.slots * slab.stride);
        }
        mmap::forget_slab();
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
    slab.dirty_since = None;
}

/// Gives back now what finished stacks kept: unmaps every slab with no slot
/// in use and releases the pages of every other dirty slot (for
/// [`trim`](super::trim)).
pub(crate) fn release_dirty() {
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    let empty = sweep(&mut slabs, |_| true);
    drop(slabs);
    // SAFETY: `sweep` took these empty slabs off the list.
    unsafe { unmap_all(empty) };
}

/// Gives back the pages of the finished stacks of every slab whose oldest
/// finished stack came back `idle` ago or more, and unmaps those with no
/// slot in use (for a hub gone idle: see
/// [`release_after`](super::release_after)).
pub(crate) fn release_stale(idle: Duration) {
    let now = Instant::now();
    let mut slabs = SLABS.lock().unwrap_or_else(|poison| poison.into_inner());
    let empty = sweep(&mut slabs, |since| now.saturating_duration_since(since) >= idle);
    drop(slabs);
    // SAFETY: `sweep` took these empty slabs off the list.
    unsafe { unmap_all(empty) };
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

    /// Slots come back dirty and are reused first; a release gives their
    /// pages back and keeps their guards.
    #[test]
    fn dirty_slots_are_reused_first_and_released_on_demand() {
        if !mmap::guard_regions() {
            return; // slabs are not used here
        }
        let page = mmap::page_size();
        // A stride no other test uses, so that the slab is ours alone.
        let stride = 7 * page;
        let slots: Vec<_> = (0..4).map(|_| allocate(stride, stride - page).unwrap()).collect();
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
        for &(start, slab) in &slots[..3] {
            // SAFETY: as above.
            unsafe { free(slab, start) };
        }
        release_dirty();
        for &(start, _) in &slots[..3] {
            // SAFETY: still mapped (the slab has a live slot); released pages
            // read as zero.
            assert_eq!(unsafe { top(start).read() }, 0, "released");
        }
        // SAFETY: as above.
        assert_eq!(unsafe { top(slots[3].0).read() }, 7, "a live slot is left alone");
        // SAFETY: the last slot; the slab is then empty.
        unsafe { free(slots[3].1, slots[3].0) };
        release_dirty();
    }
}
