//! Response bodies, and writing responses with the right framing.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};

use crate::conn::{Conn, FLUSH_AT};
use crate::head::Reject;
use crate::upgrade::{UpgradeFn, Upgraded};

/// A response's body: bytes, text, a reader, chunks written by a closure
/// as it goes, or (after `101 Switching Protocols`, or a `2xx` answer to
/// `CONNECT`) the connection itself, handed over. Anything `Into<ResponseBody>` can be a handler's response
/// body: `&'static str`, `String`, `Vec<u8>`, `&'static [u8]`, `()`.
///
/// The server picks the framing: `Content-Length` when the length is known,
/// otherwise chunked (HTTP/1.1) or the end of the connection (HTTP/1.0).
/// It drops any `Content-Length` or `Transfer-Encoding` the handler set,
/// except a `Content-Length` on an empty answer to `HEAD`.
pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Bytes(Cow<'static, [u8]>),
    Reader { reader: Box<dyn Read>, length: Option<u64> },
    Stream(StreamBody),
    Upgrade(UpgradeFn),
}

/// The closure of a [`ResponseBody::stream`].
type StreamBody = Box<dyn FnOnce(&mut BodyWriter<'_>) -> io::Result<()>>;

impl ResponseBody {
    /// No body.
    pub fn empty() -> ResponseBody {
        ResponseBody { kind: Kind::Bytes(Cow::Borrowed(b"")) }
    }

    /// The bytes read from `reader` until its end, or `length` bytes when
    /// given (then sent with `Content-Length`; a reader that ends sooner
    /// closes the connection).
    pub fn from_reader(reader: impl Read + 'static, length: Option<u64>) -> ResponseBody {
        ResponseBody { kind: Kind::Reader { reader: Box::new(reader), length } }
    }

    /// A body that `write` writes after the head has gone, through a
    /// [`BodyWriter`] (chunked on HTTP/1.1). `flush` on the writer sends what
    /// is written so far, for responses that trickle.
    ///
    /// ```
    /// use std::io::Write;
    /// use greenery_http::ResponseBody;
    ///
    /// let body = ResponseBody::stream(|out| {
    ///     for i in 0..3 {
    ///         writeln!(out, "tick {i}")?;
    ///         out.flush()?;
    ///     }
    ///     Ok(())
    /// });
    /// # drop(body);
    /// ```
    pub fn stream(write: impl FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + 'static) -> ResponseBody {
        ResponseBody { kind: Kind::Stream(Box::new(write)) }
    }

    /// Takes the connection over once the response's head has gone: for
    /// a response with status `101 Switching Protocols` (an upgrade, such
    /// as a WebSocket), or a `2xx` answer to `CONNECT` (a tunnel).
    /// `take_over` runs in the connection's green thread with the
    /// connection as an [`Upgraded`] stream, and the connection closes when
    /// it returns. This is hyper's `upgrade::on`, for blocking code.
    ///
    /// The server sends the head as the handler made it, less any
    /// `Content-Length` or `Transfer-Encoding`, and with `Connection:
    /// upgrade` on a `101` that has no `Connection` field; whether the
    /// client asked for the protocol (its `Upgrade` field) is the handler's
    /// to check. A request body is read to its end first (and a long one
    /// gets `500` instead). Such a body with another status gets `500`, as
    /// does a `101` with another body; a `2xx` answer to `CONNECT` with
    /// another body gets `501`.
    ///
    /// ```
    /// use std::io::Write;
    /// use greenery_http::http::{Response, StatusCode, header};
    /// use greenery_http::{ResponseBody, Upgraded};
    ///
    /// let response = Response::builder()
    ///     .status(StatusCode::SWITCHING_PROTOCOLS)
    ///     .header(header::UPGRADE, "my-protocol")
    ///     .body(ResponseBody::upgrade(|mut stream: Upgraded| {
    ///         let _ = stream.write_all(b"hello in my protocol\n");
    ///     }))
    ///     .unwrap();
    /// # drop(response);
    /// ```
    pub fn upgrade(take_over: impl FnOnce(Upgraded) + 'static) -> ResponseBody {
        ResponseBody { kind: Kind::Upgrade(Box::new(take_over)) }
    }

    /// Whether this body takes the connection over
    /// ([`upgrade`](Self::upgrade)).
    pub fn is_upgrade(&self) -> bool {
        matches!(self.kind, Kind::Upgrade(_))
    }

    pub(crate) fn into_upgrade(self) -> Option<UpgradeFn> {
        match self.kind {
            Kind::Upgrade(take_over) => Some(take_over),
            _ => None,
        }
    }

    /// The length, when known before sending (0 for an
    /// [`upgrade`](Self::upgrade): no HTTP body).
    pub fn length(&self) -> Option<u64> {
        match &self.kind {
            Kind::Bytes(bytes) => Some(bytes.len() as u64),
            Kind::Reader { length, .. } => *length,
            Kind::Stream(_) => None,
            Kind::Upgrade(_) => Some(0),
        }
    }
}

impl Default for ResponseBody {
    fn default() -> ResponseBody {
        ResponseBody::empty()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Bytes(_) => "bytes",
            Kind::Reader { .. } => "reader",
            Kind::Stream(_) => "stream",
            Kind::Upgrade(_) => "upgrade",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).field("length", &self.length()).finish()
    }
}

impl From<&'static str> for ResponseBody {
    fn from(text: &'static str) -> ResponseBody {
        ResponseBody { kind: Kind::Bytes(Cow::Borrowed(text.as_bytes())) }
    }
}

impl From<String> for ResponseBody {
    fn from(text: String) -> ResponseBody {
        ResponseBody { kind: Kind::Bytes(Cow::Owned(text.into_bytes())) }
    }
}

impl From<&'static [u8]> for ResponseBody {
    fn from(bytes: &'static [u8]) -> ResponseBody {
        ResponseBody { kind: Kind::Bytes(Cow::Borrowed(bytes)) }
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(bytes: Vec<u8>) -> ResponseBody {
        ResponseBody { kind: Kind::Bytes(Cow::Owned(bytes)) }
    }
}

impl From<()> for ResponseBody {
    fn from((): ()) -> ResponseBody {
        ResponseBody::empty()
    }
}

/// Where a [`ResponseBody::stream`] closure writes: each write becomes a
/// chunk (HTTP/1.1) or goes out as it is (HTTP/1.0, until the connection
/// closes). Output is sent when it grows large, on `flush`, and at the end.
pub struct BodyWriter<'a> {
    conn: &'a Conn,
    chunked: bool,
    written: u64,
}

impl Write for BodyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        {
            let mut out = self.conn.write_buf.borrow_mut();
            if self.chunked {
                write!(out, "{:x}\r\n", buf.len())?;
                out.extend_from_slice(buf);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(buf);
            }
            if out.len() < FLUSH_AT {
                self.written += buf.len() as u64;
                return Ok(buf.len());
            }
        }
        self.conn.flush()?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

impl fmt::Debug for BodyWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter").field("chunked", &self.chunked).field("written", &self.written).finish()
    }
}

/// What the response is answering.
pub(crate) struct RequestLine {
    pub(crate) method: Method,
    pub(crate) version: Version,
}

/// What was sent.
pub(crate) struct Written {
    pub(crate) status: StatusCode,
    pub(crate) body_bytes: u64,
    /// Whether the connection may carry another request.
    pub(crate) keep_alive: bool,
}

/// Writes `response` to `request` into the connection's write buffer (and
/// sends it when large). `keep_alive`: the client and server would keep the
/// connection.
pub(crate) fn write(
    conn: &Conn,
    request: &RequestLine,
    mut keep_alive: bool,
    response: Response<ResponseBody>,
) -> Written {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let headers = parts.headers;
    let bodiless_status =
        status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let head_request = request.method == Method::HEAD;
    let length = body.length();
    // The handler's Content-Length stands for a HEAD answer with no body,
    // and a 304 (where it describes the resource).
    let keep_handler_length = (head_request && length == Some(0)) || status == StatusCode::NOT_MODIFIED;
    enum Framing {
        None,
        Length(u64),
        Chunked,
        UntilClose,
    }
    let mut out = conn.write_buf.borrow_mut();
    write_status_line(&mut out, status);
    // One pass over the handler's fields writes them and notes what the
    // server's own fields depend on.
    let mut has_date = false;
    let mut has_length = false;
    for (name, value) in &headers {
        if name == header::CONNECTION {
            if says_close(value) {
                keep_alive = false;
            }
        } else if name == header::CONTENT_LENGTH {
            has_length = true;
            if keep_handler_length {
                write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
            }
        } else if name != header::TRANSFER_ENCODING {
            has_date |= name == header::DATE;
            write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let framing = if bodiless_status || (keep_handler_length && has_length) {
        Framing::None
    } else if let Some(length) = length {
        Framing::Length(length)
    } else if request.version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    if !has_date {
        crate::date::with_date(|date| write_field(&mut out, b"date", date));
    }
    match framing {
        Framing::Length(length) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa(length, &mut [0; 20]));
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked if !head_request => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if request.version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    drop(out);
    if head_request || bodiless_status {
        return Written { status, body_bytes: 0, keep_alive };
    }
    match send_body(conn, body, matches!(framing, Framing::Chunked)) {
        Ok(sent) => Written { status, body_bytes: sent, keep_alive },
        Err(_) => Written { status, body_bytes: 0, keep_alive: false },
    }
}

/// Sends the body; the number of body bytes.
fn send_body(conn: &Conn, body: ResponseBody, chunked: bool) -> io::Result<u64> {
    match body.kind {
        Kind::Bytes(bytes) => {
            let mut out = conn.write_buf.borrow_mut();
            if out.len() + bytes.len() <= FLUSH_AT {
                out.extend_from_slice(&bytes);
                return Ok(bytes.len() as u64);
            }
            drop(out);
            conn.flush()?;
            conn.send(&bytes)?;
            Ok(bytes.len() as u64)
        }
        Kind::Reader { mut reader, length } => {
            let mut writer = BodyWriter { conn, chunked, written: 0 };
            let mut buf = vec![0; 16 * 1024];
            loop {
                let want = match length {
                    Some(length) => (length - writer.written).min(buf.len() as u64) as usize,
                    None => buf.len(),
                };
                if want == 0 {
                    break;
                }
                let n = match reader.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(err),
                };
                if n == 0 {
                    if length.is_some() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the body reader ended early",
                        ));
                    }
                    break;
                }
                writer.write_all(&buf[..n])?;
            }
            finish_chunks(conn, chunked)?;
            Ok(writer.written)
        }
        Kind::Stream(write) => {
            let mut writer = BodyWriter { conn, chunked, written: 0 };
            write(&mut writer)?;
            finish_chunks(conn, chunked)?;
            Ok(writer.written)
        }
        // Not sent as a body: the connection answers these with
        // `write_switch_head` (or a rejection).
        Kind::Upgrade(_) => Ok(0),
    }
}

/// Writes the head of a response that switches protocols (`101`, or `2xx`
/// to `CONNECT`): the handler's fields, less the framing ones, with
/// `Connection: upgrade` on a `101` that has no `Connection` field.
pub(crate) fn write_switch_head(conn: &Conn, status: StatusCode, headers: &HeaderMap) {
    let mut out = conn.write_buf.borrow_mut();
    write_status_line(&mut out, status);
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !headers.contains_key(header::DATE) {
        crate::date::with_date(|date| write_field(&mut out, b"date", date));
    }
    if status == StatusCode::SWITCHING_PROTOCOLS && !headers.contains_key(header::CONNECTION) {
        out.extend_from_slice(b"connection: upgrade\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn finish_chunks(conn: &Conn, chunked: bool) -> io::Result<()> {
    if chunked {
        conn.write_buf.borrow_mut().extend_from_slice(b"0\r\n\r\n");
    }
    Ok(())
}

/// Writes a short plain-text error response, with `Connection: close`.
pub(crate) fn write_reject(conn: &Conn, reject: Reject) -> Written {
    let body = format!("{}\n", reject.reason);
    let mut out = conn.write_buf.borrow_mut();
    write_status_line(&mut out, reject.status);
    crate::date::with_date(|date| write_field(&mut out, b"date", date));
    write_field(&mut out, b"content-type", b"text/plain; charset=utf-8");
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa(body.len() as u64, &mut [0; 20]));
    out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    Written { status: reject.status, body_bytes: body.len() as u64, keep_alive: false }
}

/// `"GET /path HTTP/1.1"`, for logs.
pub(crate) fn log_request_line<B>(request: &Request<B>) -> String {
    format!("{} {} {:?}", request.method(), request.uri(), request.version())
}

/// Whether a `Connection` field's value has the token `close`.
fn says_close(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|&byte| byte == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, in `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
