//! Templates for what a publisher writes per message: `{id}`, `{body}`,
//! `{body_urlencoded}`, `{body_json}` in a channel name, a URL path or a
//! request body, parsed once at start-up so rendering is a walk over a few
//! parts.
//!
//! The encodings are the ones HTTP APIs ask for: percent-encoding of every
//! byte but RFC 3986's unreserved ones (valid in a path, a query and a
//! form body alike), and a JSON string (quotes included) by `serde_json`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

/// Bytes that stay as they are when percent-encoding: RFC 3986 unreserved.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `bytes` onto `out`.
pub(crate) fn push_urlencoded(out: &mut Vec<u8>, bytes: &[u8]) {
    for piece in percent_encoding::percent_encode(bytes, ENCODED) {
        out.extend_from_slice(piece.as_bytes());
    }
}

/// Appends `bytes` as a JSON string, quotes included (invalid UTF-8 is
/// replaced: an envelope is ASCII).
pub(crate) fn push_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*text);
}

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Id,
    Body,
    BodyUrlencoded,
    BodyJson,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    parts: Vec<Part>,
}

/// Which placeholders a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    /// `{id}` only (channel names, subjects).
    Id,
    /// `{id}` and the body in its three encodings.
    IdAndBody,
}

impl Template {
    /// Parses `text`; `{{` and `}}` stand for literal braces.
    pub(crate) fn parse(text: &str, allow: Allow) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") || rest.starts_with("}}") {
                literal.push(c as u8);
                rest = &rest[2..];
                continue;
            }
            if c == '{' {
                let end = rest.find('}').ok_or_else(|| {
                    format!(
                        "template {text:?}: a {{ without its }} (write {{{{ for a literal brace)"
                    )
                })?;
                let part = match &rest[1..end] {
                    "id" => Part::Id,
                    "body" => Part::Body,
                    "body_urlencoded" => Part::BodyUrlencoded,
                    "body_json" => Part::BodyJson,
                    other => {
                        return Err(format!(
                            "template {text:?}: unknown placeholder {{{other}}}: use {}",
                            allow.names()
                        ))
                    }
                };
                if allow == Allow::Id && part != Part::Id {
                    return Err(format!(
                        "template {text:?}: only {} can be used here",
                        allow.names()
                    ));
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &rest[end + 1..];
                continue;
            }
            literal.extend_from_slice(c.to_string().as_bytes());
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// Appends the template for `id` and the message `body`.
    pub(crate) fn render(&self, out: &mut Vec<u8>, id: u64, body: &[u8]) {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Id => {
                    use std::io::Write;
                    let _ = write!(out, "{id}");
                }
                Part::Body => out.extend_from_slice(body),
                Part::BodyUrlencoded => push_urlencoded(out, body),
                Part::BodyJson => push_json_string(out, body),
            }
        }
    }

    /// The template for `id` as a string (channel names, subjects).
    pub(crate) fn render_id(&self, id: u64) -> String {
        let mut out = Vec::new();
        self.render(&mut out, id, b"");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// True when every rendering is fit for a URL: the body appears only
    /// percent-encoded (a raw or JSON body holds spaces and quotes).
    pub(crate) fn is_url_safe(&self) -> bool {
        !self
            .parts
            .iter()
            .any(|p| matches!(p, Part::Body | Part::BodyJson))
    }
}

impl Allow {
    fn names(self) -> &'static str {
        match self {
            Allow::Id => "{id}",
            Allow::IdAndBody => "{id}, {body}, {body_urlencoded} or {body_json}",
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, id: u64, body: &[u8]) -> String {
        let t = Template::parse(text, Allow::IdAndBody).unwrap();
        let mut out = Vec::new();
        t.render(&mut out, id, body);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_each_placeholder() {
        let body = b"[c1m 7 0 1 99 2|hi]";
        assert_eq!(render("/pub/{id}", 7, body), "/pub/7");
        assert_eq!(render("{body}", 7, body), "[c1m 7 0 1 99 2|hi]");
        assert_eq!(
            render("m={body_urlencoded}", 7, body),
            "m=%5Bc1m%207%200%201%2099%202%7Chi%5D"
        );
        assert_eq!(
            render(r#"{{"to":"{id}","m":{body_json}}}"#, 7, b"a\"b\n"),
            r#"{"to":"7","m":"a\"b\n"}"#
        );
        assert_eq!(render("é{id}", 1, b""), "é1");
    }

    #[test]
    fn refuses_unknown_and_unclosed_placeholders() {
        let err = Template::parse("/pub/{user}", Allow::IdAndBody).unwrap_err();
        assert!(err.contains("unknown placeholder {user}"), "{err}");
        assert!(Template::parse("/pub/{id", Allow::IdAndBody).is_err());
        let err = Template::parse("c1m.{body}", Allow::Id).unwrap_err();
        assert!(err.contains("only {id}"), "{err}");
        let t = Template::parse("c1m.{id}", Allow::Id).unwrap();
        assert_eq!(t.render_id(42), "c1m.42");
        let url = |t| Template::parse(t, Allow::IdAndBody).unwrap().is_url_safe();
        assert!(url("/pub/{id}?m={body_urlencoded}") && !url("/pub/{body}"));
    }
}
