//! [`dump`]: every hub's green threads, what each waits for and for how
//! long (gevent's `print_run_info`), for "why is my program stuck".
//!
//! # How it works
//!
//! - **What each hub knows.** Every green thread has a record (see the
//!   `record` module): its id, who spawned it and where, and, while it is
//!   parked, what it waits for, since when and until when. The hub keeps a
//!   list of its live green threads; its run queue says which are ready.
//! - **Asking every hub.** A hub's green threads belong to its thread, so
//!   each hub describes its own: the dump sends each other hub a callback
//!   (as [`Handle::run`](super::Handle::run) does, without keeping the hub
//!   alive) and waits up to half a second for the answers, parking only the
//!   calling green thread if it runs on a hub. The calling thread's own hub
//!   is described directly.
//! - **A hub that does not answer** is busy without coming back to its loop:
//!   blocked. Its section says so, with how long the monitor has seen it so;
//!   the [monitor](super::max_blocking_time)'s report says where it is.
//! - **On a signal.** [`dump_on_signal`] has the monitor thread write a
//!   dump to stderr when the signal arrives: it works even when every hub is
//!   blocked.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::c_int;

use super::existing_hub;
use super::monitor::{self, Watch, seconds};
use super::record::{self, Wait};
use crate::greenlet::Greenlet;

/// How long the dump waits for the other hubs' answers.
const ANSWER_TIME: Duration = Duration::from_millis(500);

/// Writes [`format_dump`] to stderr (gevent's `print_run_info`).
///
/// Call it from anywhere: a green thread, a plain thread, a signal handler
/// that runs in a green thread. It does not block the hub it is called on
/// (only the calling green thread waits for the other hubs' answers).
/// [`dump_on_signal`] has it written when a signal arrives.
pub fn dump() {
    let text = format_dump();
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Every hub of the process, and on each every green thread: its id and
/// name, which green thread spawned it and where, its state (running,
/// ready, parked, stashed: parked with its stack's pages given back, not
/// started), what it is parked on (a primitive, a file descriptor and
/// direction, a sleep, the end of another green thread, a future, the
/// blocking pool) with the deadline, and for how long (gevent's
/// `format_run_info`).
///
/// ```
/// use std::time::Duration;
///
/// let event = std::rc::Rc::new(greenery::sync::Event::new());
/// let waiting = event.clone();
/// let waiter = greenery::Builder::new().name("waiter").spawn(move || waiting.wait());
/// greenery::sleep(Duration::from_millis(1)); // let it park
/// let dump = greenery::hub::format_dump();
/// assert!(dump.contains("green thread 1 'waiter'"), "{dump}");
/// assert!(dump.contains("parked for"), "{dump}");
/// assert!(dump.contains("on Event"), "{dump}");
/// event.set();
/// waiter.get().unwrap().unwrap();
/// ```
///
/// A dump reads:
///
/// ```text
/// greenery: 2 hubs (process 4242)
///
/// hub of thread 'main' (tid 4242): 3 green threads
///   main greenlet: running
///   green thread 1 'reader' (spawned by main at src/main.rs:9:5): parked for 1.20 s on fd 7 (readable)
///   green thread 2 'ticker' (spawned by main at src/main.rs:14:5): parked for 4 ms on a sleep, deadline in 96 ms
///   green thread 3 'idle' (spawned by green thread 1 at src/main.rs:11:9): stashed, parked for 31.02 s on Event 0x7f6c1c000b70
///
/// hub of thread 'worker' (tid 4250): did not answer within 500 ms: it has been busy for 2.10 s
/// without coming back to its loop (the monitor's report says where it is)
/// ```
pub fn format_dump() -> String {
    let hubs = monitor::hubs();
    let mine = existing_hub().and(monitor::this_hub());
    let mut text = format!(
        "greenery: {} hub{} (process {})\n",
        hubs.len(),
        if hubs.len() == 1 { "" } else { "s" },
        std::process::id()
    );
    let (answers, receiver) = crate::sync::mpsc::unbounded::<(usize, String)>();
    let mut sections: Vec<Option<String>> = vec![None; hubs.len()];
    for (index, watch) in hubs.iter().enumerate() {
        if mine.as_ref().is_some_and(|mine| Arc::ptr_eq(mine, watch)) {
            continue;
        }
        let answers = answers.clone();
        watch.doorbell().run(move || {
            let _ = answers.send((index, describe_this_hub()));
        });
    }
    drop(answers);
    if let Some(index) = mine.as_ref().and_then(|mine| hubs.iter().position(|watch| Arc::ptr_eq(watch, mine)))
    {
        sections[index] = Some(describe_this_hub());
    }
    let deadline = Instant::now() + ANSWER_TIME;
    while sections.iter().any(Option::is_none) {
        let Some((index, section)) = receive(&receiver, deadline) else { break };
        sections[index] = Some(section);
    }
    for (watch, section) in hubs.iter().zip(sections) {
        text.push('\n');
        text += &section.unwrap_or_else(|| describe_silent(watch));
    }
    text
}

/// The next answer, or `None` once `deadline` passed or nothing more can
/// come.
fn receive(
    receiver: &crate::sync::mpsc::Receiver<(usize, String)>,
    deadline: Instant,
) -> Option<(usize, String)> {
    if super::is_on_hub() {
        // A hub callback cannot park: poll, briefly blocking this hub.
        loop {
            match receiver.try_recv() {
                Ok(answer) => return Some(answer),
                Err(crate::sync::mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return None,
            }
        }
    }
    receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()
}

/// The section of a hub that did not answer.
fn describe_silent(watch: &Watch) -> String {
    let mut text = format!(
        "hub of thread '{}' (tid {}): did not answer within {}",
        watch.thread_name(),
        watch.tid(),
        seconds(ANSWER_TIME)
    );
    match watch.busy_for() {
        Some(busy) => {
            let _ = write!(
                text,
                ": it has been busy for {} without coming back to its loop (the monitor's report says where \
                 it is)",
                seconds(busy)
            );
        }
        None => text += ": it is busy, or its thread is exiting",
    }
    text.push('\n');
    text
}

/// This thread's hub's section of the dump.
fn describe_this_hub() -> String {
    let Some(hub) = existing_hub() else { return "a hub that is being torn down\n".to_owned() };
    let watch = monitor::this_hub();
    let threads = record::live_green_threads();
    let ready = super::ready_greenlets(&hub);
    let now = Instant::now();
    let mut text = match &watch {
        Some(watch) => format!("hub of thread '{}' (tid {})", watch.thread_name(), watch.tid()),
        None => "hub of this thread".to_owned(),
    };
    let _ = writeln!(text, ": {} green thread{}", threads.len(), if threads.len() == 1 { "" } else { "s" });
    let _ = writeln!(text, "  main greenlet: {}", describe_state(&hub.main, &ready, now));
    for thread in &threads {
        let record = thread.record();
        let _ = write!(text, "  green thread {} '{}'", record.id(), thread.name());
        let by = match record.spawner() {
            record::MAIN => "main".to_owned(),
            0 => "the hub or a greenlet".to_owned(),
            id => format!("green thread {id}"),
        };
        let _ = write!(text, " (spawned by {by}");
        if let Some(at) = record.spawned_at() {
            let _ = write!(text, " at {at}");
        }
        let _ = writeln!(text, "): {}", describe_state(thread, &ready, now));
    }
    text
}

/// A greenlet's state, what it waits for, and for how long.
fn describe_state(greenlet: &Greenlet, ready: &[usize], now: Instant) -> String {
    if greenlet.is_current() {
        return "running".to_owned();
    }
    let is_ready = ready.contains(&greenlet.address());
    if greenlet.is_unstarted() {
        return if is_ready { "ready (not started)".to_owned() } else { "not started".to_owned() };
    }
    if is_ready {
        return "ready".to_owned();
    }
    let (wait, since, deadline) = greenlet.record().wait();
    if wait == Wait::Nothing {
        return "suspended (it switched to another greenlet by hand)".to_owned();
    }
    let mut text = if greenlet.is_stashed() { "stashed, parked".to_owned() } else { "parked".to_owned() };
    if let Some(since) = since {
        let _ = write!(text, " for {}", seconds(now.saturating_duration_since(since)));
    }
    let _ = write!(text, " on {wait}");
    if let Some(deadline) = deadline {
        match deadline.checked_duration_since(now) {
            Some(left) => {
                let _ = write!(text, ", deadline in {}", seconds(left));
            }
            None => text += ", deadline passed",
        }
    }
    text
}

/// Has the monitor thread write a [`dump`] to stderr each time the signal
/// `signum` arrives (say `SIGUSR1`: `kill -USR1 <pid>`), until
/// [`DumpOnSignal::cancel`]. Since the monitor thread writes it, the dump
/// works even when every hub is blocked.
///
/// ```no_run
/// greenery::hub::dump_on_signal(libc::SIGUSR1).unwrap();
/// ```
///
/// # Errors
///
/// `InvalidInput` for a signal that cannot be handled this way (`SIGKILL`,
/// `SIGSTOP`, and the fault signals `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`);
/// what installing the handler returns.
pub fn dump_on_signal(signum: c_int) -> io::Result<DumpOnSignal> {
    crate::signal::check(signum)?;
    monitor::start_monitor();
    // SAFETY: the action is async-signal-safe: `request_dump` stores an
    // atomic and writes a byte to a pipe.
    let id = unsafe { signal_hook_registry::register(signum, monitor::request_dump) }?;
    Ok(DumpOnSignal { id })
}

/// What [`dump_on_signal`] installed.
#[derive(Debug)]
pub struct DumpOnSignal {
    id: signal_hook_registry::SigId,
}

impl DumpOnSignal {
    /// Stops dumping on the signal. (The signal's disposition stays
    /// greenery's: a later arrival does nothing.)
    pub fn cancel(self) {
        signal_hook_registry::unregister(self.id);
    }
}
