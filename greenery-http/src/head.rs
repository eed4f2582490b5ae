//! Parsing and checking a request head (RFC 9112 sections 2-6): the request
//! line, the header fields, and from them the message's framing.
//!
//! The parser is strict wherever leniency would let two parties disagree on
//! where a request ends (request smuggling): every line must end in CRLF, a
//! header line may not begin with whitespace (obs-fold), `Content-Length`
//! must be digits and agree with itself, and a request may not carry both
//! `Content-Length` and `Transfer-Encoding`. Each rejection names its status
//! code; the connection is closed after the response.
//!
//! # What RFC 9112 and RFC 9110 require of a server, and where it is done
//!
//! Each has a case in `tests/server.rs`
//! (`the_request_head_is_held_to_every_must_of_rfc_9112_and_9110`).
//!
//! - A line must end in CRLF; a bare CR is invalid (9112 §2.2): 400.
//! - Whitespace between the request line and the first field, and obs-fold
//!   (a field line that begins with whitespace), must be rejected or
//!   replaced (9112 §2.2, §5.2): 400.
//! - Whitespace between a field name and its colon must be rejected (9112
//!   §5.1): 400 (httparse).
//! - CR, LF and NUL in a field value must be rejected or replaced (9110
//!   §5.5): 400 (httparse, which rejects every control but tab).
//! - A request with no `Host` (HTTP/1.1), more than one, or one whose value
//!   is not `uri-host [ ":" port ]` must get 400 (9112 §3.2). An empty value
//!   is valid (a target without an authority).
//! - With an absolute-form target the received `Host` must be ignored for
//!   the target's authority (9112 §3.2.2): the handler sees the target's
//!   authority as `Host`.
//! - An `http` URI with an empty host must be rejected as invalid (9110
//!   §4.2.1): 400; so is one with userinfo (a SHOULD of §4.2.4).
//! - The authority form is for CONNECT alone, `uri-host ":" port`, port
//!   included (9112 §3.2.3, 9110 §9.3.6); the asterisk form is for OPTIONS
//!   alone (9112 §3.2.4): 400 otherwise. A request target has no fragment:
//!   400 for a `#`.
//! - Framing (9112 §6.1, §6.3): `Transfer-Encoding` with `Content-Length`,
//!   `Transfer-Encoding` in HTTP/1.0, a last coding other than chunked, an
//!   invalid `Content-Length`: 400, and the connection closes. A transfer
//!   coding other than chunked: 501.
//! - `Content-Length: 42, 42` must be rejected or replaced by one value
//!   (9110 §8.6): the handler sees `Content-Length: 42`.
//! - A `100-continue` expectation in HTTP/1.0 must be ignored (9110
//!   §10.1.1).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use crate::config::Limits;

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes (more than zero).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head that passed every check.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The client asked to keep the connection open (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1 only).
    pub(crate) expect_continue: bool,
}

/// Why a request cannot be served: the status to answer with (the
/// connection is then closed) and a short reason for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

const fn reject(status: StatusCode, reason: &'static str) -> Reject {
    Reject { status, reason }
}

const BAD: StatusCode = StatusCode::BAD_REQUEST;

/// The size of the blocks that a connection copies request heads into
/// ([`parse_into`]'s arena): heads share a block until it is full, and a
/// block whose heads are all dropped is reused.
pub(crate) const HEAD_ARENA_BLOCK: usize = 4096;

/// Parses the head at the start of `buf` (leading empty lines already
/// skipped). `Ok(None)`: the head is not all there yet, and may still fit
/// the limits; `Ok(Some((head, len)))`: the head took `len` bytes.
#[cfg(any(test, fuzzing))]
pub(crate) fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Reject> {
    parse_into(buf, limits, &mut BytesMut::new())
}

/// As `parse`, copying the head into `arena`, the connection's block of
/// head bytes: the target and the field values are counted references to
/// that copy, so that a head costs no allocation of its own while the
/// handlers drop their requests (the block is then reclaimed when full).
pub(crate) fn parse_into(
    buf: &[u8],
    limits: &Limits,
    arena: &mut BytesMut,
) -> Result<Option<(Head, usize)>, Reject> {
    let Some((len, field_count)) = head_len(buf, limits)? else { return Ok(None) };
    // Room for exactly the fields counted, on the stack in the usual case,
    // left uninitialised: httparse writes each one it returns.
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 32];
    let mut on_heap = Vec::new();
    let fields = if field_count <= on_stack.len() {
        &mut on_stack[..field_count]
    } else {
        on_heap.resize_with(field_count, MaybeUninit::uninit);
        &mut on_heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(&buf[..len], fields) {
        Ok(httparse::Status::Complete(parsed)) if parsed == len => {}
        Ok(_) => return Err(reject(BAD, "malformed request head")),
        Err(httparse::Error::Version) => return Err(version_reject(buf)),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields"));
        }
        Err(httparse::Error::HeaderName) => return Err(reject(BAD, "malformed header field name")),
        Err(httparse::Error::HeaderValue) => return Err(reject(BAD, "malformed header field value")),
        Err(_) => return Err(reject(BAD, "malformed request line")),
    }
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => {
            return Err(reject(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "only HTTP/1.0 and HTTP/1.1 are served",
            ));
        }
    };
    let method = request
        .method
        .and_then(|method| Method::from_bytes(method.as_bytes()).ok())
        .ok_or(reject(BAD, "malformed method"))?;
    // One copy of the head, which the target and the field values share
    // (each a counted reference to it), in the connection's arena: no
    // allocation for the whole head once the arena has a block.
    if arena.capacity() < len {
        arena.reserve(len.max(HEAD_ARENA_BLOCK));
    }
    arena.extend_from_slice(&buf[..len]);
    let shared: Bytes = arena.split().freeze();
    let share = |part: &[u8]| {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        shared.slice(start..start + part.len())
    };
    let target = request.path.map_or_else(Bytes::new, |path| share(path.as_bytes()));
    let (uri, absolute_form) = request_target(&method, target)?;
    // The checks read the raw fields (the names are tokens, which httparse
    // checked); the map is built once they pass.
    let fields: &[httparse::Header<'_>] = request.headers;
    // One pass finds the fields that the checks read; each check then runs
    // only if its field is there.
    let seen = Seen::of(fields);
    check_host(seen.host, version)?;
    let framing = if seen.content_length || seen.transfer_encoding {
        framing(fields, version)?
    } else {
        Framing::Empty
    };
    if let Framing::Length(length) = framing
        && length > limits.max_body
    {
        return Err(reject(StatusCode::PAYLOAD_TOO_LARGE, "the request body is larger than allowed"));
    }
    let (close, keep_alive_token) = if seen.connection { connection_tokens(fields) } else { (false, false) };
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_token);
    let expect_continue = if seen.expect { expect_continue(fields, version)? } else { false };
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| reject(BAD, "malformed header field name"))?;
        let value = HeaderValue::from_maybe_shared(share(field.value))
            .map_err(|_| reject(BAD, "malformed header field value"))?;
        headers.append(name, value);
    }
    if absolute_form {
        // RFC 9112 3.2.2: the target's authority stands, not the Host sent.
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let value = HeaderValue::from_str(authority).map_err(|_| reject(BAD, "malformed request target"))?;
        headers.insert(http::header::HOST, value);
    }
    let repeated_length = seen.content_length && {
        let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
        let first_is_a_list = lengths.next().is_some_and(|first| first.as_bytes().contains(&b','));
        first_is_a_list || lengths.next().is_some()
    };
    if repeated_length {
        // RFC 9110 8.6: repeated equal values (framing checked they are)
        // become one.
        let length = match framing {
            Framing::Length(length) => length,
            _ => 0,
        };
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(Some((Head { method, uri, version, headers, framing, keep_alive, expect_continue }, len)))
}

/// 505 for a well-formed version other than 1.0 and 1.1 (`HTTP/2.0`), 400
/// for anything else in its place.
fn version_reject(buf: &[u8]) -> Reject {
    let line = buf.split(|&byte| byte == b'\r').next().unwrap_or(b"");
    let version = line.rsplit(|&byte| byte == b' ').next().unwrap_or(b"");
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            reject(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.0 and HTTP/1.1 are served")
        }
        _ => reject(BAD, "malformed HTTP version"),
    }
}

/// The length of the head (through its empty line) and its number of header
/// fields, checking line endings, obs-fold and the size limits on the way.
/// `Ok(None)` while incomplete.
fn head_len(buf: &[u8], limits: &Limits) -> Result<Option<(usize, usize)>, Reject> {
    let mut line_start = 0;
    let mut lines = 0;
    // One pass over the bytes: each line runs to its first CR or LF, which
    // must be a CR followed by an LF.
    while let Some(offset) = memchr::memchr2(b'\r', b'\n', &buf[line_start..]) {
        let end = line_start + offset;
        if buf[end] == b'\n' {
            return Err(reject(BAD, "a line ends in a bare LF instead of CRLF"));
        }
        match buf.get(end + 1) {
            None => break, // the LF may come
            Some(b'\n') => {}
            Some(_)
                if memchr::memchr(b'\n', &buf[end + 1..]).is_some_and(|lf| {
                    // A bare LF ends this line first: say so, as for any line.
                    buf[end + 1 + lf - 1] != b'\r'
                }) =>
            {
                return Err(reject(BAD, "a line ends in a bare LF instead of CRLF"));
            }
            Some(_) => return Err(reject(BAD, "a bare CR inside a line")),
        }
        let line = &buf[line_start..end];
        if lines == 0 && line.len() > limits.max_request_line {
            return Err(reject(StatusCode::URI_TOO_LONG, "the request line is longer than allowed"));
        }
        if line.is_empty() && lines > 0 {
            let len = end + 2;
            if len > limits.max_head {
                return Err(too_large_head());
            }
            return Ok(Some((len, lines - 1)));
        }
        if lines > 0 && matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(reject(BAD, "obsolete line folding in a header field"));
        }
        lines += 1;
        if lines > limits.max_headers + 1 {
            return Err(reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields"));
        }
        line_start = end + 2;
    }
    // Incomplete: is what there is already over a limit?
    if lines == 0 && buf.len() > limits.max_request_line + 1 {
        return Err(reject(StatusCode::URI_TOO_LONG, "the request line is longer than allowed"));
    }
    if buf.len() >= limits.max_head {
        return Err(too_large_head());
    }
    Ok(None)
}

fn too_large_head() -> Reject {
    reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "the request head is larger than allowed")
}

/// The request target, in the form its method allows (RFC 9112 3.2), and
/// whether it is in the absolute form.
fn request_target(method: &Method, target: Bytes) -> Result<(Uri, bool), Reject> {
    const MALFORMED: Reject = reject(BAD, "malformed request target");
    if target.contains(&b'#') {
        // A fragment is no part of a request target; `Uri` would drop it.
        return Err(MALFORMED);
    }
    if target.first() == Some(&b'/') && *method != Method::CONNECT {
        // The origin form, which every method but CONNECT may use: `Uri`
        // checks all there is to check.
        return Ok((Uri::from_maybe_shared(target).map_err(|_| MALFORMED)?, false));
    }
    let uri = Uri::from_maybe_shared(target.clone()).map_err(|_| MALFORMED)?;
    let target = std::str::from_utf8(&target).map_err(|_| MALFORMED)?;
    let origin_form = target.starts_with('/');
    let absolute_form = uri.scheme().is_some();
    let form_allowed = if *method == Method::CONNECT {
        // uri-host ":" port, nothing else.
        !origin_form
            && !absolute_form
            && uri.authority().is_some_and(|authority| {
                authority.as_str() == target
                    && authority.port().is_some()
                    && valid_host(authority.as_str().as_bytes())
            })
    } else if target == "*" {
        *method == Method::OPTIONS
    } else {
        origin_form || absolute_form
    };
    if !form_allowed {
        return Err(reject(BAD, "the request target's form does not suit the method"));
    }
    if absolute_form {
        // RFC 9110 4.2: an http(s) URI's host is not empty, and userinfo in
        // one is an error.
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let host = uri.host().unwrap_or("");
        if host.is_empty() || authority.contains('@') || !valid_host(authority.as_bytes()) {
            return Err(reject(BAD, "the request target's authority is malformed"));
        }
    }
    Ok((uri, absolute_form))
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9112 3.2, RFC 3986
/// 3.2.2-3.2.3), or empty: an IP literal in brackets (IPv6 or IPvFuture),
/// or a reg-name (which takes in IPv4 addresses), then an optional colon
/// and digits.
fn valid_host(value: &[u8]) -> bool {
    // The usual case first: a reg-name without percent-encoding, and
    // perhaps a port.
    let name_end = value.iter().position(|&byte| REG_NAME[usize::from(byte)] == 0).unwrap_or(value.len());
    match value.get(name_end) {
        None => return true,
        Some(b':') if value[name_end + 1..].iter().all(u8::is_ascii_digit) => return true,
        _ => {}
    }
    let (host, port): (&[u8], &[u8]) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&byte| byte == b']') else { return false };
        if !valid_ip_literal(&literal[..end]) {
            return false;
        }
        match &literal[end + 1..] {
            [] => (b"", b""),
            [b':', port @ ..] => (b"", port),
            _ => return false,
        }
    } else {
        match value.iter().position(|&byte| byte == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, b""),
        }
    };
    port.iter().all(u8::is_ascii_digit) && valid_reg_name(host)
}

/// RFC 3986 `reg-name`: `*( unreserved / pct-encoded / sub-delims )`.
fn valid_reg_name(name: &[u8]) -> bool {
    let mut bytes = name.iter();
    while let Some(&byte) = bytes.next() {
        let fine = match byte {
            b'%' => {
                let (Some(high), Some(low)) = (bytes.next(), bytes.next()) else { return false };
                high.is_ascii_hexdigit() && low.is_ascii_hexdigit()
            }
            _ => REG_NAME[usize::from(byte)] != 0,
        };
        if !fine {
            return false;
        }
    }
    true
}

/// What goes between an IP literal's brackets: an IPv6 address, or
/// `IPvFuture` (`"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`).
fn valid_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        let Some(dot) = rest.iter().position(|&byte| byte == b'.') else { return false };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail.iter().all(|&byte| is_unreserved(byte) || is_sub_delim(byte) || byte == b':');
    }
    std::str::from_utf8(literal).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

fn is_unreserved(byte: u8) -> bool {
    REG_NAME[usize::from(byte)] == UNRESERVED
}

const UNRESERVED: u8 = 1;
const SUB_DELIM: u8 = 2;

/// What each byte is in a `reg-name`: [`UNRESERVED`], [`SUB_DELIM`], or
/// neither (0).
const REG_NAME: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            UNRESERVED
        } else if matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=') {
            SUB_DELIM
        } else {
            0
        };
        byte += 1;
    }
    table
};

fn is_sub_delim(byte: u8) -> bool {
    REG_NAME[usize::from(byte)] == SUB_DELIM
}

/// The values of the fields named `name` (in lower case), in order.
fn values<'a>(fields: &'a [httparse::Header<'a>], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    fields.iter().filter(move |field| field.name.eq_ignore_ascii_case(name)).map(|field| field.value)
}

/// A field value as text, if it is visible ASCII (with spaces and tabs):
/// what [`HeaderValue::to_str`] accepts.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&byte| byte == b'\t' || (0x20..0x7f).contains(&byte)) {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// HTTP/1.1 requires exactly one `Host`; HTTP/1.0 allows at most one; its
/// value must be `uri-host [ ":" port ]` or empty (RFC 9112 3.2).
fn check_host(host: Hosts<'_>, version: Version) -> Result<(), Reject> {
    match host {
        Hosts::None if version == Version::HTTP_11 => {
            Err(reject(BAD, "an HTTP/1.1 request needs a Host header"))
        }
        Hosts::None => Ok(()),
        Hosts::Several => Err(reject(BAD, "more than one Host header")),
        Hosts::One(host) if valid_host(host) => Ok(()),
        Hosts::One(_) => Err(reject(BAD, "the Host header is not a host and optional port")),
    }
}

/// The `Host` fields of a request.
#[derive(Clone, Copy)]
enum Hosts<'a> {
    None,
    One(&'a [u8]),
    Several,
}

/// Which of the fields that the checks read a head has, found in one pass.
struct Seen<'a> {
    host: Hosts<'a>,
    content_length: bool,
    transfer_encoding: bool,
    connection: bool,
    expect: bool,
}

impl<'a> Seen<'a> {
    fn of(fields: &'a [httparse::Header<'a>]) -> Seen<'a> {
        let mut seen = Seen {
            host: Hosts::None,
            content_length: false,
            transfer_encoding: false,
            connection: false,
            expect: false,
        };
        for field in fields {
            let name = field.name.as_bytes();
            // The length first: most names are none of these.
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => {
                    seen.host = match seen.host {
                        Hosts::None => Hosts::One(field.value),
                        _ => Hosts::Several,
                    };
                }
                6 if name.eq_ignore_ascii_case(b"expect") => seen.expect = true,
                10 if name.eq_ignore_ascii_case(b"connection") => seen.connection = true,
                14 if name.eq_ignore_ascii_case(b"content-length") => seen.content_length = true,
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => seen.transfer_encoding = true,
                _ => {}
            }
        }
        seen
    }
}

/// The body's framing (RFC 9112 6.1-6.3), rejecting every ambiguity.
fn framing(fields: &[httparse::Header<'_>], version: Version) -> Result<Framing, Reject> {
    let has_length = values(fields, "content-length").next().is_some();
    if values(fields, "transfer-encoding").next().is_some() {
        if version == Version::HTTP_10 {
            return Err(reject(BAD, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        if has_length {
            return Err(reject(BAD, "both Content-Length and Transfer-Encoding"));
        }
        let mut codings = Vec::new();
        for value in values(fields, "transfer-encoding") {
            let value = visible_ascii(value).ok_or(reject(BAD, "malformed Transfer-Encoding"))?;
            codings.extend(value.split(',').map(str::trim).filter(|coding| !coding.is_empty()));
        }
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            [] => Err(reject(BAD, "an empty Transfer-Encoding")),
            [.., last] if last.eq_ignore_ascii_case("chunked") => {
                if codings.iter().filter(|coding| coding.eq_ignore_ascii_case("chunked")).count() > 1 {
                    Err(reject(BAD, "chunked applied more than once"))
                } else {
                    Err(reject(StatusCode::NOT_IMPLEMENTED, "only the chunked transfer coding is supported"))
                }
            }
            _ => Err(reject(BAD, "a request's Transfer-Encoding must end in chunked")),
        };
    }
    if !has_length {
        return Ok(Framing::Empty);
    }
    let mut length = None;
    for value in values(fields, "content-length") {
        for element in value.split(|&byte| byte == b',') {
            let element = trim_ows(element);
            if element.is_empty() || element.len() > 19 || !element.iter().all(u8::is_ascii_digit) {
                return Err(reject(BAD, "malformed Content-Length"));
            }
            let parsed = element.iter().fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
            match length {
                Some(earlier) if earlier != parsed => {
                    return Err(reject(BAD, "conflicting Content-Length values"));
                }
                _ => length = Some(parsed),
            }
        }
    }
    Ok(match length {
        Some(0) | None => Framing::Empty,
        Some(length) => Framing::Length(length),
    })
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Whether `Connection` says `close`, and whether it says `keep-alive`.
fn connection_tokens(fields: &[httparse::Header<'_>]) -> (bool, bool) {
    let mut close = false;
    let mut keep_alive = false;
    for value in values(fields, "connection") {
        for token in value.split(|&byte| byte == b',') {
            let token = trim_ows(token);
            close |= token.eq_ignore_ascii_case(b"close");
            keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    (close, keep_alive)
}

/// `Expect: 100-continue` is honoured (HTTP/1.1); any other expectation
/// gets 417.
fn expect_continue(fields: &[httparse::Header<'_>], version: Version) -> Result<bool, Reject> {
    let mut expect = false;
    for value in values(fields, "expect") {
        if value.eq_ignore_ascii_case(b"100-continue") {
            expect = version == Version::HTTP_11;
        } else {
            return Err(reject(StatusCode::EXPECTATION_FAILED, "only Expect: 100-continue is supported"));
        }
    }
    Ok(expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(head: &str) -> Result<Option<(Head, usize)>, Reject> {
        parse(head.as_bytes(), &Limits::default())
    }

    fn status(head: &str) -> StatusCode {
        parse_all(head).expect_err("rejected").status
    }

    #[test]
    fn a_simple_get_parses() {
        let (head, len) = parse_all("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nrest").unwrap().unwrap();
        assert_eq!(len, "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri.path(), "/a");
        assert_eq!(head.uri.query(), Some("b=c"));
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.keep_alive);
        assert!(!head.expect_continue);
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert!(parse_all("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse_all("GET / HT").unwrap().is_none());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |head: &str| parse_all(head).unwrap().unwrap().0.framing;
        assert_eq!(framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"), Framing::Length(5));
        assert_eq!(framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"), Framing::Length(5));
        assert_eq!(framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), Framing::Empty);
        assert_eq!(
            framing("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Framing::Chunked
        );
    }

    #[test]
    fn ambiguous_framing_is_rejected() {
        for head in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n x\r\n\r\n",
            "GET / HTTP/1.1\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\n",
            "GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET x HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(status(head), StatusCode::BAD_REQUEST, "{head:?}");
        }
    }

    #[test]
    fn unsupported_things_get_their_status() {
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), StatusCode::HTTP_VERSION_NOT_SUPPORTED);
        assert_eq!(status("NOT HTTP AT ALL\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(status("GET / HTTP/1.x\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
    }

    #[test]
    fn limits_have_their_status() {
        let limits = Limits { max_request_line: 20, max_headers: 3, max_head: 200, ..Limits::default() };
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(30));
        assert_eq!(parse(long_line.as_bytes(), &limits).unwrap_err().status, StatusCode::URI_TOO_LONG);
        assert_eq!(parse(&long_line.as_bytes()[..25], &limits).unwrap_err().status, StatusCode::URI_TOO_LONG);
        let many = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse(many.as_bytes(), &limits).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let big = format!("GET / HTTP/1.1\r\nHost: {}\r\n", "x".repeat(300));
        assert_eq!(
            parse(big.as_bytes(), &limits).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let body = Limits { max_body: 10, ..Limits::default() };
        let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(parse(head.as_bytes(), &body).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn connection_and_expect_are_read() {
        let head = |text: &str| parse_all(text).unwrap().unwrap().0;
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(
            !head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue
        );
    }

    #[test]
    fn host_values_are_uri_host_and_an_optional_port() {
        for good in [
            "",
            "x",
            "example.com",
            "example.com:8080",
            "x:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "[v7.a:b]",
            "a%20b",
            "a!$&'()*+,;=b",
            "xn--bcher-kva.example",
        ] {
            assert!(valid_host(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "x/y",
            "x y",
            "user@x",
            "x:80:81",
            "x:8a",
            "[::1",
            "[::g]",
            "[::1]x",
            "[v.x]",
            "[v1.]",
            "a%2",
            "a%zz",
            "x?",
            "x#",
            "[fe80::1%25eth0]",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn request_target_forms_suit_their_methods() {
        let head = |text: &str| parse_all(text).unwrap().unwrap().0;
        assert_eq!(head("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").uri, "*");
        assert_eq!(head("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n").uri.port_u16(), Some(443));
        assert_eq!(head("GET http://example.com/a HTTP/1.1\r\nHost: x\r\n\r\n").uri.path(), "/a");
    }
}
