#![doc = include_str!("../../README.md")]
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// The AddressSanitizer run (`--cfg greenery_asan`, nightly) turns the
// sanitizer off for the functions that end a coroutine: see `sanitizer`.
#![cfg_attr(greenery_asan, feature(sanitize))]

#[macro_use]
mod fd_macros;

mod arch;
mod builder;
pub mod coroutine;
pub mod generator;
pub mod greenlet;
pub mod hub;
pub mod net;
pub mod patch;
pub mod process;
mod raw;
mod sanitizer;
pub mod signal;
pub mod stack;
pub mod sync;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
mod unwind;

pub use builder::Builder;
pub use coroutine::{Coroutine, CoroutineResult, ForcedUnwind, Yielder};
pub use generator::{CloseError, Co, Generator, GeneratorExit, GeneratorState, ResumeError};
pub use greenlet::{Greenlet, GreenletExit, getcurrent};
pub use hub::{
    JoinError, JoinHandle, Timeout, block_on, idle, sleep, spawn, spawn_later, with_timeout, yield_now,
};
pub use stack::StackError;
pub use unwind::is_forced_unwind;
