//! The errors of switching: [`Thrown`], [`SwitchError`], [`ParentError`].

use std::error::Error;
use std::fmt;

use super::{Value, WrongType};

/// A value [`throw`](super::Greenlet::throw)n into the current greenlet,
/// returned by its pending [`switch`](super::Greenlet::switch).
#[derive(Debug)]
pub struct Thrown(pub Value);

impl fmt::Display for Thrown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_thrown(&self.0, f)
    }
}

fn fmt_thrown(value: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "a value of type `{}` was thrown into this greenlet", value.type_name())
}

impl Error for Thrown {}

/// What a typed switch, [`switch_as`](super::Greenlet::switch_as), returns
/// instead of the value it expected: a value thrown in, or a value of
/// another type.
///
/// Both carry the value that arrived. `?` turns a [`Thrown`] (from an
/// untyped [`switch`](super::Greenlet::switch)) and a [`WrongType`] (from
/// [`Value::cast`]) into a `SwitchError`, so a greenlet's body can use all
/// three with `?`.
///
/// ```
/// use greenery::greenlet::{self, Greenlet, SwitchError, Value};
///
/// let main = greenlet::getcurrent();
/// let adder = Greenlet::new(move |first: Value| -> Result<(), SwitchError> {
///     let mut total: u32 = first.cast()?;
///     loop {
///         total += main.switch_as::<u32>(total)?;
///     }
/// });
/// assert_eq!(adder.switch_as::<u32>(1u32)?, 1);
/// assert_eq!(adder.switch_as::<u32>(2u32)?, 3);
/// // The adder expected a u32: its `?` returns the error to its parent.
/// let ended = adder.switch_as::<Result<(), SwitchError>>("three")?;
/// let Err(SwitchError::WrongType(wrong)) = ended else { panic!("not a type error") };
/// assert_eq!((wrong.expected(), wrong.found()), ("u32", "&str"));
/// # Ok::<(), SwitchError>(())
/// ```
#[derive(Debug)]
pub enum SwitchError {
    /// A value was thrown into the current greenlet (what
    /// [`switch`](super::Greenlet::switch) returns as `Err(Thrown(value))`).
    Thrown(Value),
    /// The current greenlet was resumed with a value of another type than
    /// the one expected; the error names both and holds the value.
    WrongType(WrongType),
}

impl SwitchError {
    /// The value that arrived: the one thrown in, or the one of the wrong
    /// type.
    pub fn into_value(self) -> Value {
        match self {
            SwitchError::Thrown(value) => value,
            SwitchError::WrongType(wrong) => wrong.into_value(),
        }
    }
}

impl From<Thrown> for SwitchError {
    fn from(Thrown(value): Thrown) -> SwitchError {
        SwitchError::Thrown(value)
    }
}

impl From<WrongType> for SwitchError {
    fn from(wrong: WrongType) -> SwitchError {
        SwitchError::WrongType(wrong)
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Thrown(value) => fmt_thrown(value, f),
            SwitchError::WrongType(wrong) => write!(
                f,
                "the switch expected a value of type `{}`, but the greenlet was resumed with one of type `{}`",
                wrong.expected(),
                wrong.found()
            ),
        }
    }
}

impl Error for SwitchError {}

/// [`Greenlet::set_parent`](super::Greenlet::set_parent) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentError {
    main: bool,
}

impl ParentError {
    pub(super) fn new(main: bool) -> ParentError {
        ParentError { main }
    }

    /// Whether the greenlet was its thread's main greenlet, which has no
    /// parent (rather than the new parent making a cycle).
    pub fn is_main(&self) -> bool {
        self.main
    }
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.main { "the main greenlet cannot have a parent" } else { "cyclic parent chain" })
    }
}

impl Error for ParentError {}
