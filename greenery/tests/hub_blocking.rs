//! The blocking pool (`spawn_blocking`), remote handles (`Handle`), and the
//! report of a green thread's panic.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenery::hub;
use support::this_binary;

mod support;

#[test]
fn spawn_blocking_returns_the_closures_value() {
    assert_eq!(hub::spawn_blocking(|| 2 + 2).unwrap(), 4);
}

#[test]
fn spawn_blocking_does_not_block_the_hub() {
    // The blocking job waits for a message that a green thread sends while
    // the job is blocked: this only finishes if the hub keeps running.
    let (tx, rx) = mpsc::channel();
    let sender = greenery::spawn(move || {
        greenery::sleep(Duration::from_millis(10));
        tx.send("from a green thread").unwrap();
    });
    let got = hub::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(got, "from a green thread");
    sender.get().unwrap();
}

#[test]
fn spawn_blocking_hands_back_a_panic() {
    let payload = hub::spawn_blocking(|| -> u32 { panic!("blocking job failed") }).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"blocking job failed"));
}

#[test]
fn many_green_threads_wait_on_blocking_jobs_at_once() {
    // More jobs than the pool has threads: the rest wait their turn.
    let handles: Vec<_> = (0..200u64)
        .map(|i| {
            greenery::spawn(move || {
                hub::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    i * 2
                })
                .unwrap()
            })
        })
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.get().unwrap()).sum();
    assert_eq!(sum, (0..200u64).map(|i| i * 2).sum());
}

#[test]
fn a_green_thread_killed_while_waiting_on_a_blocking_job_dies_and_the_job_finishes() {
    let (tx, rx) = mpsc::channel();
    let waiting = greenery::spawn(move || {
        hub::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send("job finished").unwrap();
        })
    });
    greenery::yield_now();
    waiting.kill().unwrap();
    assert!(waiting.get().unwrap_err().is_killed());
    let got = hub::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(got, "job finished");
}

#[test]
fn a_handle_runs_callbacks_on_its_hub_from_other_threads() {
    let handle = hub::Handle::current();
    let ran_on = Rc::new(Cell::new(None));
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let handle = handle.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                handle.run(move || tx.send((i, std::thread::current().id())).unwrap());
            })
        })
        .collect();
    drop(tx);
    drop(handle);
    let hub_thread = std::thread::current().id();
    let record = ran_on.clone();
    let got = hub::spawn_blocking(move || rx.iter().collect::<Vec<_>>()).unwrap();
    record.set(Some(got.len()));
    assert_eq!(ran_on.get(), Some(4));
    assert!(got.iter().all(|(_, thread)| *thread == hub_thread), "callbacks ran on the hub's thread");
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn a_handle_wakes_a_hub_blocked_in_its_event_loop() {
    let event = Rc::new(greenery::sync::Event::new());
    let handle = hub::Handle::current();
    let setter = event.clone();
    // The callback only needs to reach the hub's thread; it sets a flag that
    // the green thread waiting on the event sees via a link.
    let flag = Rc::new(Cell::new(false));
    let seen = flag.clone();
    let waiter = greenery::spawn(move || {
        setter.wait().unwrap();
        seen.set(true);
    });
    let (tx, rx) = mpsc::channel::<()>();
    let remote = std::thread::spawn(move || {
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        handle.run(|| {
            // Runs on the hub: wake everyone through the hub's own state.
            HUB_EVENT.with(|event| event.borrow().as_ref().map(|e: &Rc<greenery::sync::Event>| e.set()));
        });
    });
    HUB_EVENT.with(|slot| *slot.borrow_mut() = Some(event.clone()));
    tx.send(()).unwrap();
    waiter.get().unwrap();
    assert!(flag.get());
    remote.join().unwrap();
}

thread_local! {
    static HUB_EVENT: std::cell::RefCell<Option<Rc<greenery::sync::Event>>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn a_green_threads_panic_is_reported_with_its_name_and_message() {
    if std::env::var("GREENERY_PANIC_REPORT").is_ok() {
        let handle = greenery::Builder::new().name("reporter").spawn(|| -> () { panic!("something broke") });
        let err = handle.get().unwrap_err();
        println!("get: {err}");
        return;
    }
    let mut command = this_binary();
    command
        .args(["--exact", "a_green_threads_panic_is_reported_with_its_name_and_message", "--nocapture"])
        .env("GREENERY_PANIC_REPORT", "1");
    let output = support::run(command, Duration::from_secs(120));
    assert!(output.status.success(), "{}", output.stderr);
    assert!(output.stdout.contains("get: the green thread panicked: something broke"), "{}", output.stdout);
    assert!(output.stderr.contains("something broke"), "{}", output.stderr);
    assert!(
        output.stderr.contains("greenery: 'reporter' (green thread 1) failed: something broke"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("hub_blocking.rs"), "the panic's location is printed:\n{}", output.stderr);
}
