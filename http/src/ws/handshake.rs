//! The opening handshake (RFC 6455 4): an HTTP/1.1 `GET` with `Upgrade:
//! websocket` and a random `Sec-WebSocket-Key`, answered `101 Switching
//! Protocols` with `Sec-WebSocket-Accept`, the base64 of the SHA-1 of the
//! key and the protocol's GUID. Both sides read the other's head with the
//! codec's parsers; this module adds what each must check:
//!
//! - the server (4.2.1): `GET`, HTTP/1.1, an `Upgrade` naming `websocket`,
//!   a `Connection` naming `Upgrade`, a key that is the base64 of 16 bytes
//!   (400 otherwise), and version 13 (426 with `Sec-WebSocket-Version: 13`
//!   otherwise, so the client can retry);
//! - the client (4.1): status 101, the same `Upgrade` and `Connection`, the
//!   accept value of its own key, no extension it did not ask for, and a
//!   subprotocol only if it offered that one.
//!
//! The key a client sends is made from 16 bytes it chooses; a client that
//! does not want to keep 24 bytes per connection until the answer comes
//! can make them again from what it keeps (floodtest derives them from the
//! connection's index and start time).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::headers::{list, Headers};
use crate::request::RequestHead;
use crate::response::ResponseHead;
use crate::status::{Reject, Status};
use crate::write::write_request_head;
use crate::Version;

/// The GUID every accept value is hashed with (RFC 6455 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The one protocol version (RFC 6455 4.1).
pub const VERSION: &str = "13";

/// A `Sec-WebSocket-Key`: the base64 of 16 bytes, 24 characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; 24]);

impl Key {
    /// The key for 16 bytes the client chose (RFC 6455 asks for random
    /// ones, so that caches and proxies cannot answer for the server).
    pub fn from_nonce(nonce: [u8; 16]) -> Key {
        let mut key = [0; 24];
        // 16 bytes are always 24 base64 characters.
        let _ = STANDARD.encode_slice(nonce, &mut key);
        Key(key)
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        // Base64 is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` value a server answers this key with.
    pub fn accept(&self) -> Accept {
        accept_of(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Sec-WebSocket-Accept` value: the base64 of a SHA-1, 28 characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Accept([u8; 28]);

impl Accept {
    /// The value as sent.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accept value of a key as received (its bytes, trimmed).
fn accept_of(key: &[u8]) -> Accept {
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    let mut accept = [0; 28];
    // 20 bytes are always 28 base64 characters.
    let _ = STANDARD.encode_slice(digest, &mut accept);
    Accept(accept)
}

/// Whether a comma-separated field of `headers` has `token` (any case).
fn has_token(headers: &Headers<'_>, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .flat_map(list)
        .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// An upgrade request a server may accept.
#[derive(Debug, Clone, Copy)]
pub struct Upgrade<'a> {
    /// What to answer with in `Sec-WebSocket-Accept`.
    pub accept: Accept,
    /// The subprotocols the client offered, in its order of preference.
    pub protocols: &'a [u8],
}

impl<'a> Upgrade<'a> {
    /// The offered subprotocols, each trimmed.
    pub fn protocols(&self) -> impl Iterator<Item = &'a [u8]> {
        list(self.protocols)
    }
}

/// Whether a request asks for a WebSocket at all (`Upgrade: websocket`),
/// so a server can tell a plain `GET` on a WebSocket path from a bad
/// handshake.
pub fn is_upgrade(head: &RequestHead<'_>) -> bool {
    has_token(&head.headers, "upgrade", "websocket")
}

/// Checks a server's side of the handshake (see the module doc): the
/// upgrade to accept, or the refusal to answer with.
pub fn read_upgrade<'a>(head: &RequestHead<'a>) -> Result<Upgrade<'a>, Reject> {
    let bad = |reason| Err(Reject::new(Status::BadRequest, reason));
    if head.method != "GET" {
        return Err(Reject::method_not_allowed(
            "GET",
            "a websocket handshake is a GET",
        ));
    }
    if head.version != Version::Http11 {
        return bad("a websocket handshake needs HTTP/1.1");
    }
    if !is_upgrade(head) {
        return Err(Reject::new(
            Status::UpgradeRequired,
            "this path takes a websocket handshake (Upgrade: websocket)",
        ));
    }
    if !has_token(&head.headers, "connection", "upgrade") {
        return bad("a websocket handshake needs Connection: Upgrade");
    }
    let mut versions = head.headers.get_all("sec-websocket-version");
    if versions.next() != Some(VERSION.as_bytes()) || versions.next().is_some() {
        return Err(Reject::new(
            Status::UpgradeRequired,
            "only websocket version 13 is spoken (Sec-WebSocket-Version: 13)",
        ));
    }
    let mut keys = head.headers.get_all("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return bad("a websocket handshake needs one Sec-WebSocket-Key");
    };
    let mut nonce = [0; 18];
    if key.len() != 24 || STANDARD.decode_slice(key, &mut nonce) != Ok(16) {
        return bad("Sec-WebSocket-Key must be the base64 of 16 bytes");
    }
    Ok(Upgrade {
        accept: accept_of(key),
        protocols: head.headers.get("sec-websocket-protocol").unwrap_or(b""),
    })
}

/// Appends the `101` answer that completes a server's handshake, with the
/// subprotocol it chose (one the client offered) if any.
pub fn write_upgrade_response(out: &mut Vec<u8>, accept: &Accept, protocol: Option<&str>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_str().as_bytes());
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends a client's upgrade request for `target` on `host`: the
/// handshake's fields, the subprotocol asked for if any, then the caller's
/// `headers` (authorization, origin).
pub fn write_upgrade_request(
    out: &mut Vec<u8>,
    target: &dyn fmt::Display,
    host: &dyn fmt::Display,
    key: &Key,
    protocol: Option<&str>,
    headers: &[(&str, &dyn fmt::Display)],
) {
    let key = key.as_str();
    let mut fields: Vec<(&str, &dyn fmt::Display)> = vec![
        ("Upgrade", &"websocket"),
        ("Connection", &"Upgrade"),
        ("Sec-WebSocket-Key", &key),
        ("Sec-WebSocket-Version", &VERSION),
    ];
    let protocol_value;
    if let Some(p) = protocol {
        protocol_value = p;
        fields.push(("Sec-WebSocket-Protocol", &protocol_value));
    }
    fields.extend_from_slice(headers);
    write_request_head(out, "GET", target, host, &fields, None);
}

/// Why a client fails the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with another status (it refused the upgrade,
    /// or is not a WebSocket server).
    Status(u16),
    /// A `101` without `Upgrade: websocket` and `Connection: Upgrade`.
    NotUpgraded,
    /// `Sec-WebSocket-Accept` missing, or not the value of our key.
    BadAccept,
    /// An extension or subprotocol the client did not ask for.
    Unrequested,
}

impl HandshakeError {
    /// A one-line description, lowercase.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::Status(_) => "the server did not switch protocols",
            HandshakeError::NotUpgraded => "101 without upgrade: websocket and connection: upgrade",
            HandshakeError::BadAccept => "sec-websocket-accept is not the value of the key sent",
            HandshakeError::Unrequested => "an extension or subprotocol that was not asked for",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HandshakeError {}

/// Checks a client's side of the handshake: the server's answer to `key`,
/// when the client offered `protocol` (see the module doc).
pub fn check_upgrade_response(
    head: &ResponseHead<'_>,
    key: &Key,
    protocol: Option<&str>,
) -> Result<(), HandshakeError> {
    if head.status != 101 {
        return Err(HandshakeError::Status(head.status));
    }
    if !has_token(&head.headers, "upgrade", "websocket")
        || !has_token(&head.headers, "connection", "upgrade")
    {
        return Err(HandshakeError::NotUpgraded);
    }
    let mut accepts = head.headers.get_all("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept == key.accept().as_str().as_bytes() => {}
        _ => return Err(HandshakeError::BadAccept),
    }
    if head.headers.get("sec-websocket-extensions").is_some() {
        return Err(HandshakeError::Unrequested);
    }
    match (head.headers.get("sec-websocket-protocol"), protocol) {
        (None, _) => Ok(()),
        (Some(chosen), Some(offered)) if chosen == offered.as_bytes() => Ok(()),
        (Some(_), _) => Err(HandshakeError::Unrequested),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_request, parse_response, HeadLimits, HeaderSlots};

    const LIMITS: HeadLimits = HeadLimits::new(4096, 32);

    /// RFC 6455 1.3's example key and its accept value.
    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request(fields: &str) -> Result<String, (u16, &'static str)> {
        let text = format!("GET /ws/1 HTTP/1.1\r\nHost: h\r\n{fields}\r\n");
        let mut slots = HeaderSlots::new();
        let head = parse_request(text.as_bytes(), &LIMITS, &mut slots)
            .unwrap()
            .unwrap();
        read_upgrade(&head)
            .map(|u| u.accept.as_str().to_owned())
            .map_err(|r| (r.status.code(), r.reason))
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    #[test]
    fn the_accept_value_is_the_rfcs() {
        let nonce: [u8; 16] = *b"the sample nonce";
        let key = Key::from_nonce(nonce);
        assert_eq!(key.as_str(), RFC_KEY);
        assert_eq!(key.accept().as_str(), RFC_ACCEPT);
        assert_eq!(request(GOOD).unwrap(), RFC_ACCEPT);
    }

    #[test]
    fn a_server_refuses_a_bad_handshake() {
        let without = |field: &str| {
            GOOD.lines()
                .filter(|l| !l.starts_with(field))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        assert_eq!(request(&without("Upgrade")).unwrap_err().0, 426);
        assert_eq!(request(&without("Connection")).unwrap_err().0, 400);
        assert_eq!(request(&without("Sec-WebSocket-Key")).unwrap_err().0, 400);
        let old = GOOD.replace("Version: 13", "Version: 8");
        assert_eq!(request(&old).unwrap_err().0, 426);
        let short = GOOD.replace(RFC_KEY, "c2hvcnQ=");
        assert_eq!(request(&short).unwrap_err().0, 400);
        let not_base64 = GOOD.replace(RFC_KEY, "!!!!!!!!!!!!!!!!!!!!!!==");
        assert_eq!(request(&not_base64).unwrap_err().0, 400);
        let two = format!("{GOOD}Sec-WebSocket-Key: {RFC_KEY}\r\n");
        assert_eq!(request(&two).unwrap_err().0, 400);
        let text = format!("GET /ws/1 HTTP/1.0\r\n{GOOD}\r\n");
        let mut slots = HeaderSlots::new();
        let head = parse_request(text.as_bytes(), &LIMITS, &mut slots)
            .unwrap()
            .unwrap();
        assert_eq!(read_upgrade(&head).unwrap_err().status, Status::BadRequest);
        assert!(
            request(&GOOD.replace("websocket", "WebSocket")).is_ok(),
            "any case"
        );
    }

    fn answer(text: &str, protocol: Option<&str>) -> Result<(), HandshakeError> {
        let mut slots = HeaderSlots::new();
        let head = parse_response(text.as_bytes(), &LIMITS, "GET", &mut slots)
            .unwrap()
            .unwrap();
        let key = Key::from_nonce(*b"the sample nonce");
        check_upgrade_response(&head, &key, protocol)
    }

    #[test]
    fn a_client_checks_the_answer() {
        let mut ok = Vec::new();
        let accept = Key::from_nonce(*b"the sample nonce").accept();
        write_upgrade_response(&mut ok, &accept, None);
        let ok = String::from_utf8(ok).unwrap();
        assert_eq!(answer(&ok, None), Ok(()));
        assert_eq!(
            answer(&ok, Some("chat")),
            Ok(()),
            "the server may choose none"
        );
        let wrong = ok.replace(RFC_ACCEPT, "x3JJHMbDL1EzLkh9GBhXDw6pBXc=");
        assert_eq!(answer(&wrong, None), Err(HandshakeError::BadAccept));
        let refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(answer(refused, None), Err(HandshakeError::Status(403)));
        let no_upgrade = ok.replace("Upgrade: websocket\r\n", "");
        assert_eq!(answer(&no_upgrade, None), Err(HandshakeError::NotUpgraded));
        let extension = ok.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        assert_eq!(answer(&extension, None), Err(HandshakeError::Unrequested));
        let mut chosen = Vec::new();
        write_upgrade_response(&mut chosen, &accept, Some("chat"));
        let chosen = String::from_utf8(chosen).unwrap();
        assert_eq!(answer(&chosen, Some("chat")), Ok(()));
        assert_eq!(answer(&chosen, None), Err(HandshakeError::Unrequested));
        assert_eq!(
            answer(&chosen, Some("other")),
            Err(HandshakeError::Unrequested)
        );
    }

    #[test]
    fn a_client_request_carries_the_handshake() {
        let mut out = Vec::new();
        let key = Key::from_nonce(*b"the sample nonce");
        let auth = "Bearer t";
        write_upgrade_request(
            &mut out,
            &"/ws/7",
            &"h:80",
            &key,
            Some("chat"),
            &[("Authorization", &auth)],
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "GET /ws/7 HTTP/1.1\r\nHost: h:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat\r\nAuthorization: Bearer t\r\n\r\n"
        );
        assert_eq!(
            request(&text["GET /ws/7 HTTP/1.1\r\nHost: h:80\r\n".len()..text.len() - 2]).unwrap(),
            RFC_ACCEPT
        );
    }
}
