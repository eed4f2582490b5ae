//! Mapping, guarding and releasing stack memory with mmap(2) and friends, and
//! turning the kernel's refusals into errors that name the limit hit.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Maps `len` bytes of private, lazily committed memory and makes the lowest
/// `guard` bytes inaccessible. Returns the start of the mapping.
///
/// Two mappings result (the guard and the rest), which is what
/// `vm.max_map_count` counts.
pub(crate) fn map_guarded(
    len: usize,
    guard: usize,
    usable: usize,
) -> Result<NonNull<u8>, StackError> {
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
        return Err(diagnose(io::Error::last_os_error(), usable));
    }
    // SAFETY: the first `guard` bytes belong to the mapping just made.
    if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: unmapping what we mapped above; nothing refers to it.
        unsafe { libc::munmap(base, len) };
        return Err(diagnose(err, usable));
    }
    Ok(NonNull::new(base.cast()).expect("mmap returned null"))
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
    let map_count = std::fs::read("/proc/self/maps")
        .ok()
        .map(|maps| maps.iter().filter(|&&b| b == b'\n').count() as u64);
    if let (Some(max), Some(count)) = (max_map_count, map_count) {
        // A failed split needs two new mappings; allow a little slack for
        // mappings made by other threads meanwhile.
        if count + 8 >= max {
            return StackError::new(Limit::MapCount { count, max }, usable);
        }
    }
    let mut rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rlimit) } == 0
        && rlimit.rlim_cur != libc::RLIM_INFINITY
    {
        return StackError::new(
            Limit::AddressSpace {
                bytes: rlimit.rlim_cur,
            },
            usable,
        );
    }
    if read_number("/proc/sys/vm/overcommit_memory") == Some(2) {
        return StackError::new(Limit::Overcommit, usable);
    }
    StackError::new(Limit::Memory(err), usable)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
