//! The parent's ends of a child's standard streams, cooperative.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::net::socket::Socket;

// Each keeps its pipe as a `File`, whose `&File` reads and writes.

/// The child's standard input, as the parent writes it (std's
/// [`ChildStdin`](std::process::ChildStdin), cooperative): a write that would
/// block parks the green thread. Dropping it closes the pipe, which the child
/// reads as end of file.
#[derive(Debug)]
pub struct ChildStdin {
    socket: Socket<File>,
}

/// The child's standard output, as the parent reads it (std's
/// [`ChildStdout`](std::process::ChildStdout), cooperative).
#[derive(Debug)]
pub struct ChildStdout {
    socket: Socket<File>,
}

/// The child's standard error, as the parent reads it (std's
/// [`ChildStderr`](std::process::ChildStderr), cooperative).
#[derive(Debug)]
pub struct ChildStderr {
    socket: Socket<File>,
}

/// Conversions to and from std's type, and the constructor used by `Child`.
macro_rules! pipe_type {
    ($ty:ident) => {
        impl $ty {
            /// Makes std's pipe end non-blocking and registers it with this
            /// thread's hub.
            pub(crate) fn new(pipe: std::process::$ty) -> io::Result<$ty> {
                let pipe = File::from(OwnedFd::from(pipe));
                crate::sys::set_nonblocking(&pipe)?;
                Ok($ty { socket: Socket::new(pipe)? })
            }

            #[doc = concat!("Wraps std's `", stringify!($ty), "`, making it non-blocking.")]
            ///
            /// # Errors
            ///
            /// What registering it with the hub's poller returns.
            pub fn from_std(pipe: std::process::$ty) -> io::Result<$ty> {
                $ty::new(pipe)
            }

            /// Hands the fd back to std, deregistered (still non-blocking), to
            /// move it to another thread or pass it to another child.
            pub fn into_owned_fd(self) -> OwnedFd {
                OwnedFd::from(self.socket.into_inner())
            }
        }

        fd_traits!($ty);
    };
}

pipe_type!(ChildStdin);
pipe_type!(ChildStdout);
pipe_type!(ChildStderr);

write_timeout_methods!(ChildStdin, "a write");
read_timeout_methods!(ChildStdout, "a read");
read_timeout_methods!(ChildStderr, "a read");

stream_write!(ChildStdin);
stream_read!(ChildStdout);
stream_read!(ChildStderr);

/// A child's output stream read to its end.
pub(crate) trait ReadToEndBy {
    /// Reads until end of file, or fails with `TimedOut` at `deadline`.
    fn read_to_end_by(&self, deadline: Option<Instant>) -> io::Result<Vec<u8>>;
}

macro_rules! read_to_end_by {
    ($ty:ident) => {
        impl ReadToEndBy for $ty {
            fn read_to_end_by(&self, deadline: Option<Instant>) -> io::Result<Vec<u8>> {
                let mut bytes = Vec::new();
                let mut chunk = [0; 8192];
                loop {
                    let read =
                        self.socket.read_by(deadline, |mut pipe| io::Read::read(&mut pipe, &mut chunk))?;
                    if read == 0 {
                        return Ok(bytes);
                    }
                    bytes.extend_from_slice(&chunk[..read]);
                }
            }
        }
    };
}

read_to_end_by!(ChildStdout);
read_to_end_by!(ChildStderr);
