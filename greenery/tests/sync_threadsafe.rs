//! `sync::threadsafe`: an Event and an AsyncResult set on one thread and
//! waited for by green threads of other hubs, plain threads and futures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenery::sync::threadsafe::{AsyncResult, Event};

/// Green threads of two hubs and a plain thread wait for one event; the
/// hubs keep running their other green threads meanwhile; a set from a
/// third thread wakes them all.
#[test]
fn an_event_set_on_one_thread_wakes_waiters_on_every_hub_and_plain_threads() {
    let event = Arc::new(Event::new());
    let woken = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::new(greenery::sync::threadsafe::Event::new());
    let parked = Arc::new(AtomicUsize::new(0));
    let hubs: Vec<_> = (0..2)
        .map(|_| {
            let (event, woken, parked, waiting) =
                (event.clone(), woken.clone(), parked.clone(), waiting.clone());
            std::thread::spawn(move || {
                let waiters: Vec<_> = (0..5)
                    .map(|_| {
                        let (event, woken) = (event.clone(), woken.clone());
                        greenery::spawn(move || {
                            event.wait();
                            woken.fetch_add(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                // The hub is not blocked by its waiters: this green thread
                // runs while they wait, and tells the setter so.
                greenery::spawn(move || {
                    if parked.fetch_add(1, Ordering::SeqCst) == 1 {
                        waiting.set();
                    }
                })
                .join()
                .unwrap();
                greenery::hub::joinall(&waiters, None, true).unwrap();
            })
        })
        .collect();
    let plain = {
        let (event, woken) = (event.clone(), woken.clone());
        std::thread::spawn(move || {
            event.wait();
            woken.fetch_add(1, Ordering::SeqCst);
        })
    };
    waiting.wait();
    assert!(!event.is_set());
    event.set();
    for hub in hubs {
        hub.join().unwrap();
    }
    plain.join().unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 11);
}

#[test]
fn an_event_wait_times_out_and_a_set_then_clear_still_ends_a_wait() {
    let event = Arc::new(Event::new());
    assert!(!event.wait_timeout(Duration::from_millis(5)));
    // A waiter parked before a set that is cleared at once still wakes: it
    // waited for the set.
    let waiter = {
        let event = event.clone();
        greenery::spawn(move || event.wait_timeout(Duration::from_secs(60)))
    };
    greenery::yield_now(); // it parks
    event.set();
    event.clear();
    assert!(waiter.get().unwrap());
    assert!(!event.is_set());
}

/// A `Timeout` reaches a green thread waiting on a threadsafe event, and
/// its waker is taken out: nothing is left in the event.
#[test]
fn a_timeout_unwinds_a_waiting_green_thread() {
    let event = Event::new();
    let outcome = greenery::with_timeout(Duration::from_millis(5), || event.wait());
    assert!(outcome.is_err());
    assert!(format!("{event:?}").contains("waiting: 0"), "{event:?}");
}

#[test]
fn an_async_result_reaches_green_threads_of_other_hubs_and_futures() {
    let answer: Arc<AsyncResult<String, String>> = Arc::new(AsyncResult::new());
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let gets: Vec<_> = (0..3)
                    .map(|_| {
                        let answer = answer.clone();
                        greenery::spawn(move || answer.get())
                    })
                    .collect();
                gets.into_iter().map(|get| get.get().unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let awaited = {
        let answer = answer.clone();
        std::thread::spawn(move || futures::executor::block_on(answer.wait_async()).clone())
    };
    assert_eq!(answer.try_get(), None);
    assert_eq!(answer.get_timeout(Duration::from_millis(1)), None);
    std::thread::spawn({
        let answer = answer.clone();
        move || answer.set("forty-two".to_string()).unwrap()
    })
    .join()
    .unwrap();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), vec![Ok("forty-two".to_string()); 3]);
    }
    assert_eq!(awaited.join().unwrap(), Ok("forty-two".to_string()));
    // Set once: the second value comes back.
    assert_eq!(answer.set("other".to_string()).unwrap_err().into_inner(), "other");
    assert_eq!(answer.set_error("late".to_string()).unwrap_err().into_inner(), "late");
    assert_eq!(answer.peek(), Some(&Ok("forty-two".to_string())));
    assert!(answer.is_successful());
}

#[test]
fn an_async_result_carries_an_error() {
    let result: AsyncResult<u8, &str> = AsyncResult::new();
    assert_eq!(result.wait_timeout(Duration::from_millis(1)), None);
    result.set_error("failed").unwrap();
    assert!(result.is_ready() && !result.is_successful());
    assert_eq!(result.get(), Err("failed"));
    assert_eq!(result.into_inner(), Some(Err("failed")));
}
