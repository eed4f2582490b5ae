//! What the queue and channel tests share: timeouts, a value that counts
//! its drops, and the many-green-threads scenarios, run against every queue
//! type and the channel.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenery::sync::{
    Channel, GetTimeoutError, Iter, LifoQueue, PriorityQueue, PutError, PutTimeoutError, Queue,
};
use greenery::{sleep, spawn};

/// Long enough never to expire in a passing test: it only turns a hang into
/// a failure.
pub const GENEROUS: Duration = Duration::from_secs(10);
/// For waits that are meant to time out.
pub const SHORT: Duration = Duration::from_millis(10);

/// Counts how many were dropped, to see that a value is neither lost nor
/// duplicated.
#[derive(Debug)]
pub struct Tracked {
    pub id: u32,
    pub drops: Rc<Cell<u32>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// A small deterministic generator, to vary timeouts and kills.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The calls the scenarios make, on any queue type or the channel.
pub trait Endpoint: 'static {
    fn put(&self, value: u32) -> Result<(), PutError<u32>>;
    fn put_timeout(&self, value: u32, timeout: Duration) -> Result<(), PutTimeoutError<u32>>;
    fn get_timeout(&self, timeout: Duration) -> Result<u32, GetTimeoutError>;
    fn iter(&self) -> Iter<'_, u32>;
    fn shutdown(&self);
}

macro_rules! endpoint {
    ($($ty:ty),*) => {$(
        impl Endpoint for $ty {
            fn put(&self, value: u32) -> Result<(), PutError<u32>> {
                <$ty>::put(self, value)
            }
            fn put_timeout(&self, value: u32, timeout: Duration) -> Result<(), PutTimeoutError<u32>> {
                <$ty>::put_timeout(self, value, timeout)
            }
            fn get_timeout(&self, timeout: Duration) -> Result<u32, GetTimeoutError> {
                <$ty>::get_timeout(self, timeout)
            }
            fn iter(&self) -> Iter<'_, u32> {
                <$ty>::iter(self)
            }
            fn shutdown(&self) {
                <$ty>::shutdown(self)
            }
        }
    )*};
}

endpoint!(Queue<u32>, LifoQueue<u32>, PriorityQueue<u32>, Channel<u32>);

/// Whether [`every_value_received_once`] kills producers too. A channel's
/// putter killed after a getter took its value has delivered it without its
/// put returning, so there only consumers are killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillProducers {
    Yes,
    No,
}

/// Producers and consumers with short timeouts (a timed-out put retries
/// with the value handed back), consumers killed and replaced wherever they
/// wait, maybe producers killed too: every value whose put returned `Ok` is
/// received exactly once, and no other value is.
pub fn every_value_received_once(endpoint: Rc<impl Endpoint>, kill_producers: KillProducers) {
    const PRODUCERS: u32 = 12;
    const PER_PRODUCER: u32 = 150;
    let put_ok = Rc::new(RefCell::new(Vec::new()));
    let received = Rc::new(RefCell::new(Vec::new()));
    let rng = Rc::new(RefCell::new(XorShift(0x9E37_79B9_7F4A_7C15)));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (endpoint, put_ok, rng) = (endpoint.clone(), put_ok.clone(), rng.clone());
            spawn(move || {
                for n in 0..PER_PRODUCER {
                    let mut value = p * 1000 + n;
                    loop {
                        let wait = Duration::from_micros(rng.borrow_mut().below(2000));
                        match endpoint.put_timeout(value, wait) {
                            Ok(()) => break,
                            Err(PutTimeoutError::TimedOut(back)) => value = back,
                            Err(err) => panic!("unexpected {err}"),
                        }
                    }
                    put_ok.borrow_mut().push(value);
                }
            })
        })
        .collect();
    let consumer = || {
        let (endpoint, received, rng) = (endpoint.clone(), received.clone(), rng.clone());
        spawn(move || {
            loop {
                let wait = Duration::from_micros(rng.borrow_mut().below(3000));
                match endpoint.get_timeout(wait) {
                    Ok(value) => received.borrow_mut().push(value),
                    Err(GetTimeoutError::TimedOut) => {}
                    Err(GetTimeoutError::Closed) => break,
                    Err(err) => panic!("unexpected {err}"),
                }
            }
        })
    };
    let mut consumers: Vec<_> = (0..7).map(|_| consumer()).collect();
    // A green thread that is not running is waiting, or ready to resume
    // after a wake-up: kill one now and then.
    let mut killed_producers = 0;
    for round in 0..40 {
        let pause = Duration::from_micros(rng.borrow_mut().below(1500));
        sleep(pause);
        let victim = rng.borrow_mut().below(consumers.len() as u64) as usize;
        consumers[victim].kill().unwrap();
        consumers[victim] = consumer();
        if kill_producers == KillProducers::Yes && round % 15 == 14 {
            producers[killed_producers * 5].kill_async();
            killed_producers += 1;
        }
    }
    greenery::hub::joinall(&producers, None, false).unwrap();
    endpoint.shutdown();
    greenery::hub::joinall(&consumers, None, false).unwrap();
    let mut put_ok = put_ok.take();
    let mut received = received.take();
    assert!(put_ok.len() >= (PRODUCERS as usize - killed_producers) * PER_PRODUCER as usize);
    put_ok.sort_unstable();
    received.sort_unstable();
    assert_eq!(received, put_ok);
}

/// Twenty producers and as many consumers iterating, all blocking without
/// timeouts: every value is received exactly once.
pub fn every_value_received_once_blocking(endpoint: Rc<impl Endpoint>) {
    let received = Rc::new(RefCell::new(Vec::new()));
    let consumers: Vec<_> = (0..20)
        .map(|_| {
            let (endpoint, received) = (endpoint.clone(), received.clone());
            spawn(move || {
                for value in endpoint.iter() {
                    received.borrow_mut().push(value);
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..20u32)
        .map(|p| {
            let endpoint = endpoint.clone();
            spawn(move || (0..100).for_each(|n| endpoint.put(p * 100 + n).unwrap()))
        })
        .collect();
    greenery::hub::joinall(&producers, None, false).unwrap();
    endpoint.shutdown();
    greenery::hub::joinall(&consumers, None, false).unwrap();
    let mut received = received.take();
    received.sort_unstable();
    assert_eq!(received, (0..2000).collect::<Vec<_>>());
}

/// Blocks the OS thread (and so the hub) for `duration`, whatever the
/// `patch` feature does to std's sleep: a raw system call, which no hook
/// sees.
pub fn block_os_thread(duration: Duration) {
    let time = libc::timespec {
        tv_sec: duration.as_secs() as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a relative sleep on a timespec of our own; an interruption
    // only ends it early, which the callers allow for (they wait longer than
    // they need).
    unsafe {
        libc::syscall(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &time,
            std::ptr::null_mut::<libc::timespec>(),
        )
    };
}
