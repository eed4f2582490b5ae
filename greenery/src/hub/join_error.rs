//! [`JoinError`]: why a green thread produced no value.

use std::any::Any;
use std::error::Error;
use std::fmt;

use super::Deadlock;
use crate::unwind::{self, Payload};

/// Why a green thread produced no value: it panicked (or was killed with an
/// error, [`JoinHandle::kill_with`](crate::JoinHandle::kill_with)), was
/// killed, could not start, or waiting for it would block forever.
///
/// A kill is a normal end, as in gevent: the green thread counts as
/// [successful](crate::JoinHandle::is_successful), and this error (for which
/// [`is_killed`](Self::is_killed) holds) only says that there is no value,
/// since Rust has no `GreenletExit` value to return.
pub struct JoinError {
    kind: Kind,
}

enum Kind {
    Panicked(Payload),
    Killed,
    Deadlock,
    Stack(crate::StackError),
}

impl JoinError {
    pub(crate) fn panicked(payload: Payload) -> JoinError {
        JoinError { kind: Kind::Panicked(payload) }
    }

    pub(crate) fn killed() -> JoinError {
        JoinError { kind: Kind::Killed }
    }

    pub(crate) fn deadlock() -> JoinError {
        JoinError { kind: Kind::Deadlock }
    }

    pub(crate) fn stack(err: crate::StackError) -> JoinError {
        JoinError { kind: Kind::Stack(err) }
    }

    /// Whether the green thread panicked, or was killed with an error
    /// ([`JoinHandle::kill_with`](crate::JoinHandle::kill_with)) that it did
    /// not catch.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked(_))
    }

    /// Whether the green thread was killed (or never ran, killed first): a
    /// normal end, which leaves no value.
    pub fn is_killed(&self) -> bool {
        matches!(self.kind, Kind::Killed)
    }

    /// Whether waiting for it would have blocked forever.
    pub fn is_deadlock(&self) -> bool {
        matches!(self.kind, Kind::Deadlock)
    }

    /// The panic's payload, if it panicked: downcast it to see what it
    /// panicked with.
    pub fn payload(&self) -> Option<&(dyn Any + Send)> {
        match &self.kind {
            Kind::Panicked(payload) => Some(&**payload),
            _ => None,
        }
    }

    /// The error the green thread was killed with
    /// ([`JoinHandle::kill_with`](crate::JoinHandle::kill_with)), if that is
    /// how it ended: downcast it to the type that was passed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[derive(Debug)]
    /// struct Shutdown;
    /// impl std::fmt::Display for Shutdown {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("shutting down")
    ///     }
    /// }
    /// impl std::error::Error for Shutdown {}
    ///
    /// # let previous = greenery::hub::set_error_handler(|_| {});
    /// let worker = greenery::spawn(|| greenery::sleep(Duration::from_secs(10)));
    /// greenery::yield_now(); // it starts, and sleeps
    /// worker.kill_with(Shutdown).unwrap();
    /// let err = worker.exception().unwrap();
    /// assert!(err.error().unwrap().is::<Shutdown>());
    /// assert_eq!(err.to_string(), "the green thread failed: shutting down");
    /// # drop(err);
    /// # greenery::hub::reset_error_handler(previous);
    /// ```
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        let payload = self.payload()?;
        payload.downcast_ref::<Box<dyn Error + Send + Sync>>().map(|error| &**error)
    }

    /// The panic's payload, if it panicked (to continue it with
    /// [`std::panic::resume_unwind`]); the error itself otherwise.
    pub fn into_panic(self) -> Result<Payload, JoinError> {
        match self.kind {
            Kind::Panicked(payload) => Ok(payload),
            kind => Err(JoinError { kind }),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Panicked(payload) if self.error().is_some() => {
                write!(f, "the green thread failed: {}", unwind::panic_message(&**payload))
            }
            Kind::Panicked(payload) => {
                write!(f, "the green thread panicked: {}", unwind::panic_message(&**payload))
            }
            Kind::Killed => f.write_str("the green thread was killed, and so left no value"),
            Kind::Deadlock => write!(f, "{Deadlock}"),
            Kind::Stack(err) => write!(f, "the green thread could not start: {err}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl Error for JoinError {}
