//! Which public types are `Send`, `Sync` and `Unpin`, checked at compile
//! time: this file only builds if the answers are the documented ones.
//!
//! Coroutines, generators, greenlets and their handles are `!Send` and
//! `!Sync` (a suspended stack can hold anything, thread-local addresses
//! included, so it must stay on its thread); so are the `sync` primitives
//! (they wake green threads of their own thread's hub). The `net` sockets
//! and child processes are `Send` but `!Sync`: they move to the hub of the
//! thread that uses them, one thread at a time. Errors and plain data are
//! `Send + Sync`.

use greenery::greenlet::{Greenlet, GreenletLocal, ParentError, SwitchError, Thrown, Value, WrongType};
use greenery::net::{
    Incoming, Interest, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixIncoming, UnixListener,
    UnixStream,
};
use greenery::sync::{
    AlreadySet, AsyncResult, AsyncResultError, BoundedSemaphore, Channel, Condvar, Event, GetError,
    GetTimeoutError, LifoQueue, Mutex, MutexGuard, NotOwner, PriorityQueue, PutError, PutTimeoutError, Queue,
    RLock, RLockGuard, Semaphore, SemaphorePermit, TaskDoneError, TooManyReleases, TryGetError, TryPutError,
};
use greenery::{
    Builder, CloseError, Co, Coroutine, CoroutineResult, ForcedUnwind, Generator, GeneratorExit,
    GeneratorState, GreenletExit, ResumeError, StackError, Yielder,
};

/// Compiles only if `T: Send`.
fn is_send<T: Send>() {}
/// Compiles only if `T: Sync`.
fn is_sync<T: Sync>() {}

/// `AmbiguousIfSend::<_>::some_item` resolves only if `T` is *not* `Send`:
/// for a `Send` type both impls apply and the call is ambiguous.
trait AmbiguousIfSend<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

/// The same for `Sync`.
trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

macro_rules! send_not_sync {
    ($($ty:ty),* $(,)?) => {
        $(
            is_send::<$ty>();
            let _ = <$ty as AmbiguousIfSync<_>>::some_item;
        )*
    };
}

macro_rules! not_send_or_sync {
    ($($ty:ty),* $(,)?) => {
        $(
            let _ = <$ty as AmbiguousIfSend<_>>::some_item;
            let _ = <$ty as AmbiguousIfSync<_>>::some_item;
        )*
    };
}

#[test]
fn coroutines_generators_and_greenlets_stay_on_their_thread() {
    not_send_or_sync!(
        Coroutine<u32, u32, u32>,
        Yielder<u32, u32>,
        Generator<u32, u32, u32>,
        Generator<(), u32>,
        Co<u32, u32>,
        Greenlet,
        Value,
        // They hold the value that arrived.
        Thrown,
        WrongType,
        SwitchError,
    );
}

#[test]
fn green_thread_handles_and_timeouts_stay_on_their_hub() {
    // They hold `Rc`s into their thread's hub.
    not_send_or_sync!(greenery::JoinHandle<u32>, greenery::Timeout);
}

#[test]
fn hub_handles_and_hub_errors_cross_threads() {
    // `Handle` is how other threads reach a hub.
    is_send::<greenery::hub::Handle>();
    is_sync::<greenery::hub::Handle>();
    is_send::<greenery::hub::Deadlock>();
    is_sync::<greenery::hub::Deadlock>();
    is_send::<greenery::hub::TimedOut>();
    is_sync::<greenery::hub::TimedOut>();
}

#[test]
fn sync_primitives_and_their_guards_stay_on_their_thread() {
    not_send_or_sync!(
        Event,
        AsyncResult<u32, u32>,
        Semaphore,
        BoundedSemaphore,
        SemaphorePermit<'static>,
        Mutex<u32>,
        MutexGuard<'static, u32>,
        RLock<u32>,
        RLockGuard<'static, u32>,
        Condvar,
    );
}

#[test]
fn errors_and_plain_data_cross_threads() {
    is_send::<StackError>();
    is_sync::<StackError>();
    is_send::<CloseError>();
    is_sync::<CloseError>();
    is_send::<ResumeError<u32>>();
    is_send::<ParentError>();
    is_sync::<ParentError>();
    is_send::<GeneratorState>();
    is_send::<CoroutineResult<u32, String>>();
    is_send::<Builder>();
    is_sync::<Builder>();
    is_send::<AlreadySet<u32>>();
    is_sync::<AlreadySet<u32>>();
    is_send::<AsyncResultError<u32>>();
    is_sync::<AsyncResultError<u32>>();
    is_send::<TooManyReleases>();
    is_sync::<TooManyReleases>();
    is_send::<NotOwner>();
    is_sync::<NotOwner>();
    // Unwinding payloads must be `Send` to be panic payloads at all.
    is_send::<ForcedUnwind>();
    is_send::<GeneratorExit>();
    is_send::<GreenletExit>();
    // A greenlet-local is declared as a `static`.
    is_sync::<GreenletLocal<std::cell::Cell<u32>>>();
}

#[test]
fn queues_and_channels_stay_on_their_thread_and_their_errors_cross_threads() {
    not_send_or_sync!(
        Queue<u32>,
        LifoQueue<u32>,
        PriorityQueue<u32>,
        Channel<u32>,
        greenery::sync::Iter<'static, u32>,
        greenery::sync::TryIter<'static, u32>,
    );
    is_send::<PutError<u32>>();
    is_sync::<PutError<u32>>();
    is_send::<PutTimeoutError<u32>>();
    is_sync::<PutTimeoutError<u32>>();
    is_send::<TryPutError<u32>>();
    is_sync::<TryPutError<u32>>();
    is_send::<GetError>();
    is_sync::<GetError>();
    is_send::<GetTimeoutError>();
    is_sync::<GetTimeoutError>();
    is_send::<TryGetError>();
    is_sync::<TryGetError>();
    is_send::<TaskDoneError>();
    is_sync::<TaskDoneError>();
}

#[test]
fn sockets_move_between_threads_but_are_used_by_one_at_a_time() {
    send_not_sync!(
        TcpListener,
        TcpStream,
        UdpSocket,
        UnixListener,
        UnixStream,
        UnixDatagram,
        greenery::process::Child,
        greenery::process::ChildStdin,
        greenery::process::ChildStdout,
        greenery::process::ChildStderr,
    );
    // Iterators that borrow a listener: a `&` of a `!Sync` type stays put.
    not_send_or_sync!(Incoming<'static>, UnixIncoming<'static>);
    is_send::<Interest>();
    is_sync::<Interest>();
}

#[test]
fn threadsafe_primitives_and_channels_cross_threads() {
    is_send::<greenery::sync::threadsafe::Event>();
    is_sync::<greenery::sync::threadsafe::Event>();
    is_send::<greenery::sync::threadsafe::AsyncResult<String, String>>();
    is_sync::<greenery::sync::threadsafe::AsyncResult<String, String>>();
    is_send::<greenery::sync::mpsc::Sender<String>>();
    is_send::<greenery::sync::mpsc::Receiver<String>>();
}
