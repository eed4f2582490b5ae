//! Mapping, guarding and releasing stack memory with mmap(2) and friends, and
//! turning the kernel's refusals into errors that name the limit hit.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
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

/// Memory mappings (as `vm.max_map_count` counts them) that stacks hold now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many mappings stacks may hold before the budget is worked out again;
/// 0 until first worked out.
static BUDGET: AtomicUsize = AtomicUsize::new(0);

/// Mappings greenery leaves to the rest of the program when `vm.max_map_count`
/// runs short: malloc, thread stacks, and std's backtrace printer all map
/// memory, and a panic whose message cannot be printed for want of a mapping
/// can deadlock in the allocation-error handler.
const RESERVE: u64 = 1024;

/// The mappings each stack takes when guarded with mprotect(2): the guard
/// page and the rest.
pub(crate) const MAPPINGS_PER_STACK: usize = 2;

/// Counts `mappings` more against the budget that keeps [`RESERVE`]
/// mappings under `vm.max_map_count` free for the rest of the program.
fn hold_mappings(mappings: usize, usable: usize) -> Result<(), StackError> {
    let held = HELD.fetch_add(mappings, Ordering::Relaxed) + mappings;
    if held > BUDGET.load(Ordering::Relaxed)
        && let Err(err) = rework_budget(held, mappings, usable)
    {
        HELD.fetch_sub(mappings, Ordering::Relaxed);
        return Err(err);
    }
    Ok(())
}

/// Maps `len` bytes of private, lazily committed memory as one mapping.
fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
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
        return Err(io::Error::last_os_error());
    }
    Ok(NonNull::new(base.cast()).expect("mmap returned null"))
}

/// Maps `len` bytes of private, lazily committed memory and makes the lowest
/// `guard` bytes inaccessible with mprotect(2). Returns the start of the
/// mapping.
///
/// Two mappings result (the guard and the rest), checked against the budget
/// first.
pub(crate) fn map_guarded(len: usize, guard: usize, usable: usize) -> Result<NonNull<u8>, StackError> {
    hold_mappings(MAPPINGS_PER_STACK, usable)?;
    let base = match map_anonymous(len) {
        Ok(base) => base,
        Err(err) => {
            HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
            return Err(diagnose(err, usable, false));
        }
    };
    // SAFETY: the first `guard` bytes belong to the mapping just made.
    if unsafe { libc::mprotect(base.as_ptr().cast(), guard, libc::PROT_NONE) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: unmapping what we mapped above; nothing refers to it.
        unsafe { libc::munmap(base.as_ptr().cast(), len) };
        HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
        return Err(diagnose(err, usable, false));
    }
    Ok(base)
}

/// Maps `len` bytes for a slab of stacks: one mapping, no guard yet (the
/// slab installs guard regions, which do not split it).
pub(crate) fn map_slab(len: usize, usable: usize) -> Result<NonNull<u8>, StackError> {
    hold_mappings(1, usable)?;
    map_anonymous(len).map_err(|err| {
        HELD.fetch_sub(1, Ordering::Relaxed);
        diagnose(err, usable, true)
    })
}

/// `madvise` advice (Linux 6.13+, the same on every architecture): make
/// the range a guard region, which faults on any access, without changing
/// the mapping (so it does not count against `vm.max_map_count`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Makes `[start, start + len)` a guard region.
///
/// # Safety
///
/// The range must be page-aligned, inside a mapping of ours, and hold nothing
/// anyone will read or write again.
pub(crate) unsafe fn install_guard(start: usize, len: usize) -> io::Result<()> {
    // SAFETY: guaranteed by the caller; a guard region only makes the range
    // fault on access.
    if unsafe { libc::madvise(start as *mut libc::c_void, len, MADV_GUARD_INSTALL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether stacks can be guarded with guard regions (and so packed into
/// slabs), as opposed to an mprotect(2)ed page each.
///
/// They can when the kernel has `MADV_GUARD_INSTALL` (Linux 6.13 and later)
/// and it really guards (emulators such as qemu-user accept the advice and
/// ignore it), unless `GREENERY_STACK_GUARD=mprotect` asks for guard pages.
pub(crate) fn guard_regions() -> bool {
    static MODE: AtomicUsize = AtomicUsize::new(0);
    const REGIONS: usize = 1;
    const PAGES: usize = 2;
    match MODE.load(Ordering::Relaxed) {
        REGIONS => true,
        PAGES => false,
        _ => {
            let regions = match std::env::var("GREENERY_STACK_GUARD").as_deref() {
                Ok("mprotect") => false,
                Ok("region") | Err(_) => probe_guard_regions(),
                Ok(other) => {
                    eprintln!(
                        "greenery: ignoring GREENERY_STACK_GUARD={other:?}: expected `region` or `mprotect`"
                    );
                    probe_guard_regions()
                }
            };
            MODE.store(if regions { REGIONS } else { PAGES }, Ordering::Relaxed);
            regions
        }
    }
}

/// Installs a guard region on a scratch page and checks that the kernel
/// refuses to read it: write(2) from a guarded page must fail with EFAULT.
#[cold]
fn probe_guard_regions() -> bool {
    let page = page_size();
    let Ok(base) = map_anonymous(page) else { return false };
    let start = base.as_ptr() as usize;
    // SAFETY: the page is ours and holds nothing.
    let installed = unsafe { install_guard(start, page) }.is_ok();
    let mut guards = false;
    if installed {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0 {
            // SAFETY: the kernel reads one byte from our page, or fails with
            // EFAULT; the descriptors are ours and closed right after.
            unsafe {
                let written = libc::write(fds[1], base.as_ptr().cast(), 1);
                guards = written < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT);
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
        }
    }
    // SAFETY: the scratch page is ours and nothing refers to it.
    unsafe { libc::munmap(base.as_ptr().cast(), page) };
    guards
}

/// Counts the process's mappings and works out how many stacks may hold,
/// given that they would hold `held` with the one being made.
#[cold]
fn rework_budget(held: usize, adding: usize, usable: usize) -> Result<(), StackError> {
    // One thread at a time: the count is only meaningful against a steady
    // `HELD`.
    static REWORK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = REWORK.lock().unwrap_or_else(|poison| poison.into_inner());
    let (Some(max), Some(count)) = (read_number("/proc/sys/vm/max_map_count"), count_mappings()) else {
        BUDGET.store(usize::MAX, Ordering::Relaxed); // no /proc: let the kernel decide
        return Ok(());
    };
    // `count` includes what stacks held before these.
    let others = count.saturating_sub((held - adding) as u64);
    let allowed = max.saturating_sub(RESERVE).saturating_sub(others) as usize;
    BUDGET.store(allowed, Ordering::Relaxed);
    if held > allowed {
        let slabs = adding == 1;
        return Err(StackError::new(Limit::MapCount { count, max, reserve: RESERVE, slabs }, usable));
    }
    Ok(())
}

/// Records that a mapping from [`map_guarded`] is gone.
pub(crate) fn forget_mappings() {
    HELD.fetch_sub(MAPPINGS_PER_STACK, Ordering::Relaxed);
}

/// Records that a mapping from [`map_slab`] is gone.
pub(crate) fn forget_slab() {
    HELD.fetch_sub(1, Ordering::Relaxed);
}

/// How many more mappings the process may make before `vm.max_map_count`,
/// if that can be read.
pub(crate) fn mappings_left() -> Option<u64> {
    Some(read_number("/proc/sys/vm/max_map_count")?.saturating_sub(count_mappings()?))
}

fn count_mappings() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// Unmaps a mapping made by [`map_guarded`] or [`map_slab`].
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
/// The range must be page-aligned, inside a mapping of ours, and hold nothing
/// anyone needs.
pub(crate) unsafe fn release(start: usize, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: guaranteed by the caller. MADV_DONTNEED cannot fail on a
    // private anonymous mapping; if it did, the pages would just stay.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// Works out which limit made a mapping fail.
fn diagnose(err: io::Error, usable: usize, slabs: bool) -> StackError {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return StackError::new(Limit::Os(err), usable);
    }
    let max_map_count = read_number("/proc/sys/vm/max_map_count");
    if let (Some(max), Some(count)) = (max_map_count, count_mappings()) {
        // A failed split needs two new mappings; allow a little slack for
        // mappings made by other threads meanwhile.
        if count + 8 >= max {
            return StackError::new(Limit::MapCount { count, max, reserve: 0, slabs }, usable);
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
