//! `greenery::sync::Channel`: the rendezvous, waiting served in order,
//! `try_*`, timeouts, kills before and after a value is taken (nothing lost
//! or duplicated), shutdown, deadlock detection and errors.
//!
//! Each test runs on its own thread, so on its own hub; the test function is
//! the main greenlet.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{Deadlock, TimedOut};
use greenery::sync::{
    Channel, GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use greenery::{JoinHandle, sleep, spawn, with_timeout, yield_now};

mod sync_support;
use sync_support::{
    GENEROUS, KillProducers, SHORT, Tracked, every_value_received_once, every_value_received_once_blocking,
};

fn getter<T: 'static>(channel: &Rc<Channel<T>>) -> JoinHandle<Result<T, GetError>> {
    let channel = channel.clone();
    spawn(move || channel.get())
}

fn putter<T: 'static>(channel: &Rc<Channel<T>>, value: T) -> JoinHandle<Result<(), PutError<T>>> {
    let channel = channel.clone();
    spawn(move || channel.put(value))
}

// ------------------------------------------------------------- rendezvous

#[test]
fn put_returns_only_once_a_getter_took_the_value() {
    let channel = Rc::new(Channel::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let producer = spawn({
        let (channel, log) = (channel.clone(), log.clone());
        move || {
            log.borrow_mut().push("put");
            channel.put(1).unwrap();
            log.borrow_mut().push("delivered");
        }
    });
    greenery::idle().unwrap();
    assert_eq!(*log.borrow(), ["put"]); // still waiting: nobody took it
    assert_eq!(channel.balance(), 1);
    assert_eq!(channel.get(), Ok(1));
    producer.join().unwrap();
    assert_eq!(*log.borrow(), ["put", "delivered"]);
    assert_eq!(channel.balance(), 0);
}

#[test]
fn get_waits_for_a_putter() {
    let channel = Rc::new(Channel::new());
    let consumer = getter(&channel);
    greenery::idle().unwrap();
    assert_eq!(channel.balance(), -1);
    assert_eq!(channel.put("hello"), Ok(()));
    assert_eq!(consumer.get().unwrap(), Ok("hello"));
    assert_eq!(format!("{channel:?}"), "Channel { offered: 0, getters: 0, shut_down: false }");
}

#[test]
fn putters_and_getters_are_served_in_the_order_they_waited() {
    let channel = Rc::new(Channel::new());
    let putters: Vec<_> = (0..4).map(|n| putter(&channel, n)).collect();
    yield_now();
    assert_eq!(channel.balance(), 4);
    let got: Vec<_> = (0..4).map(|_| channel.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3]);
    for p in putters {
        assert_eq!(p.get().unwrap(), Ok(()));
    }

    let getters: Vec<_> = (0..4).map(|_| getter(&channel)).collect();
    yield_now();
    assert_eq!(channel.balance(), -4);
    for n in 10..14 {
        channel.put(n).unwrap();
    }
    let got: Vec<_> = getters.into_iter().map(|g| g.get().unwrap().unwrap()).collect();
    assert_eq!(got, [10, 11, 12, 13]);
}

#[test]
fn try_put_needs_a_waiting_getter_and_try_get_a_waiting_putter() {
    let channel = Rc::new(Channel::new());
    assert_eq!(channel.try_put(1), Err(TryPutError::Full(1)));
    assert_eq!(channel.try_get(), Err(TryGetError::Empty));
    let consumer = getter(&channel);
    yield_now();
    assert_eq!(channel.try_put(2), Ok(()));
    // The one waiting getter is spoken for now.
    assert_eq!(channel.try_put(3), Err(TryPutError::Full(3)));
    assert_eq!(consumer.get().unwrap(), Ok(2));

    let producer = putter(&channel, 4);
    yield_now();
    assert_eq!(channel.try_get(), Ok(4));
    assert_eq!(producer.get().unwrap(), Ok(()));
    assert_eq!(channel.try_iter().count(), 0);
}

#[test]
fn iteration_ends_at_shutdown() {
    let channel = Rc::new(Channel::new());
    let consumer = spawn({
        let channel = channel.clone();
        move || channel.iter().collect::<Vec<u32>>()
    });
    for n in 0..5 {
        channel.put(n).unwrap();
    }
    channel.shutdown();
    assert_eq!(consumer.get().unwrap(), [0, 1, 2, 3, 4]);
    // Nobody could ever put: the iteration ends, and says why.
    let idle = Channel::<u8>::default();
    let mut iter = (&idle).into_iter();
    assert_eq!(iter.next(), None);
    assert!(iter.deadlocked());
}

// ---------------------------------------------------------------- timeouts

#[test]
fn timed_calls_time_out_and_hand_the_value_back() {
    let channel = Channel::new();
    let err = channel.put_timeout(1, SHORT).unwrap_err();
    assert_eq!(err, PutTimeoutError::TimedOut(1));
    assert_eq!(err.into_inner(), 1);
    assert_eq!(channel.balance(), 0); // withdrawn
    assert_eq!(channel.get_timeout(SHORT), Err(GetTimeoutError::TimedOut));
}

#[test]
fn timed_calls_succeed_when_the_other_side_comes_in_time() {
    let channel = Rc::new(Channel::new());
    let late_getter = spawn({
        let channel = channel.clone();
        move || {
            sleep(SHORT);
            channel.get()
        }
    });
    assert_eq!(channel.put_timeout(1, GENEROUS), Ok(()));
    assert_eq!(late_getter.get().unwrap(), Ok(1));
    let late_putter = spawn({
        let channel = channel.clone();
        move || {
            sleep(SHORT);
            channel.put(2)
        }
    });
    assert_eq!(channel.get_timeout(GENEROUS), Ok(2));
    assert_eq!(late_putter.get().unwrap(), Ok(()));
}

#[test]
fn a_timeout_around_a_blocked_put_withdraws_the_value() {
    let drops = Rc::new(Cell::new(0));
    let channel = Rc::new(Channel::new());
    let outcome = with_timeout(SHORT, || channel.put(Tracked { id: 1, drops: drops.clone() }));
    assert!(outcome.is_err());
    assert_eq!(drops.get(), 1); // dropped with the unwound call, never seen by a getter
    assert_eq!(channel.balance(), 0);
    let producer = putter(&channel, Tracked { id: 2, drops: drops.clone() });
    assert_eq!(channel.get().unwrap().id, 2);
    assert!(producer.get().unwrap().is_ok());
}

#[test]
fn a_timeout_around_a_blocked_get_loses_no_value() {
    let channel = Rc::new(Channel::new());
    let timed = spawn({
        let channel = channel.clone();
        move || with_timeout(SHORT, || channel.get())
    });
    let patient = getter(&channel);
    assert_eq!(timed.get().unwrap(), Err(TimedOut::from(SHORT)));
    channel.put(5).unwrap();
    assert_eq!(patient.get().unwrap(), Ok(5));
}

#[test]
fn a_putter_that_times_out_after_its_value_was_taken_has_delivered_it() {
    let channel = Rc::new(Channel::new());
    let producer = spawn({
        let channel = channel.clone();
        move || channel.put_timeout(1, Duration::from_millis(60))
    });
    let consumer = spawn({
        let channel = channel.clone();
        move || {
            sleep(Duration::from_millis(20));
            channel.try_get()
        }
    });
    yield_now(); // the producer offers and waits; the consumer sleeps
    // Blocking the OS thread past both deadlines makes both timers fire in
    // one pass, the earlier first: the consumer takes the value after the
    // producer timed out, before the producer runs.
    sync_support::block_os_thread(Duration::from_millis(120));
    assert_eq!(consumer.get().unwrap(), Ok(1));
    assert_eq!(producer.get().unwrap(), Ok(()));
}

#[test]
fn a_getter_unwound_by_its_timeout_after_a_value_was_offered_to_it_leaves_it() {
    let channel = Rc::new(Channel::new());
    let timed = spawn({
        let channel = channel.clone();
        move || with_timeout(Duration::from_millis(60), || channel.get())
    });
    let patient = getter(&channel);
    let late_putter = spawn({
        let channel = channel.clone();
        move || {
            sleep(Duration::from_millis(20));
            channel.put(7)
        }
    });
    yield_now();
    // As above: the putter offers (waking `timed`), then `timed`'s timeout
    // unwinds it before it can take the value.
    sync_support::block_os_thread(Duration::from_millis(120));
    assert_eq!(timed.get().unwrap(), Err(TimedOut::from(Duration::from_millis(60))));
    assert_eq!(patient.get().unwrap(), Ok(7));
    assert_eq!(late_putter.get().unwrap(), Ok(()));
}

// ---------------------------------------------------------------- kills

#[test]
fn a_putter_killed_before_its_value_was_taken_withdraws_it() {
    let drops = Rc::new(Cell::new(0));
    let channel = Rc::new(Channel::new());
    let doomed = putter(&channel, Tracked { id: 1, drops: drops.clone() });
    let next = putter(&channel, Tracked { id: 2, drops: drops.clone() });
    yield_now();
    assert_eq!(channel.balance(), 2);
    doomed.kill().unwrap();
    assert_eq!(drops.get(), 1);
    assert_eq!(channel.balance(), 1);
    let got = channel.get().unwrap();
    assert_eq!(got.id, 2);
    assert!(next.get().unwrap().is_ok());
    assert!(doomed.get().unwrap_err().is_killed());
    assert_eq!(channel.try_get().map(|t| t.id), Err(TryGetError::Empty));
}

#[test]
fn a_putter_killed_after_its_value_was_taken_has_delivered_it() {
    let drops = Rc::new(Cell::new(0));
    let channel = Rc::new(Channel::new());
    let consumer = getter(&channel);
    yield_now(); // the consumer waits
    let doomed = putter(&channel, Tracked { id: 1, drops: drops.clone() });
    yield_now(); // the putter offers, wakes the consumer, and waits
    doomed.kill_async(); // runs after the consumer took the value, before the putter resumes
    let got = consumer.get().unwrap().unwrap();
    assert_eq!(got.id, 1);
    assert!(doomed.get().unwrap_err().is_killed());
    assert_eq!(drops.get(), 0); // received, not dropped along the way
    drop(got);
    assert_eq!(drops.get(), 1); // and exactly one of it
    assert_eq!(channel.balance(), 0);
}

#[test]
fn a_getter_killed_while_waiting_takes_nothing() {
    let channel = Rc::new(Channel::new());
    let doomed = getter(&channel);
    let other = getter(&channel);
    yield_now();
    doomed.kill().unwrap();
    assert_eq!(channel.balance(), -1);
    channel.put(1).unwrap();
    assert_eq!(other.get().unwrap(), Ok(1));
}

#[test]
fn a_getter_killed_after_a_value_was_offered_to_it_passes_it_on() {
    let channel = Rc::new(Channel::new());
    let doomed = getter(&channel);
    let next = getter(&channel);
    yield_now();
    doomed.kill_async(); // runs before the wake-up the put causes
    assert_eq!(channel.put(1), Ok(())); // wakes `doomed`; `next` takes it
    assert_eq!(next.get().unwrap(), Ok(1));
    assert!(doomed.get().unwrap_err().is_killed());
}

#[test]
fn a_try_put_value_whose_getter_was_killed_waits_for_the_next_getter() {
    let channel = Rc::new(Channel::new());
    let doomed = getter(&channel);
    yield_now();
    doomed.kill_async();
    assert_eq!(channel.try_put(1), Ok(())); // handed to `doomed`, which dies first
    doomed.join().unwrap();
    assert_eq!(channel.balance(), 1); // still on offer
    assert_eq!(channel.try_get(), Ok(1));
}

// ---------------------------------------------- many green threads, no loss

#[test]
fn many_putters_and_getters_every_value_received_once() {
    every_value_received_once(Rc::new(Channel::new()), KillProducers::No);
    every_value_received_once_blocking(Rc::new(Channel::new()));
}

// ---------------------------------------------------------------- shutdown

#[test]
fn shutdown_wakes_every_putter_and_getter() {
    let channel = Rc::new(Channel::new());
    let putters: Vec<_> = (1..=3).map(|n| putter(&channel, n)).collect();
    yield_now();
    channel.shutdown();
    assert!(channel.is_shutdown());
    let handed_back: Vec<_> =
        putters.into_iter().map(|p| p.get().unwrap().unwrap_err().into_inner()).collect();
    assert_eq!(handed_back, [1, 2, 3]);
    assert_eq!(channel.balance(), 0);

    let other = Rc::new(Channel::<u32>::new());
    let getters: Vec<_> = (0..3).map(|_| getter(&other)).collect();
    yield_now();
    other.shutdown();
    for g in getters {
        assert_eq!(g.get().unwrap(), Err(GetError::Closed));
    }
    assert_eq!(other.put(1), Err(PutError::Closed(1)));
    assert_eq!(other.put_timeout(2, GENEROUS), Err(PutTimeoutError::Closed(2)));
    assert_eq!(other.try_put(3), Err(TryPutError::Closed(3)));
    assert_eq!(other.get(), Err(GetError::Closed));
    assert_eq!(other.get_timeout(GENEROUS), Err(GetTimeoutError::Closed));
    assert_eq!(other.try_get(), Err(TryGetError::Closed));
    other.shutdown(); // again: nothing changes
}

#[test]
fn values_on_offer_at_shutdown_are_delivered_or_handed_back_never_both() {
    let channel = Rc::new(Channel::new());
    let consumer = getter(&channel);
    yield_now();
    channel.try_put(1).unwrap(); // on offer to the consumer
    let producer = putter(&channel, 2);
    yield_now(); // the consumer took 1; the producer offers 2 and waits
    channel.shutdown();
    assert_eq!(consumer.get().unwrap(), Ok(1));
    assert_eq!(producer.get().unwrap(), Err(PutError::Closed(2)));
    assert_eq!(channel.get(), Err(GetError::Closed));
}

// ---------------------------------------------------------------- deadlock

#[test]
fn blocking_forever_from_the_main_greenlet_is_a_deadlock() {
    let channel = Channel::<u32>::new();
    assert_eq!(channel.get(), Err(GetError::Deadlock));
    assert_eq!(channel.put(1), Err(PutError::Deadlock(1)));
    assert_eq!(channel.balance(), 0); // the offer was withdrawn
    let mut iter = channel.iter();
    assert_eq!(iter.next(), None);
    assert!(iter.deadlocked());
}

#[test]
fn two_putters_and_no_getter_is_a_deadlock() {
    let channel = Rc::new(Channel::new());
    let stuck = putter(&channel, 1);
    assert_eq!(channel.put(2), Err(PutError::Deadlock(2)));
    assert_eq!(stuck.join(), Err(Deadlock));
    assert_eq!(channel.get(), Ok(1));
    assert_eq!(stuck.get().unwrap(), Ok(()));
}

// 15.4. gevent 26:
//
//     >>> ch = Channel()
//     >>> def getter():
//     ...     print("got", ch.get())
//     >>> g = gevent.spawn(getter); gevent.sleep(0)
//     >>> ch.put_nowait(1); print("put_nowait returned")
//     got 1
//     put_nowait returned
#[test]
fn try_put_to_a_waiting_getter_runs_it_before_returning() {
    let channel = Rc::new(Channel::new());
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = greenery::spawn({
        let (channel, log) = (channel.clone(), log.clone());
        move || log.borrow_mut().push(format!("got {}", channel.get().unwrap()))
    });
    yield_now();
    channel.try_put(1).unwrap();
    log.borrow_mut().push("try_put returned".to_string());
    assert_eq!(*log.borrow(), ["got 1", "try_put returned"]);
    g.join().unwrap();
}
