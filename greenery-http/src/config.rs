//! What a server allows: sizes and times.

use std::time::Duration;

/// Size limits on requests. A request over one gets the status named on the
/// field, and its connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line, in bytes (method, target and version):
    /// `414 URI Too Long`. Default 8 KiB.
    pub max_request_line: usize,
    /// The most header fields: `431 Request Header Fields Too Large`.
    /// Default 100.
    pub max_headers: usize,
    /// The largest request head (request line and header fields), in bytes,
    /// and the largest trailer section of a chunked body: `431`. Default 64
    /// KiB.
    pub max_head: usize,
    /// The largest request body, in bytes: `413 Content Too Large` when
    /// `Content-Length` says more; a chunked body that grows past it fails
    /// the handler's read with `InvalidData`. Default 16 MiB.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_line: 8 * 1024,
            max_headers: 100,
            max_head: 64 * 1024,
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// Time limits on connections.
///
/// None of them can be dodged by a client that sends a little now and then:
/// the head must be whole within `header` of its first byte, empty lines
/// before a request line do not count as a start and move no deadline, and
/// bodies are held to a minimum rate.
///
/// ```
/// use std::time::Duration;
/// use greenery_http::{MinRate, Timeouts};
///
/// let timeouts = Timeouts {
///     keep_alive: Duration::from_secs(5),
///     request_body: MinRate { grace: Duration::from_secs(10), bytes_per_second: 1000 },
///     ..Timeouts::default()
/// };
/// # drop(timeouts);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a client may take to send a request head, counted from the
    /// connection (for the first request) or from its first byte (for later
    /// ones): against slow-header attacks (slowloris). Past it, `408
    /// Request Timeout` and the connection is closed. Default 10 s.
    pub header: Duration,
    /// How long an HTTPS client may take to finish its TLS handshake,
    /// counted from the connection; past it the connection is closed
    /// (silently). The header timeout then counts from the end of the
    /// handshake. Default 10 s.
    pub handshake: Duration,
    /// How long a keep-alive connection may sit idle between requests before
    /// it is closed (silently), counted from the end of the last response.
    /// Empty lines sent meanwhile do not extend it. Default 60 s.
    pub keep_alive: Duration,
    /// How long one read of a request body, or one write of a response, may
    /// wait; past it the body is answered with `408 Request Timeout`, or the
    /// connection is closed. Default 30 s.
    pub io: Duration,
    /// The slowest a request body may arrive. A body that falls below it
    /// fails the handler's read with `TimedOut` and is answered with `408
    /// Request Timeout` (whatever the handler returns), and the connection
    /// is closed. Default: 20 s of grace, then 500 bytes per second
    /// (Apache's `RequestReadTimeout body=20,MinRate=500`).
    pub request_body: MinRate,
    /// The slowest a client may take a response: a client that reads it
    /// more slowly has its connection closed. Default: 20 s of grace, then
    /// 500 bytes per second.
    pub response_body: MinRate,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            io: Duration::from_secs(30),
            request_body: MinRate::DEFAULT,
            response_body: MinRate::DEFAULT,
        }
    }
}

/// A minimum transfer rate, as Apache's `mod_reqtimeout` sets one: a
/// transfer may spend `grace` waiting for the client, plus one more second
/// for every `bytes_per_second` bytes that have gone through so far. Past
/// that, it fails.
///
/// Only the time spent waiting for the client counts, not the time the
/// handler takes between reads or writes: a slow handler does not make its
/// client too slow. So a body of `n` bytes may keep its connection waiting
/// at most `grace + n / bytes_per_second` in all, however it trickles.
///
/// ```
/// use std::time::Duration;
/// use greenery_http::MinRate;
///
/// // After the first 5 s, at least 1 KB a second on average.
/// let rate = MinRate { grace: Duration::from_secs(5), bytes_per_second: 1000 };
/// assert_eq!(rate.allowance(3000), Duration::from_secs(8));
/// // No minimum at all:
/// assert_eq!(MinRate::UNLIMITED.allowance(0), Duration::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// How long a transfer may wait for the client before any byte counts.
    pub grace: Duration,
    /// Bytes that earn one more second of waiting; 0: `grace` is all the
    /// waiting a transfer may do.
    pub bytes_per_second: u64,
}

impl MinRate {
    /// 20 s of grace, then 500 bytes a second.
    pub const DEFAULT: MinRate = MinRate { grace: Duration::from_secs(20), bytes_per_second: 500 };

    /// No minimum: a transfer may wait for ever (each wait is still bounded
    /// by [`Timeouts::io`]).
    pub const UNLIMITED: MinRate = MinRate { grace: Duration::MAX, bytes_per_second: 0 };

    /// How long in all a transfer that has moved `bytes` may have waited:
    /// `grace + bytes / bytes_per_second` seconds.
    pub fn allowance(&self, bytes: u64) -> Duration {
        let earned = match self.bytes_per_second {
            0 => Duration::ZERO,
            rate => {
                let millis = u128::from(bytes) * 1000 / u128::from(rate);
                Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
            }
        };
        self.grace.saturating_add(earned)
    }
}

impl Default for MinRate {
    fn default() -> MinRate {
        MinRate::DEFAULT
    }
}
