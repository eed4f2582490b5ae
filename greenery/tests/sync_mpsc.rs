//! Channels between threads (`sync::mpsc`) and hubs on several threads
//! (`hub::run_on`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenery::sync::mpsc::{self, RecvError, SendError, TryRecvError, TrySendError};

#[test]
fn green_threads_on_one_hub_send_to_a_green_thread_on_another() {
    let (tx, rx) = mpsc::unbounded::<u32>();
    let sender_hub = std::thread::spawn(move || {
        let senders: Vec<_> = (0..10u32)
            .map(|i| {
                let tx = tx.clone();
                greenery::spawn(move || {
                    greenery::sleep(Duration::from_millis(u64::from(i)));
                    tx.send(i).unwrap();
                })
            })
            .collect();
        greenery::hub::joinall(&senders, None, true).unwrap();
    });
    // While this hub's receiver waits, its other green threads run.
    let ticks = Rc::new(Cell::new(0));
    let ticker = {
        let ticks = ticks.clone();
        greenery::spawn(move || ticks.set(ticks.get() + 1))
    };
    let receiver = greenery::spawn(move || {
        let mut got: Vec<u32> = rx.iter().collect();
        got.sort();
        got
    });
    assert_eq!(receiver.get().unwrap(), (0..10).collect::<Vec<_>>());
    ticker.get().unwrap();
    assert_eq!(ticks.get(), 1);
    sender_hub.join().unwrap();
}

#[test]
fn a_full_bounded_channel_parks_senders_in_the_order_they_came() {
    let (tx, rx) = mpsc::bounded::<u32>(1);
    tx.send(0).unwrap(); // full now
    let senders: Vec<_> = (1..=3u32)
        .map(|i| {
            let tx = tx.clone();
            greenery::spawn(move || tx.send(i).unwrap())
        })
        .collect();
    greenery::hub::idle().unwrap(); // all three wait for room
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
    drop(tx);
    let received: Vec<u32> = rx.iter().collect();
    assert_eq!(received, [0, 1, 2, 3], "first come, first served");
    greenery::hub::joinall(&senders, None, true).unwrap();
}

#[test]
fn plain_os_threads_block_on_either_end() {
    let (tx, rx) = mpsc::bounded::<String>(2);
    // Neither thread has a hub: they block.
    let producer = std::thread::spawn(move || {
        for word in ["plain", "os", "threads"] {
            tx.send(word.to_string()).unwrap();
        }
    });
    let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<_>>().join(" "));
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), "plain os threads");
}

#[test]
fn values_that_cannot_be_delivered_come_back() {
    let (tx, rx) = mpsc::unbounded::<&str>();
    tx.send("queued").unwrap();
    rx.close();
    assert_eq!(tx.send("late"), Err(SendError("late")));
    assert!(tx.is_closed());
    assert_eq!(rx.recv(), Ok("queued"), "what was sent before the close is received");
    assert_eq!(rx.recv(), Err(RecvError));

    let (tx, rx) = mpsc::bounded::<u8>(1);
    drop(rx);
    assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
    assert_eq!(tx.send(2).unwrap_err().0, 2);

    let (tx, rx) = mpsc::unbounded::<u8>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn timeouts_give_up_and_hand_the_value_back() {
    let (tx, rx) = mpsc::bounded::<u8>(1);
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(TryRecvError::Empty));
    tx.send(1).unwrap();
    assert_eq!(tx.send_timeout(2, Duration::from_millis(5)), Err(TrySendError::Full(2)));
    // The same on a plain OS thread.
    let plain = std::thread::spawn(move || {
        (rx.recv_timeout(Duration::from_millis(5)), rx.recv_timeout(Duration::from_millis(5)))
    });
    assert_eq!(plain.join().unwrap(), (Ok(1), Err(TryRecvError::Empty)));
}

#[test]
fn a_kill_reaches_a_green_thread_waiting_on_a_channel() {
    let (tx, rx) = mpsc::unbounded::<u8>();
    let waiting = greenery::spawn(move || rx.recv());
    greenery::hub::idle().unwrap();
    waiting.kill().unwrap();
    assert!(waiting.is_killed());
    drop(tx);
}

#[test]
fn async_code_and_green_threads_share_a_channel() {
    let (tx, rx) = mpsc::bounded::<u64>(4);
    // An async producer on a plain thread's executor, a green consumer.
    let producer = std::thread::spawn(move || {
        futures::executor::block_on(async {
            for i in 0..20 {
                tx.send_async(i).await.unwrap();
            }
        })
    });
    let sum = greenery::spawn(move || rx.iter().sum::<u64>()).get().unwrap();
    assert_eq!(sum, (0..20).sum());
    producer.join().unwrap();
}

#[test]
fn run_on_gives_each_hub_its_index_and_returns_in_order() {
    let started = AtomicUsize::new(0);
    let results = greenery::hub::run_on(3, |i| {
        started.fetch_add(1, Ordering::Relaxed);
        let squares: Vec<_> = (0..10u64).map(|k| greenery::spawn(move || k * k)).collect();
        let sum: u64 = squares.into_iter().map(|square| square.get().unwrap()).sum();
        (i, sum, std::thread::current().name().map(str::to_owned))
    });
    assert_eq!(started.into_inner(), 3);
    for (i, (index, sum, name)) in results.into_iter().enumerate() {
        assert_eq!((index, sum), (i, 285));
        assert_eq!(name.as_deref(), Some(format!("greenery-hub-{i}").as_str()));
    }
    assert!(greenery::hub::cores() >= 1);
}

#[test]
fn run_on_lets_each_hub_finish_its_green_threads() {
    let (tx, rx) = mpsc::unbounded::<()>();
    greenery::hub::run_on(2, |_| {
        for _ in 0..5 {
            // Left running when the entry function returns: the hub still
            // runs them to their end.
            let tx = tx.clone();
            greenery::spawn(move || {
                greenery::sleep(Duration::from_millis(5));
                tx.send(()).unwrap();
            });
        }
    });
    drop(tx);
    assert_eq!(rx.iter().count(), 10);
}

#[test]
fn a_panic_on_one_hub_is_raised_after_all_are_joined() {
    let (tx, rx) = mpsc::unbounded::<usize>();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        greenery::hub::run_on(2, |i| {
            if i == 1 {
                panic!("hub 1 failed");
            }
            greenery::sleep(Duration::from_millis(20));
            tx.send(i).unwrap();
        })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"hub 1 failed"));
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0], "hub 0 finished before the panic was raised");
}
