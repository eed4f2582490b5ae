//! Reports of panicking handlers: one report per panic, naming the request
//! it was answering, and at most [`REPORTS_PER_MINUTE`] a minute.
//!
//! # How it works
//!
//! - **One report.** Left alone, the standard panic hook prints its own
//!   lines for a handler's panic (`thread 'main' panicked at …`, a note on
//!   backtraces), which do not say which request it was. So a hook is
//!   installed once per process, wrapping whichever hook was there: for a
//!   panic in a green thread that is running a handler (a greenlet-local
//!   flag set around the call, [`call`]), it records where the panic
//!   happened, and a backtrace when `RUST_BACKTRACE` asks for one, in that
//!   green thread's slot, and prints nothing. Every other panic goes to the
//!   hook that was there before. A hook installed after the server's first
//!   start replaces this one: it then sees handler panics too.
//! - **Cheap when nothing panics.** The hook looks at greenlet-locals only
//!   while some handler runs on its thread (a per-thread count), so that
//!   threads without a server never touch greenery from a panic hook.
//! - **The report.** The server catches the unwind, takes the record, and
//!   writes one line (`greenery-http: the handler panicked answering GET /x
//!   HTTP/1.1 from 127.0.0.1:4000 at src/main.rs:9:5: boom`, then the
//!   backtrace if one was taken) to the error log ([`Reports`]).
//! - **Floods.** Each server reports at most [`REPORTS_PER_MINUTE`] panics
//!   in a minute counted from the first of them; the rest are counted, and
//!   one line says how many were left out when that minute ends (a timer),
//!   when the server stops, or when it is dropped, whichever comes first.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::rc::{Rc, Weak};
use std::sync::Once;
use std::time::{Duration, Instant};

use greenery::JoinHandle;
use greenery::greenlet::GreenletLocal;

/// Panic reports written per minute, at most, by each server.
pub(crate) const REPORTS_PER_MINUTE: u32 = 10;
/// The window the limit counts over.
const WINDOW: Duration = Duration::from_secs(60);

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send>;

thread_local! {
    /// Handler calls in progress on this thread (running or parked).
    static HANDLERS_RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// A green thread's part in the hook's protocol.
#[derive(Default)]
struct HandlerSlot {
    /// The green thread is inside a handler call.
    running: Cell<bool>,
    /// What the hook recorded of its last panic.
    caught: RefCell<Option<Caught>>,
}

static HANDLER_SLOT: GreenletLocal<Rc<HandlerSlot>> = GreenletLocal::new(Rc::default);

/// Where a handler panicked, as the hook saw it.
pub(crate) struct Caught {
    location: Option<String>,
    backtrace: Option<Backtrace>,
}

/// Installs the hook (once per process).
pub(crate) fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !capture(info) {
                previous(info);
            }
        }));
    });
}

/// Records a handler's panic instead of printing it; whether it was one.
fn capture(info: &PanicHookInfo<'_>) -> bool {
    if HANDLERS_RUNNING.try_with(Cell::get).unwrap_or(0) == 0 {
        return false;
    }
    HANDLER_SLOT.with(|slot| {
        if !slot.running.get() {
            return false;
        }
        let backtrace = Backtrace::capture();
        let caught = Caught {
            location: info.location().map(ToString::to_string),
            backtrace: (backtrace.status() == BacktraceStatus::Captured).then_some(backtrace),
        };
        // A panic while the slot is borrowed cannot come from a handler.
        match slot.caught.try_borrow_mut() {
            Ok(mut record) => {
                *record = Some(caught);
                true
            }
            Err(_) => false,
        }
    })
}

/// Runs the handler call `f`, catching its panic; a panic comes back with
/// what the hook recorded of it.
pub(crate) fn call<R>(f: impl FnOnce() -> R) -> Result<R, (Payload, Option<Caught>)> {
    /// Marks the green thread as in a handler until dropped. It holds the
    /// slot itself, so that ending the mark touches no greenery state: a
    /// kill at thread teardown may unwind through it.
    struct Running(Rc<HandlerSlot>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.running.set(false);
            let _ = HANDLERS_RUNNING.try_with(|count| count.set(count.get() - 1));
        }
    }
    let slot = HANDLER_SLOT.with(Rc::clone);
    slot.running.set(true);
    HANDLERS_RUNNING.with(|count| count.set(count.get() + 1));
    let running = Running(slot);
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    let slot = running.0.clone();
    drop(running);
    outcome.map_err(|payload| (payload, slot.caught.borrow_mut().take()))
}

/// The message of a panic payload, as the standard hook prints it.
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "Box<dyn Any>"
    }
}

/// A backtrace's text from the frame that began the unwind on, as the
/// standard hook shows it: without the frames of the hooks themselves.
fn from_the_panic(backtrace: &str) -> &str {
    let Some(begin) = backtrace.find("rust_begin_unwind") else { return backtrace };
    // The start of that frame's line ("   8: __rustc::rust_begin_unwind").
    let line = backtrace[..begin].rfind('\n').map_or(0, |newline| newline + 1);
    &backtrace[line..]
}

/// A server's error log: where panic reports go, and their rate limit.
pub(crate) struct Reports {
    /// `None`: stderr.
    sink: RefCell<Option<Box<dyn Write>>>,
    /// When the current minute of reports began.
    window: Cell<Option<Instant>>,
    /// Reports written in the current minute.
    written: Cell<u32>,
    /// Panics left out in the current minute.
    left_out: Cell<u64>,
    /// The timer that reports the panics left out when the minute ends.
    summary: RefCell<Option<JoinHandle<()>>>,
}

impl Reports {
    pub(crate) fn new() -> Rc<Reports> {
        Rc::new(Reports {
            sink: RefCell::new(None),
            window: Cell::new(None),
            written: Cell::new(0),
            left_out: Cell::new(0),
            summary: RefCell::new(None),
        })
    }

    /// Sends reports to `sink` instead of stderr.
    pub(crate) fn set_sink(&self, sink: Box<dyn Write>) {
        *self.sink.borrow_mut() = Some(sink);
    }

    /// Reports the panic `payload` of the handler answering `request` (its
    /// request line) from `peer`, unless the minute's reports are used up.
    pub(crate) fn handler_panicked(
        self: &Rc<Self>,
        request: &str,
        peer: std::net::SocketAddr,
        payload: &(dyn Any + Send),
        caught: Option<Caught>,
    ) {
        let now = Instant::now();
        if self.window.get().is_none_or(|began| now.duration_since(began) >= WINDOW) {
            self.summarize();
            self.window.set(Some(now));
            self.written.set(0);
        }
        if self.written.get() >= REPORTS_PER_MINUTE {
            self.left_out.set(self.left_out.get() + 1);
            self.summarize_later(now);
            return;
        }
        self.written.set(self.written.get() + 1);
        let mut text = format!("greenery-http: the handler panicked answering {request} from {peer}");
        if let Some(location) = caught.as_ref().and_then(|caught| caught.location.as_deref()) {
            let _ = write!(text, " at {location}");
        }
        let _ = writeln!(text, ": {}", message(payload));
        if let Some(backtrace) = caught.and_then(|caught| caught.backtrace) {
            let _ = writeln!(text, "stack backtrace:\n{}", from_the_panic(&backtrace.to_string()));
        }
        self.write(&text);
    }

    /// Reports how many panics were left out, if any, and stops the timer.
    pub(crate) fn summarize(&self) {
        if let Some(timer) = self.summary.borrow_mut().take() {
            timer.kill_async();
        }
        let left_out = self.left_out.replace(0);
        if left_out > 0 {
            let them = if left_out == 1 { "panic" } else { "panics" };
            self.write(&format!(
                "greenery-http: {left_out} more handler {them} not reported (at most \
                 {REPORTS_PER_MINUTE} are, a minute)\n"
            ));
        }
    }

    /// Makes sure the panics left out are reported when the minute ends.
    fn summarize_later(self: &Rc<Self>, now: Instant) {
        let mut summary = self.summary.borrow_mut();
        if summary.is_some() {
            return;
        }
        let ends = self.window.get().map_or(now, |began| began + WINDOW);
        let reports: Weak<Reports> = Rc::downgrade(self);
        *summary = Some(greenery::spawn_later(ends.saturating_duration_since(now), move || {
            if let Some(reports) = reports.upgrade() {
                // This green thread is the timer: forget it before it would
                // kill itself.
                reports.summary.borrow_mut().take();
                reports.summarize();
            }
        }));
    }

    fn write(&self, text: &str) {
        let mut sink = self.sink.borrow_mut();
        let written = match sink.as_mut() {
            Some(sink) => sink.write_all(text.as_bytes()).and_then(|()| sink.flush()),
            None => io::stderr().write_all(text.as_bytes()),
        };
        if let Err(err) = written {
            eprintln!("greenery-http: writing the error log failed: {err}");
        }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        self.summarize();
    }
}
