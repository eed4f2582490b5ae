//! What belongs to this process and not to a forked child: a page that the
//! kernel wipes in the child (`MADV_WIPEONFORK`).
//!
//! A child made by `fork` shares nothing with its parent from then on, but
//! inherits a copy of its memory, including greenery's bookkeeping: a stack
//! that a parent's thread was restoring at the moment of the fork reads
//! "being restored" in the child, where that thread does not exist, and
//! the parent's open `/proc/self/mem` would write into the parent. Values
//! kept on this page read as zero in the child, at once, whatever runs
//! first there (another library's fork handler, a signal handler), so:
//!
//! - [`token`] names this process: a stash state marked with another
//!   process's token was left by a thread that does not exist here, and a
//!   thread of this process takes the work over (see
//!   [`stash`](super::stash));
//! - the descriptor of `/proc/self/mem` ([`mem_fd`], [`set_mem_fd`]) is
//!   this process's own; a child opens its own;
//! - the bookkeeping of the opening of that descriptor against forks
//!   ([`Local::forks`], [`Local::opening`], [`Local::fork_open_error`], see
//!   [`proc_mem`](super::proc_mem)) starts afresh: no fork is under way in
//!   a child, and no thread of it is opening anything.
//!
//! Process ids are no substitute: a child forked into a new pid namespace
//! can have its parent's pid number.
//!
//! Async-signal-safe after [`init`]: atomics, and getrandom(2) (made
//! directly) for a new token.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// The page's contents.
#[repr(C)]
pub(super) struct Local {
    /// This process's token (56 bits, non-zero); 0 until made.
    token: AtomicU64,
    /// `/proc/self/mem`'s descriptor plus one; 0 when none is open.
    mem_fd: AtomicI32,
    /// The forks under way: between greenery's prepare handler and its
    /// parent handler.
    pub(super) forks: AtomicU32,
    /// The threads inside [`proc_mem`](super::proc_mem)'s opening of
    /// `/proc/self/mem`.
    pub(super) opening: AtomicU32,
    /// The errno with which a fork's prepare handler last failed to open
    /// `/proc/self/mem`; 0 if none did.
    pub(super) fork_open_error: AtomicI32,
}

/// The page, once mapped; null before [`init`] succeeded.
static PAGE: AtomicPtr<Local> = AtomicPtr::new(ptr::null_mut());

/// Maps the page (once per process; a child inherits the mapping, wiped).
/// Not async-signal-safe; called before anything is stashed.
///
/// # Errors
///
/// What `mmap` or `madvise(MADV_WIPEONFORK)` (Linux 4.14+) said.
pub(super) fn init() -> io::Result<()> {
    if !PAGE.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let len = super::mmap::page_size();
    // SAFETY: a fresh private anonymous page of our own.
    let page = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the page just mapped; the advice only changes what a child
    // inherits.
    if unsafe { libc::madvise(page, len, libc::MADV_WIPEONFORK) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: the page is ours and unused.
        unsafe { libc::munmap(page, len) };
        return Err(err);
    }
    if PAGE.compare_exchange(ptr::null_mut(), page.cast(), Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Another thread mapped one first: ours goes.
        // SAFETY: as above.
        unsafe { libc::munmap(page, len) };
    }
    Ok(())
}

/// Whether [`init`] has mapped the page in this process (or the one it was
/// forked from). Until it has, nothing was stashed: the fault handler asks
/// this before anything that uses the page. Async-signal-safe.
pub(super) fn mapped() -> bool {
    !PAGE.load(Ordering::Acquire).is_null()
}

/// The page, mapped by [`init`] before (panics otherwise: not to be called
/// from the fault handler unless [`mapped`] said yes).
pub(super) fn local() -> &'static Local {
    let page = PAGE.load(Ordering::Acquire);
    assert!(!page.is_null(), "greenery: the process-local page is used before it is mapped");
    // SAFETY: the page is mapped for the life of the process, zeroed or
    // written only through these atomics, and `Local` is valid when zero.
    unsafe { &*page }
}

/// This process's token: non-zero, fits in 56 bits, and differs from its
/// parent's and its children's.
pub(super) fn token() -> u64 {
    let local = local();
    match local.token.load(Ordering::Acquire) {
        0 => {
            let new = new_token();
            match local.token.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => new,
                Err(made) => made,
            }
        }
        token => token,
    }
}

/// A random 56-bit non-zero number.
fn new_token() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most the 8 bytes we pass.
    let got =
        unsafe { libc::syscall(libc::SYS_getrandom, bytes.as_mut_ptr(), bytes.len(), libc::GRND_NONBLOCK) };
    let mut token = u64::from_ne_bytes(bytes);
    if got != 8 {
        // No entropy yet: the clock and the ids still tell a child from
        // its parent.
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the struct; the ids have no
        // preconditions.
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            token ^= (now.tv_nsec as u64) << 20 ^ now.tv_sec as u64;
            token ^= (libc::syscall(libc::SYS_gettid) as u64) << 32;
        }
    }
    (token & ((1 << 56) - 1)).max(1)
}

/// This process's open `/proc/self/mem`, if it has one.
pub(super) fn mem_fd() -> Option<libc::c_int> {
    match local().mem_fd.load(Ordering::Acquire) {
        0 => None,
        plus_one => Some(plus_one - 1),
    }
}

/// Records `fd` as this process's `/proc/self/mem`, unless another thread
/// did first: returns the one recorded.
pub(super) fn set_mem_fd(fd: libc::c_int) -> libc::c_int {
    match local().mem_fd.compare_exchange(0, fd + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fd,
        Err(plus_one) => plus_one - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_has_a_token_of_its_own_and_no_descriptor() {
        // Stacks are stashed only where guard regions work; emulators such as
        // qemu-user (which has threads of its own and ignores the advice
        // this relies on) run without stashing, and this does not apply.
        if !crate::stack::mmap::guard_regions() {
            return;
        }
        init().unwrap();
        let parent = token();
        assert_eq!(token(), parent, "a process keeps its token");
        super::super::proc_mem::ready().unwrap();
        assert!(mem_fd().is_some());
        // SAFETY: the child only reads atomics, calls getrandom and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let fresh = mem_fd().is_none() && token() != parent && token() != 0;
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(if fresh { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child saw its parent's values"
        );
        assert_eq!(token(), parent);
    }
}
