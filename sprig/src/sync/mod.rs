//! Synchronisation between green threads of one hub (gevent's `gevent.pool`).
//!
//! - [`Group`]: a set of green threads, of any value types, that leave it as
//!   they finish; wait for all of them, kill all of them, map a function
//!   over items with one green thread per item.
//! - [`Pool`]: a group with at most a given number of members at once;
//!   spawning into a full pool waits for a free slot, first come, first
//!   served. Its errors hand the closure back: [`SpawnError`].
//! - [`Imap`] and [`ImapUnordered`]: the lazy iterators of results of
//!   [`Pool::imap`] and [`Pool::imap_unordered`] (and the same on a group).
//!
//! Blocking here blocks only the calling green thread: it parks, and the hub
//! runs the others until it is woken. A blocking call returns
//! [`Deadlock`](crate::hub::Deadlock) (in one form or another) if it would
//! wait forever; its `*_timeout` form also gives up when the time runs out,
//! and a `try_*` form never blocks. A green thread can be killed, or unwound
//! by a [`Timeout`](crate::Timeout), while it waits: it gives up its place in
//! line, and whatever had been handed to it (a pool's slot) goes to the next
//! in line.
//!
//! These types are `!Send` and `!Sync`: a green thread never leaves its OS
//! thread, and neither do the things it waits on. To act on them from
//! another OS thread, run the code on their hub with
//! [`Handle`](crate::hub::Handle).

mod group;
mod imap;
mod pool;
mod tracker;

pub use group::Group;
pub use imap::{Imap, ImapUnordered};
pub use pool::{Pool, SpawnError};
