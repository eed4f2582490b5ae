//! Greenlets: symmetric stackful coroutines with Python greenlet's semantics.
//!
//! A [`Greenlet`] is a function running on a stack of its own. Unlike a
//! generator, it does not return to whoever resumed it: any greenlet
//! [`switch`](Greenlet::switch)es straight to any other, handing it a
//! [`Value`]. Each thread has an implicit *main* greenlet (the thread's own
//! stack), which never dies. Every greenlet has a *parent*: when its body
//! returns, the return value goes to the parent, and when it panics, the panic
//! continues in the parent.
//!
//! ```
//! use greenery::greenlet::{self, Greenlet};
//!
//! let main = greenlet::getcurrent();
//! let pong = Greenlet::new(move |ball| {
//!     let mut n: u32 = ball.cast().unwrap();
//!     loop {
//!         n = main.switch_as(n + 1).unwrap(); // back to main, which resumes us
//!     }
//! });
//! assert_eq!(pong.switch_as::<u32>(1u32).unwrap(), 2);
//! assert_eq!(pong.switch_as::<u32>(10u32).unwrap(), 11);
//! ```
//!
//! A switch carries a [`Value`] of any type; [`switch_as`](Greenlet::switch_as)
//! takes it out as the type expected, or says which type arrived instead
//! ([`SwitchError`]).
//!
//! # greenlet's API in greenery
//!
//! | greenlet (Python) | greenery |
//! |---|---|
//! | `greenlet(run, parent=None)` | [`Greenlet::new(run)`](Greenlet::new) (parent: the current greenlet), [`Greenlet::with_parent`], [`Builder::greenlet`](crate::Builder::greenlet) for a name and stack size |
//! | `getcurrent()` | [`getcurrent()`] |
//! | `g.switch(*args)`: the first switch calls `run(*args)` | [`g.switch(v)`](Greenlet::switch): the body receives `v` as its argument |
//! | later switches return the args of the switch back | `switch` returns `Ok(value)`; a [`Value`] holds any `'static` type (`()` and small plain values without allocating) |
//! | `x = g.switch(v)`, then `x` used as, say, an `int`: a `TypeError` where it is used if it is not one | [`let x: u32 = g.switch_as(v)?;`](Greenlet::switch_as) checks the type at the switch: [`SwitchError::WrongType`] names the type expected and the type that arrived, and holds the value; [`Value::cast`] does the same for a body's first value |
//! | `except` around a `switch` catching what is thrown in | `switch` returns `Err(Thrown(v))`, `switch_as` `Err(SwitchError::Thrown(v))`; `?` converts [`Thrown`] and [`WrongType`] into a `SwitchError` |
//! | `run` returns: the value goes to the parent | the parent's pending `switch` returns `Ok(value)` |
//! | an exception in `run` goes to the parent | the panic continues in the parent, at its `switch` |
//! | switching to a dead greenlet goes to its nearest live ancestor | the same; if that is the current greenlet, `switch` returns the value at once |
//! | `g.parent`, `g.parent = p` | [`g.parent()`](Greenlet::parent), [`g.set_parent(&p)`](Greenlet::set_parent) |
//! | `ValueError("cyclic parent chain")` | `Err(ParentError)`, whose message is "cyclic parent chain" |
//! | `g.throw(exc)`: raised at the switch point | [`g.throw(v)`](Greenlet::throw): the pending `switch` returns `Err(Thrown(v))` |
//! | `throw` into an unstarted greenlet: it dies without running, the exception is raised in its parent | the same: its parent's pending `switch` (the caller's `throw`, when the parent is the caller) returns `Err(Thrown(v))` |
//! | `throw()` (`GreenletExit`) into an unstarted greenlet: it dies without running, `GreenletExit` comes back as a value | [`g.kill()`](Greenlet::kill): the parent receives a [`GreenletExit`] value (returned by `kill` when the parent is the caller) |
//! | greenlet 3: `throw` into a dead greenlet goes to its parent like a switch: the exception is raised there | the same: the nearest live ancestor's pending `switch` returns `Err(Thrown(v))`; a suspended parent may handle it, and what it then returns comes back to the thrower |
//! | greenlet 3: `throw()` (`GreenletExit`) into a dead greenlet comes back as a value | [`g.kill()`](Greenlet::kill) on a dead greenlet switches a [`GreenletExit`] value to its nearest live ancestor: `kill` returns `Ok` of it when that is the caller |
//! | `g.throw()` (`GreenletExit`): kill | [`g.kill()`](Greenlet::kill): the pending `switch` unwinds with [`GreenletExit`], running destructors; the parent receives a `GreenletExit` value |
//! | `GreenletExit` is not an error | a body that ends by this unwinding returns a `GreenletExit` value to its parent |
//! | the last reference to a suspended greenlet goes away: `GreenletExit` is thrown into it | dropping the last [`Greenlet`] handle kills it, with the dropper as its parent; a panic while it unwinds is reported on stderr, not propagated |
//! | `g.dead`, `bool(g)`, `g.gr_frame is not None` | [`is_dead`](Greenlet::is_dead), [`is_active`](Greenlet::is_active) (started and not dead), [`is_started`](Greenlet::is_started) |
//! | `greenlet.error: cannot switch to a different thread` | impossible: handles are `!Send` and `!Sync` |
//! | `settrace(cb)` / `gettrace()`: `cb(event, (origin, target))` | [`settrace`] / [`gettrace`], per thread, called for every switch and throw in the greenlet switched to |
//! | `gr_context` | [`GreenletLocal`]: a value per greenlet, empty in a new one |
//!
//! # Costs
//!
//! A switch is one register save and indirect jump (see `arch`), plus a
//! thread-local read and write of the current greenlet and a few checks. A
//! switch carrying `()` or a small plain value allocates nothing. Greenlets
//! take their stacks from the same per-thread pool as generators.
//!
//! # Holding on to the current greenlet
//!
//! A handle keeps its greenlet alive, and a greenlet whose last handle is
//! dropped while it is suspended is killed. A handle to the *current*
//! greenlet kept on its own stack across a switch therefore keeps it from
//! ever being collected: Python's idiom `getcurrent().parent.switch(v)`,
//! written `getcurrent().parent().unwrap().switch(v)`, holds a temporary
//! handle to the current greenlet until the end of the statement. Bind the
//! parent first (`let parent = getcurrent().parent().unwrap();`) and the
//! temporary is gone before the switch.
//!
//! # Switching while unwinding
//!
//! A greenlet may switch away from a destructor while it is unwinding (say,
//! a `finally`-style guard that hands a result to another greenlet while the
//! greenlet is killed). Until it is switched back to, the thread counts as
//! panicking ([`std::thread::panicking`] is true in the other greenlets, and
//! a `MutexGuard` dropped there poisons its mutex). Killing such a greenlet
//! again while it is suspended in the middle of a kill does nothing; throwing
//! into it makes its `switch` return the error. Killing one suspended in the
//! middle of a panic of its own would raise a panic inside a running
//! destructor, which Rust turns into an abort.

mod error;
mod local;
mod trace;
mod value;

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use error::{ParentError, SwitchError, Thrown};
pub use local::GreenletLocal;
pub use trace::{Event, Tracer, gettrace, settrace};
use value::TAG_BITS;
pub use value::{Value, WrongType};

use crate::arch::{self, StackPointer, Word, Words};
use crate::hub::Record;
use crate::raw::UnwindToken;
use crate::sanitizer;
use crate::stack::{self, Limit, Stack, StackError};
use crate::unwind::{self, Payload};

// A switch carries a `Value` as a tag and two words (see
// `Value::into_words`), all in registers, and a control word saying what the
// value is for:
//
//   bits 0-3  the kind (below)
//   bits 4-5  the value's tag (`value::TAG_BITS`)
//   bit 8     `CTRL_TRACE`: a tracer is set; call it on arrival
//   bit 9     `CTRL_ORPHAN`: the sender has no handle left but the one it
//             put in `ORPHAN`, which the receiver drops
//
// Only a plain switch with no flags takes the fast path on arrival. The
// sender's identity, needed by the slow paths, goes through `THREAD.from`.

/// The value is the result of the pending switch.
const CTRL_SWITCH: usize = 0;
/// The value is thrown at the pending switch.
const CTRL_THROW: usize = 1;
/// Unwind the pending switch with [`GreenletExit`].
const CTRL_KILL: usize = 2;
/// The sender finished; the value is its return value.
const CTRL_RETURN: usize = 3;
/// The sender panicked; the value holds the payload.
const CTRL_PANIC: usize = 4;
const CTRL_KIND: usize = 0xf;
const CTRL_TRACE: usize = 1 << 8;
const CTRL_ORPHAN: usize = 1 << 9;

/// Where a greenlet is in its life. The order matters: a switch takes its
/// fast path for `Started` and `Unstarted` (a stack ready to run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum State {
    Started,
    /// Not started; its stack holds the body, ready to run.
    Unstarted,
    /// Started and suspended, with its stack's contents stashed on the heap
    /// (see [`stack::Stash`]): they are put back before it runs again.
    Stashed,
    /// Not started, and no stack yet: the body waits in `lazy` (greenlets
    /// made by the hub, which may make many more than it runs at once).
    Lazy,
    Dead,
}

impl State {
    /// Not dead, and with a stack to switch to.
    #[inline(always)]
    fn has_context(self) -> bool {
        self <= State::Unstarted
    }

    fn is_unstarted(self) -> bool {
        matches!(self, State::Unstarted | State::Lazy)
    }
}

/// The body of a lazy greenlet, until its stack is made.
type LazyBody = Box<dyn LazyLaunch>;

/// A lazy greenlet's body, boxed until it gets a stack; it then moves
/// itself onto the stack (as the launch data of a greenlet made by
/// `build`), so that the box is freed as the greenlet starts instead of
/// living as long as it runs.
trait LazyLaunch {
    fn launch(self: Box<Self>, inner: &Inner) -> Result<(), StackError>;
}

/// The body of a lazy greenlet and what it returns.
struct Lazy<F, R>(F, PhantomData<fn() -> R>);

impl<F, R> LazyLaunch for Lazy<F, R>
where
    F: FnOnce(Value) -> R + 'static,
    R: 'static,
{
    fn launch(self: Box<Self>, inner: &Inner) -> Result<(), StackError> {
        let Lazy(body, _) = *self;
        inner.launch_on_stack(body)
    }
}

/// The shared state of a greenlet; handles are `Rc`s of it.
///
/// `repr(C)` to keep what a switch reads (`sp`, `state`) at the front, in
/// the cache line the reference counts share.
#[repr(C)]
struct Inner {
    /// The suspended context (for an unstarted greenlet, its fresh stack's).
    sp: Cell<StackPointer>,
    state: Cell<State>,
    /// Whether the body ever ran (a greenlet can die without: a throw or a
    /// kill before its first switch).
    ran: Cell<bool>,
    /// Live [`NoStash`](crate::stack::NoStash) guards made on it: while
    /// there are any, its stack is not stashed. (Here, in what would be
    /// padding after the flags.)
    no_stash: Cell<u32>,
    /// `None` for the main greenlet, and once a dead greenlet's stack has
    /// gone back to the pool.
    stack: Cell<Option<Stack>>,
    /// The body and how to drop it, until the first switch moves it out.
    launch: Cell<*mut u8>,
    drop_launch: Cell<unsafe fn(*mut u8)>,
    /// A lazy greenlet's body, and the stack size it asked for.
    lazy: Cell<Option<LazyBody>>,
    stack_size: Option<usize>,
    parent: RefCell<Option<Greenlet>>,
    name: Cow<'static, str>,
    locals: local::Locals,
    /// Kills in flight on this greenlet's stack (their payloads' tokens).
    kills: OnceCell<Arc<AtomicUsize>>,
    /// A running greenlet whose last handle was dropped keeps itself here
    /// (and sets `THREAD.slow`, so that its next switch away hands it over).
    keep_alive: Cell<Option<Greenlet>>,
    /// Its links in its thread's list of parked greenlets (see
    /// [`ParkedList`]), and the hub's sweep generation when it parked.
    parked: ParkedLinks,
    /// Its stack's contents while it is `Stashed`.
    stash: Cell<Option<stack::Stash>>,
    /// What the hub knows about it (for `hub::dump` and the monitor).
    record: Record,
}

/// A handle to a greenlet: see the [module documentation](self).
///
/// Handles are reference-counted; cloning one is cheap. Dropping the last
/// handle to a suspended greenlet kills it (greenlet's garbage-collection
/// rule). Handles are `!Send` and `!Sync`: a greenlet belongs to the thread
/// that made it, like its stack.
pub struct Greenlet(Rc<Inner>);

/// The payload of the unwinding that kills a greenlet (greenlet's
/// `GreenletExit`), and the value its parent receives when it ends that way.
///
/// Catch-all code running in a greenlet should let it through; see
/// [`is_forced_unwind`](crate::is_forced_unwind).
pub struct GreenletExit {
    _token: Option<UnwindToken>,
}

impl fmt::Debug for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GreenletExit")
    }
}

// ------------------------------------------------------------ thread state

/// The current greenlet of this thread (`null` until first needed); whether
/// switches must take the slow path (a tracer is set, or the current greenlet
/// is orphaned); whether a tracer is set; the sender of the last switch that
/// took a slow path. Constant-initialised without a destructor, so reaching
/// it is a plain thread-local access.
struct ThreadState {
    current: Cell<*const Inner>,
    slow: Cell<bool>,
    tracing: Cell<bool>,
    from: Cell<*const Inner>,
    parked: ParkedList,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            current: Cell::new(ptr::null()),
            slow: Cell::new(false),
            tracing: Cell::new(false),
            from: Cell::new(ptr::null()),
            parked: ParkedList { head: Cell::new(ptr::null()), tail: Cell::new(ptr::null()) },
        }
    };
    /// Owns the main greenlet; torn down with the thread.
    static MAIN: MainSlot = const { MainSlot(RefCell::new(None)) };
    /// The handle an orphaned greenlet leaves for the greenlet it switches to.
    static ORPHAN: Cell<Option<Greenlet>> = const { Cell::new(None) };
}

struct MainSlot(RefCell<Option<Greenlet>>);

impl Drop for MainSlot {
    fn drop(&mut self) {
        if let Some(main) = self.0.borrow_mut().take() {
            // Every greenlet's chain of parents ends at its thread's main
            // greenlet, so while any handle to a greenlet of this thread
            // exists, so does the main greenlet, and `current` may keep
            // pointing at it. Only if this is the last handle must `current`
            // forget it.
            if Rc::strong_count(&main.0) == 1 {
                let _ = THREAD.try_with(|thread| thread.current.set(ptr::null()));
            }
            drop(main);
        }
    }
}

/// The current greenlet, creating the main greenlet on first use; `None`
/// while the thread is being torn down.
fn try_current() -> Option<*const Inner> {
    let current = THREAD.with(|thread| thread.current.get());
    if !current.is_null() {
        return Some(current);
    }
    create_main()
}

#[cold]
fn create_main() -> Option<*const Inner> {
    MAIN.try_with(|main| {
        let main_greenlet = Greenlet(Rc::new(Inner {
            sp: Cell::new(StackPointer::MAX),
            state: Cell::new(State::Started),
            ran: Cell::new(true),
            stack: Cell::new(None),
            launch: Cell::new(ptr::null_mut()),
            drop_launch: Cell::new(drop_nothing),
            lazy: Cell::new(None),
            stack_size: None,
            parent: RefCell::new(None),
            name: Cow::Borrowed("main"),
            locals: local::Locals::default(),
            kills: OnceCell::new(),
            keep_alive: Cell::new(None),
            parked: ParkedLinks::new(),
            stash: Cell::new(None),
            no_stash: Cell::new(0),
            record: Record::new(),
        }));
        let inner = Rc::as_ptr(&main_greenlet.0);
        *main.0.borrow_mut() = Some(main_greenlet);
        THREAD.with(|thread| thread.current.set(inner));
        inner
    })
    .ok()
}

fn current_inner() -> *const Inner {
    try_current().expect("greenlets are unavailable while the thread is being torn down")
}

/// A new handle to the greenlet `inner` points at.
///
/// # Safety
///
/// `inner` must belong to a live `Rc<Inner>`.
unsafe fn handle(inner: *const Inner) -> Greenlet {
    // SAFETY: guaranteed by the caller.
    unsafe {
        Rc::increment_strong_count(inner);
        Greenlet(Rc::from_raw(inner))
    }
}

/// The running greenlet (Python's `greenlet.getcurrent()`): the main
/// greenlet of this thread, unless called from inside another greenlet.
///
/// # Panics
///
/// While the thread is being torn down (from a thread-local destructor that
/// runs after greenery's).
pub fn getcurrent() -> Greenlet {
    // SAFETY: the current greenlet is alive: it is running.
    unsafe { handle(current_inner()) }
}

/// The running greenlet, if this thread has made any greenlet (and is not
/// being torn down); makes none (for the panic hook).
pub(crate) fn current_if_any() -> Option<Greenlet> {
    let current = THREAD.try_with(|thread| thread.current.get()).ok()?;
    // SAFETY: a current greenlet that is set is alive: it is running.
    (!current.is_null()).then(|| unsafe { handle(current) })
}

/// [`getcurrent`], or `None` while the thread is being torn down (for code
/// that runs in destructors and panic hooks).
pub(crate) fn try_getcurrent() -> Option<Greenlet> {
    // SAFETY: the current greenlet is alive: it is running.
    try_current().map(|current| unsafe { handle(current) })
}

// ------------------------------------------------------------ creation

/// What a fresh greenlet stack holds for its entry function.
struct Launch<F> {
    body: F,
}

unsafe fn drop_nothing(_: *mut u8) {}

/// # Safety
///
/// `launch` must point at a live `L` nobody else drops.
unsafe fn drop_launch<L>(launch: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::drop_in_place(launch as *mut L) }
}

const MIN_FREE: usize = 1024;

impl Greenlet {
    /// Creates a greenlet that will run `body` when first switched to; its
    /// parent is the current greenlet.
    ///
    /// `body` receives the value of the first switch; what it returns goes to
    /// the parent.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (the message names the limit that was
    /// hit); [`Builder::greenlet`](crate::Builder::greenlet) returns the
    /// [`StackError`] instead.
    #[track_caller]
    pub fn new<F, R>(body: F) -> Greenlet
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        match Greenlet::build(body, None, None) {
            Ok(greenlet) => greenlet,
            Err(err) => panic!("{err}"),
        }
    }

    /// Creates a greenlet whose parent is `parent`.
    ///
    /// # Panics
    ///
    /// As for [`new`](Self::new).
    #[track_caller]
    pub fn with_parent<F, R>(parent: &Greenlet, body: F) -> Greenlet
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        let greenlet = Greenlet::new(body);
        *greenlet.0.parent.borrow_mut() = Some(parent.clone());
        greenlet
    }

    pub(crate) fn build<F, R>(
        body: F,
        name: Option<Cow<'static, str>>,
        stack_size: Option<usize>,
    ) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        unwind::install_panic_hook();
        let name = name.unwrap_or(Cow::Borrowed(std::any::type_name::<F>()));
        let greenlet = Greenlet::unprepared(name, stack_size, getcurrent(), State::Unstarted);
        greenlet.0.launch_on_stack(body)?;
        Ok(greenlet)
    }

    /// A greenlet whose stack is only taken from the pool when it is first
    /// switched to (or [`prepare`](Self::prepare)d): the hub makes green
    /// threads this way, since it may make many more than it runs at once.
    pub(crate) fn lazy<F, R>(
        body: F,
        name: Cow<'static, str>,
        stack_size: Option<usize>,
        parent: Greenlet,
    ) -> Greenlet
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        let greenlet = Greenlet::unprepared(name, stack_size, parent, State::Lazy);
        greenlet.0.lazy.set(Some(Box::new(Lazy(body, PhantomData))));
        greenlet
    }

    /// Gives a lazy greenlet its stack, ready to run; does nothing to any
    /// other greenlet.
    ///
    /// # Errors
    ///
    /// If no stack can be allocated. The greenlet is then dead, without
    /// having run.
    pub(crate) fn prepare(&self) -> Result<(), StackError> {
        if self.0.state.get() != State::Lazy {
            return Ok(());
        }
        let body = self.0.lazy.take().expect("a lazy greenlet holds its body");
        match body.launch(&self.0) {
            Ok(()) => {
                self.0.state.set(State::Unstarted);
                Ok(())
            }
            Err(err) => {
                self.0.state.set(State::Dead);
                Err(err)
            }
        }
    }

    /// Drops the body of a lazy greenlet that never started, and marks it
    /// dead, without switching anywhere.
    pub(crate) fn discard_lazy(&self) {
        if self.0.state.get() == State::Lazy {
            self.discard_unstarted();
        }
    }

    fn unprepared(
        name: Cow<'static, str>,
        stack_size: Option<usize>,
        parent: Greenlet,
        state: State,
    ) -> Greenlet {
        Greenlet(Rc::new(Inner {
            sp: Cell::new(StackPointer::MAX),
            state: Cell::new(state),
            ran: Cell::new(false),
            stack: Cell::new(None),
            launch: Cell::new(ptr::null_mut()),
            drop_launch: Cell::new(drop_nothing),
            lazy: Cell::new(None),
            stack_size,
            parent: RefCell::new(Some(parent)),
            name,
            locals: local::Locals::default(),
            kills: OnceCell::new(),
            keep_alive: Cell::new(None),
            parked: ParkedLinks::new(),
            stash: Cell::new(None),
            no_stash: Cell::new(0),
            record: Record::new(),
        }))
    }
}

impl Inner {
    /// Takes a stack from the pool and lays `body` out on it, ready for the
    /// first switch.
    fn launch_on_stack<F, R>(&self, body: F) -> Result<(), StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: 'static,
    {
        let size = match self.stack_size {
            Some(size) => stack::page_round(size),
            None => stack::default_size(),
        };
        let needed = stack::HEADER_SIZE
            + mem::size_of::<Launch<F>>()
            + mem::align_of::<Launch<F>>()
            + arch::STACK_ALIGNMENT
            + 64;
        if needed + MIN_FREE > size {
            return Err(StackError::new(Limit::TooSmall { needed }, size));
        }
        let mut stack = stack::take(size)?;
        let launch_at = (stack.top() - stack::HEADER_SIZE - mem::size_of::<Launch<F>>())
            & !(mem::align_of::<Launch<F>>() - 1);
        let top = launch_at & !(arch::STACK_ALIGNMENT - 1);
        // SAFETY: `launch_at` is aligned for `Launch<F>` and lies in the
        // stack's usable range below the header, with the arch area below
        // `top` free too (`needed` leaves room for both).
        let sp = unsafe {
            ptr::write(launch_at as *mut Launch<F>, Launch { body });
            arch::init_symmetric_stack(StackPointer::new_unchecked(top), entry::<F, R>, launch_at as *mut u8)
        };
        self.sp.set(sp);
        self.launch.set(launch_at as *mut u8);
        self.drop_launch.set(drop_launch::<Launch<F>>);
        stack.set_name(&self.name);
        self.stack.set(Some(stack));
        Ok(())
    }
}

// ------------------------------------------------------------ switching

impl Greenlet {
    /// Switches to this greenlet, handing it `value` (Python's `switch`).
    ///
    /// If the greenlet has not started, its body starts with `value`;
    /// otherwise its pending `switch` returns `Ok(value)`. If it is dead, the
    /// switch goes to its nearest live ancestor instead, and if that is the
    /// current greenlet, `value` comes straight back.
    ///
    /// Returns what the current greenlet is resumed with: the value of
    /// whichever switch comes back to it, or the return value of a child that
    /// finished.
    ///
    /// # Errors
    ///
    /// [`Thrown`] if a value is [`throw`](Self::throw)n into the current
    /// greenlet instead.
    ///
    /// # Panics
    ///
    /// If a child of the current greenlet panics, the panic continues here.
    /// If the current greenlet is [`kill`](Self::kill)ed, this unwinds with
    /// [`GreenletExit`].
    #[inline]
    pub fn switch<T: 'static>(&self, value: T) -> Result<Value, Thrown> {
        let value = Value::new(value);
        // A handle exists (`self`), so this thread's main greenlet does too
        // (every greenlet's chain of parents ends there), and so does a
        // current greenlet: `THREAD.current` is not null.
        let fast = THREAD.with(|thread| !thread.slow.get()) && self.0.state.get().has_context();
        // Both paths meet before the switch, on two plain registers, so
        // that the value stays in registers all the way through.
        let (target, flags) = if fast { (Rc::as_ptr(&self.0), 0) } else { self.route() };
        // SAFETY: `target` is alive (the chain of parents from `self` holds
        // it) and not dead (checked by the fast path or found by
        // `prepare`), and the running greenlet exists (see above). It may be
        // the running greenlet: the switch then returns `value`.
        let (words, ctrl) = unsafe { switch_to(&*target, value, CTRL_SWITCH | flags) };
        // SAFETY: every switch carries a value's words.
        unsafe { arrive(words, ctrl) }
    }

    /// [`switch`](Self::switch), taking what the current greenlet is resumed
    /// with out as a `T`: the switch and the
    /// [`downcast`](Value::downcast) in one call.
    ///
    /// ```
    /// use greenery::greenlet::{self, Greenlet};
    ///
    /// let main = greenlet::getcurrent();
    /// let doubler = Greenlet::new(move |first| {
    ///     let mut n: u32 = first.downcast().unwrap();
    ///     loop {
    ///         n = main.switch_as(n * 2).unwrap();
    ///     }
    /// });
    /// assert_eq!(doubler.switch_as::<u32>(21u32).unwrap(), 42);
    /// let err = doubler.switch_as::<String>(1u32).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the switch expected a value of type `alloc::string::String`, \
    ///      but the greenlet was resumed with one of type `u32`"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`SwitchError::Thrown`] if a value is thrown into the current greenlet
    /// (what `switch` reports as [`Thrown`]), [`SwitchError::WrongType`] if
    /// the value that arrives is not a `T`: it names both types, and holds
    /// the value.
    ///
    /// # Panics
    ///
    /// As for [`switch`](Self::switch).
    #[inline]
    pub fn switch_as<T: 'static>(&self, value: impl Any) -> Result<T, SwitchError> {
        match self.switch(value) {
            Ok(value) => value.cast::<T>().map_err(SwitchError::WrongType),
            Err(Thrown(value)) => Err(SwitchError::Thrown(value)),
        }
    }

    /// Raises `value` in this greenlet at its pending switch, which returns
    /// `Err(Thrown(value))` (Python's `throw`).
    ///
    /// A greenlet that has not started dies without running its body, and
    /// the value is thrown into its parent instead (and so on up): when
    /// that is the caller, `throw` returns `Err(Thrown(value))`. A throw
    /// into a dead greenlet goes to its parent like a switch (greenlet 3):
    /// it is raised at the pending switch of its nearest live ancestor,
    /// which is the caller (`Err(Thrown(value))` at once) or a suspended
    /// greenlet that may handle it and whose return value then comes back
    /// here. Throwing into the current greenlet returns
    /// `Err(Thrown(value))` at once.
    ///
    /// ```
    /// use greenery::greenlet::{Greenlet, Thrown};
    ///
    /// let done = Greenlet::new(|_| ());
    /// done.switch(()).unwrap();
    /// assert!(done.is_dead());
    /// // Raised in its parent, the caller.
    /// let Err(Thrown(error)) = done.throw("late") else { panic!("not raised") };
    /// assert_eq!(error.downcast::<&str>().ok(), Some("late"));
    /// ```
    ///
    /// Returns what the current greenlet is resumed with, as
    /// [`switch`](Self::switch) does.
    ///
    /// # Errors
    ///
    /// As for [`switch`](Self::switch).
    ///
    /// # Panics
    ///
    /// As for [`switch`](Self::switch).
    pub fn throw<T: 'static>(&self, value: T) -> Result<Value, Thrown> {
        let value = Value::new(value);
        let mut target = self.clone();
        loop {
            match target.0.state.get() {
                State::Started | State::Stashed => return target.send_slow(value, CTRL_THROW),
                // Dies without running; the value goes on to its parent.
                State::Unstarted | State::Lazy => target.discard_unstarted(),
                // Goes to its parent like a switch (greenlet 3).
                State::Dead => {}
            }
            target = target.parent().expect("the main greenlet never dies");
        }
    }

    /// Kills this greenlet: its pending switch unwinds with [`GreenletExit`],
    /// running every destructor on its stack (Python's `throw()` with
    /// `GreenletExit`). The greenlet's parent then receives a `GreenletExit`
    /// value, as from any other body that returned.
    ///
    /// A greenlet that has not started dies without running its body; its
    /// parent receives the `GreenletExit` value just the same. Killing a dead
    /// greenlet switches a `GreenletExit` value to its nearest live ancestor,
    /// as greenlet 3 does: when that is the caller, `kill` returns it at
    /// once. Killing the current greenlet unwinds it at once.
    ///
    /// Returns what the current greenlet is resumed with: when it is the
    /// dead greenlet's parent, the `GreenletExit` value.
    ///
    /// ```
    /// use greenery::GreenletExit;
    /// use greenery::greenlet::Greenlet;
    ///
    /// let g = Greenlet::new(|_| ());
    /// assert!(g.kill().unwrap().is::<GreenletExit>()); // never ran
    /// assert!(g.kill().unwrap().is::<GreenletExit>()); // dead: back as a value
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`switch`](Self::switch).
    ///
    /// # Panics
    ///
    /// As for [`switch`](Self::switch).
    pub fn kill(&self) -> Result<Value, Thrown> {
        match self.0.state.get() {
            // Sent on like a switch, to its nearest live ancestor.
            State::Dead => self.switch(GreenletExit { _token: None }),
            State::Unstarted | State::Lazy => {
                self.discard_unstarted();
                let exit = GreenletExit { _token: None };
                let parent = self.parent().expect("a greenlet other than main has a parent");
                parent.switch(exit)
            }
            State::Started | State::Stashed => self.send_slow(Value::empty(), CTRL_KILL),
        }
    }

    /// Works out where a switch to `self` goes, for everything the fast
    /// path of [`switch`](Self::switch) does not handle: a thread without a
    /// main greenlet yet, a dead target (the switch goes to its nearest live
    /// ancestor), tracing, an orphaned sender. Returns the target and the
    /// flags the switch must carry; the target may be the running greenlet.
    #[cold]
    #[inline(never)]
    fn route(&self) -> (*const Inner, usize) {
        let current = current_inner();
        if let Err(err) = self.prepare() {
            panic!("cannot start greenlet '{}': {err}", self.name());
        }
        let mut target: *const Inner = Rc::as_ptr(&self.0);
        // SAFETY: `self` holds its greenlet, and every greenlet holds its
        // parent, so the whole chain is alive while we hold `self`.
        while unsafe { &*target }.state.get() == State::Dead {
            // SAFETY: as above.
            let parent = unsafe { &*target }.parent.borrow();
            target = Rc::as_ptr(&parent.as_ref().expect("the main greenlet never dies").0);
        }
        // SAFETY: as above.
        unsafe { &*target }.unstash();
        let mut flags = 0;
        if ptr::eq(target, current) {
            return (target, flags); // no switch really happens
        }
        // SAFETY: the running greenlet is alive.
        let current_ref = unsafe { &*current };
        if let Some(me) = current_ref.keep_alive.take() {
            // We have no handle left but our own: leave it for the receiver.
            ORPHAN.with(|slot| slot.set(Some(me)));
            flags |= CTRL_ORPHAN;
        }
        THREAD.with(|thread| {
            thread.slow.set(thread.tracing.get());
            if thread.tracing.get() {
                flags |= CTRL_TRACE;
                thread.from.set(current);
            }
        });
        (target, flags)
    }

    /// A throw or a kill: switches to `self` (or its nearest live ancestor)
    /// with `value` for `kind`, and returns what the current greenlet is
    /// resumed with.
    fn send_slow(&self, value: Value, kind: usize) -> Result<Value, Thrown> {
        let (target, flags) = self.route();
        if ptr::eq(target, current_inner()) {
            return match kind {
                CTRL_KILL => kill_unwind(&self.0),
                CTRL_THROW => Err(Thrown(value)),
                _ => Ok(value),
            };
        }
        // SAFETY: `prepare` found a live target, not dead and not the
        // running greenlet.
        let (words, ctrl) = unsafe { switch_to(&*target, value, kind | flags) };
        // SAFETY: every switch carries a value's words.
        unsafe { arrive(words, ctrl) }
    }

    /// Drops the body of a greenlet that never started and marks it dead.
    fn discard_unstarted(&self) {
        let inner = &self.0;
        debug_assert!(inner.state.get().is_unstarted());
        inner.record.unregister();
        if inner.state.replace(State::Dead) == State::Lazy {
            drop(inner.lazy.take());
            return;
        }
        // SAFETY: the launch data was written on the stack and, the greenlet
        // never having started, not moved out since.
        unsafe { (inner.drop_launch.get())(inner.launch.get()) };
        if let Some(stack) = inner.stack.take() {
            stack::give(stack);
        }
    }
}

/// Makes `target` current and switches to it with `value` and `ctrl`; returns
/// the words and control word the current greenlet is resumed with, for
/// [`arrive`].
///
/// # Safety
///
/// `target` must be alive and started or fresh (not dead), and the running
/// greenlet must exist (`THREAD.current` is not null). `target` may be the
/// running greenlet: the value then comes straight back.
#[inline(always)]
unsafe fn switch_to(target: &Inner, value: Value, ctrl: usize) -> (Words, usize) {
    let (tag, words) = value.into_words();
    let current = THREAD.with(|thread| thread.current.replace(target));
    debug_assert!(!current.is_null());
    // SAFETY: the running greenlet is alive, and stays so while suspended
    // (its caller holds a handle, or it left one in `ORPHAN`). `target` is
    // suspended (or fresh) at `target.sp`, on this thread (handles are
    // `!Send`), or is the running greenlet itself.
    let switch = sanitizer::start(sanitizer::bounds_at(target.sp.get().get(), || target.stack_range()));
    // SAFETY: as above.
    let (words, ctrl) =
        unsafe { arch::switch_symmetric(words, ctrl | tag, target.sp.as_ptr(), (*current).sp.as_ptr()) };
    switch.finish();
    (words, ctrl)
}

/// Handles what a switch brought to the current greenlet. Anything but a
/// plain switch first goes through [`arrive_effects`] (which may not return:
/// a kill or a panic unwinds from there); the value itself never leaves the
/// registers it arrived in.
///
/// # Safety
///
/// `words` and the tag in `ctrl` must come from `Value::into_words`.
#[inline(always)]
unsafe fn arrive(words: Words, ctrl: usize) -> Result<Value, Thrown> {
    if ctrl & !TAG_BITS != CTRL_SWITCH {
        // SAFETY: guaranteed by the caller.
        unsafe { arrive_effects(words, ctrl) };
        if ctrl & CTRL_KIND == CTRL_THROW {
            // SAFETY: as below.
            return Err(Thrown(unsafe { Value::from_words(ctrl & TAG_BITS, words) }));
        }
    }
    // SAFETY: guaranteed by the caller, and `arrive_effects` only returns if
    // it left the value alone.
    Ok(unsafe { Value::from_words(ctrl & TAG_BITS, words) })
}

/// What an arrival other than a plain switch involves: giving back a
/// finished sender's stack, dropping an orphan's handle, calling the tracer,
/// unwinding for a kill or a panic.
///
/// # Safety
///
/// As for [`arrive`]. If this returns, the value in `words` is untouched.
#[cold]
#[inline(never)]
unsafe fn arrive_effects(words: Words, ctrl: usize) {
    let current = current_inner();
    let kind = ctrl & CTRL_KIND;
    let from = THREAD.with(|thread| thread.from.replace(ptr::null()));
    if matches!(kind, CTRL_RETURN | CTRL_PANIC) {
        // SAFETY: the sender finished; it is kept alive by a handle (its
        // own, left in `ORPHAN`, if it had no other).
        let from = unsafe { &*from };
        // It finished on the stack it can no longer use: reuse the stack.
        if let Some(stack) = from.stack.take() {
            stack::give(stack);
        }
    }
    let orphan = if ctrl & CTRL_ORPHAN != 0 { ORPHAN.with(Cell::take) } else { None };
    if ctrl & CTRL_TRACE != 0 {
        let event =
            if matches!(kind, CTRL_THROW | CTRL_KILL | CTRL_PANIC) { Event::Throw } else { Event::Switch };
        // SAFETY: both greenlets are alive (see above).
        let (origin, target) = unsafe { (handle(from), handle(current)) };
        trace::call(event, &origin, &target);
    }
    // Dropping an orphan's last handle kills it (it is suspended); that
    // comes back here once it has died.
    drop(orphan);
    match kind {
        CTRL_KILL => {
            // SAFETY: the current greenlet is alive.
            let current = unsafe { &*current };
            if current.kills.get().is_some_and(|count| count.load(Ordering::Relaxed) > 0)
                && std::thread::panicking()
            {
                // Suspended in the middle of dying already: let that finish.
                // (A kill carries the empty value.)
                return;
            }
            kill_unwind(current)
        }
        CTRL_PANIC => {
            // SAFETY: guaranteed by the caller; we take the value over.
            let value = unsafe { Value::from_words(ctrl & TAG_BITS, words) };
            match value.downcast::<Payload>() {
                Ok(payload) => panic::resume_unwind(payload),
                Err(_) => unreachable!("a panic carries its payload"),
            }
        }
        _ => {}
    }
}

/// Unwinds the current greenlet with a [`GreenletExit`].
#[cold]
fn kill_unwind(current: &Inner) -> ! {
    let count = current.kills.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    panic::resume_unwind(Box::new(GreenletExit { _token: Some(UnwindToken::new(count)) }))
}

/// Where every greenlet starts: runs the body, then hands its outcome to the
/// nearest live ancestor and never comes back.
///
/// # Safety
///
/// Called only by the root trampoline of a stack made by `Greenlet::build`,
/// with the first switch's words.
unsafe extern "C" fn entry<F, R>(w0: Word, launch: *mut u8, _top: StackPointer, ctrl: usize, w1: Word) -> !
where
    F: FnOnce(Value) -> R + 'static,
    R: 'static,
{
    let _came_from = sanitizer::first_arrival();
    let this = current_inner();
    // SAFETY: we are the running greenlet.
    let this_ref = unsafe { &*this };
    this_ref.state.set(State::Started);
    this_ref.ran.set(true);
    let outcome = {
        // SAFETY: the launch data was written by `build` and is moved out
        // exactly once, here (the greenlet is now started).
        let Launch { body } = unsafe { ptr::read(launch as *mut Launch<F>) };
        panic::catch_unwind(AssertUnwindSafe(move || {
            // SAFETY: the first switch carries a value like any other;
            // nothing but a switch (or a returning child) starts a greenlet.
            match unsafe { arrive((w0, w1), ctrl) } {
                Ok(value) => Value::new(body(value)),
                Err(_) => unreachable!("a greenlet is never started by a throw"),
            }
        }))
    };
    finish(this_ref, outcome)
}

/// Marks the current greenlet dead and switches to its nearest live
/// ancestor with its outcome.
#[cfg_attr(greenery_asan, sanitize(address = "off"))]
fn finish(this: &Inner, outcome: Result<Value, Payload>) -> ! {
    this.state.set(State::Dead);
    this.record.unregister();
    let (kind, value) = match outcome {
        Ok(value) => (CTRL_RETURN, value),
        Err(payload) if payload.is::<GreenletExit>() => {
            (CTRL_RETURN, Value::new(GreenletExit { _token: None }))
        }
        Err(payload) => (CTRL_PANIC, Value::new(payload)),
    };
    let mut target = this.parent.borrow().clone().expect("a greenlet other than main has a parent");
    loop {
        match target.0.state.get() {
            State::Started => break,
            State::Stashed => {
                target.0.unstash();
                break;
            }
            State::Dead => {}
            // A panic raised in an unstarted greenlet kills it on the spot
            // and goes on to its parent; a return value starts it.
            State::Unstarted | State::Lazy if kind == CTRL_PANIC => target.discard_unstarted(),
            State::Unstarted | State::Lazy => {
                if let Err(err) = target.prepare() {
                    // It cannot run: it dies, and the value goes further up.
                    unwind::report_message(target.name(), &format!("cannot start: {err}"));
                } else {
                    break;
                }
            }
        }
        target = target.parent().expect("the main greenlet never dies");
    }
    // A return value that reaches an unstarted greenlet starts it, as a
    // first switch would; either way the receiver gives our stack back.
    let mut ctrl = kind;
    if let Some(me) = this.keep_alive.take() {
        ORPHAN.with(|slot| slot.set(Some(me)));
        ctrl |= CTRL_ORPHAN;
    }
    THREAD.with(|thread| {
        thread.slow.set(thread.tracing.get());
        if thread.tracing.get() {
            ctrl |= CTRL_TRACE;
        }
        thread.from.set(this);
    });
    let (tag, words) = value.into_words();
    let target_inner: &Inner = &target.0;
    let sp = target_inner.sp.get();
    THREAD.with(|thread| thread.current.set(target_inner));
    // The parent chain keeps the target alive; our handle on it is on this
    // stack, which is never unwound: release it now.
    sanitizer::start_final(sanitizer::bounds_at(sp.get(), || target_inner.stack_range()));
    drop(target);
    // SAFETY: the target is suspended (or fresh) at `sp`; this stack is
    // never resumed (the receiver gives it back to the pool on arrival).
    unsafe { arch::switch_symmetric_final(words, ctrl | tag, sp) }
}

// ------------------------------------------------------------ inspection

impl Greenlet {
    /// The greenlet's parent; `None` for the main greenlet.
    pub fn parent(&self) -> Option<Greenlet> {
        self.0.parent.borrow().clone()
    }

    /// Makes `parent` this greenlet's parent.
    ///
    /// # Errors
    ///
    /// [`ParentError`] ("cyclic parent chain") if this greenlet is `parent`
    /// or one of its ancestors; the main greenlet has no parent and cannot be
    /// given one.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), ParentError> {
        if self.is_main() {
            return Err(ParentError::new(true));
        }
        let mut ancestor = Some(parent.clone());
        while let Some(greenlet) = ancestor {
            if Rc::ptr_eq(&greenlet.0, &self.0) {
                return Err(ParentError::new(false));
            }
            ancestor = greenlet.parent();
        }
        *self.0.parent.borrow_mut() = Some(parent.clone());
        Ok(())
    }

    /// Whether the greenlet has finished (returned, panicked or was killed).
    pub fn is_dead(&self) -> bool {
        self.0.state.get() == State::Dead
    }

    /// Whether the greenlet's body has started running (a greenlet killed or
    /// thrown into before its first switch dies without ever starting).
    pub fn is_started(&self) -> bool {
        self.0.ran.get()
    }

    /// Whether the greenlet is started and not dead (Python's `bool(g)`).
    pub fn is_active(&self) -> bool {
        matches!(self.0.state.get(), State::Started | State::Stashed)
    }

    /// Whether this is the running greenlet.
    pub fn is_current(&self) -> bool {
        try_current().is_some_and(|current| ptr::eq(current, Rc::as_ptr(&self.0)))
    }

    /// Whether this is its thread's main greenlet.
    pub fn is_main(&self) -> bool {
        self.0.parent.borrow().is_none()
    }

    /// The greenlet's name: the one given to its
    /// [`Builder`](crate::Builder), `"main"`, or the type name of its body.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether two handles refer to the same greenlet.
    pub fn ptr_eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

// ------------------------------------------------------------ the hub's record

impl Greenlet {
    /// What the hub knows about this greenlet.
    #[inline]
    pub(crate) fn record(&self) -> &Record {
        &self.0.record
    }

    /// A handle to the greenlet whose record `record` is.
    ///
    /// # Safety
    ///
    /// `record` must point to the record of a live greenlet.
    pub(crate) unsafe fn from_record(record: *const Record) -> Greenlet {
        let inner = record.cast::<u8>().wrapping_sub(mem::offset_of!(Inner, record)).cast::<Inner>();
        // SAFETY: a record is only ever a field of an `Inner`, which lives
        // in an `Rc` (guaranteed alive by the caller).
        unsafe { handle(inner) }
    }

    /// Whether the greenlet is suspended with its stack stashed.
    pub(crate) fn is_stashed(&self) -> bool {
        self.0.state.get() == State::Stashed
    }

    /// Whether the greenlet is suspended and has not started.
    pub(crate) fn is_unstarted(&self) -> bool {
        self.0.state.get().is_unstarted()
    }

    /// The greenlet's address, to tell greenlets apart without a handle.
    pub(crate) fn address(&self) -> usize {
        Rc::as_ptr(&self.0).addr()
    }
}

/// The id in the running greenlet's record (see [`Record`]).
pub(crate) fn current_record_id() -> u64 {
    // SAFETY: the current greenlet is alive: it is running.
    unsafe { &*current_inner() }.record.id()
}

/// What a signal handler that interrupted this thread may learn about the
/// running greenlet: its address, its record, and its name (pointer and
/// length). Null and empty if the thread has no greenlet yet.
///
/// Async-signal-safe: one read of a thread-local that has no destructor and
/// was initialised at compile time (so reading it registers and allocates
/// nothing), then plain reads of fields of a live greenlet that never change
/// (`name`, and the address of `record`). The running greenlet is alive
/// while it runs, and the interrupted code cannot drop it under us.
pub(crate) fn running_for_signal() -> (usize, *const Record, *const u8, usize) {
    let current = THREAD.with(|thread| thread.current.get());
    if current.is_null() {
        return (0, ptr::null(), ptr::null(), 0);
    }
    // SAFETY: a current greenlet that is set is alive (see above); only
    // immutable fields are read.
    let inner = unsafe { &*current };
    (current.addr(), &raw const inner.record, inner.name.as_ptr(), inner.name.len())
}

impl Clone for Greenlet {
    fn clone(&self) -> Greenlet {
        Greenlet(self.0.clone())
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Greenlet) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for Greenlet {}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0.state.get() {
            State::Unstarted | State::Lazy => "unstarted",
            State::Started if self.is_current() => "running",
            State::Started | State::Stashed => "suspended",
            State::Dead => "dead",
        };
        f.debug_struct("Greenlet").field("name", &self.name()).field("state", &state).finish()
    }
}

// ------------------------------------------------------------ dropping

impl Drop for Greenlet {
    fn drop(&mut self) {
        if Rc::strong_count(&self.0) != 1 {
            return;
        }
        match self.0.state.get() {
            State::Unstarted | State::Lazy => self.discard_unstarted(),
            State::Dead => {}
            State::Started if self.is_main() => {}
            State::Started if self.is_current() => {
                // The running greenlet dropped its last handle: it keeps
                // itself alive until it switches away or finishes.
                self.0.keep_alive.set(Some(Greenlet(self.0.clone())));
                THREAD.with(|thread| thread.slow.set(true));
            }
            State::Started | State::Stashed => self.collect(),
        }
    }
}

impl Greenlet {
    /// Kills a suspended greenlet whose last handle is going away, with the
    /// current greenlet as its parent for the while, so that it comes back
    /// here to die (its own parent is put back afterwards, as greenlet does).
    fn collect(&mut self) {
        let Some(current) = try_current() else {
            // The thread is being torn down: nothing can run any more.
            // Leaking the stack is all that is safe.
            mem::forget(self.0.stack.take());
            return;
        };
        // SAFETY: the current greenlet is alive.
        let current = unsafe { handle(current) };
        let parent = self.parent();
        // If we are its descendant, this fails, and its death goes up its
        // own chain instead.
        let _ = self.set_parent(&current);
        drop(current);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.kill()));
        *self.0.parent.borrow_mut() = parent;
        if let Err(payload) = outcome {
            unwind::report(self.name(), "panicked while being killed on drop", &*payload);
        }
        if !self.is_dead() {
            // It switched elsewhere instead of dying. If it took a new handle
            // to itself, it lives on; if not, dropping ours leaves its stack
            // mapped, never to be reused (see `Inner::drop`).
            unwind::report_message(self.name(), "survived being killed on drop");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A greenlet dropped while parked (its park never ended: its thread
        // is being torn down) leaves the list of parked greenlets.
        if self.parked.linked.get() {
            THREAD.with(|thread| thread.parked.unlink(self));
        }
        // Its contents go back first: the stack must not be reused (below)
        // or unmapped while stashed.
        drop(self.stash.take());
        if let Some(stack) = self.stack.take() {
            match self.state.get() {
                // Never ran: the launch data is dropped by `discard_unstarted`
                // before we get here, so the stack holds nothing.
                State::Unstarted | State::Lazy | State::Dead => stack::give(stack),
                // Still suspended with frames on it: never reuse it.
                State::Started | State::Stashed => mem::forget(stack),
            }
        }
    }
}

// ------------------------------------------------------------ stashing

/// A greenlet's links in [`ParkedList`].
struct ParkedLinks {
    linked: Cell<bool>,
    prev: Cell<*const Inner>,
    next: Cell<*const Inner>,
    generation: Cell<u64>,
}

impl ParkedLinks {
    const fn new() -> ParkedLinks {
        ParkedLinks {
            linked: Cell::new(false),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            generation: Cell::new(0),
        }
    }
}

/// The greenlets of one thread parked on its hub, in the order they parked
/// (so that the oldest parks come first), for the hub's sweep: an intrusive
/// doubly linked list through [`Inner::parked`].
///
/// A greenlet is linked while it is parked (from `note_parked` to
/// `note_resumed`), unless the sweep took it off to stash it. A linked
/// greenlet is alive: one that is dropped unlinks itself first
/// (`Inner::drop`). The anchors live in [`THREAD`], which has no destructor,
/// so they outlive every greenlet of the thread.
struct ParkedList {
    head: Cell<*const Inner>,
    tail: Cell<*const Inner>,
}

impl ParkedList {
    /// Appends `inner`, which is not linked.
    fn push(&self, inner: &Inner, generation: u64) {
        debug_assert!(!inner.parked.linked.get());
        let links = &inner.parked;
        links.linked.set(true);
        links.generation.set(generation);
        links.next.set(ptr::null());
        links.prev.set(self.tail.get());
        match self.tail.get() {
            tail if tail.is_null() => self.head.set(inner),
            // SAFETY: linked greenlets are alive (see the type's invariant).
            tail => unsafe { &*tail }.parked.next.set(inner),
        }
        self.tail.set(inner);
    }

    /// Takes `inner`, which is linked, off the list.
    fn unlink(&self, inner: &Inner) {
        let links = &inner.parked;
        debug_assert!(links.linked.get());
        let (prev, next) = (links.prev.get(), links.next.get());
        match prev {
            prev if prev.is_null() => self.head.set(next),
            // SAFETY: linked greenlets are alive.
            prev => unsafe { &*prev }.parked.next.set(next),
        }
        match next {
            next if next.is_null() => self.tail.set(prev),
            // SAFETY: as above.
            next => unsafe { &*next }.parked.prev.set(prev),
        }
        links.linked.set(false);
        links.prev.set(ptr::null());
        links.next.set(ptr::null());
    }
}

impl Inner {
    /// The usable range of the greenlet's own stack, if it has one (for
    /// [`sanitizer`]).
    #[cfg_attr(not(greenery_asan), allow(dead_code))]
    fn stack_range(&self) -> Option<(usize, usize)> {
        let stack = self.stack.take()?;
        let range = (stack.bottom(), stack.top());
        self.stack.set(Some(stack));
        Some(range)
    }

    /// Puts a stashed greenlet's stack back, ready to be switched to; does
    /// nothing to any other.
    #[inline]
    fn unstash(&self) {
        if self.state.get() == State::Stashed {
            self.restore_stash();
        }
    }

    #[cold]
    #[inline(never)]
    fn restore_stash(&self) {
        self.stash.take().expect("a stashed greenlet holds its stash").restore();
        self.state.set(State::Started);
    }
}

impl Greenlet {
    /// Records that this greenlet parks on the hub, in the hub's sweep
    /// `generation`: it joins its thread's list of parked greenlets.
    #[inline]
    pub(crate) fn note_parked(&self, generation: u64) {
        THREAD.with(|thread| thread.parked.push(&self.0, generation));
    }

    /// Records the end of a park: it leaves the list, if the sweep has not
    /// taken it off already.
    #[inline]
    pub(crate) fn note_resumed(&self) {
        if self.0.parked.linked.get() {
            THREAD.with(|thread| thread.parked.unlink(&self.0));
        }
    }

    /// Takes off this thread's list of parked greenlets, oldest first, up to
    /// `max` of those that parked in a sweep generation before `cutoff`,
    /// and stashes their stacks ([`Greenlet::stash_all`]). Returns how many
    /// it took off, and whether more such greenlets are left.
    pub(crate) fn stash_parked_before(cutoff: u64, max: usize) -> (usize, bool) {
        let mut taken = Vec::new();
        let more = THREAD.with(|thread| {
            let list = &thread.parked;
            while taken.len() < max {
                let head = list.head.get();
                // SAFETY: linked greenlets are alive.
                if head.is_null() || unsafe { &*head }.parked.generation.get() >= cutoff {
                    return false;
                }
                // SAFETY: as above.
                let inner = unsafe { &*head };
                list.unlink(inner);
                // SAFETY: `inner` is alive; the handle takes a reference of
                // its own.
                taken.push(unsafe { handle(head) });
            }
            let head = list.head.get();
            // SAFETY: as above.
            !head.is_null() && unsafe { &*head }.parked.generation.get() < cutoff
        });
        Greenlet::stash_all(&taken);
        (taken.len(), more)
    }

    /// A number that names this greenlet among the live ones (its
    /// allocation's address).
    pub(crate) fn addr(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    /// Counts a [`NoStash`](crate::stack::NoStash) guard on this greenlet
    /// (`held`) or one fewer.
    pub(crate) fn hold_stack(&self, held: bool) {
        let count = &self.0.no_stash;
        count.set(if held { count.get() + 1 } else { count.get() - 1 });
    }

    /// Whether any greenlet of this thread is parked and not yet taken off
    /// by the sweep.
    pub(crate) fn any_parked() -> bool {
        THREAD.with(|thread| !thread.parked.head.get().is_null())
    }

    /// Stashes the stacks of those of `greenlets` that are suspended on a
    /// stack of their own (not the running greenlet, not one suspended
    /// inside a generator it resumed, whose stack pointer lies elsewhere)
    /// and hold no [`NoStash`](crate::stack::NoStash) guard; returns how
    /// many were stashed. Each is restored before it next runs.
    pub(crate) fn stash_all(greenlets: &[Greenlet]) -> usize {
        let current = current_inner();
        let mut owners = Vec::with_capacity(greenlets.len());
        let mut stacks = Vec::with_capacity(greenlets.len());
        for greenlet in greenlets {
            let inner = &*greenlet.0;
            if inner.state.get() != State::Started || ptr::eq(inner, current) || inner.no_stash.get() > 0 {
                continue;
            }
            let Some(stack) = inner.stack.take() else { continue };
            let sp = inner.sp.get().get();
            if stack.bottom() <= sp && sp < stack.top() {
                owners.push(inner);
                stacks.push((stack, sp));
            } else {
                inner.stack.set(Some(stack));
            }
        }
        let requests: Vec<stack::StashRequest<'_>> =
            stacks.iter().map(|(stack, sp)| stack::StashRequest { stack, sp: *sp }).collect();
        // SAFETY: each stack is a slab slot (the caller stashes only where
        // `stack::stash_after` is `Some`) of a started greenlet suspended at
        // `sp` on it, which is not running and holds everything it will read
        // again above `sp` (the arch layer saves its context at `sp`). The
        // greenlet keeps its stack until the stash is restored: the stash
        // is restored before any switch to it (`unstash` in `route` and
        // `finish`) and before its stack is given back or leaked
        // (`Inner::drop`).
        let stashes = unsafe { stack::stash_all(&requests) };
        drop(requests);
        let mut stashed = 0;
        for ((inner, (stack, _)), stash) in owners.into_iter().zip(stacks).zip(stashes) {
            inner.stack.set(Some(stack));
            if let Some(stash) = stash {
                inner.stash.set(Some(stash));
                inner.state.set(State::Stashed);
                stashed += 1;
            }
        }
        stashed
    }
}
