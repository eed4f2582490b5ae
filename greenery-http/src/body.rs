//! The request body, read as the handler goes.

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

use http::header::HeaderMap;

use crate::conn::{BodyProgress, Conn};

/// A request's body: read it with [`std::io::Read`], straight from the
/// connection, as plain blocking code (the green thread parks while bytes
/// are on their way).
///
/// The framing (`Content-Length` or chunked) is taken care of: a read
/// returns `Ok(0)` at the end of the body, never bytes of the next request.
/// With `Expect: 100-continue`, the first read tells the client to go on.
/// A body that breaks off (the client closes, a malformed chunk, more than
/// [`Limits::max_body`](crate::Limits::max_body)) fails the read with
/// `UnexpectedEof` or `InvalidData`, and the connection is closed after the
/// response. A handler that leaves the body unread is fine: the server
/// reads a short rest itself, or closes the connection.
///
/// `!Send`: it reads its connection on this thread's hub.
pub struct Body {
    conn: Option<Rc<Conn>>,
    request: u64,
    peer: Option<SocketAddr>,
}

impl Body {
    pub(crate) fn new(conn: Rc<Conn>, request: u64, has_body: bool, peer: SocketAddr) -> Body {
        Body { conn: has_body.then_some(conn), request, peer: Some(peer) }
    }

    /// A body with nothing in it (for building requests in tests).
    pub fn empty() -> Body {
        Body { conn: None, request: 0, peer: None }
    }

    /// The address of the client that sent the request (`None` for a body
    /// that did not come through a [`Server`](crate::Server)), which
    /// [`RequestExt::peer_addr`](crate::RequestExt::peer_addr) reads.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the request had no body at all.
    pub fn is_empty(&self) -> bool {
        self.conn.is_none()
    }

    /// Reads the whole body into a `Vec`.
    ///
    /// # Errors
    ///
    /// As for [`read`](Read::read).
    pub fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The trailer fields of a chunked body, once it has been read to its
    /// end (`None` before, or for other bodies). They are kept apart from
    /// the header fields, as RFC 9110 asks.
    pub fn trailers(&self) -> Option<HeaderMap> {
        let conn = self.conn.as_ref()?;
        let state = conn.body.borrow();
        if state.request != self.request || !matches!(state.progress, BodyProgress::Done) {
            return None;
        }
        state.trailers.clone()
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.conn {
            Some(conn) => conn.read_body(self.request, buf),
            None => Ok(0),
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("empty", &self.is_empty())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
