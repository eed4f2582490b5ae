//! Futures in green threads (`block_on`) and green threads in futures
//! (`Handle::spawn`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use greenery::hub::Handle;

#[test]
fn a_future_completed_by_another_green_thread_returns_its_value() {
    let (tx, rx) = oneshot::channel::<u32>();
    let sender = greenery::spawn(move || {
        greenery::sleep(Duration::from_millis(1));
        tx.send(7).unwrap();
    });
    let waiter = greenery::spawn(move || greenery::block_on(rx).unwrap() * 6);
    assert_eq!(waiter.get().unwrap(), 42);
    sender.get().unwrap();
}

#[test]
fn a_future_woken_from_another_os_thread_returns_its_value() {
    let (tx, rx) = oneshot::channel::<&str>();
    let (go, gone) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        gone.recv().unwrap();
        tx.send("from afar").unwrap();
    });
    // The main greenlet waits in block_on; the hub runs this green thread
    // meanwhile, which lets the other thread send.
    let ticker = greenery::spawn(move || go.send(()).unwrap());
    assert_eq!(greenery::block_on(rx).unwrap(), "from afar");
    ticker.get().unwrap();
    thread.join().unwrap();
}

#[test]
fn many_green_threads_wait_on_futures_at_once() {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..100u64).map(|_| oneshot::channel::<u64>()).unzip();
    let waiters: Vec<_> =
        receivers.into_iter().map(|rx| greenery::spawn(move || greenery::block_on(rx).unwrap())).collect();
    greenery::hub::idle().unwrap(); // every one is parked in block_on
    let thread = std::thread::spawn(move || {
        for (i, tx) in senders.into_iter().enumerate().rev() {
            tx.send(i as u64).unwrap();
        }
    });
    let values: Vec<u64> = waiters.into_iter().map(|waiter| waiter.get().unwrap()).collect();
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    thread.join().unwrap();
}

/// Pending until `flag` is set; polls are counted.
struct UntilSet {
    flag: Arc<AtomicBool>,
    polls: Rc<Cell<u32>>,
}

impl Future for UntilSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        if self.flag.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            // Wakes itself: it has more to do at once.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn a_future_that_wakes_itself_lets_the_other_green_threads_run() {
    let flag = Arc::new(AtomicBool::new(false));
    let polls = Rc::new(Cell::new(0));
    let setter = {
        let flag = flag.clone();
        // Runs only if the busy future lets the hub run it.
        greenery::spawn(move || flag.store(true, Ordering::Release))
    };
    greenery::block_on(UntilSet { flag, polls: polls.clone() });
    assert_eq!(polls.get(), 2, "polled, woke itself, yielded to the setter, polled again");
    setter.get().unwrap();
}

#[test]
fn a_timeout_and_a_kill_reach_a_green_thread_in_block_on() {
    let timed =
        greenery::with_timeout(Duration::from_millis(5), || greenery::block_on(std::future::pending::<()>()));
    assert!(timed.is_err(), "the timeout expired in block_on");

    let stuck = greenery::spawn(|| greenery::block_on(std::future::pending::<()>()));
    greenery::hub::idle().unwrap();
    stuck.kill().unwrap();
    assert!(stuck.get().unwrap_err().is_killed());
}

#[test]
fn a_future_from_another_thread_never_counts_as_a_deadlock() {
    // Nothing on this hub can complete the future: only the other thread,
    // a while after the main greenlet parked. The hub must wait rather than
    // report a deadlock.
    let (tx, rx) = oneshot::channel::<u8>();
    let (go, gone) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        gone.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        tx.send(1).unwrap();
    });
    let parked = greenery::spawn(move || go.send(()).unwrap());
    assert_eq!(greenery::block_on(rx).unwrap(), 1);
    parked.get().unwrap();
    thread.join().unwrap();
}

#[test]
fn async_code_on_another_thread_awaits_a_green_thread() {
    let hub = Handle::current();
    let remote = std::thread::spawn(move || {
        let future = hub.spawn(|| {
            greenery::sleep(Duration::from_millis(1));
            String::from("green")
        });
        futures::executor::block_on(future)
    });
    // This thread's hub must run while the other thread waits.
    let outcome = greenery::hub::spawn_blocking(move || remote.join().unwrap()).unwrap();
    assert_eq!(outcome.unwrap(), "green");
}

#[test]
fn a_panic_in_a_spawned_green_thread_reaches_the_future_with_its_payload() {
    let outcome = greenery::block_on(Handle::current().spawn(|| -> u8 { panic!("boom from green code") }));
    let payload = outcome.unwrap_err().into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom from green code"));
}

#[test]
fn dropping_the_future_kills_the_green_thread() {
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let future = {
        let (dropped, started) = (dropped.clone(), started.clone());
        Handle::current().spawn(move || {
            let _guard = Dropped(dropped);
            started.store(true, Ordering::Release);
            greenery::sleep(Duration::from_secs(3600));
        })
    };
    // Let it start and park, then drop the future.
    while !started.load(Ordering::Acquire) {
        greenery::sleep(Duration::from_millis(1));
    }
    drop(future);
    while !dropped.load(Ordering::Acquire) {
        greenery::sleep(Duration::from_millis(1));
    }
    greenery::hub::idle().unwrap();

    // Dropped before its green thread was even spawned: it never runs.
    let ran = Arc::new(AtomicBool::new(false));
    let future = {
        let ran = ran.clone();
        Handle::current().spawn(move || ran.store(true, Ordering::Release))
    };
    drop(future);
    greenery::hub::idle().unwrap();
    assert!(!ran.load(Ordering::Acquire));
}

#[test]
fn a_green_future_awaited_on_its_own_hub() {
    let value = greenery::block_on(async {
        let a = Handle::current().spawn(|| 20).await.unwrap();
        let b = Handle::current().spawn(|| 22).await.unwrap();
        a + b
    });
    assert_eq!(value, 42);
}

/// An echo server on a green thread, for the async stream tests: it echoes
/// each connection's bytes back until the connection's end.
#[cfg(any(feature = "futures-io", feature = "tokio"))]
fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = greenery::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    greenery::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).unwrap() {
                0 => break,
                n => stream.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    addr
}

#[cfg(feature = "futures-io")]
#[test]
fn greenery_streams_are_futures_async_read_and_write_in_block_on() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    let addr = echo_server();
    let mut stream = greenery::net::TcpStream::connect(addr).unwrap();
    let echoed = greenery::block_on(async {
        // More than a socket buffer, so that writes wait for room as well.
        let sent: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut received = vec![0u8; sent.len()];
        let (mut reader, mut writer) = (&stream, &stream);
        let write = async {
            writer.write_all(&sent).await.unwrap();
            writer.close().await.unwrap();
        };
        let read = async { reader.read_exact(&mut received).await.unwrap() };
        futures::join!(write, read);
        received == sent
    });
    assert!(echoed, "the bytes came back as sent");
    let mut rest = Vec::new();
    greenery::block_on(stream.read_to_end(&mut rest)).unwrap();
    assert!(rest.is_empty());
}

#[cfg(feature = "tokio")]
#[test]
fn greenery_streams_are_tokio_async_read_and_write_in_block_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = echo_server();
    let mut stream = greenery::net::TcpStream::connect(addr).unwrap();
    let reply = greenery::block_on(async {
        stream.write_all(b"tokio over green").await.unwrap();
        let mut reply = [0u8; 16];
        stream.read_exact(&mut reply).await.unwrap();
        AsyncWriteExt::shutdown(&mut stream).await.unwrap();
        reply
    });
    assert_eq!(&reply, b"tokio over green");
}
