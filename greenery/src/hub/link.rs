//! [`LinkId`], and the callbacks a green thread keeps to run when it ends
//! (gevent's `link`, `link_value`, `link_exception`, `rawlink`).

use super::JoinError;

/// Names a callback registered with
/// [`JoinHandle::link`](crate::JoinHandle::link) (or `link_value`,
/// `link_exception`), to [`unlink`](crate::JoinHandle::unlink) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(pub(super) u64);

/// A `link` callback.
type AnyCallback<T> = Box<dyn FnOnce(&Result<T, JoinError>)>;
/// A `link_value` callback.
type ValueCallback<T> = Box<dyn FnOnce(Option<&T>)>;

/// A callback the user linked; which outcomes it wants.
pub(super) enum Link<T> {
    /// Every outcome (`link`).
    Any(AnyCallback<T>),
    /// A value or a kill (`link_value`): `None` for a kill.
    Value(ValueCallback<T>),
    /// Any other failure (`link_exception`).
    Exception(Box<dyn FnOnce(&JoinError)>),
}

impl<T> Link<T> {
    /// Calls the callback if the outcome is one it wants.
    pub(super) fn call(self, outcome: &Result<T, JoinError>) {
        match (self, outcome) {
            (Link::Any(callback), outcome) => callback(outcome),
            (Link::Value(callback), Ok(value)) => callback(Some(value)),
            (Link::Value(callback), Err(err)) if err.is_killed() => callback(None),
            (Link::Exception(callback), Err(err)) if !err.is_killed() => callback(err),
            _ => {}
        }
    }
}
