#![doc = include_str!("../README.md")]

mod body;
mod chunked;
mod config;
mod conn;
mod date;
mod head;
mod panic_report;
mod response;
mod server;
mod stream;
mod upgrade;

/// Entry points for the fuzz targets in `fuzz/` (built only by `cargo fuzz`,
/// which sets `--cfg fuzzing`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a request head with the default limits; checks what a parse
    /// promises: a complete head lies within the input, and more input after
    /// it changes nothing.
    pub fn parse_head(bytes: &[u8]) {
        let limits = crate::Limits::default();
        if let Ok(Some((head, len))) = crate::head::parse(bytes, &limits) {
            assert!(len <= bytes.len());
            let mut longer = bytes[..len].to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let (again, again_len) = crate::head::parse(&longer, &limits).unwrap().unwrap();
            assert_eq!(again_len, len);
            assert_eq!(again.framing, head.framing);
            assert_eq!(again.uri, head.uri);
        }
    }

    /// Decodes a chunked body whole and byte by byte: both must agree.
    pub fn decode_chunked(bytes: &[u8]) {
        let whole = decode(bytes, bytes.len().max(1), 4096);
        let pieces = decode(bytes, 1, 3);
        assert_eq!(whole, pieces);
    }

    fn decode(bytes: &[u8], step: usize, out: usize) -> Result<(Vec<u8>, usize), &'static str> {
        let mut decoder = crate::chunked::Decoder::new(1024);
        let mut body = Vec::new();
        let mut buf = vec![0; out];
        let mut at = 0;
        while at < bytes.len() && !decoder.is_done() {
            let end = (at + step).min(bytes.len());
            let progress = decoder.decode(&bytes[at..end], &mut buf)?;
            assert!(progress.consumed <= end - at && progress.produced <= out);
            body.extend_from_slice(&buf[..progress.produced]);
            at += progress.consumed;
        }
        Ok((body, at))
    }
}

use std::borrow::Cow;
use std::net::SocketAddr;
use std::str::Utf8Error;

pub use body::Body;
pub use config::{Limits, MinRate, Timeouts};
pub use response::{BodyWriter, ResponseBody};
pub use server::Server;
pub use upgrade::Upgraded;

/// The `http` crate, whose `Request`, `Response`, `StatusCode` and
/// `HeaderMap` handlers use.
pub use http;

/// The rustls crate, whose [`ServerConfig`](rustls::ServerConfig)
/// [`Server::with_tls`] takes (with the `tls` feature).
#[cfg(feature = "tls")]
pub use greenery::net::rustls;

/// A client's address as a request extension, for requests built by hand
/// (in tests, or by a layer that stands for another client):
/// [`RequestExt::peer_addr`] reads it when the body does not know the
/// client. The requests that a [`Server`] makes carry their client's
/// address in their [`Body`] instead ([`Body::peer_addr`]), which costs
/// nothing per request where an extension would cost allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Helpers on requests: the decoded path, the query's pairs, the client.
pub trait RequestExt {
    /// The path, percent-decoded (`/a%20b` → `/a b`). Note that `%2F` decodes
    /// to `/`: route on [`Uri::path`](http::Uri::path) when that matters.
    ///
    /// # Errors
    ///
    /// If the decoded bytes are not UTF-8.
    fn decoded_path(&self) -> Result<Cow<'_, str>, Utf8Error>;

    /// The query string's `name=value` pairs, decoded as an HTML form's
    /// (`+` is a space; invalid UTF-8 becomes U+FFFD).
    fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)>;

    /// The client's address (pywsgi's `REMOTE_ADDR`), for requests that
    /// came through a [`Server`] (from their [`Body`]), or that carry a
    /// [`PeerAddr`] extension.
    fn peer_addr(&self) -> Option<SocketAddr>;
}

impl<B: 'static> RequestExt for http::Request<B> {
    fn decoded_path(&self) -> Result<Cow<'_, str>, Utf8Error> {
        percent_encoding::percent_decode_str(self.uri().path()).decode_utf8()
    }

    fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        form_urlencoded::parse(self.uri().query().unwrap_or("").as_bytes())
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        let body: &dyn std::any::Any = self.body();
        body.downcast_ref::<Body>()
            .and_then(Body::peer_addr)
            .or_else(|| self.extensions().get::<PeerAddr>().map(|peer| peer.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_decode() {
        let request = http::Request::get("/caf%C3%A9/a%20b?q=hello+world&x=%26&empty=").body(()).unwrap();
        assert_eq!(request.decoded_path().unwrap(), "/café/a b");
        let pairs: Vec<(String, String)> =
            request.query_pairs().map(|(name, value)| (name.into_owned(), value.into_owned())).collect();
        assert_eq!(
            pairs,
            [("q".into(), "hello world".into()), ("x".into(), "&".into()), ("empty".into(), String::new())]
        );
        let invalid = http::Request::get("/%FF").body(()).unwrap();
        assert!(invalid.decoded_path().is_err());
        assert_eq!(invalid.peer_addr(), None);
    }

    #[test]
    fn the_peer_address_comes_from_the_body_or_an_extension() {
        let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let mut by_hand = http::Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(by_hand.peer_addr(), None);
        by_hand.extensions_mut().insert(PeerAddr(addr));
        assert_eq!(by_hand.peer_addr(), Some(addr));
        let mut other_body = http::Request::get("/").body("text").unwrap();
        other_body.extensions_mut().insert(PeerAddr(addr));
        assert_eq!(other_body.peer_addr(), Some(addr));
    }
}
