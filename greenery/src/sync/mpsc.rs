//! Channels between threads: [`bounded`] and [`unbounded`] multi-producer,
//! single-consumer channels whose ends are `Send`.
//!
//! The other types of [`sync`](super) belong to one hub. These connect hubs
//! (one per OS thread, see [`run_on`](crate::hub::run_on)), plain OS threads
//! and async code:
//!
//! - on a green thread (or a thread's main greenlet, when the thread has a
//!   hub), a blocking `send` or `recv` parks only that green thread: the
//!   hub runs the others meanwhile;
//! - on a plain OS thread (one that never used greenery), it blocks the
//!   thread;
//! - in async code, [`Sender::send_async`] and [`Receiver::recv_async`] are
//!   futures, for any executor.
//!
//! # Protocol
//!
//! The channel is a queue behind a mutex, with the wakers of the parties
//! that wait: the receiver's, and those of senders waiting for room in a
//! bounded channel, in the order they came. Every blocking call is one of
//! the futures, run to completion with [`block_on`](crate::block_on) where
//! the thread has a hub and with a parking loop where it does not. A value
//! that is not delivered comes back in the error.
//!
//! Waiting for another thread may last for ever: a green thread blocked here
//! never makes its hub report a [`Deadlock`](crate::hub::Deadlock). The
//! `*_timeout` forms bound the wait, and a [`Timeout`](crate::Timeout) or a
//! kill reaches a green thread that waits.
//!
//! ```
//! use greenery::sync::mpsc;
//!
//! let (tx, rx) = mpsc::bounded::<u64>(16);
//! let producers: Vec<_> = (0..4u64)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         // Each OS thread has a hub of its own; its green threads send.
//!         std::thread::spawn(move || {
//!             let senders: Vec<_> = (0..10u64)
//!                 .map(|i| {
//!                     let tx = tx.clone();
//!                     greenery::spawn(move || tx.send(p * 100 + i).unwrap())
//!                 })
//!                 .collect();
//!             greenery::hub::joinall(&senders, None, true).unwrap();
//!         })
//!     })
//!     .collect();
//! drop(tx);
//! // This thread's main greenlet receives until every sender is gone.
//! let mut received: Vec<u64> = rx.iter().collect();
//! received.sort();
//! assert_eq!(received.len(), 40);
//! for producer in producers {
//!     producer.join().unwrap();
//! }
//! ```

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::anywhere::wait_anywhere;

/// A channel with room for `capacity` values (at least 1): a send into a
/// full channel waits for room.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(capacity.max(1)))
}

/// A channel without a bound: a send never waits.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

fn make<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity,
            senders: 1,
            receiver: true,
            closed: false,
            receiving: None,
            sending: VecDeque::new(),
        }),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: VecDeque<T>,
    capacity: Option<usize>,
    /// Live senders.
    senders: usize,
    /// Whether the receiver is alive.
    receiver: bool,
    /// Closed by the receiver: sends fail, what is queued can still be
    /// received.
    closed: bool,
    /// The waker of the receiver waiting for a value.
    receiving: Option<Waker>,
    /// Senders waiting for room, in the order they came: their ids and
    /// wakers.
    sending: VecDeque<(u64, Waker)>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl<T> State<T> {
    fn is_full(&self) -> bool {
        self.capacity.is_some_and(|capacity| self.queue.len() >= capacity)
    }

    /// Whether a send can never be delivered.
    fn refuses(&self) -> bool {
        !self.receiver || self.closed
    }
}

/// The sending end of a channel from [`bounded`] or [`unbounded`]: `Send`,
/// and cloned for more producers.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end of a channel from [`bounded`] or [`unbounded`]:
/// `Send`, one per channel.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// The value of a send that could not be delivered: the receiver is gone
/// or closed the channel.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] or [`Sender::send_timeout`] did not deliver a
/// value; the value is in it.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (and, for `send_timeout`, stayed full).
    Full(T),
    /// The receiver is gone or closed the channel.
    Disconnected(T),
}

/// Every sender is gone (or the receiver closed the channel) and nothing is
/// left to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Receiver::try_recv`] or [`Receiver::recv_timeout`] returned no
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive yet (and, for `recv_timeout`, nothing came).
    Empty,
    /// Every sender is gone (or the channel is closed) and nothing is left.
    Disconnected,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room if the channel is bounded and full.
    ///
    /// # Errors
    ///
    /// [`SendError`], with the value, if the receiver is gone or closed the
    /// channel.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        wait_anywhere(self.send_async(value), None).unwrap_or_else(|_| unreachable!("no deadline"))
    }

    /// As [`send`](Self::send), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if no room came in time,
    /// [`TrySendError::Disconnected`] if the receiver is gone; either way
    /// with the value.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        let mut send = pin!(self.send_async(value));
        match wait_anywhere(send.as_mut(), Some(Instant::now() + timeout)) {
            Ok(outcome) => outcome.map_err(|SendError(value)| TrySendError::Disconnected(value)),
            Err(()) => Err(TrySendError::Full(send.as_mut().take_value())),
        }
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError`], with the value, if the channel is full or the
    /// receiver gone.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if state.refuses() {
            return Err(TrySendError::Disconnected(value));
        }
        if state.is_full() {
            return Err(TrySendError::Full(value));
        }
        push(state, value);
        Ok(())
    }

    /// A future of [`send`](Self::send), for async code on any executor.
    pub fn send_async(&self, value: T) -> SendFuture<'_, T> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        SendFuture { sender: self, value: Some(value), id: IDS.fetch_add(1, Ordering::Relaxed) }
    }

    /// Whether the receiver is gone or closed the channel.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().refuses()
    }
}

/// Queues `value` and wakes the receiver.
fn push<T>(mut state: MutexGuard<'_, State<T>>, value: T) {
    state.queue.push_back(value);
    let receiving = state.receiving.take();
    drop(state);
    if let Some(waker) = receiving {
        waker.wake();
    }
}

/// The future of [`Sender::send_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    sender: &'a Sender<T>,
    value: Option<T>,
    /// Tells this send's waker from the others in the queue of waiting
    /// senders.
    id: u64,
}

impl<T> SendFuture<'_, T> {
    /// The value of a send that gave up.
    fn take_value(self: Pin<&mut Self>) -> T {
        self.get_mut().value.take().expect("a send that gave up still holds its value")
    }
}

impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.sender.shared.lock();
        let value = this.value.take().expect("SendFuture polled after it completed");
        if state.refuses() {
            state.sending.retain(|(id, _)| *id != this.id);
            return Poll::Ready(Err(SendError(value)));
        }
        // First come, first served: a send goes ahead of those that waited
        // before it only if there is room for them all.
        let ahead = state.sending.iter().position(|(id, _)| *id == this.id).unwrap_or(state.sending.len());
        let room = state.capacity.map_or(usize::MAX, |capacity| capacity.saturating_sub(state.queue.len()));
        if room > ahead {
            state.sending.retain(|(id, _)| *id != this.id);
            push(state, value);
            return Poll::Ready(Ok(()));
        }
        this.value = Some(value);
        match state.sending.iter_mut().find(|(id, _)| *id == this.id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => state.sending.push_back((this.id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if self.value.is_some() {
            // Gave up: out of the line, and the next in line may go.
            let mut state = self.sender.shared.lock();
            state.sending.retain(|(id, _)| *id != self.id);
            let next = state.sending.front().map(|(_, waker)| waker.clone());
            drop(state);
            if let Some(waker) = next {
                waker.wake();
            }
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let receiving = if state.senders == 0 { state.receiving.take() } else { None };
        drop(state);
        if let Some(waker) = receiving {
            waker.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting for one.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once every sender is gone (or the channel is closed)
    /// and nothing is left.
    pub fn recv(&self) -> Result<T, RecvError> {
        wait_anywhere(self.recv_async(), None).unwrap_or_else(|_| unreachable!("no deadline"))
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing came in time,
    /// [`TryRecvError::Disconnected`] once every sender is gone and nothing
    /// is left.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, TryRecvError> {
        match wait_anywhere(self.recv_async(), Some(Instant::now() + timeout)) {
            Ok(outcome) => outcome.map_err(|RecvError| TryRecvError::Disconnected),
            Err(()) => Err(TryRecvError::Empty),
        }
    }

    /// Receives a value if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError`]: empty, or disconnected.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let state = self.shared.lock();
        if !state.queue.is_empty() {
            return Ok(take(state).expect("a value is queued"));
        }
        if state.senders == 0 || state.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// A future of [`recv`](Self::recv), for async code on any executor.
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture { receiver: self }
    }

    /// Closes the channel: sends fail from now on (handing their values
    /// back), and what was sent before can still be received.
    pub fn close(&self) {
        let mut state = self.shared.lock();
        state.closed = true;
        let sending: Vec<Waker> = state.sending.drain(..).map(|(_, waker)| waker).collect();
        drop(state);
        for waker in sending {
            waker.wake();
        }
    }

    /// An iterator that receives until every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }
}

/// Takes the next value, and lets the first waiting sender go.
fn take<T>(mut state: MutexGuard<'_, State<T>>) -> Option<T> {
    let value = state.queue.pop_front()?;
    let next = state.sending.front().map(|(_, waker)| waker.clone());
    drop(state);
    if let Some(waker) = next {
        waker.wake();
    }
    Some(value)
}

/// The future of [`Receiver::recv_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.receiver.shared.lock();
        if !state.queue.is_empty() {
            return Poll::Ready(Ok(take(state).expect("a value is queued")));
        }
        if state.senders == 0 || state.closed {
            return Poll::Ready(Err(RecvError));
        }
        match &mut state.receiving {
            Some(waker) => waker.clone_from(cx.waker()),
            empty => *empty = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver = false;
        state.receiving = None;
        let sending: Vec<Waker> = state.sending.drain(..).map(|(_, waker)| waker).collect();
        // Values still queued are dropped with the last reference.
        drop(state);
        for waker in sending {
            waker.wake();
        }
    }
}

/// The iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendError({self})")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "sending on a closed channel: the receiver is gone or closed it (the value is in the error)",
        )
    }
}

impl<T> Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrySendError({self})")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full (the value is in the error)"),
            TrySendError::Disconnected(_) => f.write_str(
                "sending on a closed channel: the receiver is gone or closed it (the value is in the error)",
            ),
        }
    }
}

impl<T> Error for TrySendError<T> {}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Disconnected(value) => value,
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel: every sender is gone and nothing is left")
    }
}

impl Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("nothing to receive yet"),
            TryRecvError::Disconnected => {
                f.write_str("receiving on a closed channel: every sender is gone and nothing is left")
            }
        }
    }
}

impl Error for TryRecvError {}
