//! The URL template: where connections go and what each one asks for.
//!
//! `http://127.0.0.1:8000/test/{id}` or, to spread connections over many
//! listening ports as icomet does, `http://127.0.0.1:8100-8199/test/{id}`;
//! `https://` for the same over TLS, `ws://` and `wss://` for a WebSocket
//! (its upgrade request is built here too, with a key made again from the
//! connection's index and start time when the answer comes, so nothing is
//! kept for it).
//! The host is resolved once, before connecting (IPv4 only: source
//! addresses are IPv4 lists). Each request is built into the worker's
//! scratch buffer when the socket becomes writable, so nothing is kept per
//! connection but its id.

use c1m_common::{HeaderField, PortRange};
use c1m_http::write_request_head;
use c1m_http::ws::{write_upgrade_request, Key};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::str::FromStr;

/// The placeholder replaced by each connection's id.
pub(crate) const ID_PLACEHOLDER: &str = "{id}";

/// What a URL's scheme asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// An HTTP stream.
    Http,
    /// An HTTP stream over TLS.
    Https,
    /// A WebSocket.
    Ws,
    /// A WebSocket over TLS.
    Wss,
}

impl Scheme {
    const ALL: [(&'static str, Scheme, u16); 4] = [
        ("http://", Scheme::Http, 80),
        ("https://", Scheme::Https, 443),
        ("ws://", Scheme::Ws, 80),
        ("wss://", Scheme::Wss, 443),
    ];

    /// TLS under the stream.
    pub fn tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    /// A WebSocket, not an HTTP stream.
    pub fn websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }
}

/// A parsed `--url`, and the `--header` fields every request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What to speak.
    pub scheme: Scheme,
    /// The host as written, for the `Host` header.
    pub host: String,
    /// The resolved destination address.
    pub ip: Ipv4Addr,
    /// Destination ports; connections are spread over them.
    pub ports: PortRange,
    /// The path with `{id}` still in it.
    pub path: String,
    /// `--header` fields, in order; one named `User-Agent` or `Accept`
    /// replaces floodtest's own.
    pub headers: Vec<HeaderField>,
}

/// Fields floodtest writes itself or that would frame a body the request
/// does not have: a `--header` may not name them.
const RESERVED: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// Fields of the WebSocket handshake, which floodtest writes itself.
const HANDSHAKE: [&str; 4] = [
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
];

impl Target {
    /// Adds `--header` fields, refusing those floodtest owns.
    pub fn with_headers(mut self, headers: &[HeaderField]) -> Result<Self, String> {
        if let Some(h) = headers
            .iter()
            .find(|h| RESERVED.contains(&h.name.to_ascii_lowercase().as_str()))
        {
            return Err(format!(
                "--header {}: floodtest writes Host itself and sends no body (no Content-Length, \
                 Transfer-Encoding or Connection); leave it out",
                h.name
            ));
        }
        if let Some(h) = headers
            .iter()
            .find(|h| HANDSHAKE.contains(&h.name.to_ascii_lowercase().as_str()))
        {
            return Err(format!(
                "--header {}: floodtest writes the WebSocket handshake itself; leave it out \
                 (--ws-subprotocol asks for a subprotocol)",
                h.name
            ));
        }
        self.headers = headers.to_vec();
        Ok(self)
    }
}

impl Target {
    /// Number of distinct destinations (ip, port).
    pub fn destinations(&self) -> u64 {
        u64::from(self.ports.len())
    }

    /// The `n`-th destination, wrapping over the port range.
    pub fn destination(&self, n: u64) -> SocketAddrV4 {
        let port = u64::from(self.ports.first) + n % self.destinations();
        SocketAddrV4::new(self.ip, port as u16)
    }

    /// Appends the request for subscriber `id` on destination `port`: an
    /// HTTP `GET` (SSE servers want `Accept: text/event-stream`; others
    /// ignore it) or a WebSocket upgrade with `key`, asking for
    /// `subprotocol` if one is given.
    pub fn write_request(
        &self,
        id: u64,
        port: u16,
        sse: bool,
        (key, subprotocol): (&Key, Option<&str>),
        out: &mut Vec<u8>,
    ) {
        let target = PathFor {
            path: &self.path,
            id,
        };
        let host = format_args!("{}:{port}", self.host);
        let accept = if sse { "text/event-stream" } else { "*/*" };
        let given = |name: &str| {
            self.headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name))
        };
        let mut fields: Vec<(&str, &dyn fmt::Display)> = Vec::with_capacity(2 + self.headers.len());
        if !given("User-Agent") {
            fields.push(("User-Agent", &"c1m-floodtest"));
        }
        if !given("Accept") && !self.scheme.websocket() {
            fields.push(("Accept", &accept));
        }
        fields.extend(
            self.headers
                .iter()
                .map(|h| (h.name.as_str(), &h.value as &dyn fmt::Display)),
        );
        if self.scheme.websocket() {
            return write_upgrade_request(out, &target, &host, key, subprotocol, &fields);
        }
        write_request_head(out, "GET", &target, &host, &fields, None);
    }
}

/// The WebSocket key of connection `index` started at `started_us`: made
/// from both, so each attempt's key differs and the check of the answer
/// can make it again. (RFC 6455 wants a nonce a cache cannot guess; this
/// one is unpredictable enough for a load tool, not for a browser.)
pub(crate) fn ws_key(index: u32, started_us: u64) -> Key {
    let mix = |mut x: u64| {
        // splitmix64's finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let a = mix(u64::from(index) ^ 0x9e37_79b9_7f4a_7c15);
    let b = mix(started_us ^ a);
    let mut nonce = [0; 16];
    nonce[..8].copy_from_slice(&a.to_le_bytes());
    nonce[8..].copy_from_slice(&b.to_le_bytes());
    Key::from_nonce(nonce)
}

/// The request target of one connection: the path with its id in place
/// of `{id}`, written without building a string.
struct PathFor<'a> {
    path: &'a str,
    id: u64,
}

impl fmt::Display for PathFor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.split_once(ID_PLACEHOLDER) {
            Some((before, after)) => write!(f, "{before}{}{after}", self.id),
            // No placeholder: every connection asks for the same path.
            None => f.write_str(self.path),
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(input: &str) -> Result<Self, String> {
        let form = || {
            format!("{input:?}: expected http://, https://, ws:// or wss://HOST:PORT[-PORT]/PATH, e.g. http://127.0.0.1:8000/test/{{id}}")
        };
        let (scheme, default_port, rest) = Scheme::ALL
            .iter()
            .find_map(|(prefix, scheme, port)| Some((*scheme, *port, input.strip_prefix(prefix)?)))
            .ok_or_else(form)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, ports) = match authority.rsplit_once(':') {
            Some((host, ports)) => (host, ports.parse()),
            None => (
                authority,
                Ok(PortRange {
                    first: default_port,
                    last: default_port,
                }),
            ),
        };
        if host.is_empty() {
            return Err(form());
        }
        let ports: PortRange = ports.map_err(|e| format!("{input:?}: {e}"))?;
        let ip = resolve(host).ok_or_else(|| format!("{input:?}: {host} has no IPv4 address"))?;
        Ok(Target {
            scheme,
            host: host.to_owned(),
            ip,
            ports,
            path: path.to_owned(),
            headers: Vec::new(),
        })
    }
}

fn resolve(host: &str) -> Option<Ipv4Addr> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    (host, 0).to_socket_addrs().ok()?.find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_port_range() {
        let t: Target = "http://127.0.0.1:8100-8199/test/{id}".parse().unwrap();
        assert_eq!(t.ip, Ipv4Addr::LOCALHOST);
        assert_eq!(t.destinations(), 100);
        assert_eq!(t.destination(0).port(), 8100);
        assert_eq!(t.destination(101).port(), 8101);
        assert_eq!(t.path, "/test/{id}");
    }

    #[test]
    fn builds_the_request() {
        let t: Target = "http://localhost:8000/sse/{id}?x=1".parse().unwrap();
        let mut out = Vec::new();
        let key = ws_key(0, 0);
        t.write_request(42, 8000, true, (&key, None), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /sse/42?x=1 HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: c1m-floodtest\r\nAccept: text/event-stream\r\n\r\n"
        );
        let t: Target = "wss://localhost/ws/{id}".parse().unwrap();
        assert_eq!((t.scheme, t.ports.first), (Scheme::Wss, 443));
        let t = t
            .with_headers(&["Authorization: Bearer t".parse().unwrap()])
            .unwrap();
        let mut out = Vec::new();
        t.write_request(7, 443, false, (&key, Some("chat")), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("GET /ws/7 HTTP/1.1\r\nHost: localhost:443\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!("Sec-WebSocket-Key: {}\r\n", key.as_str())));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\nUser-Agent: c1m-floodtest\r\nAuthorization: Bearer t\r\n\r\n"));
        assert_ne!(ws_key(1, 5), ws_key(1, 6));
        assert_ne!(ws_key(1, 5), ws_key(2, 5));
    }

    #[test]
    fn headers_go_into_every_request_and_may_replace_ours() {
        let headers: Vec<HeaderField> =
            ["Authorization: Bearer s3cret", "accept: application/json"]
                .iter()
                .map(|h| h.parse().unwrap())
                .collect();
        let t = "http://127.0.0.1:1/s/{id}"
            .parse::<Target>()
            .unwrap()
            .with_headers(&headers)
            .unwrap();
        let mut out = Vec::new();
        t.write_request(3, 1, true, (&ws_key(0, 0), None), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /s/3 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: c1m-floodtest\r\nAuthorization: Bearer s3cret\r\naccept: application/json\r\n\r\n"
        );
        for reserved in [
            "Host: x",
            "content-length: 5",
            "Transfer-Encoding: chunked",
            "Connection: close",
            "Sec-WebSocket-Protocol: chat",
            "upgrade: h2c",
        ] {
            let err = t
                .clone()
                .with_headers(&[reserved.parse().unwrap()])
                .unwrap_err();
            assert!(err.contains("leave it out"), "{err}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in [
            "ftp://x:1/",
            "127.0.0.1:8000/",
            "http://:80/",
            "http://127.0.0.1:0/",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        let t: Target = "http://127.0.0.1".parse().unwrap();
        assert_eq!((t.ports.first, t.path.as_str()), (80, "/"));
    }
}
