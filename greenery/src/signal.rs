//! Unix signals handled in green threads (gevent's `signal_handler`).
//!
//! [`signal_handler`] runs a closure in a new green thread of this thread's
//! hub each time the signal arrives, until the returned [`SignalHandler`] is
//! cancelled. The closure is ordinary code: it may block, spawn, take locks
//! and allocate, none of which a real signal handler may do.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! let hangups = Rc::new(Cell::new(0));
//! let counter = hangups.clone();
//! let handler = greenery::signal::signal_handler(libc::SIGHUP, move || counter.set(counter.get() + 1))
//!     .unwrap();
//! // SAFETY: raise(3) only sends this thread a signal, which has a handler.
//! unsafe { libc::raise(libc::SIGHUP) };
//! while hangups.get() == 0 {
//!     greenery::sleep(std::time::Duration::from_millis(1));
//! }
//! handler.cancel();
//! ```
//!
//! # How it works
//!
//! - **Delivery.** The OS-level handler (installed through
//!   [`signal-hook-registry`](https://docs.rs/signal-hook-registry), which
//!   chains to any handler installed before it) only does what is safe in a
//!   signal handler: for each hub with a handler for the signal, it sets the
//!   signal's flag and sends a byte on that hub's wake-up socket. Any thread
//!   may receive the signal; the hub's watcher, a green thread parked on the
//!   socket, reads the flags and spawns the handlers.
//! - **Coalescing.** Like the kernel, greenery merges a signal that arrives
//!   again before its handlers were spawned: handlers run at least once
//!   after each arrival, not once per arrival.
//! - **Deadlock.** The watcher does not keep the hub alive (gevent's signal
//!   watchers are `ref=False`): waiting only for a signal is still reported
//!   as a deadlock.
//! - **Cancelling.** [`SignalHandler::cancel`] stops a handler. When the last
//!   greenery handler for a signal in the process is cancelled, the signal's
//!   disposition goes back to what it was before greenery's first handler (for
//!   `SIGINT`, ending the process again). Installing and cancelling are
//!   slow operations, meant for set-up and shut-down.
//! - **Forbidden signals.** `SIGKILL` and `SIGSTOP` cannot be caught;
//!   `SIGSEGV`, `SIGBUS`, `SIGILL` and `SIGFPE` report faults (greenery's own
//!   stack-overflow detection uses the first two) and cannot be handled
//!   later, in a green thread. Asking for any of them is an error.
//! - **Other code.** Do not mix greenery's handlers with other users of
//!   `signal-hook` for the same signal: the restore on the last cancel does
//!   not know about theirs.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use libc::c_int;
use signal_hook_registry::SigId;

use crate::net::socket::Socket;

/// One more than the highest signal number on Linux (`SIGRTMAX` is 64).
const NSIG: usize = 65;

/// Signals that cannot have a handler here, with why.
const FORBIDDEN: &[(c_int, &str)] = &[
    (libc::SIGKILL, "it cannot be caught"),
    (libc::SIGSTOP, "it cannot be caught"),
    (libc::SIGSEGV, "it reports a fault (and greenery's stack-overflow detection uses it)"),
    (libc::SIGBUS, "it reports a fault (and greenery's stack-overflow detection uses it)"),
    (libc::SIGILL, "it reports a fault, which cannot wait for a green thread"),
    (libc::SIGFPE, "it reports a fault, which cannot wait for a green thread"),
];

/// Runs `handler` in a new green thread of this thread's hub each time the
/// signal `signum` arrives, until [`SignalHandler::cancel`] (gevent's
/// `signal_handler`). Dropping the returned handle does not cancel it.
///
/// # Errors
///
/// `InvalidInput` for a signal number out of range or one that cannot have
/// a handler here (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGILL`,
/// `SIGFPE`); what creating the wake-up socket or installing the OS-level
/// handler returns.
pub fn signal_handler(signum: c_int, handler: impl Fn() + 'static) -> io::Result<SignalHandler> {
    check(signum)?;
    let handler: Rc<dyn Fn()> = Rc::new(handler);
    HUB_SIGNALS.with(|signals| {
        let mut signals = signals.borrow_mut();
        if signals.is_none() {
            *signals = Some(HubSignals::new()?);
        }
        let hub_signals = signals.as_mut().expect("made above");
        let id = hub_signals.next_id;
        let sig_id = arm(signum, &hub_signals.wakeup)?;
        hub_signals.next_id += 1;
        hub_signals.handlers.push(Installed { id, signum, sig_id, handler });
        Ok(SignalHandler { id, signum, _thread_bound: PhantomData })
    })
}

/// A handler installed by [`signal_handler`]. `!Send`: the handler runs on
/// the hub of the thread that installed it, and only that thread may cancel
/// it.
pub struct SignalHandler {
    id: u64,
    signum: c_int,
    _thread_bound: PhantomData<Rc<()>>,
}

impl SignalHandler {
    /// The signal this handler is for.
    pub fn signum(&self) -> c_int {
        self.signum
    }

    /// Whether the handler is still installed.
    pub fn is_active(&self) -> bool {
        HUB_SIGNALS.with(|signals| {
            signals.borrow().as_ref().is_some_and(|signals| signals.handlers.iter().any(|h| h.id == self.id))
        })
    }

    /// Removes the handler: later arrivals of the signal do not run it
    /// (green threads already running it go on). Returns whether it was
    /// still installed; cancelling twice does nothing.
    pub fn cancel(&self) -> bool {
        let emptied = HUB_SIGNALS.with(|signals| {
            let mut signals = signals.borrow_mut();
            let hub_signals = signals.as_mut()?;
            let index = hub_signals.handlers.iter().position(|h| h.id == self.id)?;
            let installed = hub_signals.handlers.swap_remove(index);
            disarm(installed.signum, installed.sig_id);
            // The last one gone, the watcher and its socket go too.
            Some(if hub_signals.handlers.is_empty() { signals.take() } else { None })
        });
        match emptied {
            None => false,
            Some(hub_signals) => {
                // Dropped outside the borrow: killing the watcher switches.
                drop(hub_signals);
                true
            }
        }
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

pub(crate) fn check(signum: c_int) -> io::Result<()> {
    if !(1..NSIG as c_int).contains(&signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signum} is not a signal number (1 to {})", NSIG - 1),
        ));
    }
    if let Some((_, why)) = FORBIDDEN.iter().find(|(forbidden, _)| *forbidden == signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot have a handler in a green thread: {why}"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- per hub

thread_local! {
    static HUB_SIGNALS: RefCell<Option<HubSignals>> = const { RefCell::new(None) };
}

/// What the OS-level handler shares with one hub: which signals arrived,
/// and the socket that wakes the hub's watcher.
struct Wakeup {
    pending: [AtomicBool; NSIG],
    sender: UnixStream,
}

impl Wakeup {
    /// Called in the signal handler: only atomics and send(2), which are
    /// async-signal-safe.
    fn notify(&self, signum: c_int) {
        self.pending[signum as usize].store(true, Ordering::Release);
        let byte = 1u8;
        // SAFETY: sends one byte from a local on a socket this `Wakeup`
        // owns. MSG_DONTWAIT: a full socket already holds a wake-up;
        // MSG_NOSIGNAL: a closed peer must not raise SIGPIPE. errno is saved
        // and restored by signal-hook-registry around the action.
        unsafe {
            libc::send(
                self.sender.as_raw_fd(),
                (&byte as *const u8).cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
    }
}

/// This thread's signal handlers and the watcher that runs them.
struct HubSignals {
    wakeup: Arc<Wakeup>,
    handlers: Vec<Installed>,
    next_id: u64,
    watcher: crate::JoinHandle<()>,
}

struct Installed {
    id: u64,
    signum: c_int,
    sig_id: SigId,
    handler: Rc<dyn Fn()>,
}

impl HubSignals {
    fn new() -> io::Result<HubSignals> {
        let (sender, receiver) = UnixStream::pair()?;
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        let wakeup = Arc::new(Wakeup { pending: [const { AtomicBool::new(false) }; NSIG], sender });
        let receiver = Socket::new(receiver)?;
        let watched = wakeup.clone();
        let watcher = crate::spawn(move || watch(&receiver, &watched));
        Ok(HubSignals { wakeup, handlers: Vec::new(), next_id: 0, watcher })
    }
}

impl Drop for HubSignals {
    fn drop(&mut self) {
        for installed in self.handlers.drain(..) {
            disarm(installed.signum, installed.sig_id);
        }
        // While the thread is torn down its hub may be gone, and the watcher
        // with it.
        if crate::hub::has_hub() {
            self.watcher.kill_async();
        }
    }
}

/// The watcher: waits for wake-up bytes and spawns the handlers of the
/// signals whose flags are set.
fn watch(receiver: &Socket<UnixStream>, wakeup: &Wakeup) {
    let mut bytes = [0u8; 64];
    loop {
        // Drain first, then read the flags: a signal after the drain leaves
        // a byte, so it wakes the next wait.
        loop {
            match receiver.get().read(&mut bytes) {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: drained
            }
        }
        for signum in 1..NSIG {
            if wakeup.pending[signum].swap(false, Ordering::Acquire) {
                run_handlers(signum as c_int);
            }
        }
        if receiver.wait_readable_in_background().is_err() {
            return;
        }
    }
}

fn run_handlers(signum: c_int) {
    let handlers: Vec<Rc<dyn Fn()>> = HUB_SIGNALS.with(|signals| {
        signals.borrow().as_ref().map_or_else(Vec::new, |signals| {
            signals.handlers.iter().filter(|h| h.signum == signum).map(|h| h.handler.clone()).collect()
        })
    });
    for handler in handlers {
        crate::spawn(move || handler());
    }
}

// ---------------------------------------------------------------- per process

/// The disposition a signal had before greenery's first handler for it, and
/// signal-hook-registry's, to put each back in turn.
struct Disposition {
    /// Handlers installed for the signal, over all hubs.
    active: usize,
    /// The disposition to put back when `active` falls to zero.
    before: Option<libc::sigaction>,
    /// signal-hook-registry's handler, once it was installed: the registry
    /// installs it only the first time, so greenery re-installs it itself.
    registry: Option<libc::sigaction>,
}

static DISPOSITIONS: Mutex<[Disposition; NSIG]> =
    Mutex::new([const { Disposition { active: 0, before: None, registry: None } }; NSIG]);

/// Adds an OS-level action for `signum` that notifies `wakeup`, installing
/// the handler if this is the process's first for the signal.
fn arm(signum: c_int, wakeup: &Arc<Wakeup>) -> io::Result<SigId> {
    let mut dispositions = DISPOSITIONS.lock().unwrap_or_else(|poison| poison.into_inner());
    let disposition = &mut dispositions[signum as usize];
    let first = disposition.active == 0;
    if first {
        disposition.before = Some(current_action(signum)?);
    }
    let wakeup = wakeup.clone();
    // SAFETY: the action only calls `Wakeup::notify` (atomics and send(2),
    // both async-signal-safe), does not allocate or lock, and cannot panic:
    // `signum` was checked to index `pending`.
    let sig_id = unsafe { signal_hook_registry::register(signum, move || wakeup.notify(signum)) }?;
    if first {
        let installed = match disposition.registry {
            Some(registry) => set_action(signum, &registry),
            None => current_action(signum).map(|registry| disposition.registry = Some(registry)),
        };
        if let Err(err) = installed {
            signal_hook_registry::unregister(sig_id);
            return Err(err);
        }
    }
    disposition.active += 1;
    Ok(sig_id)
}

/// Removes an action added by [`arm`]; the last one for a signal puts its
/// earlier disposition back.
fn disarm(signum: c_int, sig_id: SigId) {
    let mut dispositions = DISPOSITIONS.lock().unwrap_or_else(|poison| poison.into_inner());
    let disposition = &mut dispositions[signum as usize];
    signal_hook_registry::unregister(sig_id);
    disposition.active -= 1;
    if disposition.active == 0
        && let Some(before) = disposition.before.take()
    {
        // Failing to restore leaves the registry's handler, which now
        // does nothing: the signal is ignored. Nothing better is left.
        let _ = set_action(signum, &before);
    }
}

fn current_action(signum: c_int) -> io::Result<libc::sigaction> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `action`.
    if unsafe { libc::sigaction(signum, std::ptr::null(), action.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction(2) succeeded and filled it in (and zeroed is a valid
    // sigaction anyway).
    Ok(unsafe { action.assume_init() })
}

fn set_action(signum: c_int, action: &libc::sigaction) -> io::Result<()> {
    // SAFETY: `action` is a disposition read earlier from sigaction(2) for
    // this signal, so its handler (if any) is valid for it.
    if unsafe { libc::sigaction(signum, action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
