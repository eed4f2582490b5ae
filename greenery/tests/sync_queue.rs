//! `greenery::sync::{Queue, LifoQueue, PriorityQueue}`: order, back-pressure,
//! waiting served in order, timeouts, kills at every blocking point, nothing
//! lost, shutdown, joinable tasks, deadlock detection and errors.
//!
//! Each test runs on its own thread, so on its own hub; the test function is
//! the main greenlet.

use std::cell::Cell;
use std::cmp::Reverse;
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{Deadlock, TimedOut, Timeout};
use greenery::sync::{
    GetError, GetTimeoutError, LifoQueue, PriorityQueue, PutError, PutTimeoutError, Queue, TaskDoneError,
    TryGetError, TryPutError,
};
use greenery::{JoinHandle, sleep, spawn, with_timeout, yield_now};

mod sync_support;
use sync_support::{
    GENEROUS, KillProducers, SHORT, Tracked, every_value_received_once, every_value_received_once_blocking,
};

/// A green thread that takes one value from `queue`.
fn getter<T: 'static>(queue: &Rc<Queue<T>>) -> JoinHandle<Result<T, GetError>> {
    let queue = queue.clone();
    spawn(move || queue.get())
}

/// A green thread that puts `value` into `queue`.
fn putter<T: 'static>(queue: &Rc<Queue<T>>, value: T) -> JoinHandle<Result<(), PutError<T>>> {
    let queue = queue.clone();
    spawn(move || queue.put(value))
}

// ---------------------------------------------------------------- order

#[test]
fn fifo_order_and_sizes() {
    let queue = Queue::bounded(3);
    assert_eq!((queue.len(), queue.is_empty(), queue.is_full(), queue.capacity()), (0, true, false, Some(3)));
    for n in 1..=3 {
        queue.put(n).unwrap();
    }
    assert_eq!((queue.len(), queue.is_empty(), queue.is_full()), (3, false, true));
    assert_eq!(queue.peek(), Ok(1));
    assert_eq!(queue.try_peek(), Ok(1));
    assert_eq!([queue.get(), queue.get(), queue.get()], [Ok(1), Ok(2), Ok(3)]);
    assert!(queue.is_empty());
    assert_eq!(Queue::<u8>::unbounded().capacity(), None);
    assert!(!Queue::<u8>::default().is_full());
}

#[test]
fn lifo_order() {
    let stack = LifoQueue::bounded(4);
    for n in 1..=4 {
        stack.put(n).unwrap();
    }
    assert!(stack.is_full());
    assert_eq!(stack.peek(), Ok(4));
    assert_eq!(stack.try_iter().collect::<Vec<_>>(), [4, 3, 2, 1]);
    stack.put(5).unwrap();
    stack.put(6).unwrap();
    assert_eq!(stack.get(), Ok(6));
    stack.put(7).unwrap();
    assert_eq!(stack.try_iter().collect::<Vec<_>>(), [7, 5]);
}

#[test]
fn priority_order_greatest_first_and_reverse() {
    let queue = PriorityQueue::unbounded();
    for n in [3, 9, 1, 7, 5] {
        queue.put(n).unwrap();
    }
    assert_eq!(queue.peek(), Ok(9));
    assert_eq!(queue.try_iter().collect::<Vec<_>>(), [9, 7, 5, 3, 1]);

    let smallest_first = PriorityQueue::unbounded();
    for n in [3, 9, 1] {
        smallest_first.put(Reverse(n)).unwrap();
    }
    assert_eq!(smallest_first.try_iter().map(|Reverse(n)| n).collect::<Vec<_>>(), [1, 3, 9]);
}

#[test]
fn priority_equal_values_come_out_in_put_order() {
    #[derive(Debug)]
    struct ByPriority(u8, &'static str);
    impl PartialEq for ByPriority {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for ByPriority {}
    impl PartialOrd for ByPriority {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for ByPriority {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }
    let queue = PriorityQueue::unbounded();
    for (priority, name) in [(1, "a"), (2, "b"), (1, "c"), (2, "d"), (1, "e"), (2, "f")] {
        queue.put(ByPriority(priority, name)).unwrap();
    }
    let names: String = queue.try_iter().map(|job| job.1).collect();
    assert_eq!(names, "bdface");
}

#[test]
fn from_iterator_default_and_debug() {
    let queue: Queue<u32> = (1..=3).collect();
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.unfinished_tasks(), 3);
    assert_eq!(
        format!("{queue:?}"),
        "Queue { len: 3, capacity: None, getters: 0, putters: 0, unfinished_tasks: 3, shut_down: false }"
    );
    let stack: LifoQueue<u32> = (1..=3).collect();
    assert_eq!(stack.get(), Ok(3));
    let heap: PriorityQueue<u32> = [2, 3, 1].into_iter().collect();
    assert_eq!(heap.get(), Ok(3));
    assert!(format!("{heap:?}").starts_with("PriorityQueue { len: 2"));
    assert!(LifoQueue::<u8>::default().is_empty());
}

#[test]
#[should_panic(expected = "use a Channel for a rendezvous")]
fn bounded_to_zero_panics() {
    let _ = Queue::<u8>::bounded(0);
}

// --------------------------------------------------- waiting and wake-ups

#[test]
fn bounded_queue_holds_producers_back() {
    let queue = Rc::new(Queue::bounded(2));
    let produced = Rc::new(Cell::new(0));
    let producer = spawn({
        let (queue, produced) = (queue.clone(), produced.clone());
        move || {
            for n in 0..10 {
                queue.put(n).unwrap();
                produced.set(produced.get() + 1);
            }
        }
    });
    greenery::idle().unwrap();
    // Two fit; the third put waits.
    assert_eq!((produced.get(), queue.len()), (2, 2));
    for expected in 0..8 {
        assert_eq!(queue.get(), Ok(expected));
        greenery::idle().unwrap();
        // Each get lets exactly one more in.
        assert_eq!((produced.get(), queue.len()), (expected + 3, 2));
    }
    assert_eq!(queue.try_iter().collect::<Vec<_>>(), [8, 9]);
    producer.join().unwrap();
}

#[test]
fn getters_are_served_in_the_order_they_waited() {
    let queue = Rc::new(Queue::unbounded());
    let getters: Vec<_> = (0..5).map(|_| getter(&queue)).collect();
    yield_now(); // all five wait, in spawn order
    for n in 0..5 {
        queue.put(n).unwrap();
    }
    let got: Vec<_> = getters.into_iter().map(|g| g.get().unwrap().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn putters_are_served_in_the_order_they_waited() {
    let queue = Rc::new(Queue::bounded(1));
    queue.put(0).unwrap();
    let putters: Vec<_> = (1..=4).map(|n| putter(&queue, n)).collect();
    yield_now(); // all four wait for room, in spawn order
    let got: Vec<_> = (0..5).map(|_| queue.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    for p in putters {
        assert_eq!(p.get().unwrap(), Ok(()));
    }
}

#[test]
fn lifo_and_priority_getters_wait_too() {
    let stack = Rc::new(LifoQueue::unbounded());
    let waiting = spawn({
        let stack = stack.clone();
        move || (stack.get(), stack.get())
    });
    yield_now();
    stack.put(1).unwrap();
    stack.put(2).unwrap(); // both in before the getter runs: it takes the last first
    assert_eq!(waiting.get().unwrap(), (Ok(2), Ok(1)));

    let heap = Rc::new(PriorityQueue::bounded(1));
    heap.put(5).unwrap();
    let blocked = spawn({
        let heap = heap.clone();
        move || heap.put(9)
    });
    yield_now();
    assert_eq!(heap.len(), 1); // full: the put waits
    assert_eq!(heap.get(), Ok(5));
    assert_eq!(heap.get(), Ok(9));
    assert_eq!(blocked.get().unwrap(), Ok(()));
}

#[test]
fn peek_waits_and_leaves_the_value_for_a_getter() {
    let queue = Rc::new(Queue::unbounded());
    let peeker = spawn({
        let queue = queue.clone();
        move || queue.peek()
    });
    let taker = getter(&queue);
    yield_now();
    queue.put("x").unwrap(); // wakes both the peeker and the getter
    assert_eq!(peeker.get().unwrap(), Ok("x"));
    assert_eq!(taker.get().unwrap(), Ok("x"));
    assert!(queue.is_empty());
    assert_eq!(queue.try_peek(), Err(TryGetError::Empty));
    assert_eq!(queue.peek_timeout(SHORT), Err(GetTimeoutError::TimedOut));
}

// ---------------------------------------------------------------- timeouts

#[test]
fn get_timeout_and_put_timeout_time_out_and_hand_the_value_back() {
    let queue = Queue::bounded(1);
    assert_eq!(queue.get_timeout(SHORT), Err(GetTimeoutError::TimedOut));
    queue.put(1).unwrap();
    let err = queue.put_timeout(2, SHORT).unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err, PutTimeoutError::TimedOut(2));
    assert_eq!(err.into_inner(), 2);
    assert_eq!(queue.try_iter().collect::<Vec<_>>(), [1]);
}

#[test]
fn timed_calls_succeed_when_the_other_side_comes_in_time() {
    let queue = Rc::new(Queue::bounded(1));
    queue.put(1).unwrap();
    let consumer = spawn({
        let queue = queue.clone();
        move || {
            sleep(SHORT);
            let first = queue.get();
            let second = queue.get_timeout(GENEROUS);
            (first, second)
        }
    });
    assert_eq!(queue.put_timeout(2, GENEROUS), Ok(()));
    assert_eq!(consumer.get().unwrap(), (Ok(1), Ok(2)));
    assert_eq!(queue.join_timeout(SHORT), Ok(false)); // nobody called task_done
}

#[test]
fn a_timeout_around_a_blocked_get_loses_no_value() {
    let queue = Rc::new(Queue::unbounded());
    let timed = spawn({
        let queue = queue.clone();
        move || with_timeout(SHORT, || queue.get())
    });
    let patient = getter(&queue);
    assert_eq!(timed.get().unwrap(), Err(TimedOut::from(SHORT)));
    queue.put(5).unwrap();
    assert_eq!(patient.get().unwrap(), Ok(5));
    assert!(queue.is_empty());
}

#[test]
fn a_timeout_around_a_blocked_put_leaves_nothing_behind() {
    let drops = Rc::new(Cell::new(0));
    let queue = Rc::new(Queue::bounded(1));
    queue.put(Tracked { id: 0, drops: drops.clone() }).unwrap();
    let mut timeout = Timeout::new(SHORT);
    let outcome = timeout.run(|| queue.put(Tracked { id: 1, drops: drops.clone() }));
    assert_eq!(outcome.map(|_| ()), Err(TimedOut::from(SHORT)));
    assert_eq!(drops.get(), 1); // the value that was not put was dropped with the call
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().unwrap().id, 0);
}

#[test]
fn a_getter_unwound_by_its_timeout_after_a_value_was_put_for_it_leaves_the_value() {
    let queue = Rc::new(Queue::unbounded());
    let timed = spawn({
        let queue = queue.clone();
        move || with_timeout(Duration::from_millis(60), || queue.get())
    });
    let patient = getter(&queue);
    let late_putter = spawn({
        let queue = queue.clone();
        move || {
            sleep(Duration::from_millis(20));
            queue.put(7).unwrap();
        }
    });
    yield_now(); // all three wait; `timed` is first in line for a value
    // Blocking the OS thread past both deadlines makes both timers fire in
    // one pass, the earlier first: the putter runs (and wakes `timed` for
    // its value), then `timed`'s timeout unwinds it before it can resume.
    sync_support::block_os_thread(Duration::from_millis(120));
    late_putter.join().unwrap();
    assert_eq!(timed.get().unwrap(), Err(TimedOut::from(Duration::from_millis(60))));
    assert_eq!(patient.get().unwrap(), Ok(7));
}

// ---------------------------------------------------------------- kills

#[test]
fn a_getter_killed_while_waiting_takes_nothing() {
    let queue = Rc::new(Queue::unbounded());
    let doomed = getter(&queue);
    let other = getter(&queue);
    yield_now();
    doomed.kill().unwrap();
    assert!(doomed.get().unwrap_err().is_killed());
    queue.put(1).unwrap();
    assert_eq!(other.get().unwrap(), Ok(1));
}

#[test]
fn a_getter_killed_after_a_value_was_put_for_it_passes_it_on() {
    let queue = Rc::new(Queue::unbounded());
    let doomed = getter(&queue);
    let next = getter(&queue);
    yield_now();
    doomed.kill_async(); // the kill runs before the wake-up the put causes
    queue.put(1).unwrap(); // wakes `doomed`, first in line
    assert_eq!(next.get().unwrap(), Ok(1));
    assert!(doomed.get().unwrap_err().is_killed());
}

#[test]
fn a_getter_killed_after_a_value_was_put_for_it_leaves_it_in_the_queue() {
    let queue = Rc::new(Queue::unbounded());
    let doomed = getter(&queue);
    yield_now();
    doomed.kill_async();
    queue.put(1).unwrap();
    doomed.join().unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.try_get(), Ok(1));
}

#[test]
fn a_putter_killed_while_waiting_puts_nothing() {
    let drops = Rc::new(Cell::new(0));
    let tracked = |id| Tracked { id, drops: drops.clone() };
    let queue = Rc::new(Queue::bounded(1));
    queue.put(tracked(0)).unwrap();
    let doomed = putter(&queue, tracked(1));
    let next = putter(&queue, tracked(2));
    yield_now();
    doomed.kill().unwrap();
    assert_eq!(drops.get(), 1); // its value went down with it
    assert_eq!(queue.get().unwrap().id, 0);
    assert_eq!(next.get().unwrap().map_err(|_| ()), Ok(()));
    assert_eq!(queue.get().unwrap().id, 2);
    assert!(queue.is_empty());
}

#[test]
fn a_putter_killed_after_room_was_made_for_it_passes_the_room_on() {
    let queue = Rc::new(Queue::bounded(1));
    queue.put(0).unwrap();
    let doomed = putter(&queue, 1);
    let next = putter(&queue, 2);
    yield_now();
    doomed.kill_async(); // runs before the wake-up the get causes
    assert_eq!(queue.get(), Ok(0)); // wakes `doomed`, first in line
    assert_eq!(next.get().unwrap(), Ok(()));
    assert!(doomed.get().unwrap_err().is_killed());
    assert_eq!(queue.try_iter().collect::<Vec<_>>(), [2]);
}

#[test]
fn a_peeker_killed_while_waiting_does_not_disturb_getters() {
    let queue = Rc::new(Queue::unbounded());
    let doomed = spawn({
        let queue = queue.clone();
        move || queue.peek()
    });
    let taker = getter(&queue);
    yield_now();
    doomed.kill_async();
    queue.put(3).unwrap();
    assert_eq!(taker.get().unwrap(), Ok(3));
    assert!(doomed.get().unwrap_err().is_killed());
}

#[test]
fn a_joiner_killed_while_waiting_does_not_disturb_other_joiners() {
    let queue = Rc::new(Queue::unbounded());
    queue.put(1).unwrap();
    let joiner = || {
        let queue = queue.clone();
        spawn(move || queue.join())
    };
    let doomed = joiner();
    let other = joiner();
    yield_now();
    doomed.kill().unwrap();
    queue.get().unwrap();
    queue.task_done().unwrap();
    assert_eq!(other.get().unwrap(), Ok(()));
    assert!(doomed.get().unwrap_err().is_killed());
}

// ---------------------------------------------- many green threads, no loss

#[test]
fn many_producers_and_consumers_every_value_received_once() {
    let queue = Rc::new(Queue::bounded(5));
    every_value_received_once(queue.clone(), KillProducers::Yes);
    assert!(queue.is_empty());
    every_value_received_once_blocking(Rc::new(Queue::bounded(3)));
}

#[test]
fn lifo_and_priority_queues_lose_nothing_either() {
    every_value_received_once(Rc::new(LifoQueue::bounded(3)), KillProducers::Yes);
    every_value_received_once(Rc::new(PriorityQueue::bounded(4)), KillProducers::Yes);
    every_value_received_once_blocking(Rc::new(LifoQueue::unbounded()));
    every_value_received_once_blocking(Rc::new(PriorityQueue::bounded(2)));
}

// ---------------------------------------------------------------- shutdown

#[test]
fn shutdown_wakes_every_getter_putter_and_peeker() {
    let empty = Rc::new(Queue::<u32>::unbounded());
    let getters: Vec<_> = (0..3).map(|_| getter(&empty)).collect();
    let peeker = spawn({
        let empty = empty.clone();
        move || empty.peek()
    });
    let full = Rc::new(Queue::bounded(1));
    full.put(0).unwrap();
    let putters: Vec<_> = (1..=3).map(|n| putter(&full, n)).collect();
    yield_now();
    empty.shutdown();
    full.shutdown();
    assert!(empty.is_shutdown() && full.is_shutdown());
    for g in getters {
        assert_eq!(g.get().unwrap(), Err(GetError::Closed));
    }
    assert_eq!(peeker.get().unwrap(), Err(GetError::Closed));
    let handed_back: Vec<_> =
        putters.into_iter().map(|p| p.get().unwrap().unwrap_err().into_inner()).collect();
    assert_eq!(handed_back, [1, 2, 3]);
    // What was in the queue still comes out, then gets fail.
    assert_eq!(full.peek(), Ok(0));
    assert_eq!(full.get(), Ok(0));
    assert_eq!(full.get(), Err(GetError::Closed));
    assert_eq!(full.get_timeout(GENEROUS), Err(GetTimeoutError::Closed));
    assert_eq!(full.try_get(), Err(TryGetError::Closed));
    assert_eq!(full.try_peek(), Err(TryGetError::Closed));
    assert_eq!(full.put(4), Err(PutError::Closed(4)));
    assert_eq!(full.put_timeout(5, GENEROUS), Err(PutTimeoutError::Closed(5)));
    assert_eq!(full.try_put(6), Err(TryPutError::Closed(6)));
    full.shutdown(); // again: nothing changes
}

#[test]
fn shutdown_immediate_hands_back_what_is_left_and_counts_it_done() {
    let queue = Rc::new(Queue::bounded(3));
    for n in 1..=3 {
        queue.put(n).unwrap();
    }
    let blocked = putter(&queue, 4);
    let joiner = spawn({
        let queue = queue.clone();
        move || queue.join()
    });
    yield_now();
    assert_eq!(queue.shutdown_immediate(), [1, 2, 3]);
    assert_eq!(blocked.get().unwrap(), Err(PutError::Closed(4)));
    assert_eq!(joiner.get().unwrap(), Ok(()));
    assert_eq!(queue.get(), Err(GetError::Closed));
    assert_eq!(queue.unfinished_tasks(), 0);

    let heap = PriorityQueue::unbounded();
    for n in [1, 3, 2] {
        heap.put(n).unwrap();
    }
    assert_eq!(heap.shutdown_immediate(), [3, 2, 1]);
}

#[test]
fn iteration_ends_at_shutdown_once_drained() {
    let queue = Rc::new(Queue::unbounded());
    let consumer = spawn({
        let queue = queue.clone();
        move || {
            let mut iter = queue.iter();
            let values: Vec<u32> = iter.by_ref().collect();
            (values, iter.deadlocked(), iter.next())
        }
    });
    for n in 0..5 {
        queue.put(n).unwrap();
        yield_now();
    }
    queue.put(5).unwrap();
    queue.shutdown();
    assert_eq!(consumer.get().unwrap(), (vec![0, 1, 2, 3, 4, 5], false, None));
}

// ---------------------------------------------------------------- tasks

#[test]
fn join_waits_for_every_task_done() {
    let queue = Rc::new(Queue::unbounded());
    assert_eq!(queue.join(), Ok(())); // nothing put: nothing to wait for
    let processed = Rc::new(Cell::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (queue, processed) = (queue.clone(), processed.clone());
            spawn(move || {
                for job in &*queue {
                    sleep(Duration::from_millis(job % 3));
                    processed.set(processed.get() + 1);
                    queue.task_done().unwrap();
                }
            })
        })
        .collect();
    for job in 0..30u64 {
        queue.put(job).unwrap();
    }
    assert_eq!(queue.unfinished_tasks(), 30);
    assert_eq!(queue.join(), Ok(()));
    assert_eq!(processed.get(), 30);
    assert_eq!(queue.unfinished_tasks(), 0);
    queue.shutdown();
    greenery::hub::joinall(&workers, None, false).unwrap();
}

#[test]
fn join_timeout_says_whether_every_task_was_done() {
    let queue = Rc::new(LifoQueue::unbounded());
    queue.put(1).unwrap();
    assert_eq!(queue.join_timeout(SHORT), Ok(false));
    let worker = spawn({
        let queue = queue.clone();
        move || {
            sleep(SHORT);
            queue.get().unwrap();
            queue.task_done().unwrap();
        }
    });
    assert_eq!(queue.join_timeout(GENEROUS), Ok(true));
    worker.join().unwrap();
}

#[test]
fn task_done_too_many_times_is_an_error() {
    let queue = PriorityQueue::unbounded();
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    queue.put(1).unwrap();
    queue.get().unwrap();
    assert_eq!(queue.task_done(), Ok(()));
    let err = queue.task_done().unwrap_err();
    assert_eq!(err.to_string(), "task_done() called too many times");
}

// ---------------------------------------------------------------- deadlock

#[test]
fn blocking_forever_from_the_main_greenlet_is_a_deadlock() {
    let queue = Queue::<u32>::bounded(1);
    assert_eq!(queue.get(), Err(GetError::Deadlock));
    assert_eq!(queue.peek(), Err(GetError::Deadlock));
    let mut iter = queue.iter();
    assert_eq!(iter.next(), None);
    assert!(iter.deadlocked());
    assert_eq!(iter.next(), None);
    queue.put(1).unwrap();
    assert_eq!(queue.put(2), Err(PutError::Deadlock(2)));
    assert_eq!(queue.join(), Err(Deadlock)); // one unfinished task, no worker
    // A timed wait has a timer to end it: no deadlock.
    assert_eq!(queue.put_timeout(3, SHORT), Err(PutTimeoutError::TimedOut(3)));
}

#[test]
fn waiting_for_green_threads_that_all_wait_is_a_deadlock() {
    let queue = Rc::new(Queue::<u32>::unbounded());
    let stuck = getter(&queue);
    assert_eq!(queue.get(), Err(GetError::Deadlock)); // both wait, nothing can put
    assert_eq!(stuck.join(), Err(Deadlock));
    queue.shutdown();
    assert_eq!(stuck.get().unwrap(), Err(GetError::Closed));
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_hand_values_back_and_say_what_happened() {
    let deadlock = Deadlock.to_string();
    let cases: Vec<(String, String)> = vec![
        (PutError::Closed(1).to_string(), "cannot put: the queue is shut down".into()),
        (PutError::Deadlock(1).to_string(), format!("cannot put: {deadlock}")),
        (
            PutTimeoutError::TimedOut(1).to_string(),
            "cannot put: timed out before the value could be put".into(),
        ),
        (PutTimeoutError::Closed(1).to_string(), "cannot put: the queue is shut down".into()),
        (PutTimeoutError::Deadlock(1).to_string(), format!("cannot put: {deadlock}")),
        (
            TryPutError::Full(1).to_string(),
            "cannot put without waiting: the queue is full (or no getter is waiting on the channel)".into(),
        ),
        (TryPutError::Closed(1).to_string(), "cannot put: the queue is shut down".into()),
        (GetError::Closed.to_string(), "cannot get: the queue is shut down and empty".into()),
        (GetError::Deadlock.to_string(), format!("cannot get: {deadlock}")),
        (GetTimeoutError::TimedOut.to_string(), "cannot get: timed out waiting for a value".into()),
        (GetTimeoutError::Closed.to_string(), "cannot get: the queue is shut down and empty".into()),
        (GetTimeoutError::Deadlock.to_string(), format!("cannot get: {deadlock}")),
        (
            TryGetError::Empty.to_string(),
            "cannot get without waiting: the queue is empty (or no putter is waiting on the channel)".into(),
        ),
        (TryGetError::Closed.to_string(), "cannot get: the queue is shut down and empty".into()),
        (TaskDoneError.to_string(), "task_done() called too many times".into()),
    ];
    for (said, expected) in cases {
        assert_eq!(said, expected);
    }
    assert!(deadlock.contains("deadlock"));

    // Values come back, and Debug does not need them to be Debug.
    struct Opaque(u8);
    let err = PutError::Closed(Opaque(3));
    assert_eq!(format!("{err:?}"), "Closed(..)");
    assert!(err.is_closed() && !err.is_deadlock());
    assert_eq!(err.into_inner().0, 3);
    let err = PutTimeoutError::from(PutError::Deadlock(Opaque(4)));
    assert!(err.is_deadlock() && !err.is_timeout() && !err.is_closed());
    assert_eq!(format!("{err:?}"), "Deadlock(..)");
    assert_eq!(err.into_inner().0, 4);
    let err = TryPutError::Full(Opaque(5));
    assert!(err.is_full() && !err.is_closed());
    assert_eq!(err.into_inner().0, 5);
    assert_eq!(GetTimeoutError::from(GetError::Closed), GetTimeoutError::Closed);
    assert!(GetTimeoutError::TimedOut.is_timeout());

    // They are errors, for `?` into a `Box<dyn Error>`.
    let boxed: Box<dyn std::error::Error> = Box::new(PutError::Closed(Opaque(0)));
    assert_eq!(boxed.to_string(), "cannot put: the queue is shut down");
}

#[test]
fn try_calls_never_wait() {
    let queue = Queue::bounded(1);
    assert_eq!(queue.try_get(), Err(TryGetError::Empty));
    assert_eq!(queue.try_put(1), Ok(()));
    assert_eq!(queue.try_put(2), Err(TryPutError::Full(2)));
    assert_eq!(queue.try_get(), Ok(1));
}
