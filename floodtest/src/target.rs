//! The URL template: where connections go and what each one asks for.
//!
//! `http://127.0.0.1:8000/test/{id}` or, to spread connections over many
//! listening ports as icomet does, `http://127.0.0.1:8100-8199/test/{id}`.
//! The host is resolved once, before connecting (IPv4 only: source
//! addresses are IPv4 lists). Each request is built into the worker's
//! scratch buffer when the socket becomes writable, so nothing is kept per
//! connection but its id.

use c1m_common::{HeaderField, PortRange};
use c1m_http::write_request_head;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::str::FromStr;

/// The placeholder replaced by each connection's id.
pub(crate) const ID_PLACEHOLDER: &str = "{id}";

/// A parsed `--url`, and the `--header` fields every request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
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

    /// Appends the request for subscriber `id` on destination `port`.
    /// SSE servers want `Accept: text/event-stream`; others ignore it.
    pub fn write_request(&self, id: u64, port: u16, sse: bool, out: &mut Vec<u8>) {
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
        if !given("Accept") {
            fields.push(("Accept", &accept));
        }
        fields.extend(
            self.headers
                .iter()
                .map(|h| (h.name.as_str(), &h.value as &dyn fmt::Display)),
        );
        write_request_head(
            out,
            "GET",
            &PathFor {
                path: &self.path,
                id,
            },
            &format_args!("{}:{port}", self.host),
            &fields,
            None,
        );
    }
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
            format!("{input:?}: expected http://HOST:PORT[-PORT]/PATH, e.g. http://127.0.0.1:8000/test/{{id}}")
        };
        let rest = input.strip_prefix("http://").ok_or_else(form)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, ports) = authority.rsplit_once(':').unwrap_or((authority, "80"));
        if host.is_empty() {
            return Err(form());
        }
        let ports: PortRange = ports.parse().map_err(|e| format!("{input:?}: {e}"))?;
        let ip = resolve(host).ok_or_else(|| format!("{input:?}: {host} has no IPv4 address"))?;
        Ok(Target {
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
        t.write_request(42, 8000, true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /sse/42?x=1 HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: c1m-floodtest\r\nAccept: text/event-stream\r\n\r\n"
        );
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
        t.write_request(3, 1, true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /s/3 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: c1m-floodtest\r\nAuthorization: Bearer s3cret\r\naccept: application/json\r\n\r\n"
        );
        for reserved in [
            "Host: x",
            "content-length: 5",
            "Transfer-Encoding: chunked",
            "Connection: close",
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
            "https://x:1/",
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
