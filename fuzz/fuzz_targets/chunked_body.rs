//! Chunked bodies: no input may panic the decoder, and feeding it byte by
//! byte gives what feeding it whole does.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| greenery_http::fuzzing::decode_chunked(bytes));
