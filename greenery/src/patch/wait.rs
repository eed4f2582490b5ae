//! How a hook waits: on a green thread, by parking on the hub; elsewhere,
//! by blocking the OS thread as the program asked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{fds, real};
use crate::hub::deferred;
use crate::hub::io::{Direction, Registered, Registration};

/// Why a wait ended without readiness.
pub(super) enum Failed {
    /// The deadline passed.
    TimedOut,
    /// A kill or a timeout reached the green thread and was put off (see
    /// `hub::deferred`): `ECANCELED` or `ETIMEDOUT`.
    PutOff(libc::c_int),
    /// The fd was closed meanwhile.
    Closed,
    /// Any other error, as an errno.
    Error(libc::c_int),
}

impl Failed {
    /// The errno a C call reports for it.
    pub(super) fn errno(&self) -> libc::c_int {
        match self {
            Failed::TimedOut => libc::EAGAIN,
            Failed::PutOff(errno) | Failed::Error(errno) => *errno,
            Failed::Closed => libc::EBADF,
        }
    }
}

thread_local! {
    /// This thread's hub's registrations of tracked fds, kept from one wait
    /// to the next (two system calls saved per wait), with the fd's
    /// generation when it was registered.
    static REGISTERED: RefCell<HashMap<libc::c_int, (u32, Rc<Registration>)>> = RefCell::new(HashMap::new());
}

/// The errno a put-off unwinding makes patched calls report, if the current
/// green thread has one: `ECANCELED` for a kill, `ETIMEDOUT` for a timeout.
pub(super) fn put_off() -> Option<libc::c_int> {
    deferred::pending().map(|kill| if kill { libc::ECANCELED } else { libc::ETIMEDOUT })
}

/// Parks the current green thread until `fd` may be ready for `direction`,
/// or `deadline`. The fd is tracked and its kernel flag non-blocking.
pub(super) fn park_on(
    fd: libc::c_int,
    direction: Direction,
    deadline: Option<Instant>,
) -> Result<(), Failed> {
    if let Some(errno) = put_off() {
        return Err(Failed::PutOff(errno));
    }
    let generation = fds::get(fd).map_or(0, fds::Entry::generation);
    let registration = registration(fd, generation)?;
    let waited = catch(|| registration.wait(direction, deadline))?;
    if fds::get(fd).map_or(0, fds::Entry::generation) != generation {
        return Err(Failed::Closed);
    }
    match waited {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(Failed::TimedOut),
        Err(err) if err.kind() == io::ErrorKind::ResourceBusy => {
            // Another green thread waits on this fd for the same direction
            // (allowed in C): look again shortly.
            catch(|| crate::sleep(Duration::from_millis(1)))?;
            Ok(())
        }
        Err(err) => Err(Failed::Error(err.raw_os_error().unwrap_or(libc::EIO))),
    }
}

/// Parks the current green thread until one of `waits` may be ready, or
/// `deadline`.
pub(super) fn park_on_any(
    waits: &[(libc::c_int, Direction)],
    deadline: Option<Instant>,
) -> Result<(), Failed> {
    if let Some(errno) = put_off() {
        return Err(Failed::PutOff(errno));
    }
    let mut registrations = Vec::with_capacity(waits.len());
    for &(fd, _) in waits {
        let generation = fds::get(fd).map_or(0, fds::Entry::generation);
        registrations.push(registration(fd, generation)?);
    }
    let pairs: Vec<(&Registered, Direction)> = registrations
        .iter()
        .zip(waits)
        .map(|(registration, &(_, direction))| (&***registration, direction))
        .collect();
    match catch(|| Registered::wait_many(&pairs, deadline))? {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(Failed::TimedOut),
        Err(err) if err.kind() == io::ErrorKind::ResourceBusy => {
            catch(|| crate::sleep(Duration::from_millis(1)))?;
            Ok(())
        }
        Err(err) => Err(Failed::Error(err.raw_os_error().unwrap_or(libc::EIO))),
    }
}

/// Parks the current green thread for `duration`.
pub(super) fn sleep(duration: Duration) -> Result<(), Failed> {
    if let Some(errno) = put_off() {
        return Err(Failed::PutOff(errno));
    }
    catch(|| crate::sleep(duration))
}

/// Runs `f` (a park), putting off a kill's or a timeout's unwinding: it may
/// not leave the C function the hook is.
pub(super) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Failed> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) if crate::is_forced_unwind(&*payload) => {
            let kill = payload.is::<crate::GreenletExit>();
            deferred::defer(payload);
            Err(Failed::PutOff(if kill { libc::ECANCELED } else { libc::ETIMEDOUT }))
        }
        Err(payload) => {
            // A panic inside greenery's park is a bug of greenery's; it may
            // not unwind out of a C function either.
            let message = crate::unwind::panic_message(&*payload).into_owned();
            eprintln!("greenery: a patched call panicked while it waited: {message}");
            std::process::abort()
        }
    }
}

/// This hub's registration of `fd` in `generation`, made if need be.
fn registration(fd: libc::c_int, generation: u32) -> Result<Rc<Registration>, Failed> {
    let known = REGISTERED.with(|registered| match registered.borrow().get(&fd) {
        Some((at, registration)) if *at == generation => Some(Ok(registration.clone())),
        Some(_) => Some(Err(())),
        None => None,
    });
    match known {
        Some(Ok(registration)) => return Ok(registration),
        // A registration of an earlier file with that number (closed by a
        // call the hooks did not see): drop it first, without touching the
        // poller's entry, which the kernel dropped with the file.
        Some(Err(())) => forget_registration(fd),
        None => {}
    }
    let registration =
        Rc::new(Registration::new(fd).map_err(|err| Failed::Error(err.raw_os_error().unwrap_or(libc::EIO)))?);
    REGISTERED.with(|registered| registered.borrow_mut().insert(fd, (generation, registration.clone())));
    Ok(registration)
}

/// `fd` is being closed (or its number reused): its registration with this
/// hub is taken off the poller while the number is still the file's, and
/// green threads parked on it are woken (they find it closed).
pub(super) fn forget_registration(fd: libc::c_int) {
    let registration = REGISTERED.try_with(|registered| registered.borrow_mut().remove(&fd)).ok().flatten();
    if let Some((_, registration)) = registration {
        registration.close_now();
    }
}

/// Blocks the OS thread until `fd` may be ready for `direction` or
/// `deadline` passes (a call on a thread without a hub, or on the hub
/// itself, on an fd whose kernel flag the hooks made non-blocking though
/// the program sees it blocking).
pub(super) fn block_on_fd(
    fd: libc::c_int,
    direction: Direction,
    deadline: Option<Instant>,
) -> Result<(), Failed> {
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut poll = libc::pollfd { fd, events, revents: 0 };
    let timeout = deadline.map(|deadline| {
        let left = deadline.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |timeout| timeout as *const libc::timespec);
    // SAFETY: one live pollfd; the timeout, if any, lives across the call.
    match unsafe { real::ppoll(&mut poll, 1, timeout_ptr, std::ptr::null()) } {
        1.. => Ok(()),
        0 => Err(Failed::TimedOut),
        // Like the blocking call it stands for: a signal interrupts it
        // (EINTR), and other errors are its own.
        _ => Err(Failed::Error(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))),
    }
}
