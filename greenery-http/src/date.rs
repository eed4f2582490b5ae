//! The `Date` header, formatted once a second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

struct Cached {
    second: u64,
    text: [u8; 29],
}

thread_local! {
    static DATE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [0; 29] }) };
}

/// Calls `f` with the current time as an IMF-fixdate (RFC 9110 5.6.7), such
/// as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == cached.text.len() {
                cached.text.copy_from_slice(text.as_bytes());
                cached.second = second;
            }
        }
        f(&cached.text);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_date_is_an_imf_fixdate() {
        super::with_date(|date| {
            let text = std::str::from_utf8(date).unwrap();
            assert!(text.ends_with(" GMT"), "{text}");
            assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
        });
    }
}
