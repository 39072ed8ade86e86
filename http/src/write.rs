//! The few writers every c1m client (and the server's streams) share: a
//! request head, a chunk, the last chunk. They append to a caller's buffer,
//! so a client that reuses its buffer writes a request without allocating.

use std::fmt::Display;
use std::io::Write;

/// The last chunk of a chunked body, with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends an HTTP/1.1 request head: the request line, `Host`, each of
/// `headers` in order, a `Content-Length` when `content_length` is given,
/// and the blank line. `target` and the values are written as they are:
/// the caller keeps CR and LF out of them.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &dyn Display,
    host: &dyn Display,
    headers: &[(&str, &dyn Display)],
    content_length: Option<usize>,
) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if let Some(length) = content_length {
        let _ = write!(out, "Content-Length: {length}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `data` as one chunk: `{len:x}\r\n{data}\r\n`. An empty `data`
/// would be the last chunk, so it writes nothing.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_request_head() {
        let mut out = Vec::new();
        let id = 7;
        write_request_head(
            &mut out,
            "POST",
            &format_args!("/send/{id}"),
            &"127.0.0.1:8001",
            &[("Authorization", &format_args!("Bearer {}", "s3cret"))],
            Some(12),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /send/7 HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nAuthorization: Bearer s3cret\r\n\
             Content-Length: 12\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", &"/stats", &"h", &[], None);
        assert_eq!(out, b"GET /stats HTTP/1.1\r\nHost: h\r\n\r\n");
    }

    #[test]
    fn writes_chunks() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"0123456789abcdefX");
        write_chunk(&mut out, b"");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(out, b"11\r\n0123456789abcdefX\r\n0\r\n\r\n");
    }
}
