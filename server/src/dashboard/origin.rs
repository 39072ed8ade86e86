//! The dashboard on the subscriber listener: CORS for the page's
//! subscription (`/sse/{id}` from a page on the admin listener) and the
//! page itself with `--dashboard public`.
//!
//! An origin is allowed when it is the other listener's: `http://` and the
//! port of that listener, with its address as the host (a loopback listener
//! also answers to `localhost` and any 127.x.y.z; one on every address, to
//! any host name). The header echoes the origin, which is checked to hold
//! only host characters, so nothing can be injected into the head.

use std::net::{IpAddr, SocketAddr};

use c1m_http::HeaderSlots;

use super::{Asset, DashboardMode};
use crate::config::Config;

/// Whether `origin` (an `Origin` header's value) is a page served by the
/// listener at `listener`.
pub(crate) fn allowed(origin: &[u8], listener: SocketAddr) -> bool {
    let Some(rest) = std::str::from_utf8(origin)
        .ok()
        .and_then(|o| o.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()),
        _ => (rest, Some(80)),
    };
    let host_chars = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    };
    if port != Some(listener.port()) || !host_chars(host) {
        return false;
    }
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let want = listener.ip();
    if want.is_unspecified() {
        return true;
    }
    if want.is_loopback()
        && (host.eq_ignore_ascii_case("localhost") || ip.is_some_and(|i| i.is_loopback()))
    {
        return true;
    }
    ip == Some(want)
}

/// The origin to allow on an `/sse` answer to `head`: the dashboard's
/// page on the admin listener, when the dashboard is on.
pub(crate) fn sse_origin(config: &Config, head: &[u8]) -> Option<String> {
    let admin = config.dashboard?.admin?;
    let mut slots = HeaderSlots::new();
    let request = crate::http::parse_head(head, &mut slots).ok()??;
    let origin = request.headers.get("origin")?;
    allowed(origin, admin).then(|| String::from_utf8_lossy(origin).into_owned())
}

/// With `--dashboard public`, the whole answer to a `GET` of the page or an
/// asset on the subscriber listener (then closed); `None` otherwise.
pub(crate) fn public_page(config: &Config, head: &[u8]) -> Option<Vec<u8>> {
    let dashboard = config
        .dashboard
        .filter(|d| d.mode == DashboardMode::Public)?;
    let mut slots = HeaderSlots::new();
    let request = crate::http::parse_head(head, &mut slots).ok()??;
    if request.method != "GET" {
        return None;
    }
    let asset = Asset::at(request.path)?;
    Some(asset.answer(&dashboard, "subscriber", "", false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(origin: &str, listener: &str) -> bool {
        allowed(origin.as_bytes(), listener.parse().unwrap())
    }

    #[test]
    fn only_the_other_listeners_origin_is_allowed() {
        assert!(ok("http://127.0.0.1:8001", "127.0.0.1:8001"));
        assert!(ok("http://localhost:8001", "127.0.0.1:8001"));
        assert!(ok("http://127.0.0.2:8001", "127.0.0.1:8001"));
        assert!(ok("http://box.example:8001", "0.0.0.0:8001"));
        assert!(ok("http://10.0.0.1:8001", "10.0.0.1:8001"));
        assert!(ok("http://10.0.0.1", "10.0.0.1:80"));
        assert!(ok("http://[::1]:8001", "[::1]:8001"));
        assert!(
            !ok("http://127.0.0.1:8000", "127.0.0.1:8001"),
            "another port"
        );
        assert!(
            !ok("https://127.0.0.1:8001", "127.0.0.1:8001"),
            "another scheme"
        );
        assert!(!ok("http://evil.example:8001", "127.0.0.1:8001"));
        assert!(!ok("http://10.0.0.2:8001", "10.0.0.1:8001"));
        assert!(
            !ok("http://a\r\nSet-Cookie: x:8001", "0.0.0.0:8001"),
            "injection"
        );
        assert!(!ok("null", "0.0.0.0:8001"));
    }

    #[test]
    fn sse_allows_the_admin_page_only_with_the_dashboard_on() {
        let head = b"GET /sse/1 HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:8001\r\n\r\n";
        let mut config = Config::default();
        assert_eq!(sse_origin(&config, head), None);
        config.dashboard = Some(super::super::Dashboard {
            mode: DashboardMode::Admin,
            admin: Some("127.0.0.1:8001".parse().unwrap()),
            subscriber: None,
        });
        assert_eq!(
            sse_origin(&config, head).as_deref(),
            Some("http://localhost:8001")
        );
        let page = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(public_page(&config, page), None, "admin mode");
        config.dashboard.as_mut().unwrap().mode = DashboardMode::Public;
        assert!(public_page(&config, page)
            .unwrap()
            .starts_with(b"HTTP/1.1 200 OK"));
        assert_eq!(
            public_page(&config, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"),
            None
        );
    }
}
