//! The live page (`--dashboard`): a panel and charts of the service fed by
//! a server-sent stream of `/stats`, and a browser subscriber of one id.
//!
//! - Where: `GET /`, `/dashboard.js` and `/dashboard.css` on the admin
//!   listener, and on the subscriber listener too only with `--dashboard
//!   public` ([`origin::public_page`]); a production subscriber port
//!   serves nothing extra otherwise. The assets are in the binary
//!   (`include_str!`): no build step, no CDN.
//! - The stats stream, `GET /stats/stream`, one event a second carrying
//!   what `GET /stats` answers (a group's front: the sum and each worker),
//!   to at most [`MAX_READERS`] readers at once ([`stream`]).
//! - Its authorisation: an `EventSource` cannot send a header, so with an
//!   admin token the page first gets a ticket from `POST /dashboard/ticket`
//!   (which needs the bearer token like every admin request) and opens the
//!   stream with `?ticket=`: random, single-use, valid for
//!   [`tickets::TICKET_LIFE`] ([`tickets`]).
//! - Origins: the page on one listener reads the other (its subscription on
//!   `/sse/{id}`, or the admin from a public page); that listener answers
//!   `Access-Control-Allow-Origin` for the dashboard's origin only, and
//!   only when the dashboard is on ([`origin`]).
//!
//! Cost at rest: nothing per subscriber connection; with the dashboard on,
//! an `/sse` request's head is read once more for its `Origin`.

mod origin;
mod stream;
mod tickets;

pub(crate) use origin::{public_page, sse_origin};

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admin::Handler;
use crate::config::Config;
use c1m_http::{query_param, write_error, HeaderSlots, Reject, Status};
use tickets::Tickets;

/// Where `--dashboard` serves the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DashboardMode {
    /// On the admin listener only.
    Admin,
    /// On the admin listener and the subscriber listener.
    Public,
}

/// The dashboard's settings: where it is served and the two addresses the
/// page names (each `None` until its listener is bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dashboard {
    /// Where the page is served.
    pub mode: DashboardMode,
    /// The admin listener: the origin a page there has, and where a public
    /// page finds the stats.
    pub admin: Option<SocketAddr>,
    /// The subscriber listener: where the page subscribes.
    pub subscriber: Option<SocketAddr>,
}

/// Readers of the stats stream at once; another gets 503. Each costs one
/// snapshot a second (for a group, one `/stats` round to every worker).
pub(crate) const MAX_READERS: usize = 8;

/// A file of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asset {
    Page,
    Script,
    Style,
}

impl Asset {
    fn at(path: &str) -> Option<Self> {
        match path {
            "/" | "/index.html" => Some(Asset::Page),
            "/dashboard.js" => Some(Asset::Script),
            "/dashboard.css" => Some(Asset::Style),
            _ => None,
        }
    }

    /// The whole answer: head (with `extra` header lines) and body; the
    /// page carries the addresses it talks to, `served_by` the listener
    /// it came from.
    fn answer(
        self,
        dashboard: &Dashboard,
        served_by: &str,
        extra: &str,
        keep_alive: bool,
    ) -> Vec<u8> {
        let (content_type, body) = match self {
            Asset::Page => {
                let config = page_config(dashboard, served_by);
                let page = include_str!("assets/index.html").replace("{{CONFIG}}", &config);
                ("text/html; charset=utf-8", page)
            }
            Asset::Script => (
                "text/javascript; charset=utf-8",
                include_str!("assets/dashboard.js").to_owned(),
            ),
            Asset::Style => (
                "text/css; charset=utf-8",
                include_str!("assets/dashboard.css").to_owned(),
            ),
        };
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n{extra}Connection: {connection}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// The JSON the page reads its addresses from: a host left empty is the
/// page's own (the listener is on every address).
fn page_config(dashboard: &Dashboard, served_by: &str) -> String {
    let host = |addr: Option<SocketAddr>| match addr {
        Some(a) if !a.ip().is_unspecified() => match a {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        },
        _ => String::new(),
    };
    let port = |addr: Option<SocketAddr>| addr.map_or(0, |a| a.port());
    serde_json::json!({
        "served_by": served_by,
        "admin_host": host(dashboard.admin),
        "admin_port": port(dashboard.admin),
        "subscriber_host": host(dashboard.subscriber),
        "subscriber_port": port(dashboard.subscriber),
    })
    .to_string()
}

/// A request to the dashboard's part of the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request<'a> {
    Asset(Asset),
    /// `POST /dashboard/ticket`.
    Ticket,
    /// `GET /stats/stream[?ticket=T]`.
    Stream {
        ticket: Option<&'a str>,
    },
    /// A CORS preflight from a public page (`OPTIONS`).
    Preflight,
}

fn classify<'a>(method: &str, path: &str, query: Option<&'a str>) -> Option<Request<'a>> {
    let request = match (method, path) {
        ("OPTIONS", "/dashboard/ticket" | "/stats/stream") => Request::Preflight,
        ("OPTIONS", p) if p.starts_with("/send/") => Request::Preflight,
        ("POST", "/dashboard/ticket") => Request::Ticket,
        ("GET", "/stats/stream") => Request::Stream {
            ticket: query.and_then(|q| query_param(q, "ticket")),
        },
        ("GET", path) => Request::Asset(Asset::at(path)?),
        _ => return None,
    };
    Some(request)
}

/// The dashboard's side of one admin listener: its settings, the tickets
/// issued and the stream's reader slots.
pub(crate) struct Board {
    dashboard: Dashboard,
    token: Option<String>,
    tickets: Mutex<Tickets>,
    readers: Arc<Semaphore>,
}

impl Board {
    /// The board of the admin listener at `admin`; `None` without
    /// `--dashboard`, and for a worker's Unix socket (`admin` is `None`),
    /// which only its front reads.
    pub(crate) fn new(config: &Config, admin: Option<SocketAddr>) -> Option<Arc<Board>> {
        let mut dashboard = config.dashboard?;
        dashboard.admin = Some(admin?);
        Some(Arc::new(Board {
            dashboard,
            token: config.admin_token.clone(),
            tickets: Mutex::new(Tickets::default()),
            readers: Arc::new(Semaphore::new(MAX_READERS)),
        }))
    }

    /// The `Access-Control-Allow-Origin` lines for a request from a public
    /// page (the subscriber listener's origin); empty otherwise.
    fn cors(&self, origin: Option<&[u8]>) -> String {
        let allowed = self.dashboard.mode == DashboardMode::Public
            && origin.is_some_and(|o| {
                self.dashboard
                    .subscriber
                    .is_some_and(|sub| origin::allowed(o, sub))
            });
        match origin.and_then(|o| std::str::from_utf8(o).ok()) {
            Some(origin) if allowed => {
                format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n")
            }
            _ => String::new(),
        }
    }

    /// Adds the CORS lines a public page needs to an admin answer already in
    /// `out` (its `/send/{id}`), after the status line.
    pub(crate) fn decorate(&self, head: &[u8], out: &mut Vec<u8>) {
        if self.dashboard.mode != DashboardMode::Public {
            return;
        }
        let mut slots = HeaderSlots::new();
        let Ok(Some(request)) = crate::http::parse_head(head, &mut slots) else {
            return;
        };
        let lines = self.cors(request.headers.get("origin"));
        after_status_line(out, &lines);
    }

    /// Serves `head` if it is a dashboard request: `None` when it is not
    /// (the admin routes take it), otherwise whether the connection stays
    /// open for the next request, or the refusal for the caller to answer
    /// (and close) as it answers any.
    pub(crate) async fn serve<S, H>(
        &self,
        head: &[u8],
        content_length: usize,
        stream: &mut S,
        ctx: &H,
    ) -> Option<Result<bool, Reject>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        H: Handler,
    {
        let mut slots = HeaderSlots::new();
        let parsed = crate::http::parse_head(head, &mut slots).ok()??;
        let request = classify(parsed.method, parsed.path, parsed.query)?;
        let cors = self.cors(parsed.headers.get("origin"));
        let keep_alive = parsed.keep_alive;
        let answer = match request {
            _ if content_length > 0 => Err(Reject::new(
                Status::BadRequest,
                "a dashboard request has no body",
            )),
            Request::Asset(asset) => Ok(asset.answer(&self.dashboard, "admin", &cors, keep_alive)),
            Request::Preflight => Ok(preflight(&cors, keep_alive)),
            Request::Ticket => self
                .issue(parsed.headers.get("authorization"))
                .map(|ticket| ticket_answer(&ticket, &cors, keep_alive)),
            Request::Stream { ticket } => match self.admit(ticket) {
                Ok(_reader) => {
                    stream::stats(stream, ctx, &cors).await;
                    return Some(Ok(false));
                }
                Err(reject) => Err(reject),
            },
        };
        Some(match answer {
            Ok(out) => Ok(stream.write_all(&out).await.is_ok() && keep_alive),
            // A public page must be able to read its 401 (to ask for the
            // token): the refusal carries its CORS lines. Nothing is left
            // unread (no body), so it may close at once.
            Err(reject) if !cors.is_empty() && content_length == 0 => {
                ctx.stats().bad_requests.fetch_add(1, Relaxed);
                let mut out = Vec::new();
                write_error(&reject, &mut out);
                after_status_line(&mut out, &cors);
                let _ = stream.write_all(&out).await;
                Ok(false)
            }
            Err(reject) => Err(reject),
        })
    }

    /// A ticket for the bearer of the admin token (any caller without one).
    fn issue(&self, authorization: Option<&[u8]>) -> Result<String, Reject> {
        if let Some(token) = &self.token {
            let bearer = authorization.and_then(crate::admin::bearer);
            if bearer != Some(token.as_bytes()) {
                return Err(Reject::new(
                    Status::Unauthorized,
                    "missing or wrong bearer token",
                ));
            }
        }
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.issue(Instant::now()).map_err(|_| {
            Reject::new(
                Status::ServiceUnavailable,
                "cannot read /dev/urandom for a ticket",
            )
        })
    }

    /// A reader's slot on the stream: without a token for anyone, otherwise
    /// only with a live ticket, which is spent; while slots are free.
    fn admit(&self, ticket: Option<&str>) -> Result<OwnedSemaphorePermit, Reject> {
        if self.token.is_some() {
            let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
            if !ticket.is_some_and(|t| tickets.redeem(t, Instant::now())) {
                return Err(Reject::new(
                    Status::Unauthorized,
                    "the stats stream needs ?ticket= from POST /dashboard/ticket (with the bearer token)",
                ));
            }
        }
        self.readers.clone().try_acquire_owned().map_err(|_| {
            Reject::new(
                Status::ServiceUnavailable,
                "too many readers of /stats/stream",
            )
        })
    }
}

/// Inserts header `lines` into the answer in `out`, after its status line.
fn after_status_line(out: &mut Vec<u8>, lines: &str) {
    if let Some(end) = out.windows(2).position(|w| w == b"\r\n") {
        out.splice(end + 2..end + 2, lines.bytes());
    }
}

/// `{"ticket": "...", "expires_in_ms": N}`.
fn ticket_answer(ticket: &str, cors: &str, keep_alive: bool) -> Vec<u8> {
    let body = serde_json::json!({
        "ticket": ticket,
        "expires_in_ms": tickets::TICKET_LIFE.as_millis() as u64,
    })
    .to_string();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{cors}Connection: {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The answer to a CORS preflight: the methods and the one header a public
/// page sends, for its origin only (`cors` is empty for any other, and the
/// browser then refuses the request).
fn preflight(cors: &str, keep_alive: bool) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let allow = if cors.is_empty() {
        String::new()
    } else {
        format!(
            "{cors}Access-Control-Allow-Methods: GET, POST\r\n\
             Access-Control-Allow-Headers: Authorization, Content-Type\r\nAccess-Control-Max-Age: 600\r\n"
        )
    };
    format!("HTTP/1.1 204 No Content\r\n{allow}Connection: {connection}\r\n\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_dashboard_paths_and_leaves_the_rest() {
        assert_eq!(
            classify("GET", "/", None),
            Some(Request::Asset(Asset::Page))
        );
        assert_eq!(
            classify("GET", "/dashboard.js", None),
            Some(Request::Asset(Asset::Script))
        );
        assert_eq!(
            classify("GET", "/stats/stream", Some("ticket=ab12")),
            Some(Request::Stream {
                ticket: Some("ab12")
            })
        );
        assert_eq!(
            classify("POST", "/dashboard/ticket", None),
            Some(Request::Ticket)
        );
        assert_eq!(
            classify("OPTIONS", "/send/4", None),
            Some(Request::Preflight)
        );
        for (method, path) in [
            ("GET", "/stats"),
            ("POST", "/send/1"),
            ("GET", "/metrics"),
            ("POST", "/"),
        ] {
            assert_eq!(classify(method, path, None), None, "{method} {path}");
        }
    }

    #[test]
    fn the_page_names_both_listeners() {
        let dashboard = Dashboard {
            mode: DashboardMode::Admin,
            admin: Some("127.0.0.1:8001".parse().unwrap()),
            subscriber: Some("0.0.0.0:8000".parse().unwrap()),
        };
        let page = String::from_utf8(Asset::Page.answer(&dashboard, "admin", "", true)).unwrap();
        assert!(
            page.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"),
            "{page}"
        );
        assert!(
            page.contains(r#""admin_host":"127.0.0.1","admin_port":8001"#),
            "{page}"
        );
        assert!(
            page.contains(r#""subscriber_host":"","subscriber_port":8000"#),
            "{page}"
        );
        let (head, body) = page.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
