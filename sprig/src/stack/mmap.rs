//! Mapping, guarding and releasing stack memory with mmap(2) and friends, and
//! turning the kernel's refusals into errors that name the limit hit.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::error::{Limit, StackError};

/// The system page size, read once.
#[inline]
pub(crate) fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => read_page_size(&PAGE_SIZE),
        size => size,
    }
}

#[cold]
fn read_page_size(cache: &AtomicUsize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    cache.store(size, Ordering::Relaxed);
    size
}

/// Memory mappings (as `vm.max_map_count` counts them) that stacks hold now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many mappings stacks may hold before the budget is worked out again;
/// 0 until first worked out.
static BUDGET: AtomicUsize = AtomicUsize::new(0);

/// Mappings sprig leaves to the rest of the program when `vm.max_map_count`
/// runs short: malloc, thread stacks, and std's backtrace printer all map
/// memory, and a panic whose message cannot be printed for want of a mapping
/// can deadlock in the allocation-error handler.
const RESERVE: u64 = 1024;

/// The mappings each guarded stack takes: the guard page and the rest.
pub(crate) const MAPPINGS_PER_STACK: usize = 2;

/// Maps `len` bytes of private, lazily committed memory and makes the lowest
/// `guard` bytes inaccessible. Returns the start of the mapping.
///
/// Two mappings result (the guard and the rest). Before asking the kernel,
/// this checks them against a budget that keeps [`RESERVE`] mappings under
/// `vm.max_map_count` free for the rest of the program.
pub(crate) fn map_guarded(len: usize, guard: usize, usable: usize) -> Result<NonNull<u8>, StackError> {
    let held = HELD.fetch_add(MAPPINGS_PER_STACK, Ordering::Relaxed) + MAPPINGS_PER_STACK;
    if held > BUDGET.load(Ordering::Relaxed) {
        if let Err(err) = rework_budget(held, usable) {
            HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
            return Err(err);
        }
    }
    // SAFETY: an anonymous mapping at an address of the kernel's choosing
    // touches no existing memory.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
        return Err(diagnose(io::Error::last_os_error(), usable));
    }
    // SAFETY: the first `guard` bytes belong to the mapping just made.
    if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: unmapping what we mapped above; nothing refers to it.
        unsafe { libc::munmap(base, len) };
        HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
        return Err(diagnose(err, usable));
    }
    Ok(NonNull::new(base.cast()).expect("mmap returned null"))
}

/// Counts the process's mappings and works out how many stacks may hold,
/// given that they would hold `held` with the one being made.
#[cold]
fn rework_budget(held: usize, usable: usize) -> Result<(), StackError> {
    // One thread at a time: the count is only meaningful against a steady
    // `HELD`.
    static REWORK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = REWORK.lock().unwrap_or_else(|poison| poison.into_inner());
    let (Some(max), Some(count)) = (read_number("/proc/sys/vm/max_map_count"), count_mappings()) else {
        BUDGET.store(usize::MAX, Ordering::Relaxed); // no /proc: let the kernel decide
        return Ok(());
    };
    // `count` includes what stacks held before this one.
    let others = count.saturating_sub((held - MAPPINGS_PER_STACK) as u64);
    let allowed = max.saturating_sub(RESERVE).saturating_sub(others) as usize;
    BUDGET.store(allowed, Ordering::Relaxed);
    if held > allowed {
        return Err(StackError::new(Limit::MapCount { count, max, reserve: RESERVE }, usable));
    }
    Ok(())
}

/// Records that a mapping from [`map_guarded`] is gone.
pub(crate) fn forget_mappings() {
    HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
}

fn count_mappings() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// Unmaps a mapping made by [`map_guarded`].
///
/// # Safety
///
/// `base` and `len` must describe a whole mapping from [`map_guarded`] that
/// nothing uses any more.
pub(crate) unsafe fn unmap(base: NonNull<u8>, len: usize) {
    // SAFETY: guaranteed by the caller.
    let rc = unsafe { libc::munmap(base.as_ptr().cast(), len) };
    debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
}

/// Gives the pages of `[start, start + len)` back to the kernel; they read as
/// zeroes when next touched.
///
/// # Safety
///
/// The range must be page-aligned, inside a mapping from [`map_guarded`], and
/// hold nothing anyone needs.
pub(crate) unsafe fn release(start: usize, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: guaranteed by the caller. MADV_DONTNEED cannot fail on a
    // private anonymous mapping; if it did, the pages would just stay.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// Works out which limit made a mapping fail.
fn diagnose(err: io::Error, usable: usize) -> StackError {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return StackError::new(Limit::Os(err), usable);
    }
    let max_map_count = read_number("/proc/sys/vm/max_map_count");
    if let (Some(max), Some(count)) = (max_map_count, count_mappings()) {
        // A failed split needs two new mappings; allow a little slack for
        // mappings made by other threads meanwhile.
        if count + 8 >= max {
            return StackError::new(Limit::MapCount { count, max, reserve: 0 }, usable);
        }
    }
    let mut rlimit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rlimit) } == 0 && rlimit.rlim_cur != libc::RLIM_INFINITY
    {
        return StackError::new(Limit::AddressSpace { bytes: rlimit.rlim_cur }, usable);
    }
    if read_number("/proc/sys/vm/overcommit_memory") == Some(2) {
        return StackError::new(Limit::Overcommit, usable);
    }
    StackError::new(Limit::Memory(err), usable)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
