//! gevent's `Greenlet` behaviours that a port relies on, each as a
//! transcript of gevent 26 (CPython 3.11) followed by the same program in
//! greenery: kills as normal ends, links at the next turn of the hub, the
//! outcome accessors, `joinall`/`killall`, `unlink`, `link_value`,
//! `link_exception`, `kill(exception=...)`, `Greenlet(f).start()`, and the
//! hub's error handler.

use std::any::Any;
use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{self, ErrorReport, JoinHandle};

mod reports;

const LONG: Duration = Duration::from_secs(3600);

#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

#[derive(Debug, PartialEq)]
struct Shutdown(&'static str);

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutdown: {}", self.0)
    }
}

impl Error for Shutdown {}

// 15.1. gevent 26:
//
//     >>> g = gevent.spawn(gevent.sleep, 10)
//     >>> gevent.sleep(0)
//     >>> g.kill()
//     >>> g.ready(), g.successful(), g.exception, g.dead
//     (True, True, None, True)
//     >>> g.value, g.get()
//     (GreenletExit(), GreenletExit())
#[test]
fn a_killed_green_thread_ended_successfully() {
    let g = greenery::spawn(|| greenery::sleep(LONG));
    greenery::yield_now();
    g.kill().unwrap();
    assert_eq!(
        (g.is_ready(), g.is_successful(), g.exception().is_none(), g.is_dead()),
        (true, true, true, true)
    );
    // No GreenletExit value in Rust: the kill is told apart by type.
    assert!(g.value().is_none());
    assert!(g.is_killed());
    assert!(g.get().unwrap_err().is_killed());
}

// 15.1, killed before it started. gevent 26:
//
//     >>> u = gevent.spawn(print, "ran")
//     >>> u.kill()
//     >>> u.ready(), u.successful(), u.exception, u.dead
//     (True, True, None, True)
//     >>> gevent.sleep(0)                # prints nothing
#[test]
fn a_green_thread_killed_before_it_started_ended_successfully() {
    let log = Log::default();
    let u = greenery::spawn({
        let log = log.clone();
        move || log.push("ran")
    });
    u.kill().unwrap();
    assert_eq!(
        (u.is_ready(), u.is_successful(), u.exception().is_none(), u.is_dead()),
        (true, true, true, true)
    );
    assert!(!u.is_started());
    greenery::yield_now();
    assert!(log.take().is_empty());
    assert!(u.get().unwrap_err().is_killed());
}

// 15.1 and 15.8. gevent 26:
//
//     >>> g = gevent.spawn(gevent.sleep, 10)
//     >>> g.link_value(lambda g: print("value", g.value))
//     >>> g.link_exception(lambda g: print("exception", g.exception))
//     >>> gevent.sleep(0)
//     >>> g.kill()
//     value GreenletExit()
//     >>> b = gevent.spawn(lambda: 1 / 0)
//     >>> b.link_value(lambda g: print("value", g.value))
//     >>> b.link_exception(lambda g: print("exception", g.exception))
//     >>> b.join()
//     exception division by zero
//     >>> ok = gevent.spawn(lambda: 3)
//     >>> ok.link_value(lambda g: print("value", g.value))
//     >>> ok.join()
//     value 3
#[test]
fn link_value_fires_for_a_value_or_a_kill_and_link_exception_for_a_failure() {
    let reports = reports::capture();
    let log = Log::default();
    let link_both = |handle: &JoinHandle<u32>| {
        let value_log = log.clone();
        handle.link_value(move |value| value_log.push(format!("value {value:?}")));
        let exception_log = log.clone();
        handle.link_exception(move |err| exception_log.push(format!("exception {err}")));
    };
    let g = greenery::spawn(|| {
        greenery::sleep(LONG);
        0
    });
    link_both(&g);
    greenery::yield_now();
    g.kill().unwrap();
    assert_eq!(log.take(), ["value None"]); // None: the kill's GreenletExit
    let b = greenery::spawn(|| -> u32 { panic!("division by zero") });
    link_both(&b);
    b.join().unwrap();
    assert_eq!(log.take(), ["exception the green thread panicked: division by zero"]);
    let ok = greenery::spawn(|| 3);
    link_both(&ok);
    ok.join().unwrap();
    assert_eq!(log.take(), ["value Some(3)"]);
    reports.assert_one(&["failed: division by zero"]);
}

// 15.3. gevent 26:
//
//     >>> g = gevent.spawn(lambda: 7)
//     >>> g.join()
//     >>> g.link(lambda g: print("first", g.value))
//     >>> g.link(lambda g: print("second", g.value))
//     >>> print("linked")
//     linked
//     >>> gevent.sleep(0)
//     first 7
//     second 7
#[test]
fn a_link_to_a_finished_green_thread_runs_at_the_next_turn_of_the_hub_in_link_order() {
    let log = Log::default();
    let g = greenery::spawn(|| 7);
    g.join().unwrap();
    for name in ["first", "second"] {
        let log = log.clone();
        g.link(move |outcome| log.push(format!("{name} {}", outcome.as_ref().unwrap())));
    }
    log.push("linked");
    greenery::yield_now();
    assert_eq!(log.take(), ["linked", "first 7", "second 7"]);
}

// 15.3, links that fire because the green thread finishes. gevent 26:
//
//     >>> def body():
//     ...     print("body ends")
//     ...     return 1
//     >>> g = gevent.spawn(body)
//     >>> g.link(lambda g: print("first"))
//     >>> g.link(lambda g: print("second"))
//     >>> w = gevent.spawn(lambda: print("spawned after, runs before the links"))
//     >>> g.join(); print("joined")
//     body ends
//     spawned after, runs before the links
//     first
//     second
//     joined
#[test]
fn links_fired_by_the_end_run_at_the_next_turn_in_link_order_before_the_joiner() {
    let log = Log::default();
    let g = greenery::spawn({
        let log = log.clone();
        move || {
            log.push("body ends");
            1
        }
    });
    for name in ["first", "second"] {
        let log = log.clone();
        g.link(move |_| log.push(name));
    }
    let _w = greenery::spawn({
        let log = log.clone();
        move || log.push("spawned after, runs before the links")
    });
    g.join().unwrap();
    log.push("joined");
    assert_eq!(
        log.take(),
        ["body ends", "spawned after, runs before the links", "first", "second", "joined"]
    );
}

// 15.6. gevent 26:
//
//     >>> jobs = [gevent.spawn(lambda n=n: n * n) for n in range(3)]
//     >>> gevent.joinall(jobs)
//     >>> [job.value for job in jobs], [job.get() for job in jobs]
//     ([0, 1, 4], [0, 1, 4])
//     >>> [(job.ready(), job.dead, job.exception) for job in jobs][0]
//     (True, True, None)
#[test]
fn the_outcome_without_consuming_the_handle() {
    let jobs: Vec<_> = (0..3u32).map(|n| greenery::spawn(move || n * n)).collect();
    hub::joinall(&jobs, None, false).unwrap();
    let values: Vec<u32> = jobs.iter().map(|job| *job.value().unwrap()).collect();
    let got: Vec<u32> = jobs.iter().map(|job| *job.wait().unwrap().as_ref().unwrap()).collect();
    assert_eq!((values, got), (vec![0, 1, 4], vec![0, 1, 4]));
    let job = &jobs[0];
    assert_eq!((job.is_ready(), job.is_dead(), job.exception().is_none()), (true, true, true));
    // The handles are still there, and `get` still moves the values out.
    assert_eq!(jobs.into_iter().map(|job| job.get().unwrap()).collect::<Vec<_>>(), [0, 1, 4]);
}

// 15.6, a failure. gevent 26:
//
//     >>> b = gevent.spawn(lambda: 1 / 0)
//     >>> b.join()
//     >>> b.ready(), b.successful(), b.value, type(b.exception).__name__
//     (True, False, None, 'ZeroDivisionError')
#[test]
fn the_exception_accessor_lends_the_error() {
    let reports = reports::capture();
    let b = greenery::spawn(|| -> u32 { panic!("division by zero") });
    b.join().unwrap();
    assert_eq!((b.is_ready(), b.is_successful(), b.value().is_none()), (true, false, true));
    let exception = b.exception().unwrap();
    assert!(exception.is_panic());
    assert_eq!(exception.payload().and_then(|p| p.downcast_ref::<&str>()), Some(&"division by zero"));
    drop(exception);
    reports.assert_one(&["failed: division by zero"]);
}

// 15.7. gevent 26:
//
//     >>> quick = gevent.spawn(lambda: 1)
//     >>> slow = gevent.spawn(gevent.sleep, 10)
//     >>> done = gevent.joinall([slow, quick], timeout=0.01)
//     >>> done == [quick]
//     True
//     >>> gevent.killall([slow], timeout=1)
//     >>> slow.dead
//     True
#[test]
fn joinall_with_a_timeout_returns_the_finished_ones_and_killall_takes_a_timeout() {
    let quick = greenery::spawn(|| 1);
    let slow = greenery::spawn(|| {
        greenery::sleep(LONG);
        0
    });
    let done = hub::joinall([&slow, &quick], Some(Duration::from_millis(10)), false).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id(), quick.id());
    assert_eq!(hub::killall([&slow], Some(Duration::from_secs(60))), Ok(true));
    assert!(slow.is_dead());
}

// 15.7, raise_error. gevent 26:
//
//     >>> a = gevent.spawn(gevent.sleep, 10)
//     >>> b = gevent.spawn(lambda: 1 / 0)
//     >>> gevent.joinall([a, b], raise_error=True)
//     Traceback (most recent call last):
//     ZeroDivisionError: division by zero
//     >>> a.dead
//     False
#[test]
fn joinall_with_raise_error_stops_at_the_first_failure() {
    let reports = reports::capture();
    let a = greenery::spawn(|| {
        greenery::sleep(LONG);
        0
    });
    let b = greenery::spawn(|| -> u32 { panic!("division by zero") });
    let err = hub::joinall([&a, &b], None, true).unwrap_err();
    assert_eq!(err.failed(), Some(1));
    assert!(err.to_string().contains("failed: the green thread panicked: division by zero"), "{err}");
    assert!(!a.is_dead());
    // A kill is no failure: raise_error lets it through.
    a.kill().unwrap();
    assert_eq!(hub::joinall([&a], None, true).unwrap().len(), 1);
    reports.assert_one(&["failed: division by zero"]);
}

// 15.8, unlink. gevent 26:
//
//     >>> g = gevent.spawn(lambda: 1)
//     >>> cb = lambda g: print("linked")
//     >>> g.link(cb); g.unlink(cb)
//     >>> g.join()                       # prints nothing
#[test]
fn unlink_removes_a_callback_before_it_runs() {
    let log = Log::default();
    let g = greenery::spawn(|| 1);
    let id = {
        let log = log.clone();
        g.link(move |_| log.push("linked"))
    };
    assert!(g.unlink(id));
    g.join().unwrap();
    greenery::yield_now();
    assert!(log.take().is_empty());
    assert!(!g.unlink(id), "gone");
}

// 15.8, kill with a chosen error, caught at the blocking call. gevent 26:
//
//     >>> def worker():
//     ...     try:
//     ...         gevent.sleep(10)
//     ...     except Shutdown as e:
//     ...         return "caught " + str(e)
//     >>> g = gevent.spawn(worker)
//     >>> gevent.sleep(0)
//     >>> g.kill(Shutdown("now"))
//     >>> g.value
//     'caught now'
#[test]
fn kill_with_delivers_the_error_at_the_blocking_call() {
    let g = greenery::spawn(|| {
        let slept = panic::catch_unwind(AssertUnwindSafe(|| greenery::sleep(LONG)));
        let payload = slept.unwrap_err();
        let error = payload.downcast::<Box<dyn Error + Send + Sync>>().unwrap();
        format!("caught {}", error.downcast_ref::<Shutdown>().unwrap().0)
    });
    greenery::yield_now();
    g.kill_with(Shutdown("now")).unwrap();
    assert_eq!(g.value().as_deref().map(String::as_str), Some("caught now"));
}

// 15.8, not caught. gevent 26:
//
//     >>> g = gevent.spawn(gevent.sleep, 10)
//     >>> gevent.sleep(0)
//     >>> g.kill(Shutdown("now"))
//     Traceback (most recent call last):
//       ...
//     Shutdown: now
//     <Greenlet at 0x...: sleep(10)> failed with Shutdown
//     >>> g.successful(), g.exception
//     (False, Shutdown('now'))
//     >>> u = gevent.spawn(print, "ran"); u.kill(Shutdown("early"))   # before it starts
//     ...
//     <Greenlet at 0x...: print('ran')> failed with Shutdown
//     >>> u.exception
//     Shutdown('early')
#[test]
fn kill_with_an_error_not_caught_is_a_failure() {
    let reports = reports::capture();
    let g = greenery::Builder::new().name("sleeper").spawn(|| greenery::sleep(LONG));
    greenery::yield_now();
    g.kill_with(Shutdown("now")).unwrap();
    assert!(!g.is_successful());
    let err = g.exception().unwrap();
    assert_eq!(err.error().and_then(|e| e.downcast_ref::<Shutdown>()), Some(&Shutdown("now")));
    assert_eq!(err.to_string(), "the green thread failed: shutdown: now");
    drop(err);
    let log = Log::default();
    let u = greenery::Builder::new().name("unstarted").spawn({
        let log = log.clone();
        move || log.push("ran")
    });
    u.kill_with(Shutdown("early")).unwrap();
    greenery::yield_now();
    assert!(log.take().is_empty());
    assert!(u.exception().unwrap().error().unwrap().is::<Shutdown>());
    assert_eq!(
        reports.lines(),
        [
            "greenery: 'sleeper' (green thread 1) failed: shutdown: now",
            "greenery: 'unstarted' (green thread 2) failed: shutdown: early",
        ]
    );
}

// 15.9. gevent 26:
//
//     >>> g = gevent.Greenlet(lambda: print("ran"))
//     >>> gevent.sleep(0)                # prints nothing: not started
//     >>> g.start(); g.start()           # a second start does nothing
//     >>> gevent.sleep(0)
//     ran
//     >>> later = gevent.Greenlet(lambda: 2)
//     >>> later.start_later(0.01)
//     >>> later.ready()
//     False
//     >>> later.get()
//     2
#[test]
fn a_green_thread_created_then_started() {
    let log = Log::default();
    let g = JoinHandle::new({
        let log = log.clone();
        move || log.push("ran")
    });
    greenery::yield_now();
    assert!(log.take().is_empty());
    assert!(!g.is_started() && !g.is_ready());
    g.start();
    g.start();
    greenery::yield_now();
    assert_eq!(log.take(), ["ran"]);
    let later = JoinHandle::new(|| 2);
    later.start_later(Duration::from_millis(10));
    assert!(!later.is_ready());
    assert_eq!(later.get().unwrap(), 2);
    // Never started, then killed: it never runs, and counts as killed.
    let never = JoinHandle::new(|| 3);
    never.kill().unwrap();
    never.start();
    greenery::yield_now();
    assert!(never.is_killed() && !never.is_started());
}

// 15.10. gevent 26:
//
//     >>> seen = []
//     >>> hub = gevent.get_hub()
//     >>> hub.handle_error = lambda context, t, v, tb: seen.append((str(v), context))
//     >>> g = gevent.spawn(lambda: 1 / 0); g.join()   # prints nothing
//     >>> seen
//     [('division by zero', <Greenlet ...>)]
#[test]
fn the_error_handler_is_replaceable() {
    /// A report's message, green thread, and whether its payload is a `&str`.
    type Seen = (String, Option<u64>, bool);
    let seen: Rc<RefCell<Vec<Seen>>> = Rc::default();
    let previous = hub::set_error_handler({
        let seen = seen.clone();
        move |report: &ErrorReport<'_>| {
            let payload_is_str = report.payload().is_some_and(<dyn Any + Send>::is::<&str>);
            seen.borrow_mut().push((report.message().to_owned(), report.green_thread(), payload_is_str));
        }
    });
    let g = greenery::spawn(|| -> u32 { panic!("division by zero") });
    g.join().unwrap();
    let mine = hub::reset_error_handler(previous);
    assert!(mine.is_some());
    assert_eq!(*seen.borrow(), [("division by zero".to_string(), Some(g.id()), true)]);
}
