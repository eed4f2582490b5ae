//! Request heads: no input may panic the parser, and a parsed head is
//! stable under what follows it.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| greenery_http::fuzzing::parse_head(bytes));
