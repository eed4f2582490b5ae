//! The chunked transfer coding (RFC 9112 7.1), decoded strictly: a chunk
//! size is hex digits (at most 16), extensions are skipped but bounded,
//! every line ends in CRLF, and the trailer section is checked like a head
//! and handed to the handler apart from the header fields.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The longest chunk-size line (size and extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk size's hex digits.
    Size,
    /// Whitespace after the size, before `;`.
    SizeSpace,
    /// Inside chunk extensions, up to the CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// Inside a chunk's data, with this many bytes to go.
    Data(u64),
    /// After a chunk's data: its CR, then its LF.
    DataCr,
    DataLf,
    /// Reading the trailer section (up to and including its empty line).
    Trailers,
    Done,
}

/// A chunked body decoder, fed whatever bytes have arrived.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    size: u64,
    digits: u8,
    line: usize,
    trailer_bytes: Vec<u8>,
    max_trailers: usize,
    trailers: Option<HeaderMap>,
}

/// What [`Decoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Input bytes used.
    pub(crate) consumed: usize,
    /// Body bytes written to the output.
    pub(crate) produced: usize,
}

impl Decoder {
    /// A decoder that accepts a trailer section of up to `max_trailers`
    /// bytes.
    pub(crate) fn new(max_trailers: usize) -> Decoder {
        Decoder {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
            trailer_bytes: Vec::new(),
            max_trailers,
            trailers: None,
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer fields, once done.
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Decodes from `input` into `out` until one of them runs out or the
    /// body ends.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, &'static str> {
        let mut consumed = 0;
        let mut produced = 0;
        while consumed < input.len() && self.state != State::Done {
            if let State::Data(remaining) = self.state {
                let room = out.len() - produced;
                if room == 0 {
                    break;
                }
                let n = (input.len() - consumed).min(room).min(remaining.try_into().unwrap_or(usize::MAX));
                out[produced..produced + n].copy_from_slice(&input[consumed..consumed + n]);
                consumed += n;
                produced += n;
                let remaining = remaining - n as u64;
                self.state = if remaining == 0 { State::DataCr } else { State::Data(remaining) };
                continue;
            }
            let byte = input[consumed];
            consumed += 1;
            self.step(byte)?;
        }
        Ok(Progress { consumed, produced })
    }

    /// One byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), &'static str> {
        if matches!(self.state, State::Size | State::SizeSpace | State::Extension) {
            self.line += 1;
            if self.line > MAX_SIZE_LINE {
                return Err("a chunk-size line is too long");
            }
        }
        self.state = match (self.state, byte) {
            (State::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                if self.digits == 16 {
                    return Err("a chunk size is too large");
                }
                self.digits += 1;
                self.size = self.size << 4 | u64::from((byte as char).to_digit(16).unwrap_or(0));
                State::Size
            }
            (State::Size, _) if self.digits == 0 => return Err("a chunk size is missing"),
            (State::Size | State::SizeSpace, b' ' | b'\t') => State::SizeSpace,
            (State::Size | State::SizeSpace, b';') => State::Extension,
            (State::Size | State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\t' | b' '..=b'~' | 0x80..=0xff) => State::Extension,
            (State::SizeLf, b'\n') => {
                let size = self.size;
                self.size = 0;
                self.digits = 0;
                self.line = 0;
                if size == 0 { State::Trailers } else { State::Data(size) }
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size,
            (State::Trailers, _) => return self.trailer_byte(byte),
            (State::Size | State::SizeSpace | State::Extension, _) => {
                return Err("a malformed chunk-size line");
            }
            (State::SizeLf | State::DataLf, _) => return Err("a line ends in a bare CR"),
            (State::DataCr, _) => return Err("a chunk is longer than its size"),
            (State::Data(_) | State::Done, _) => unreachable!("handled by decode"),
        };
        Ok(())
    }

    /// One byte of the trailer section.
    fn trailer_byte(&mut self, byte: u8) -> Result<(), &'static str> {
        let previous = self.trailer_bytes.last().copied();
        if byte == b'\n' && previous != Some(b'\r') {
            return Err("a trailer line ends in a bare LF");
        }
        if previous == Some(b'\r') && byte != b'\n' {
            return Err("a bare CR in the trailer section");
        }
        let line_start = self.trailer_bytes.is_empty() || previous == Some(b'\n');
        if line_start && matches!(byte, b' ' | b'\t') {
            return Err("obsolete line folding in the trailer section");
        }
        self.trailer_bytes.push(byte);
        if self.trailer_bytes.len() > self.max_trailers {
            return Err("the trailer section is larger than allowed");
        }
        let bytes = &self.trailer_bytes;
        if bytes == b"\r\n" || bytes.ends_with(b"\r\n\r\n") {
            self.trailers = Some(parse_trailers(bytes)?);
            self.trailer_bytes = Vec::new();
            self.state = State::Done;
        }
        Ok(())
    }
}

fn parse_trailers(bytes: &[u8]) -> Result<HeaderMap, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let parsed = match httparse::parse_headers(bytes, &mut fields) {
        Ok(httparse::Status::Complete((len, fields))) if len == bytes.len() => fields,
        Err(httparse::Error::TooManyHeaders) => return Err("too many trailer fields"),
        _ => return Err("a malformed trailer field"),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| "a malformed trailer field")?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| "a malformed trailer field")?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes all of `input`, fed `step` bytes at a time into an output of
    /// `out` bytes.
    fn decode_in_pieces(input: &[u8], step: usize, out: usize) -> Result<(Vec<u8>, Decoder), &'static str> {
        let mut decoder = Decoder::new(1024);
        let mut body = Vec::new();
        let mut buf = vec![0; out];
        let mut at = 0;
        while !decoder.is_done() && at < input.len() {
            let end = (at + step).min(input.len());
            let mut piece = &input[at..end];
            while !piece.is_empty() && !decoder.is_done() {
                let progress = decoder.decode(piece, &mut buf)?;
                body.extend_from_slice(&buf[..progress.produced]);
                piece = &piece[progress.consumed..];
                at += progress.consumed;
            }
        }
        Ok((body, decoder))
    }

    #[test]
    fn chunks_decode_whatever_the_pieces() {
        let input = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 100] {
            for out in [1, 4, 64] {
                let (body, decoder) = decode_in_pieces(input, step, out).unwrap();
                assert_eq!(body, b"hello, world", "step {step} out {out}");
                assert!(decoder.is_done());
            }
        }
    }

    #[test]
    fn trailers_are_parsed_apart() {
        let input = b"3\r\nabc\r\n0\r\nChecksum: 42\r\nX-Other: y\r\n\r\n";
        let (body, mut decoder) = decode_in_pieces(input, 1, 8).unwrap();
        assert_eq!(body, b"abc");
        let trailers = decoder.take_trailers().unwrap();
        assert_eq!(trailers["checksum"], "42");
        assert_eq!(trailers["x-other"], "y");
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for input in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"-1\r\n",
            b"0x5\r\nhello\r\n",
            b"0\r\nA: b\n\r\n",
            b"0\r\n x\r\n\r\n",
            b"0\r\nA b\r\n\r\n",
            b"0\r\n\n",
            b"5;a\x01b\r\nhello\r\n",
        ] {
            assert!(decode_in_pieces(input, 100, 64).is_err(), "{:?}", String::from_utf8_lossy(input));
        }
        let long_extension = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(5000));
        assert!(decode_in_pieces(long_extension.as_bytes(), 100, 64).is_err());
    }

    #[test]
    fn whitespace_before_an_extension_is_allowed() {
        let (body, _) = decode_in_pieces(b"1 ;ext\r\na\r\n0\r\n\r\n", 100, 64).unwrap();
        assert_eq!(body, b"a");
    }

    #[test]
    fn a_large_trailer_section_is_an_error() {
        let input = format!("0\r\nA: {}\r\n\r\n", "x".repeat(2000));
        assert_eq!(
            decode_in_pieces(input.as_bytes(), 100, 64).unwrap_err(),
            "the trailer section is larger than allowed"
        );
    }
}
