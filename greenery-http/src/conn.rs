//! One connection: its buffers, the request body's progress, and the loop
//! that reads requests and writes responses.
//!
//! # Protocol
//!
//! - **Order.** Requests are read one at a time; each response is written
//!   before the next request is parsed, so pipelined requests are answered
//!   in order. Responses are collected in the write buffer and sent before
//!   the connection waits for input (or when the buffer grows large): a
//!   batch of pipelined requests costs one write.
//! - **Bodies.** The handler reads the request body through [`Body`], which
//!   reads the connection's buffer. The body's progress lives here, not in
//!   the `Body`, so that after the handler returns the loop knows whether the
//!   body was read to its end. If not, the rest is read and dropped (up to
//!   [`DRAIN_LIMIT`]) to reach the next request; a longer rest, a client
//!   that still waits for `100 Continue`, or a body whose framing broke,
//!   closes the connection instead.
//! - **Idle connections.** A connection that has waited [`IDLE_LINGER`]
//!   for its next request (or its first), with nothing buffered and its
//!   output sent, gives its green thread back: it hands its buffers to the
//!   server's spares, and waits on the hub with a callback ([`TcpStream::on_readable`]) until its keep-alive timeout (or,
//!   before its first request, the header timeout). When bytes arrive the
//!   callback spawns a green thread that goes on with the connection in the
//!   server's continuation group; a timeout drops it. Meanwhile the server's
//!   `parked` list owns it, so a stop can drop it. Its stack is free for
//!   other work: an idle client costs a socket and a few hundred bytes.
//!   With a [`Pool`](greenery::sync::Pool) (`Server::with_pool`) a connection
//!   keeps its green thread for its whole life instead, so that the pool
//!   caps the connections open, as gevent's does.
//! - **Deadlines.** A connection waits for its first request head until
//!   its header timeout after it was accepted, and for each later one until
//!   its keep-alive timeout after the previous response was finished: the
//!   connection keeps that deadline (`idle_deadline`), so a park and a wake
//!   do not move it, nor do empty lines before a request line (they are
//!   skipped, and a head's own deadline starts at its first other byte).
//!   Bodies are held to their [`MinRate`](crate::MinRate)s: the time spent
//!   waiting for the client is added up per request body and per response,
//!   against the allowance the bytes moved so far have earned. A request
//!   body that runs out of time, or whose single read waits past the `io`
//!   timeout, is answered with `408` whatever the handler returns.
//! - **Closing.** A connection closes after a response to `Connection:
//!   close` (or an HTTP/1.0 request without keep-alive), a rejected request,
//!   a panicking handler, or a body that could not be finished. It shuts its
//!   write side first and reads what the client still sends for a moment
//!   (a "lingering close"), so that unread input does not make the kernel
//!   reset the connection and destroy the last response in flight.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use greenery::net::TcpStream;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::chunked::Decoder;
use crate::head::{self, Framing, Head, Reject};
use crate::panic_report;
use crate::response::ResponseBody;
use crate::response::{self, Written};
use crate::server::{Settings, Shared};
use crate::stream::Stream;
use crate::upgrade::{UpgradeFn, Upgraded};

/// The most of an unread request body that is read and dropped to keep the
/// connection; a longer rest closes it.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// Write-buffer size past which output is sent at once.
pub(crate) const FLUSH_AT: usize = 64 * 1024;
/// How long a closing connection reads what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How long an idle connection waits for its next request in its green
/// thread before it parks: a busy connection (a client sending request after
/// request) keeps its green thread instead of parking and waking for each.
const IDLE_LINGER: Duration = Duration::from_millis(10);
/// The read buffer's initial size.
const READ_BUFFER: usize = 8 * 1024;
/// The write buffer's initial size.
const WRITE_BUFFER: usize = 1024;
/// Write buffers up to this capacity are kept for reuse; larger ones (after
/// a large response) are freed.
const SPARE_WRITE_MAX: usize = 16 * 1024;
/// How many buffers of each kind the spares keep.
const SPARES: usize = 64;

/// How far the current request's body has been read.
pub(crate) enum BodyProgress {
    /// Read to its end (or there was none).
    Done,
    Length {
        remaining: u64,
    },
    Chunked {
        decoder: Decoder,
        read: u64,
    },
    /// The framing broke (a malformed chunk, the client closed early, the
    /// size limit): reads fail with this, and the connection will close.
    Failed(io::ErrorKind, &'static str),
}

pub(crate) struct BodyState {
    /// Which request the progress belongs to: a `Body` kept from an earlier
    /// request reads nothing.
    pub(crate) request: u64,
    pub(crate) progress: BodyProgress,
    /// The client sent `Expect: 100-continue` and has not been told to go on.
    pub(crate) continue_pending: bool,
    pub(crate) trailers: Option<HeaderMap>,
    /// Body bytes taken from the connection (chunk framing included), which
    /// earn waiting time under the request body's minimum rate.
    received: u64,
    /// Time spent waiting for the body's bytes.
    waited: Duration,
    /// The body took too long to arrive: answer `408`.
    timed_out: bool,
}

impl BodyState {
    fn new(request: u64, progress: BodyProgress, continue_pending: bool) -> BodyState {
        BodyState {
            request,
            progress,
            continue_pending,
            trailers: None,
            received: 0,
            waited: Duration::ZERO,
            timed_out: false,
        }
    }
}

/// A connection's stream and buffers.
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    pub(crate) peer: SocketAddr,
    pub(crate) settings: Rc<Settings>,
    /// The connection's number on its server.
    id: u64,
    /// When the wait for the next request head ends (if no byte of it has
    /// come): the header timeout after the connection was accepted (for
    /// TLS: the handshake timeout after it was accepted, then the header
    /// timeout after the handshake), then the keep-alive timeout after each
    /// response. Nothing the client sends while idle moves it.
    idle_deadline: Cell<Instant>,
    /// A response was finished since `idle_deadline` was set: the next wait
    /// for a head sets it to the keep-alive timeout from then (a clock read
    /// that a pipelined request, already buffered, does without).
    keep_alive_pending: Cell<bool>,
    /// Bytes of the current response sent so far, which earn waiting time
    /// under the response's minimum rate.
    sent: Cell<u64>,
    /// Time spent waiting for the client to take the current response.
    write_waited: Cell<Duration>,
    read_buf: RefCell<ReadBuf>,
    /// The block that request heads are copied into (see
    /// [`head::parse_into`]); empty while the connection is parked.
    head_arena: RefCell<BytesMut>,
    pub(crate) write_buf: RefCell<Vec<u8>>,
    pub(crate) body: RefCell<BodyState>,
    /// The current request's number on this connection.
    request: Cell<u64>,
}

struct ReadBuf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn buffered(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// Buffers that idle connections gave back, for the next connection that
/// wakes (instead of holding 9 KiB per idle connection).
#[derive(Default)]
pub(crate) struct SpareBuffers {
    read: RefCell<Vec<Vec<u8>>>,
    write: RefCell<Vec<Vec<u8>>>,
}

impl SpareBuffers {
    fn read_buffer(&self) -> Vec<u8> {
        self.read.borrow_mut().pop().unwrap_or_else(|| vec![0; READ_BUFFER])
    }

    fn write_buffer(&self) -> Vec<u8> {
        self.write.borrow_mut().pop().unwrap_or_else(|| Vec::with_capacity(WRITE_BUFFER))
    }

    /// Keeps `bytes` (an empty read buffer) if it has its first size and
    /// there is room.
    fn keep_read(&self, bytes: Vec<u8>) {
        let mut spares = self.read.borrow_mut();
        if bytes.len() == READ_BUFFER && spares.len() < SPARES {
            spares.push(bytes);
        }
    }

    /// Frees all but `keep` buffers of each kind.
    pub(crate) fn trim(&self, keep: usize) {
        for spares in [&self.read, &self.write] {
            let mut spares = spares.borrow_mut();
            if spares.len() > keep {
                spares.truncate(keep);
                spares.shrink_to(keep);
            }
        }
    }

    /// Keeps `bytes` (an empty write buffer) if it is not too large and there
    /// is room.
    fn keep_write(&self, bytes: Vec<u8>) {
        let mut spares = self.write.borrow_mut();
        if bytes.capacity() <= SPARE_WRITE_MAX && spares.len() < SPARES {
            spares.push(bytes);
        }
    }
}

impl Conn {
    fn new(stream: Stream, peer: SocketAddr, shared: &Shared) -> Conn {
        let settings = shared.settings();
        let first_wait =
            if stream.is_handshaking() { settings.timeouts.handshake } else { settings.timeouts.header };
        let idle_deadline = Instant::now() + first_wait;
        Conn {
            stream,
            peer,
            settings,
            id: shared.next_connection_id(),
            idle_deadline: Cell::new(idle_deadline),
            keep_alive_pending: Cell::new(false),
            sent: Cell::new(0),
            write_waited: Cell::new(Duration::ZERO),
            read_buf: RefCell::new(ReadBuf { bytes: shared.spares.read_buffer(), start: 0, end: 0 }),
            head_arena: RefCell::new(BytesMut::new()),
            write_buf: RefCell::new(shared.spares.write_buffer()),
            body: RefCell::new(BodyState::new(0, BodyProgress::Done, false)),
            request: Cell::new(0),
        }
    }

    /// Sends what the write buffer holds.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut out = self.write_buf.borrow_mut();
        if out.is_empty() {
            return Ok(());
        }
        let sent = self.send(&out);
        out.clear();
        sent
    }

    /// A new response starts: its minimum rate counts from here.
    pub(crate) fn start_response(&self) {
        self.sent.set(0);
        self.write_waited.set(Duration::ZERO);
    }

    /// Sends `bytes`, each wait bounded by the `io` timeout and all of them
    /// by the response's minimum rate.
    pub(crate) fn send(&self, mut bytes: &[u8]) -> io::Result<()> {
        let timeouts = &self.settings.timeouts;
        while !bytes.is_empty() {
            let allowed =
                timeouts.response_body.allowance(self.sent.get()).saturating_sub(self.write_waited.get());
            if allowed.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client takes the response more slowly than its minimum rate",
                ));
            }
            self.stream.set_write_timeout(Some(allowed.min(timeouts.io)))?;
            let began = Instant::now();
            let written = self.stream.write(bytes);
            self.write_waited.set(self.write_waited.get() + began.elapsed());
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent.set(self.sent.get() + n as u64);
                    bytes = &bytes[n..];
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Gives the (empty) buffers to `spares` while the connection is parked.
    fn release_buffers(&self, spares: &SpareBuffers) {
        let mut read = self.read_buf.borrow_mut();
        debug_assert!(read.buffered().is_empty(), "a connection parks with nothing buffered");
        spares.keep_read(std::mem::take(&mut read.bytes));
        (read.start, read.end) = (0, 0);
        let mut write = self.write_buf.borrow_mut();
        debug_assert!(write.is_empty(), "a connection parks after sending its output");
        write.clear();
        spares.keep_write(std::mem::take(&mut *write));
        // The heads still in use keep the block; the next head takes a new
        // one (or this one back, if they are gone by then).
        *self.head_arena.borrow_mut() = BytesMut::new();
    }

    /// Takes buffers again from `spares` when the parked connection wakes.
    fn restore_buffers(&self, spares: &SpareBuffers) {
        let mut read = self.read_buf.borrow_mut();
        if read.bytes.is_empty() {
            read.bytes = spares.read_buffer();
        }
        let mut write = self.write_buf.borrow_mut();
        if write.capacity() == 0 {
            *write = spares.write_buffer();
        }
    }

    /// Reads more into the buffer (after sending any pending output), by
    /// `deadline`. `Ok(0)`: end of file.
    fn fill(&self, deadline: Instant) -> io::Result<usize> {
        self.flush()?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(timeout))?;
        let mut buf = self.read_buf.borrow_mut();
        if buf.end == buf.bytes.len() {
            if buf.start > 0 {
                let (start, end) = (buf.start, buf.end);
                buf.bytes.copy_within(start..end, 0);
                buf.end -= start;
                buf.start = 0;
            } else {
                // A head larger than the buffer: grow it (the head's limit
                // bounds this).
                let len = buf.bytes.len();
                buf.bytes.resize(len * 2, 0);
            }
        }
        let end = buf.end;
        let read = self.stream.read(&mut buf.bytes[end..])?;
        buf.end += read;
        Ok(read)
    }

    /// Does the TLS handshake, by the connection's first deadline. Before
    /// the client's first byte it waits [`IDLE_LINGER`] in its green thread,
    /// then parks (as an idle connection does), unless the server has a
    /// pool.
    fn handshake(self: &Rc<Self>, shared: &Shared) -> Handshake {
        let deadline = self.idle_deadline.get();
        if shared.is_stopping() {
            return Handshake::Failed;
        }
        // Listed as idle, so that a stop closes it.
        let _listed = IdleListing::new(shared, self.clone());
        let tcp = self.stream.tcp();
        if shared.parks_idle() && Instant::now() + IDLE_LINGER < deadline {
            if tcp.set_read_timeout(Some(IDLE_LINGER)).is_err() {
                return Handshake::Failed;
            }
            match tcp.peek(&mut [0; 1]) {
                Ok(0) => return Handshake::Failed,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::TimedOut => return Handshake::Idle(deadline),
                Err(_) => return Handshake::Failed,
            }
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() || self.stream.handshake(timeout).is_err() {
            return Handshake::Failed;
        }
        Handshake::Done
    }

    /// When the wait for the next request head ends (see the field).
    fn idle_deadline(&self) -> Instant {
        if self.keep_alive_pending.replace(false) {
            self.idle_deadline.set(Instant::now() + self.settings.timeouts.keep_alive);
        }
        self.idle_deadline.get()
    }

    /// Reads the next request head. See [`HeadOutcome`].
    fn read_head(self: &Rc<Self>, shared: &Shared) -> HeadOutcome {
        let timeouts = &self.settings.timeouts;
        let first = self.request.get() == 0;
        let mut head_deadline = None;
        loop {
            {
                let mut buf = self.read_buf.borrow_mut();
                // RFC 9112 2.2: empty lines before a request line are
                // ignored; they start no head and move no deadline.
                while buf.buffered().starts_with(b"\r\n") {
                    buf.consume(2);
                }
                let buffered = buf.buffered();
                if !buffered.is_empty() && buffered != b"\r" {
                    let parsed =
                        head::parse_into(buffered, &self.settings.limits, &mut self.head_arena.borrow_mut());
                    match parsed {
                        Ok(Some((head, len))) => {
                            buf.consume(len);
                            return HeadOutcome::Head(head);
                        }
                        Ok(None) => {}
                        Err(reject) => return HeadOutcome::Rejected(reject),
                    }
                    // Read only when the head is not all there: a head that
                    // is costs no clock read.
                    head_deadline.get_or_insert_with(|| {
                        // The first head is due a header timeout after the
                        // connection came, the others after their first byte.
                        if first { self.idle_deadline() } else { Instant::now() + timeouts.header }
                    });
                }
            }
            let idle_deadline = self.idle_deadline();
            let idle = head_deadline.is_none();
            if idle && shared.is_stopping() {
                return HeadOutcome::Closed;
            }
            // An idle connection waits in its green thread for a moment, then
            // parks (with nothing buffered: not after half an empty line).
            let park_at = (idle && shared.parks_idle() && self.read_buf.borrow().buffered().is_empty())
                .then(|| Instant::now() + IDLE_LINGER)
                .filter(|park_at| *park_at < idle_deadline);
            // Listed as idle while waiting for a first byte, so that a stop
            // can close it; unlisted however the wait ends (a kill unwinds
            // through it).
            let listed = idle.then(|| IdleListing::new(shared, self.clone()));
            let filled = self.fill(park_at.or(head_deadline).unwrap_or(idle_deadline));
            drop(listed);
            match filled {
                Ok(0) => return HeadOutcome::Closed,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::TimedOut && park_at.is_some() => {
                    return HeadOutcome::Idle(idle_deadline);
                }
                Err(err) if err.kind() == io::ErrorKind::TimedOut && !idle => {
                    return HeadOutcome::Rejected(Reject {
                        status: StatusCode::REQUEST_TIMEOUT,
                        reason: "the request head took too long",
                    });
                }
                Err(_) => return HeadOutcome::Closed,
            }
        }
    }

    /// Reads request `request`'s body into `out`; see [`Body`].
    pub(crate) fn read_body(&self, request: u64, out: &mut [u8]) -> io::Result<usize> {
        let mut guard = self.body.borrow_mut();
        let state = &mut *guard;
        if state.request != request || out.is_empty() {
            return Ok(0);
        }
        if state.continue_pending {
            state.continue_pending = false;
            self.write_buf.borrow_mut().extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush()?;
        }
        let max_body = self.settings.limits.max_body;
        loop {
            match &mut state.progress {
                BodyProgress::Done => return Ok(0),
                BodyProgress::Failed(kind, message) => return Err(io::Error::new(*kind, *message)),
                BodyProgress::Length { remaining } => {
                    let mut buf = self.read_buf.borrow_mut();
                    let buffered = buf.buffered();
                    if !buffered.is_empty() {
                        let n = buffered
                            .len()
                            .min(out.len())
                            .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                        out[..n].copy_from_slice(&buffered[..n]);
                        buf.consume(n);
                        *remaining -= n as u64;
                        state.received += n as u64;
                        if *remaining == 0 {
                            state.progress = BodyProgress::Done;
                        }
                        return Ok(n);
                    }
                }
                BodyProgress::Chunked { decoder, read } => {
                    let mut buf = self.read_buf.borrow_mut();
                    if !buf.buffered().is_empty() {
                        match decoder.decode(buf.buffered(), out) {
                            Ok(progress) => {
                                buf.consume(progress.consumed);
                                state.received += progress.consumed as u64;
                                *read += progress.produced as u64;
                                if *read > max_body {
                                    state.progress = BodyProgress::Failed(
                                        io::ErrorKind::InvalidData,
                                        "the request body is larger than allowed",
                                    );
                                    continue;
                                }
                                if decoder.is_done() {
                                    state.trailers = decoder.take_trailers();
                                    state.progress = BodyProgress::Done;
                                }
                                if progress.produced > 0 || matches!(state.progress, BodyProgress::Done) {
                                    return Ok(progress.produced);
                                }
                                continue;
                            }
                            Err(message) => {
                                state.progress = BodyProgress::Failed(io::ErrorKind::InvalidData, message);
                                continue;
                            }
                        }
                    }
                }
            }
            // Nothing buffered: wait for more, within the `io` timeout and
            // what the body's minimum rate still allows.
            let timeouts = &self.settings.timeouts;
            let allowed = timeouts.request_body.allowance(state.received).saturating_sub(state.waited);
            let rate_bound = allowed < timeouts.io;
            let began = Instant::now();
            let filled = if allowed.is_zero() {
                Err(io::ErrorKind::TimedOut.into())
            } else {
                self.fill(began + allowed.min(timeouts.io))
            };
            state.waited += began.elapsed();
            match filled {
                Ok(0) => {
                    state.progress = BodyProgress::Failed(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the end of the body",
                    );
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    state.timed_out = true;
                    let message = if rate_bound {
                        "the request body arrives more slowly than its minimum rate"
                    } else {
                        "the request body stopped arriving"
                    };
                    state.progress = BodyProgress::Failed(io::ErrorKind::TimedOut, message);
                }
                Err(err) => {
                    state.progress = BodyProgress::Failed(err.kind(), "reading the request body failed");
                }
            }
        }
    }

    /// After the handler: reads and drops what is left of the body, if it is
    /// short. Whether the connection can go on.
    fn finish_body(&self) -> bool {
        let request = self.request.get();
        {
            let state = self.body.borrow();
            match state.progress {
                BodyProgress::Done => return true,
                BodyProgress::Failed(..) => return false,
                // The client waits to be told to send it: it may never come.
                _ if state.continue_pending => return false,
                BodyProgress::Length { remaining } if remaining > DRAIN_LIMIT => return false,
                _ => {}
            }
        }
        let mut scratch = [0; 4096];
        let mut drained = 0u64;
        loop {
            match self.read_body(request, &mut scratch) {
                Ok(0) => return matches!(self.body.borrow().progress, BodyProgress::Done),
                Ok(n) => {
                    drained += n as u64;
                    if drained > DRAIN_LIMIT {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Sends pending output, shuts the write side, and reads what the client
    /// still sends for a moment before the stream is dropped.
    fn close(&self) {
        if self.flush().is_err() {
            return;
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut scratch = [0; 4096];
        let mut lingered = 0;
        while lingered < DRAIN_LIMIT {
            let timeout = deadline.saturating_duration_since(Instant::now());
            if timeout.is_zero() || self.stream.set_read_timeout(Some(timeout)).is_err() {
                return;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(n) => lingered += n as u64,
            }
        }
    }
}

/// A connection's entry in its server's list of connections idle in their
/// green thread, removed on drop.
struct IdleListing<'a> {
    shared: &'a Shared,
    id: u64,
}

impl<'a> IdleListing<'a> {
    fn new(shared: &'a Shared, conn: Rc<Conn>) -> IdleListing<'a> {
        let id = conn.id;
        shared.waiting_connections.borrow_mut().insert(id, conn);
        IdleListing { shared, id }
    }
}

impl Drop for IdleListing<'_> {
    fn drop(&mut self) {
        let conn = self.shared.waiting_connections.borrow_mut().remove(&self.id);
        drop(conn); // outside the borrow
    }
}

/// What a TLS handshake came to.
enum Handshake {
    Done,
    /// The client has sent nothing yet: park until this deadline.
    Idle(Instant),
    /// It failed, timed out, or the server is stopping: close.
    Failed,
}

/// What answering a request came to.
enum Next {
    /// The connection may carry another request.
    KeepAlive,
    Close,
    /// The response said `101` (or `2xx` to `CONNECT`): hand the connection
    /// to this.
    Upgrade(UpgradeFn, String),
}

/// What waiting for a request head came to.
// The head is moved once per request: boxing it would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum HeadOutcome {
    Head(Head),
    /// The client closed the connection, or left it idle too long, or the
    /// server is stopping: close without a response.
    Closed,
    /// Answer with this status, then close.
    Rejected(Reject),
    /// Nothing buffered and nothing sent: park the connection until this
    /// deadline (see the module documentation).
    Idle(Instant),
}

/// Serves requests on `stream` until the connection closes or parks.
pub(crate) fn serve(stream: TcpStream, peer: SocketAddr, shared: &Rc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(stream) = shared.tls.wrap(stream) else { return };
    run(Rc::new(Conn::new(stream, peer, shared)), shared);
}

/// Serves requests on `conn` until it closes or parks.
fn run(conn: Rc<Conn>, shared: &Rc<Shared>) {
    if conn.stream.is_handshaking() {
        match conn.handshake(shared) {
            Handshake::Done => conn.idle_deadline.set(Instant::now() + conn.settings.timeouts.header),
            Handshake::Idle(deadline) => return park(conn, shared, deadline),
            Handshake::Failed => {
                drop(conn);
                shared.connection_closed();
                return;
            }
        }
    }
    loop {
        let head = match conn.read_head(shared) {
            HeadOutcome::Head(head) => head,
            HeadOutcome::Closed => break,
            HeadOutcome::Rejected(reject) => {
                conn.start_response();
                let written = response::write_reject(&conn, reject);
                shared.log(&conn, None, reject.status, written.body_bytes);
                conn.close();
                shared.connection_closed();
                return;
            }
            HeadOutcome::Idle(deadline) => return park(conn, shared, deadline),
        };
        match answer(&conn, shared, head) {
            Next::KeepAlive if conn.finish_body() => {}
            Next::KeepAlive | Next::Close => {
                conn.close();
                shared.connection_closed();
                return;
            }
            Next::Upgrade(take_over, request_line) => {
                hand_over(conn, shared, take_over, &request_line);
                shared.connection_closed();
                return;
            }
        }
        // The keep-alive timeout counts from the end of this response (read
        // once the connection waits for the next one).
        conn.keep_alive_pending.set(true);
    }
    let _ = conn.flush();
    drop(conn);
    shared.connection_closed();
}

/// Parks idle `conn` without a green thread until bytes arrive (a new green
/// thread in the server's continuation group goes on serving it) or
/// `deadline` passes (it is dropped, which closes it).
fn park(conn: Rc<Conn>, shared: &Rc<Shared>, deadline: Instant) {
    let timeout = deadline.saturating_duration_since(Instant::now());
    if timeout.is_zero() {
        return;
    }
    conn.release_buffers(&shared.spares);
    let id = conn.id;
    let server = Rc::downgrade(shared);
    // The callback finds the connection in the parked list: a stop may have
    // dropped it meanwhile (the callback then gets `NotConnected`, and finds
    // nothing to do).
    let wake = move |ready: io::Result<()>| {
        let Some(shared) = server.upgrade() else { return };
        let Some(conn) = shared.parked_connections.borrow_mut().remove(&id) else { return };
        if ready.is_ok() && !shared.is_stopping() {
            let continued = shared.clone();
            shared.continuations.spawn(move || {
                conn.restore_buffers(&continued.spares);
                run(conn, &continued);
            });
        } else {
            drop(conn); // closes it
            shared.connection_closed();
        }
    };
    shared.parked_connections.borrow_mut().insert(id, conn.clone());
    if conn.stream.on_readable(Some(timeout), wake).is_err() {
        // Not possible while this green thread is the connection's only
        // reader; should it happen, the connection closes.
        let conn = shared.parked_connections.borrow_mut().remove(&id);
        drop(conn);
    }
}

/// Runs the handler on one request and writes its response: what the
/// connection does next.
fn answer(conn: &Rc<Conn>, shared: &Shared, head: Head) -> Next {
    let request_number = conn.request.get() + 1;
    conn.request.set(request_number);
    conn.start_response();
    let progress = match head.framing {
        Framing::Empty => BodyProgress::Done,
        Framing::Length(remaining) => BodyProgress::Length { remaining },
        Framing::Chunked => {
            BodyProgress::Chunked { decoder: Decoder::new(conn.settings.limits.max_head), read: 0 }
        }
    };
    let has_body = !matches!(progress, BodyProgress::Done);
    *conn.body.borrow_mut() = BodyState::new(request_number, progress, head.expect_continue && has_body);
    let line = response::RequestLine { method: head.method.clone(), version: head.version };
    let client_keeps_alive = head.keep_alive;
    // For the panic report, which names the request.
    let target = head.uri.clone();
    // The client's address travels in the body, not in the extensions,
    // which would cost three allocations per request.
    let mut request = Request::new(Body::new(conn.clone(), request_number, has_body, conn.peer));
    *request.method_mut() = head.method;
    *request.uri_mut() = head.uri;
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers;
    let log_line = shared.wants_log().then(|| response::log_request_line(&request));
    let request_line = || format!("{} {} {:?}", line.method, target, line.version);
    let response = match panic_report::call(|| shared.call(request)) {
        Ok(response) => response,
        Err((payload, caught)) => {
            if greenery::is_forced_unwind(&*payload) {
                panic::resume_unwind(payload);
            }
            shared.panics.handler_panicked(&request_line(), conn.peer, &*payload, caught);
            return reject(
                conn,
                shared,
                log_line.as_deref(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "the handler failed",
            );
        }
    };
    if conn.body.borrow().timed_out {
        // Whatever the handler made of it, the client was too slow.
        drop(response);
        let reason = "the request body took too long";
        return reject(conn, shared, log_line.as_deref(), StatusCode::REQUEST_TIMEOUT, reason);
    }
    let connect = line.method == Method::CONNECT;
    let status = response.status();
    if response.body().is_upgrade()
        || status == StatusCode::SWITCHING_PROTOCOLS
        || (connect && status.is_success())
    {
        return switch(conn, shared, log_line.as_deref(), response, connect).with_request_line(request_line);
    }
    // A stop while the handler ran makes this the connection's last
    // response; after CONNECT, what follows the head is not HTTP.
    let keep_alive = client_keeps_alive && !shared.is_stopping() && !connect;
    let Written { status, body_bytes, keep_alive: keep } = response::write(conn, &line, keep_alive, response);
    shared.log(conn, log_line.as_deref(), status, body_bytes);
    if keep { Next::KeepAlive } else { Next::Close }
}

impl Next {
    /// Names the request in an upgrade's panic reports.
    fn with_request_line(self, request_line: impl FnOnce() -> String) -> Next {
        match self {
            Next::Upgrade(take_over, _) => Next::Upgrade(take_over, request_line()),
            other => other,
        }
    }
}

/// Answers with a response that switches protocols: `101` (an upgrade) or
/// `2xx` to `CONNECT` (a tunnel), whose body must be a
/// [`ResponseBody::upgrade`], and nothing else with such a body. A handler
/// that does not take a `CONNECT` over gets `501`.
fn switch(
    conn: &Conn,
    shared: &Shared,
    log_line: Option<&str>,
    response: Response<ResponseBody>,
    connect: bool,
) -> Next {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let Some(take_over) = body.into_upgrade() else {
        return if connect {
            reject(conn, shared, log_line, StatusCode::NOT_IMPLEMENTED, "CONNECT is not supported")
        } else {
            let reason = "the handler switched protocols without taking the connection over";
            reject(conn, shared, log_line, StatusCode::INTERNAL_SERVER_ERROR, reason)
        };
    };
    if !(status == StatusCode::SWITCHING_PROTOCOLS || (connect && status.is_success())) {
        let reason =
            "the handler took the connection over without switching protocols (101, or 2xx to CONNECT)";
        return reject(conn, shared, log_line, StatusCode::INTERNAL_SERVER_ERROR, reason);
    }
    // The request's body ends before the other protocol begins.
    if !conn.finish_body() {
        let reason = "the request body could not be read to its end before switching protocols";
        return reject(conn, shared, log_line, StatusCode::INTERNAL_SERVER_ERROR, reason);
    }
    response::write_switch_head(conn, status, &parts.headers);
    shared.log(conn, log_line, status, 0);
    Next::Upgrade(take_over, String::new())
}

/// Hands `conn` over to `take_over`, in this green thread, once the head
/// that switched protocols has gone: with the bytes read past the request,
/// without the server's timeouts, and without its buffers (back to the
/// spares). The connection closes when `take_over` is done with it.
fn hand_over(conn: Rc<Conn>, shared: &Shared, take_over: UpgradeFn, request_line: &str) {
    if conn.flush().is_err() {
        return;
    }
    let _ = conn.stream.set_read_timeout(None);
    let _ = conn.stream.set_write_timeout(None);
    let leftover = {
        let mut buf = conn.read_buf.borrow_mut();
        let leftover = buf.buffered().to_vec();
        buf.consume(leftover.len());
        leftover
    };
    conn.release_buffers(&shared.spares);
    let upgraded = Upgraded::new(conn.clone(), leftover);
    if let Err((payload, caught)) = panic_report::call(move || take_over(upgraded)) {
        if greenery::is_forced_unwind(&*payload) {
            panic::resume_unwind(payload);
        }
        shared.panics.handler_panicked(request_line, conn.peer, &*payload, caught);
    }
    // Over TLS, a clean end (close_notify), unless handles of the
    // connection live on elsewhere.
    if Rc::strong_count(&conn) == 1
        && conn.stream.is_tls()
        && conn.stream.set_write_timeout(Some(LINGER)).is_ok()
    {
        let _ = conn.stream.shutdown(Shutdown::Write);
    }
}

/// Answers the request with `status` and a short `reason`, and logs it; the
/// connection then closes.
fn reject(
    conn: &Conn,
    shared: &Shared,
    log_line: Option<&str>,
    status: StatusCode,
    reason: &'static str,
) -> Next {
    let written = response::write_reject(conn, Reject { status, reason });
    shared.log(conn, log_line, status, written.body_bytes);
    Next::Close
}
