//! What both head parsers share: the protocol version, the limits a caller
//! puts on a head, and the header fields of a parsed head, looked up by name.
//!
//! A parsed head's fields live in [`HeaderSlots`] the caller makes for the
//! parse (uninitialised room for [`MAX_HEADERS`] fields, 2 KiB of stack);
//! names and values borrow the caller's buffer, so parsing copies no byte
//! and allocates nothing. (A head that owned an initialised array of its
//! fields cost 950 ns a request instead of ~300: the array was filled and
//! moved on every parse.)

use std::fmt;
use std::mem::MaybeUninit;

/// The most header fields any caller may allow in a head.
pub const MAX_HEADERS: usize = 64;

/// The protocol version of a head. `httparse` reads only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked coding, no persistent connection unless asked.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `httparse` reports the minor version only.
    pub(crate) fn from_minor(minor: Option<u8>) -> Self {
        if minor == Some(1) {
            Version::Http11
        } else {
            Version::Http10
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// How large a head the caller accepts: the bytes up to and including the
/// blank line, and the number of header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    max_len: usize,
    max_headers: usize,
}

impl HeadLimits {
    /// At most `max_len` bytes and `max_headers` fields (no more than
    /// [`MAX_HEADERS`]; a larger number fails to compile in a `const`).
    pub const fn new(max_len: usize, max_headers: usize) -> Self {
        assert!(
            max_headers <= MAX_HEADERS,
            "a head holds at most MAX_HEADERS header fields"
        );
        Self {
            max_len,
            max_headers,
        }
    }

    /// The longest head, in bytes, blank line included.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }

    /// The most header fields.
    pub const fn max_headers(&self) -> usize {
        self.max_headers
    }
}

/// Room for the header fields of one head, filled by the parser. It is
/// left uninitialised, so making one costs nothing; the parsed head borrows
/// it, so make one per parse:
///
/// ```
/// # use c1m_http::{parse_request, HeadLimits, HeaderSlots};
/// let mut slots = HeaderSlots::new();
/// let head = parse_request(b"GET / HTTP/1.0\r\n\r\n", &HeadLimits::new(1024, 8), &mut slots);
/// assert!(matches!(head, Ok(Some(_))));
/// ```
pub struct HeaderSlots<'b>([MaybeUninit<httparse::Header<'b>>; MAX_HEADERS]);

impl HeaderSlots<'_> {
    /// Uninitialised room for [`MAX_HEADERS`] fields (2 KiB of stack).
    pub fn new() -> Self {
        Self([const { MaybeUninit::uninit() }; MAX_HEADERS])
    }
}

impl Default for HeaderSlots<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'b> HeaderSlots<'b> {
    /// The slots `httparse` may fill: as many as the caller allows.
    pub(crate) fn limited(
        &mut self,
        limits: &HeadLimits,
    ) -> &mut [MaybeUninit<httparse::Header<'b>>] {
        &mut self.0[..limits.max_headers]
    }
}

/// The header fields of a parsed head, in the order they came.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    fields: &'a [httparse::Header<'a>],
}

impl<'a> Headers<'a> {
    /// The fields `httparse` filled.
    pub(crate) fn new(fields: &'a [httparse::Header<'a>]) -> Self {
        Self { fields }
    }

    /// How many fields the head has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The head has no field at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field as (name, value), in order; values without surrounding
    /// whitespace.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.fields.iter().map(|h| (h.name, h.value.trim_ascii()))
    }

    /// The value of every field named `name` (case-insensitive), in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
    }

    /// The value of the first field named `name` (case-insensitive), such as
    /// `Retry-After` or `Authorization`.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// [`Headers::get`] as text; `None` also when the value is not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v).into_owned())),
            )
            .finish()
    }
}

/// The elements of a comma-separated field value (RFC 9110 5.6.1), trimmed,
/// empty elements skipped.
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nRetry-After:  7 \r\nX-A: 1\r\nx-a: 2\r\n\r\n";

    #[test]
    fn looks_up_by_name_in_any_case() {
        let mut slots = HeaderSlots::new();
        let head = crate::parse_response(HEAD, &HeadLimits::new(1024, 8), "GET", &mut slots);
        let h = head.unwrap().unwrap().headers;
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("retry-after"), Some(&b"7"[..]));
        assert_eq!(h.get_str("RETRY-AFTER"), Some("7"));
        assert_eq!(h.get_all("X-A").collect::<Vec<_>>(), [b"1", b"2"]);
        assert_eq!(h.get("content-type"), None);
        assert!(!h.is_empty());
    }

    #[test]
    fn lists_skip_empty_elements() {
        let got: Vec<_> = list(b" close ,, Upgrade,").collect();
        assert_eq!(got, [&b"close"[..], b"Upgrade"]);
        assert_eq!(list(b" , ").count(), 0);
    }

    #[test]
    fn versions_print_as_on_the_wire() {
        assert_eq!(Version::from_minor(Some(1)).to_string(), "HTTP/1.1");
        assert_eq!(Version::from_minor(Some(0)).to_string(), "HTTP/1.0");
    }
}
