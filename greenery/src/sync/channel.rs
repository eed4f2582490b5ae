//! [`Channel`]: a rendezvous between green threads (gevent's `Channel`).
//!
//! # Protocol
//!
//! A putter that blocks leaves an *offer* at the back of `offers`: its value
//! and its waiter. A getter takes the offer at the front, moves the value
//! out and wakes the putter; that is the moment the value is delivered,
//! and it happens in the getter, which returns the value without waiting
//! again. So:
//!
//! - A putter woken, or leaving (timed out, killed, unwound by a
//!   [`Timeout`](crate::Timeout)), looks at its offer: emptied means
//!   delivered (a `put_timeout` then reports success); otherwise it takes
//!   the offer back out of `offers`, value and all, and no getter can see it
//!   any more. A value is never both delivered and handed back.
//! - A getter woken for an offer but killed before it runs has taken
//!   nothing: the offer stays, and the getters' [`WaitQueue`] passes the
//!   wake-up on to the next getter.
//! - [`try_put`](Channel::try_put) succeeds only if it wakes a waiting
//!   getter; its offer has no putter to wake, and like any offer goes to
//!   the next getter if the woken one is killed first. It then yields, so
//!   that the getter runs before it returns (gevent's `put_nowait`).
//!
//! Offers stay in `offers` only while their putter waits (or, for a
//! `try_put`'s, until a getter takes them), so every offer there holds its
//! value.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::queue_core::{Stop, block_on, deadline_after, try_outcome};
use super::queue_error::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use super::queue_iter::{Iter, Receive, TryIter};
use crate::hub::{Wait, WaitQueue, Waiter, Wake, park};

/// A rendezvous between green threads (gevent's `Channel`, Go's unbuffered
/// channel): [`put`](Channel::put) waits until a getter has taken the value,
/// and [`get`](Channel::get) waits until a putter offers one. The channel
/// holds no value of its own.
///
/// - **Order.** Putters are served in the order they began to wait, and so
///   are getters.
/// - **Nothing is lost or duplicated.** A value is either taken by exactly
///   one getter, or handed back to its putter in the error. A putter that
///   times out or is killed after a getter took its value has delivered it
///   ([`put_timeout`](Channel::put_timeout) then returns `Ok`); before, it
///   withdraws it and no getter ever sees it (a killed putter drops it as
///   it unwinds). A getter killed before it runs takes nothing: the value
///   goes to the next getter.
/// - **Shutdown.** [`shutdown`](Channel::shutdown) wakes every waiter: puts
///   fail, handing their value back, and gets fail once no value is on
///   offer.
///
/// Its errors are the queues' ([`PutError`](super::PutError),
/// [`GetError`](super::GetError), ...): on a channel, `TryPutError::Full`
/// means that no getter was waiting, and `TryGetError::Empty` that no putter
/// was.
///
/// ```
/// use std::rc::Rc;
/// use greenery::sync::Channel;
///
/// let channel = Rc::new(Channel::new());
/// let putter = greenery::spawn({
///     let channel = channel.clone();
///     move || {
///         channel.put("ping").unwrap(); // returns once the main greenlet has it
///         "delivered"
///     }
/// });
/// assert_eq!(channel.get(), Ok("ping"));
/// assert_eq!(putter.get().unwrap(), "delivered");
/// ```
///
/// The channel is `!Send` and `!Sync`: it belongs to the hub of its thread,
/// whose green threads it wakes (another thread reaches them through a
/// [`Handle`](crate::hub::Handle)).
pub struct Channel<T> {
    /// Values on offer, first come first served.
    offers: RefCell<VecDeque<Rc<Offer<T>>>>,
    getters: WaitQueue,
    shut_down: Cell<bool>,
}

/// A value on offer: see the module documentation.
struct Offer<T> {
    /// `None` once a getter took it.
    value: RefCell<Option<T>>,
    /// The putter waiting for it to be taken (`None` for a `try_put`).
    putter: Option<Rc<Waiter>>,
}

/// A blocked putter's offer; withdrawn (the value dropped, if still there)
/// however the putter leaves.
struct Pending<'a, T> {
    channel: &'a Channel<T>,
    offer: Rc<Offer<T>>,
}

impl<T> Pending<'_, T> {
    /// Takes the offer out of the channel; returns its value unless a
    /// getter took it first.
    fn withdraw(&self) -> Option<T> {
        let mut offers = self.channel.offers.borrow_mut();
        if let Some(index) = offers.iter().position(|offer| Rc::ptr_eq(offer, &self.offer)) {
            offers.remove(index);
        }
        drop(offers);
        self.offer.value.borrow_mut().take()
    }
}

impl<T> Drop for Pending<'_, T> {
    fn drop(&mut self) {
        drop(self.withdraw());
    }
}

impl<T> Channel<T> {
    /// A channel, with nobody waiting on it.
    pub fn new() -> Self {
        Channel {
            offers: RefCell::new(VecDeque::new()),
            getters: WaitQueue::new("Channel.get"),
            shut_down: Cell::new(false),
        }
    }

    /// Offers `value` and waits until a getter has taken it.
    ///
    /// A green thread killed while it waits here (or unwound by an expired
    /// [`Timeout`](crate::Timeout)) withdraws the value and drops it as it
    /// unwinds, unless a getter had taken it already: then it was delivered.
    ///
    /// # Errors
    ///
    /// Each hands `value` back, which no getter has seen:
    /// [`PutError::Closed`](super::PutError::Closed) if the channel is (or,
    /// while waiting, was) shut down;
    /// [`PutError::Deadlock`](super::PutError::Deadlock) if no getter could
    /// ever come.
    ///
    /// ```
    /// let channel = greenery::sync::Channel::new();
    /// let err = channel.put(1).unwrap_err(); // no green thread to get it
    /// assert!(err.is_deadlock());
    /// assert_eq!(err.into_inner(), 1);
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.put_until(value, None).map_err(|(stop, value)| stop.put_error(value))
    }

    /// [`put`](Self::put), waiting at most `timeout` for a getter to take
    /// the value. `Ok` means that one did, even if the time ran out just
    /// after.
    ///
    /// # Errors
    ///
    /// Each hands `value` back, which no getter has seen:
    /// [`PutTimeoutError::TimedOut`](super::PutTimeoutError::TimedOut) if no
    /// getter took it in time, otherwise as for [`put`](Self::put).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenery::sync::{Channel, PutTimeoutError};
    ///
    /// let channel = Channel::new();
    /// assert_eq!(channel.put_timeout(1, Duration::from_millis(10)), Err(PutTimeoutError::TimedOut(1)));
    /// ```
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_until(value, deadline_after(timeout)).map_err(|(stop, value)| stop.put_timeout_error(value))
    }

    fn put_until(&self, value: T, deadline: Option<Instant>) -> Result<(), (Stop, T)> {
        if self.shut_down.get() {
            return Err((Stop::Closed, value));
        }
        let waiter = Waiter::new();
        let offer = Rc::new(Offer { value: RefCell::new(Some(value)), putter: Some(waiter.clone()) });
        self.offers.borrow_mut().push_back(offer.clone());
        self.getters.notify_one();
        let pending = Pending { channel: self, offer };
        loop {
            if pending.offer.value.borrow().is_none() {
                return Ok(()); // taken
            }
            let stop = if self.shut_down.get() {
                Stop::Closed
            } else {
                match park(&waiter, Wait::Primitive("Channel.put", std::ptr::from_ref(self).addr()), deadline)
                {
                    Wake::Notified => continue,
                    Wake::TimedOut => Stop::TimedOut,
                    Wake::Deadlock => Stop::Deadlock,
                }
            };
            // Taken in the meantime (a getter ran first): delivered.
            return pending.withdraw().map_or(Ok(()), |value| Err((stop, value)));
        }
    }

    /// Hands `value` to a getter that is waiting, and lets it run before
    /// returning (gevent's `put_nowait`, which switches to the getter); never
    /// waits for a getter. If that getter is killed before it runs, the
    /// value goes to the next getter.
    ///
    /// Letting the getter run is a yield to the hub (unless this is called
    /// on the hub itself, in a timer callback or link): the green threads
    /// ready before the getter run first, and the caller runs again after
    /// it. If the caller is killed (or unwound by a
    /// [`Timeout`](crate::Timeout)) during that yield, the value stays on
    /// offer for the getter.
    ///
    /// # Errors
    ///
    /// Each hands `value` back: [`TryPutError::Full`](super::TryPutError::Full)
    /// if no getter is waiting,
    /// [`TryPutError::Closed`](super::TryPutError::Closed) if the channel is
    /// shut down.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use greenery::sync::{Channel, TryPutError};
    ///
    /// let channel = Rc::new(Channel::new());
    /// assert_eq!(channel.try_put(1), Err(TryPutError::Full(1))); // nobody waits
    /// let getter = greenery::spawn({
    ///     let channel = channel.clone();
    ///     move || channel.get().unwrap()
    /// });
    /// greenery::yield_now(); // the getter starts and waits
    /// assert_eq!(channel.try_put(2), Ok(()));
    /// assert!(getter.is_ready()); // it ran before `try_put` returned
    /// assert_eq!(getter.get().unwrap(), 2);
    /// ```
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        if self.shut_down.get() {
            return Err(TryPutError::Closed(value));
        }
        if !self.getters.notify_one() {
            return Err(TryPutError::Full(value));
        }
        self.offers.borrow_mut().push_back(Rc::new(Offer { value: RefCell::new(Some(value)), putter: None }));
        // gevent switches to the getter at once: let it run before we return.
        if !crate::hub::is_on_hub() {
            crate::yield_now();
        }
        Ok(())
    }

    /// Waits for a putter to offer a value, and takes it. After
    /// [`shutdown`](Self::shutdown) it still takes the values on offer, then
    /// fails.
    ///
    /// A green thread killed while it waits here (or unwound by an expired
    /// [`Timeout`](crate::Timeout)) takes nothing, even if a value was
    /// offered to it just before: the value goes to the next getter.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`](super::GetError::Closed) if the channel is shut
    /// down and nothing is on offer;
    /// [`GetError::Deadlock`](super::GetError::Deadlock) if no putter could
    /// ever come.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(None).map_err(Stop::get_error)
    }

    /// [`get`](Self::get), waiting at most `timeout` for a value.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::TimedOut`](super::GetTimeoutError::TimedOut) if no
    /// putter came in time, otherwise as for [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_until(deadline_after(timeout)).map_err(Stop::get_timeout_error)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, Stop> {
        block_on(&self.getters, deadline, || self.attempt_get())
    }

    /// Takes the first value on offer and wakes its putter.
    fn attempt_get(&self) -> Option<Result<T, Stop>> {
        let offer = self.offers.borrow_mut().pop_front();
        match offer {
            Some(offer) => {
                let value = offer.value.borrow_mut().take().expect("an offer in the channel holds its value");
                if let Some(putter) = &offer.putter {
                    putter.wake();
                }
                Some(Ok(value))
            }
            None if self.shut_down.get() => Some(Err(Stop::Closed)),
            None => None,
        }
    }

    /// Takes a value from a putter that is waiting; never waits.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`](super::TryGetError::Empty) if no value is on
    /// offer; [`TryGetError::Closed`](super::TryGetError::Closed) if none is
    /// and the channel is shut down.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        try_outcome(self.attempt_get())
    }

    /// How many values are on offer minus how many getters wait (gevent's
    /// `balance`): positive when putters wait for getters, negative when
    /// getters wait for putters.
    pub fn balance(&self) -> isize {
        let offered = self.offers.borrow().len();
        let getters = self.getters.len();
        isize::try_from(offered).unwrap_or(isize::MAX) - isize::try_from(getters).unwrap_or(isize::MAX)
    }

    /// Shuts the channel down: every green thread waiting on it wakes up.
    /// From now on puts fail, handing their value back, and gets fail once
    /// no value is on offer. Shutting down again does nothing.
    ///
    /// ```
    /// use greenery::sync::{Channel, GetError, PutError};
    ///
    /// let channel = Channel::new();
    /// channel.shutdown();
    /// assert_eq!(channel.put(1), Err(PutError::Closed(1)));
    /// assert_eq!(channel.get(), Err(GetError::Closed));
    /// ```
    pub fn shutdown(&self) {
        self.shut_down.set(true);
        self.getters.notify_all();
        let putters: Vec<_> = self.offers.borrow().iter().filter_map(|offer| offer.putter.clone()).collect();
        for putter in putters {
            putter.wake();
        }
    }

    /// Whether the channel was shut down.
    pub fn is_shutdown(&self) -> bool {
        self.shut_down.get()
    }

    /// An iterator that [`get`](Self::get)s values until the channel is shut
    /// down (see [`Iter`](super::Iter)).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter::new(self)
    }

    /// An iterator over the values on offer, taken without waiting (see
    /// [`TryIter`](super::TryIter)).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter::new(self)
    }
}

impl<T> Receive<T> for Channel<T> {
    fn receive(&self) -> Result<T, GetError> {
        self.get()
    }

    fn try_receive(&self) -> Result<T, TryGetError> {
        self.try_get()
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<'a, T> IntoIterator for &'a Channel<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("offered", &self.offers.borrow().len())
            .field("getters", &self.getters.len())
            .field("shut_down", &self.shut_down.get())
            .finish()
    }
}
