//! Telling AddressSanitizer about stack switches.
//!
//! AddressSanitizer keeps a shadow of every stack frame and assumes a thread
//! runs on one stack. A context switch that it is not told about makes it
//! lose track: it reports stack-buffer errors that are not there and misses
//! ones that are. Every switch is therefore announced, in the order its
//! fiber API asks for (`sanitizer/common_interface_defs.h`):
//!
//! - just before switching, `__sanitizer_start_switch_fiber` with the
//!   bounds of the stack the switch lands on, and a place to save the
//!   leaving context's fake stack (none when the leaving context never
//!   comes back: a finished coroutine or greenlet);
//! - first thing after landing, `__sanitizer_finish_switch_fiber` with that
//!   place, which also says which stack the switch came from.
//!
//! The stack a switch lands on is found by the stack pointer it resumes: a
//! coroutine stack of the [registry](crate::stack), or else the thread's
//! own stack. A stack handed to a new coroutine is cleared of what the
//! sanitizer remembers of earlier frames ([`forget_frames`]).
//!
//! A context's last switch destroys its fake stack (where the sanitizer
//! keeps frames to catch uses after return), so the functions that make it
//! (`raw::entry`, `greenlet::finish`) are not instrumented: what they hand
//! to the next context, such as a coroutine's result, stays on the real
//! stack until it has been read.
//!
//! Builds announce switches with `--cfg greenery_asan` (together with
//! `-Zsanitizer=address` on a nightly toolchain, as `.ci/run` does);
//! everywhere else every function here is an empty inline function.

/// A switch announced with [`start`]; [`finish`](Switch::finish) it once
/// the context that made it runs again.
#[must_use]
pub(crate) struct Switch {
    #[cfg(greenery_asan)]
    fake_stack: *mut std::ffi::c_void,
}

/// Where a context's stack lies: its lowest address and size. Zero-sized
/// without `greenery_asan`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bounds {
    #[cfg(greenery_asan)]
    bottom: usize,
    #[cfg(greenery_asan)]
    size: usize,
}

#[cfg(greenery_asan)]
mod ffi {
    use std::ffi::c_void;

    unsafe extern "C" {
        pub(super) fn __sanitizer_start_switch_fiber(
            fake_stack_save: *mut *mut c_void,
            bottom: *const c_void,
            size: usize,
        );
        pub(super) fn __sanitizer_finish_switch_fiber(
            fake_stack_save: *mut c_void,
            bottom_old: *mut *const c_void,
            size_old: *mut usize,
        );
        pub(super) fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    }
}

/// The bounds of the stack that holds `sp`: `own()`, the usable range of
/// the context's own stack, if it holds it (the usual case; a greenlet
/// suspended inside a generator it resumed is on the generator's stack),
/// else the calling thread's own stack or another coroutine stack.
#[cfg(greenery_asan)]
pub(crate) fn bounds_at(sp: usize, own: impl FnOnce() -> Option<(usize, usize)>) -> Bounds {
    if let Some((bottom, top)) = own()
        && bottom <= sp
        && sp <= top
    {
        return Bounds { bottom, size: top - bottom };
    }
    let thread = thread_stack();
    if thread.bottom <= sp && sp <= thread.bottom + thread.size {
        return thread;
    }
    match crate::stack::usable_range_at(sp) {
        Some((bottom, top)) => Bounds { bottom, size: top - bottom },
        None => thread,
    }
}

#[cfg(not(greenery_asan))]
#[inline(always)]
pub(crate) fn bounds_at(_sp: usize, _own: impl FnOnce() -> Option<(usize, usize)>) -> Bounds {
    Bounds {}
}

/// The calling thread's own stack.
#[cfg(greenery_asan)]
fn thread_stack() -> Bounds {
    thread_local! {
        static BOUNDS: std::cell::Cell<Option<Bounds>> = const { std::cell::Cell::new(None) };
    }
    BOUNDS.with(|cell| {
        *cell.get().get_or_insert_with(|| {
            // SAFETY: the attribute object is initialised by
            // pthread_getattr_np and destroyed after use; the outputs are
            // plain data.
            unsafe {
                let mut attr: libc::pthread_attr_t = std::mem::zeroed();
                assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
                let mut addr: *mut libc::c_void = std::ptr::null_mut();
                let mut size = 0;
                assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
                libc::pthread_attr_destroy(&mut attr);
                Bounds { bottom: addr as usize, size }
            }
        })
    })
}

/// Announces a switch to a context whose stack has `bounds`, from one that
/// will be resumed.
#[inline(always)]
pub(crate) fn start(bounds: Bounds) -> Switch {
    #[cfg(greenery_asan)]
    {
        let mut switch = Switch { fake_stack: std::ptr::null_mut() };
        // SAFETY: ASan's fiber API; the save slot lives until `finish`.
        unsafe {
            ffi::__sanitizer_start_switch_fiber(
                &mut switch.fake_stack,
                bounds.bottom as *const _,
                bounds.size,
            )
        };
        switch
    }
    #[cfg(not(greenery_asan))]
    {
        let _ = bounds;
        Switch {}
    }
}

/// Announces the last switch of a context that never runs again, to one
/// whose stack has `bounds`.
#[inline(always)]
pub(crate) fn start_final(bounds: Bounds) {
    #[cfg(greenery_asan)]
    // SAFETY: ASan's fiber API; a null save slot says the leaving context is
    // gone for good.
    unsafe {
        ffi::__sanitizer_start_switch_fiber(std::ptr::null_mut(), bounds.bottom as *const _, bounds.size)
    };
    #[cfg(not(greenery_asan))]
    let _ = bounds;
}

/// Announces the arrival of a context's first switch; returns the bounds of
/// the stack it came from.
#[inline(always)]
pub(crate) fn first_arrival() -> Bounds {
    Switch {
        #[cfg(greenery_asan)]
        fake_stack: std::ptr::null_mut(),
    }
    .finish()
}

impl Switch {
    /// Announces that the context that made this switch runs again; returns
    /// the bounds of the stack it came back from.
    #[inline(always)]
    pub(crate) fn finish(self) -> Bounds {
        #[cfg(greenery_asan)]
        {
            let mut bottom: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0;
            // SAFETY: ASan's fiber API, with the slot `start` filled.
            unsafe { ffi::__sanitizer_finish_switch_fiber(self.fake_stack, &mut bottom, &mut size) };
            Bounds { bottom: bottom as usize, size }
        }
        #[cfg(not(greenery_asan))]
        Bounds {}
    }
}

/// Clears what the sanitizer remembers of the frames that ran on
/// `[bottom, top)` before: a stack handed to a new coroutine may hold the
/// poisoned redzones of frames that never returned (a finished coroutine's
/// last switch leaves its frames behind).
#[inline(always)]
pub(crate) fn forget_frames(bottom: usize, top: usize) {
    #[cfg(greenery_asan)]
    // SAFETY: the range is a stack of ours that no coroutine runs on.
    unsafe {
        ffi::__asan_unpoison_memory_region(bottom as *const _, top - bottom)
    };
    #[cfg(not(greenery_asan))]
    let _ = (bottom, top);
}
