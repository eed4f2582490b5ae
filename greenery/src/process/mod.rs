//! Cooperative child processes (gevent's `gevent.subprocess`): std's
//! [`Command`](std::process::Command) and [`Child`](std::process::Child),
//! whose waits and pipes park the green thread instead of blocking the OS
//! thread.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use greenery::process::{Command, Stdio};
//!
//! // Feed a child through a pipe and read its answer, cooperatively.
//! let mut child = Command::new("tr")
//!     .arg("a-z")
//!     .arg("A-Z")
//!     .stdin(Stdio::piped())
//!     .stdout(Stdio::piped())
//!     .spawn()
//!     .unwrap();
//! child.stdin.take().unwrap().write_all(b"hello").unwrap(); // then closed
//! let mut upper = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut upper).unwrap();
//! assert_eq!(upper, "HELLO");
//! assert!(child.wait().unwrap().success());
//!
//! // A child that takes too long is killed.
//! let err = Command::new("sleep").arg("10").timeout(Some(Duration::from_millis(50))).status();
//! assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
//! ```
//!
//! # How it works
//!
//! - **Exit.** Each child gets a pidfd (Linux 5.3 and later), registered with
//!   the hub's poller: it turns readable when the child exits, and the
//!   waiting green thread then reaps it with `waitpid`. No `SIGCHLD` handler
//!   is installed, so other code's children and handlers are left alone.
//!   Where pidfds are not available, a wait asks `waitpid(WNOHANG)` with a
//!   growing pause (1 ms up to 50 ms) between tries.
//! - **Pipes.** The parent's ends of piped streams are made non-blocking
//!   and registered like sockets: a read or write that would block parks the
//!   green thread. They have read or write timeouts, as sockets do.
//! - **Timeouts.** [`Child::wait_timeout`] leaves a slow child running;
//!   [`Command::timeout`] and [`Child::wait_with_output_timeout`] kill it
//!   (Python's `subprocess.run(timeout=...)`). A [`Timeout`](crate::Timeout)
//!   around any call works too; the child is then left as it is.
//! - **Threads.** A `Child` and its pipes are `Send`, as sockets are: each
//!   is registered with the hub of the thread that uses it, and moves to
//!   another thread's hub on its first use there.

mod child;
mod command;
mod pipes;

pub use child::Child;
pub use command::Command;
pub use pipes::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};
