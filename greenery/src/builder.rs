//! [`Builder`]: names and stack sizes for coroutines and generators.

use std::borrow::Cow;

use crate::greenlet::{Greenlet, Value};
use crate::stack::StackError;
use crate::{Co, Coroutine, Generator, Yielder};

/// Configures a coroutine or generator before it is created: its name (shown
/// in stack-overflow reports and `Debug` output) and its stack size.
///
/// ```
/// use greenery::{Builder, Generator};
///
/// let mut squares: Generator<(), u64> = Builder::new()
///     .name("squares")
///     .stack_size(64 * 1024)
///     .generator(|co, ()| {
///         for i in 1..=3 {
///             co.yield_(i * i);
///         }
///     })?;
/// assert_eq!(squares.name(), "squares");
/// assert_eq!(squares.by_ref().collect::<Vec<_>>(), [1, 4, 9]);
/// # Ok::<(), greenery::StackError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: the closure's type name as the name and
    /// a stack of [`default_size`](crate::stack::default_size).
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the coroutine.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages).
    ///
    /// Only the pages the coroutine touches use memory, so a generous size
    /// costs address space, not RAM.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Creates a [`Coroutine`].
    ///
    /// # Errors
    ///
    /// If the stack cannot be allocated or is too small for the closure; the
    /// error names the limit that was hit.
    pub fn coroutine<I, Y, R, F>(self, body: F) -> Result<Coroutine<I, Y, R>, StackError>
    where
        I: 'static,
        Y: 'static,
        R: 'static,
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Coroutine::build(body, self.name, self.stack_size)
    }

    /// Creates a [`Generator`].
    ///
    /// # Errors
    ///
    /// As for [`coroutine`](Self::coroutine).
    pub fn generator<I, Y, R, E, F>(self, body: F) -> Result<Generator<I, Y, R, E>, StackError>
    where
        I: 'static,
        Y: 'static,
        R: 'static,
        E: 'static,
        F: FnOnce(&Co<I, Y, E>, I) -> R + 'static,
    {
        Generator::build(body, self.name, self.stack_size)
    }

    /// Creates a [`Generator`] whose body returns `Result<T, E>`, `E` being
    /// the error that can be thrown in, like
    /// [`Generator::fallible`] (which says why).
    ///
    /// ```
    /// use greenery::Builder;
    ///
    /// let mut g = Builder::new().name("checked").fallible_generator(|co, ()| {
    ///     co.try_yield("ready")?;
    ///     Ok(())
    /// })?;
    /// assert_eq!(g.next(), Some("ready"));
    /// assert!(g.throw(std::fmt::Error).is_ok()); // comes out as the body's `Err`
    /// # Ok::<(), greenery::StackError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`coroutine`](Self::coroutine).
    pub fn fallible_generator<I, Y, T, E, F>(
        self,
        body: F,
    ) -> Result<Generator<I, Y, Result<T, E>, E>, StackError>
    where
        I: 'static,
        Y: 'static,
        T: 'static,
        E: 'static,
        F: FnOnce(&Co<I, Y, E>, I) -> Result<T, E> + 'static,
    {
        Generator::build(body, self.name, self.stack_size)
    }

    /// Spawns a green thread on this thread's hub, like [`spawn`](crate::spawn),
    /// with this builder's name and stack size.
    ///
    /// The stack is taken when the green thread starts; if none can be had
    /// then, the green thread never runs and its
    /// [`get`](crate::JoinHandle::get) returns an error naming the limit.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        crate::hub::spawn_with(f, self.name, self.stack_size)
    }

    /// Creates a green thread with this builder's name and stack size, not
    /// started, like [`JoinHandle::new`](crate::JoinHandle::new) (gevent's
    /// `Greenlet(f)`): it runs once [`start`](crate::JoinHandle::start)ed.
    ///
    /// ```
    /// let worker = greenery::Builder::new().name("worker").unstarted(|| 1);
    /// assert_eq!(worker.name(), "worker");
    /// worker.start();
    /// assert_eq!(worker.get().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn unstarted<F, T>(self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        crate::hub::make_green_thread(f, self.name, self.stack_size)
    }

    /// Creates a [`Greenlet`] whose parent is the current greenlet.
    ///
    /// # Errors
    ///
    /// As for [`coroutine`](Self::coroutine).
    pub fn greenlet<F, R>(self, body: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        Greenlet::build(body, self.name, self.stack_size)
    }
}
