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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a client may take to send a request head, counted from the
    /// connection (for the first request) or from its first byte (for later
    /// ones): against slow-header attacks (slowloris). Past it, `408
    /// Request Timeout` and the connection is closed. Default 10 s.
    pub header: Duration,
    /// How long a keep-alive connection may sit idle between requests before
    /// it is closed (silently). Default 60 s.
    pub keep_alive: Duration,
    /// How long one read of a request body, or one write of a response, may
    /// wait; past it the handler's read fails with `TimedOut`, or the
    /// connection is closed. Default 30 s.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            io: Duration::from_secs(30),
        }
    }
}
