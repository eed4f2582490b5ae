//! The impls every cooperative fd type repeats: timeout accessors, the fd
//! traits, and `Read`/`Write` through the hub. Each type keeps its fd in a
//! field `socket: Socket<_>` (a [`Socket`](crate::net::socket::Socket)
//! wraps pipes as well as sockets).

/// A pair of timeout accessors with std's signatures: `$set` and `$get`
/// for the `Socket` accessors of the same names, `$op` naming the operation
/// in the docs.
macro_rules! timeout_accessors {
    ($ty:ty, $set:ident, $get:ident, $op:literal) => {
        impl $ty {
            #[doc = concat!("Sets how long ", $op, " may wait before failing with")]
            /// [`TimedOut`](std::io::ErrorKind::TimedOut); `None` (the
            /// default) waits for ever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration, as std.
            pub fn $set(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.socket.$set(timeout)
            }

            #[doc = concat!("How long ", $op, " may wait (`None`: for ever).")]
            ///
            /// # Errors
            ///
            /// Never; a `Result` for std's signature.
            pub fn $get(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.socket.$get())
            }
        }
    };
}

/// `set_read_timeout` and `read_timeout`.
macro_rules! read_timeout_methods {
    ($ty:ty, $op:literal) => {
        timeout_accessors!($ty, set_read_timeout, read_timeout, $op);
    };
}

/// `set_write_timeout` and `write_timeout`.
macro_rules! write_timeout_methods {
    ($ty:ty, $op:literal) => {
        timeout_accessors!($ty, set_write_timeout, write_timeout, $op);
    };
}

/// Both timeouts of a socket type.
macro_rules! timeout_methods {
    ($ty:ty) => {
        read_timeout_methods!($ty, "a read (a receive)");
        write_timeout_methods!($ty, "a write (a send)");
    };
}

/// `AsFd` and `AsRawFd`.
macro_rules! fd_traits {
    ($ty:ty) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.socket.get())
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.socket.get())
            }
        }
    };
}

/// `Read` for a stream type and references to it, through
/// `Socket::read_stream`.
macro_rules! stream_read {
    ($ty:ty) => {
        impl std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.socket.read_stream(buf.len(), |mut stream| std::io::Read::read(&mut stream, buf))
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.socket.read_stream(len, |mut stream| std::io::Read::read_vectored(&mut stream, bufs))
            }
        }

        impl std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }
    };
}

/// `Write` for a stream type and references to it, through
/// `Socket::write_stream`.
macro_rules! stream_write {
    ($ty:ty) => {
        impl std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.socket.write_stream(buf.len(), |mut stream| std::io::Write::write(&mut stream, buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.socket.write_stream(len, |mut stream| std::io::Write::write_vectored(&mut stream, bufs))
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// `Read` and `Write` for a stream socket type and references to it, and
/// the async traits with the features that bring them.
macro_rules! stream_io {
    ($ty:ty) => {
        stream_read!($ty);
        stream_write!($ty);
        #[cfg(feature = "futures-io")]
        stream_futures_io!($ty);
        #[cfg(feature = "tokio")]
        stream_tokio_io!($ty);
    };
}

/// `futures_io::AsyncRead` and `AsyncWrite` for a stream type and
/// references to it, through `Socket::poll_stream`: for futures polled in
/// [`block_on`](crate::block_on) on the socket's thread.
#[cfg(feature = "futures-io")]
macro_rules! stream_futures_io {
    ($ty:ty) => {
        impl futures_io::AsyncRead for &$ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = buf.len();
                self.socket.poll_stream(cx, crate::hub::io::Direction::Read, len, |mut stream| {
                    std::io::Read::read(&mut stream, buf)
                })
            }
        }

        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for &$ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.socket.poll_stream(cx, crate::hub::io::Direction::Write, buf.len(), |mut stream| {
                    std::io::Write::write(&mut stream, buf)
                })
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_close(cx)
            }
        }
    };
}

/// tokio's `AsyncRead` and `AsyncWrite` for a stream type, through
/// `Socket::poll_stream`: for futures polled in [`block_on`](crate::block_on)
/// on the socket's thread (not on tokio's runtime: the socket belongs to
/// its hub).
#[cfg(feature = "tokio")]
macro_rules! stream_tokio_io {
    ($ty:ty) => {
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let unfilled = buf.initialize_unfilled();
                let len = unfilled.len();
                let read = std::task::ready!(self.socket.poll_stream(
                    cx,
                    crate::hub::io::Direction::Read,
                    len,
                    |mut stream| std::io::Read::read(&mut stream, unfilled)
                ))?;
                buf.advance(read);
                std::task::Poll::Ready(Ok(()))
            }
        }

        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.socket.poll_stream(cx, crate::hub::io::Direction::Write, buf.len(), |mut stream| {
                    std::io::Write::write(&mut stream, buf)
                })
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

/// `on_readable`, for a stream socket type; `$setup` is the doc example's
/// first lines, making two connected streams `a` and `b`.
macro_rules! on_readable_method {
    ($ty:ty, $setup:literal) => {
        impl $ty {
            /// Calls `callback` once the stream may be readable (data, its
            /// end, or an error to read), with `Err(TimedOut)` if `timeout`
            /// passes first, or `Err(NotConnected)` if the stream is dropped
            /// first (or moved to another thread and used there): a wait
            /// that holds no green thread, and so no stack.
            /// A server keeps a mostly idle connection this way and spawns a
            /// green thread for it when bytes arrive.
            ///
            /// The callback runs on the hub, between green threads, so it
            /// must not block: it may [`spawn`](crate::spawn), set events,
            /// put to queues without waiting. While it is pending it counts
            /// as a waiter (the hub does not report a deadlock). If the
            /// stream may be readable already, it is called at the hub's next
            /// turn.
            ///
            /// ```
            /// use std::io::{Read, Write};
            /// use std::rc::Rc;
            /// use greenery::sync::Event;
            ///
            #[doc = $setup]
            /// let a = Rc::new(a);
            /// let done = Rc::new(Event::new());
            /// let (reader, finished) = (a.clone(), done.clone());
            /// // No green thread waits for `a` until the bytes are there.
            /// a.on_readable(None, move |ready| {
            ///     ready.unwrap();
            ///     greenery::spawn(move || {
            ///         let mut buf = [0; 5];
            ///         (&*reader).read_exact(&mut buf).unwrap();
            ///         assert_eq!(&buf, b"hello");
            ///         finished.set();
            ///     });
            /// })
            /// .unwrap();
            /// b.write_all(b"hello").unwrap();
            /// done.wait().unwrap();
            /// ```
            ///
            /// # Errors
            ///
            /// [`ResourceBusy`](std::io::ErrorKind::ResourceBusy) when a green
            /// thread or another callback already waits to read the stream.
            pub fn on_readable(
                &self,
                timeout: Option<std::time::Duration>,
                callback: impl FnOnce(std::io::Result<()>) + 'static,
            ) -> std::io::Result<()> {
                self.socket.on_readable(timeout, Box::new(callback))
            }
        }
    };
}
