//! `sync::AsyncResult`: setting once, getting many times, waiting, timeouts,
//! kills, deadlock and errors.
//!
//! Each test runs on its own OS thread, so with its own hub. `settle` lets
//! every green thread run until it blocks; timeouts only guard against
//! hangs.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::Deadlock;
use greenery::sync::{AlreadySet, AsyncResult, AsyncResultError};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(10);

fn settle() {
    greenery::idle().unwrap();
}

#[test]
fn a_value_set_once_is_got_by_everyone() {
    let result: AsyncResult<String, i32> = AsyncResult::new();
    assert!(!result.is_ready());
    assert!(!result.is_successful());
    assert_eq!(result.peek(), None);
    assert_eq!(result.try_get(), None);
    result.set("value".to_string()).unwrap();
    assert!(result.is_ready());
    assert!(result.is_successful());
    assert_eq!(result.get(), Ok("value".to_string()));
    assert_eq!(result.get(), Ok("value".to_string())); // again: a clone each time
    assert_eq!(result.get_timeout(SHORT), Ok(Some("value".to_string())));
    assert_eq!(result.try_get(), Some(Ok("value".to_string())));
    assert_eq!(result.peek(), Some(&Ok("value".to_string())));
    assert_eq!(result.wait(), Ok(&Ok("value".to_string())));
    assert_eq!(result.wait_timeout(SHORT), Ok(Some(&Ok("value".to_string()))));
    assert_eq!(result.into_inner(), Some(Ok("value".to_string())));
}

#[test]
fn an_error_set_once_is_got_by_everyone() {
    let result: AsyncResult<u32, String> = AsyncResult::default();
    result.set_error("broken".to_string()).unwrap();
    assert!(result.is_ready());
    assert!(!result.is_successful());
    assert_eq!(result.get(), Err(AsyncResultError::Failed("broken".to_string())));
    assert_eq!(result.get_timeout(SHORT), Err(AsyncResultError::Failed("broken".to_string())));
    assert_eq!(result.try_get(), Some(Err("broken".to_string())));
    assert_eq!(result.get().unwrap_err().into_failed(), Some("broken".to_string()));
    assert_eq!(result.into_inner(), Some(Err("broken".to_string())));
}

#[test]
fn a_second_set_is_an_error_that_hands_the_value_back() {
    let result: AsyncResult<Vec<u8>, String> = AsyncResult::new();
    result.set(vec![1]).unwrap();
    let rejected = result.set(vec![2]).unwrap_err();
    assert_eq!(rejected.into_inner(), [2]);
    let rejected = result.set_error("late".to_string()).unwrap_err();
    assert_eq!(rejected.0, "late");
    let rejected = result.set_result(Ok(vec![3])).unwrap_err();
    assert_eq!(rejected.into_inner(), Ok(vec![3]));
    assert_eq!(result.get(), Ok(vec![1])); // the first stays

    let error = AlreadySet("value");
    assert_eq!(error.to_string(), "the AsyncResult is set already: a value or an error is set only once");
    assert_eq!(format!("{error:?}"), "AlreadySet(..)");
    let boxed: Box<dyn Error> = Box::new(AlreadySet(vec![0u8]));
    assert!(boxed.source().is_none());

    // An error set first stays too.
    let failed: AsyncResult<u8, &str> = AsyncResult::new();
    failed.set_result(Err("first")).unwrap();
    assert_eq!(failed.set(1).unwrap_err().into_inner(), 1);
    assert_eq!(failed.get(), Err(AsyncResultError::Failed("first")));
}

#[test]
fn set_wakes_every_waiter_in_the_order_they_came() {
    let result: Rc<AsyncResult<u32, ()>> = Rc::new(AsyncResult::new());
    let woken = Rc::new(RefCell::new(Vec::new()));
    let getters: Vec<_> = (0..5)
        .map(|n| {
            let (result, woken) = (result.clone(), woken.clone());
            greenery::spawn(move || {
                let value = if n % 2 == 0 {
                    result.get().unwrap()
                } else {
                    result.get_timeout(LONG).unwrap().unwrap()
                };
                woken.borrow_mut().push((n, value));
            })
        })
        .collect();
    let waiter = {
        let result = result.clone();
        greenery::spawn(move || result.wait().copied())
    };
    settle();
    assert!(woken.borrow().is_empty());
    assert!(!waiter.is_ready());
    result.set(7).unwrap();
    greenery::hub::joinall(&getters, None, false).unwrap();
    assert_eq!(*woken.borrow(), [(0, 7), (1, 7), (2, 7), (3, 7), (4, 7)]);
    assert_eq!(waiter.get().unwrap(), Ok(Ok(7)));
}

#[test]
fn set_from_another_green_thread_while_main_waits() {
    let result: Rc<AsyncResult<&str, &str>> = Rc::new(AsyncResult::new());
    let setter = {
        let result = result.clone();
        greenery::spawn(move || {
            greenery::sleep(Duration::from_millis(1));
            result.set_error("failed").unwrap();
        })
    };
    assert_eq!(result.get(), Err(AsyncResultError::Failed("failed")));
    setter.join().unwrap();
}

#[test]
fn timeouts_leave_it_unset_and_usable() {
    let result: Rc<AsyncResult<u32, ()>> = Rc::new(AsyncResult::new());
    assert_eq!(result.get_timeout(SHORT), Ok(None));
    assert_eq!(result.wait_timeout(SHORT), Ok(None));
    assert!(greenery::with_timeout(SHORT, || result.get()).is_err());
    assert!(greenery::with_timeout(SHORT, || result.wait().is_ok()).is_err());
    assert_eq!(format!("{result:?}"), "AsyncResult { outcome: None, waiting: 0 }");

    // A green thread that timed out beside one that waits on.
    let timed_out = {
        let result = result.clone();
        greenery::spawn(move || greenery::with_timeout(SHORT, || result.get()))
    };
    let patient = {
        let result = result.clone();
        greenery::spawn(move || result.get_timeout(LONG))
    };
    assert!(timed_out.get().unwrap().is_err());
    result.set(3).unwrap();
    assert_eq!(patient.get().unwrap(), Ok(Some(3)));
    assert_eq!(format!("{result:?}"), "AsyncResult { outcome: Some(Ok(3)), waiting: 0 }");
}

#[test]
fn a_getter_killed_while_waiting_or_once_woken_costs_the_others_nothing() {
    let result: Rc<AsyncResult<u32, ()>> = Rc::new(AsyncResult::new());
    let spawn_getter = || {
        let result = result.clone();
        greenery::spawn(move || result.get())
    };
    let (killed_waiting, killed_woken, survivor) = (spawn_getter(), spawn_getter(), spawn_getter());
    settle();
    killed_waiting.kill().unwrap();
    killed_woken.kill_async(); // runs after the set, before it resumes
    result.set(11).unwrap();
    assert!(killed_waiting.get().unwrap_err().is_killed());
    assert!(killed_woken.get().unwrap_err().is_killed());
    assert_eq!(survivor.get().unwrap(), Ok(11));
    assert_eq!(result.get(), Ok(11));
}

#[test]
fn waiting_for_a_result_nobody_can_set_is_a_deadlock() {
    let result: AsyncResult<u32, String> = AsyncResult::new();
    assert_eq!(result.get(), Err(AsyncResultError::Deadlock));
    assert!(result.get().unwrap_err().is_deadlock());
    assert_eq!(result.wait(), Err(Deadlock));
    assert_eq!(result.get_timeout(SHORT), Ok(None));
    // From a green thread: its `get` blocks, so main's join is the deadlock.
    let result = Rc::new(result);
    let getter = {
        let result = result.clone();
        greenery::spawn(move || result.get())
    };
    assert_eq!(getter.join(), Err(Deadlock));
    result.set(1).unwrap();
    assert_eq!(getter.get().unwrap(), Ok(1));
}

#[derive(Debug, Clone, PartialEq)]
struct Failure;

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the job failed")
    }
}

impl Error for Failure {}

#[test]
fn get_errors_read_well_and_work_with_question_mark() {
    let failed = AsyncResultError::Failed(Failure);
    assert_eq!(failed.to_string(), "the job failed");
    assert!(failed.source().is_none());
    assert!(!failed.is_deadlock());
    let deadlock: AsyncResultError<Failure> = AsyncResultError::Deadlock;
    assert_eq!(deadlock.to_string(), Deadlock.to_string());
    assert_eq!(AsyncResultError::<Failure>::from(Deadlock), AsyncResultError::Deadlock);
    assert_eq!(deadlock.into_failed(), None);

    fn job(result: &AsyncResult<u32, Failure>) -> Result<u32, Box<dyn Error>> {
        Ok(result.get()? + 1)
    }
    let result = AsyncResult::new();
    result.set(1).unwrap();
    assert_eq!(job(&result).unwrap(), 2);
    let result = AsyncResult::new();
    result.set_error(Failure).unwrap();
    assert_eq!(job(&result).unwrap_err().to_string(), "the job failed");
}

#[test]
fn values_that_are_not_clone_are_peeked_or_taken() {
    struct NotClone(u32);
    let result: AsyncResult<NotClone, NotClone> = AsyncResult::new();
    result.set(NotClone(5)).unwrap();
    assert!(matches!(result.wait(), Ok(Ok(NotClone(5)))));
    assert!(matches!(result.peek(), Some(Ok(NotClone(5)))));
    assert!(matches!(result.into_inner(), Some(Ok(NotClone(5)))));
}

// 15.5. gevent 26:
//
//     >>> r = AsyncResult()
//     >>> r.wait(timeout=0.01) is None
//     True
//     >>> gevent.spawn_later(0.001, r.set, 42)
//     >>> r.wait()
//     42
//     >>> e = AsyncResult(); e.set_exception(ValueError("bad"))
//     >>> e.wait() is None                  # greenery lends the error instead
//     True
#[test]
fn wait_returns_the_value_once_set_and_none_after_a_timeout() {
    let r: Rc<AsyncResult<u32, &str>> = Rc::new(AsyncResult::new());
    assert_eq!(r.wait_timeout(SHORT), Ok(None));
    let setter = greenery::spawn_later(Duration::from_millis(1), {
        let r = r.clone();
        move || r.set(42).unwrap()
    });
    assert_eq!(r.wait(), Ok(&Ok(42)));
    setter.join().unwrap();
    let e: AsyncResult<u32, &str> = AsyncResult::new();
    e.set_error("bad").unwrap();
    assert_eq!(e.wait(), Ok(&Err("bad")));
}
