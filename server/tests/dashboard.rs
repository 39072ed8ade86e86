//! The dashboard over HTTP (`--dashboard`): where the page is served, the
//! stats stream and its tickets, the origins each listener allows. The
//! page itself in a browser: `tests/browser.rs`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use c1m_server::{Config, Dashboard, DashboardMode};
use support::binary::Binary;
use support::*;

fn with_dashboard(mode: DashboardMode, token: Option<&str>) -> Config {
    Config {
        admin_token: token.map(str::to_owned),
        dashboard: Some(Dashboard {
            mode,
            admin: None,
            subscriber: None,
        }),
        ..config()
    }
}

/// One request with `headers`, answered and closed: (head, body).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), body.to_owned())
}

fn status(head: &str) -> u16 {
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A ticket from `POST /dashboard/ticket` with `headers`.
fn ticket(admin: SocketAddr, headers: &str) -> (u16, Option<String>) {
    let (head, body) = request(admin, "POST", "/dashboard/ticket", headers);
    let ticket = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["ticket"].as_str().map(str::to_owned));
    (status(&head), ticket)
}

/// Opens the stats stream and reads its first event's JSON; the reader is
/// returned too, still reading (a dropped one holds its slot until the
/// server's next write fails).
fn first_event(admin: SocketAddr, path: &str) -> (Client, serde_json::Value) {
    let mut reader = Client::get(admin, path);
    let text = reader.expect("\n\n");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/event-stream"), "{text}");
    let text = reader.expect("event: stats\ndata: ");
    let at = text.find("event: stats\ndata: ").unwrap() + "event: stats\ndata: ".len();
    let line = loop {
        let text = reader.text();
        if let Some(end) = text[at..].find("\n\n") {
            break text[at..at + end].to_owned();
        }
        reader.expect("\n\n");
    };
    (reader, serde_json::from_str(&line).unwrap())
}

#[test]
fn the_page_is_on_the_admin_listener_and_not_on_the_subscriber_port() {
    let server = server(with_dashboard(DashboardMode::Admin, None));
    let (head, page) = request(server.admin_addr(), "GET", "/", "");
    assert_eq!(status(&head), 200, "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(page.contains(r#"<script src="dashboard.js""#), "{page}");
    let sub_port = format!(r#""subscriber_port":{}"#, server.subscriber_addr().port());
    assert!(
        page.contains(&sub_port),
        "the page names the subscriber port: {page}"
    );
    for (asset, kind) in [
        ("/dashboard.js", "text/javascript"),
        ("/dashboard.css", "text/css"),
    ] {
        let (head, body) = request(server.admin_addr(), "GET", asset, "");
        assert_eq!(status(&head), 200, "{asset}: {head}");
        assert!(head.contains(kind), "{head}");
        assert!(
            body.len() > 500 && body.len() < 16 * 1024,
            "{asset}: {} bytes",
            body.len()
        );
    }
    // Without `public` the subscriber port serves no page.
    for path in ["/", "/dashboard.js", "/index.html"] {
        let (head, _) = request(server.subscriber_addr(), "GET", path, "");
        assert_eq!(status(&head), 404, "{path}: {head}");
    }
    // The admin routes are untouched.
    assert_eq!(admin(&server, "GET", "/stats", b"").0, 200);
    assert_eq!(admin(&server, "GET", "/nope", b"").0, 404);
}

#[test]
fn without_the_flag_there_is_no_page_and_no_stream() {
    let server = server(config());
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/stats/stream"),
        ("POST", "/dashboard/ticket"),
    ] {
        let (head, _) = request(server.admin_addr(), method, path, "");
        assert_eq!(status(&head), 404, "{method} {path}: {head}");
    }
    let origin = "Origin: http://127.0.0.1:1\r\n";
    let mut reader = Client::get_with(server.subscriber_addr(), "/sse/1", origin);
    let head = reader.expect("\r\n\r\n");
    assert!(!head.contains("Access-Control"), "{head}");
}

#[test]
fn the_stream_sends_the_stats_snapshot_every_second() {
    let server = server(with_dashboard(DashboardMode::Admin, None));
    let mut sub = Client::get(server.subscriber_addr(), "/sse/3");
    sub.expect("text/event-stream");
    assert!(stats_reach(&server, |s| s.logged_in == 1));
    let (first, event) = first_event(server.admin_addr(), "/stats/stream");
    assert_eq!(event["connections"], 1, "{event}");
    assert!(event["rss_bytes"].as_u64().unwrap() > 0, "{event}");
    // One reader per slot: the eight slots taken, a ninth is refused.
    let readers: Vec<Client> = (1..8)
        .map(|_| {
            let mut c = Client::get(server.admin_addr(), "/stats/stream");
            c.expect("event: stats");
            c
        })
        .collect();
    let (head, body) = request(server.admin_addr(), "GET", "/stats/stream", "");
    assert_eq!(status(&head), 503, "{head}{body}");
    drop((first, readers));
}

#[test]
fn with_a_token_the_stream_needs_a_ticket_spent_once() {
    let admin_token = "Authorization: Bearer s3cret\r\n";
    let server = server(with_dashboard(DashboardMode::Admin, Some("s3cret")));
    let admin_addr = server.admin_addr();
    // The page loads without the token (it asks for it)...
    assert_eq!(status(&request(admin_addr, "GET", "/", "").0), 200);
    // ...but the stream refuses a reader without a ticket, or with a forged one.
    for path in [
        "/stats/stream",
        "/stats/stream?ticket=",
        "/stats/stream?ticket=00112233445566778899aabbccddeeff",
    ] {
        let (head, body) = request(admin_addr, "GET", path, "");
        assert_eq!(status(&head), 401, "{path}: {head}");
        assert!(body.contains("ticket"), "{body}");
    }
    // A ticket needs the bearer token.
    assert_eq!(ticket(admin_addr, ""), (401, None));
    assert_eq!(
        ticket(admin_addr, "Authorization: Bearer wrong\r\n"),
        (401, None)
    );
    let (code, Some(t)) = ticket(admin_addr, admin_token) else {
        panic!("no ticket with the token");
    };
    assert_eq!(code, 200);
    let (_reader, event) = first_event(admin_addr, &format!("/stats/stream?ticket={t}"));
    assert_eq!(event["connections"], 0, "{event}");
    // Spent: the same ticket opens nothing again.
    let (head, _) = request(admin_addr, "GET", &format!("/stats/stream?ticket={t}"), "");
    assert_eq!(status(&head), 401, "{head}");
    // The plain admin routes still want the header.
    assert_eq!(admin(&server, "GET", "/stats", b"").0, 401);
}

#[test]
fn the_subscriber_stream_allows_the_dashboards_origin_only() {
    let server = server(with_dashboard(DashboardMode::Admin, None));
    let admin_port = server.admin_addr().port();
    let allow = |origin: &str| {
        let header = format!("Origin: {origin}\r\n");
        let mut reader = Client::get_with(server.subscriber_addr(), "/sse/1", &header);
        let head = reader.expect("\r\n\r\n");
        header_value(&head, "access-control-allow-origin")
    };
    let page = format!("http://127.0.0.1:{admin_port}");
    assert_eq!(allow(&page).as_deref(), Some(page.as_str()));
    let named = format!("http://localhost:{admin_port}");
    assert_eq!(allow(&named).as_deref(), Some(named.as_str()));
    assert_eq!(allow("http://127.0.0.1:9"), None, "another port");
    assert_eq!(allow(&format!("http://evil.example:{admin_port}")), None);
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

#[test]
fn public_serves_the_page_on_the_subscriber_port_and_the_admin_allows_it() {
    let server = server(with_dashboard(DashboardMode::Public, Some("s3cret")));
    let (head, page) = request(server.subscriber_addr(), "GET", "/", "");
    assert_eq!(status(&head), 200, "{head}");
    assert!(page.contains(r#""served_by":"subscriber""#), "{page}");
    let admin_port = format!(r#""admin_port":{}"#, server.admin_addr().port());
    assert!(page.contains(&admin_port), "{page}");
    // The subscriber routes are unchanged beside it.
    assert_eq!(
        status(&request(server.subscriber_addr(), "GET", "/nope", "").0),
        404
    );
    let mut reader = Client::get(server.subscriber_addr(), "/sse/4");
    reader.expect("text/event-stream");
    // The public page's origin may call the admin: preflight, ticket, send.
    let origin = format!("http://127.0.0.1:{}", server.subscriber_addr().port());
    let from_page = format!("Origin: {origin}\r\nAuthorization: Bearer s3cret\r\n");
    let (head, _) = request(
        server.admin_addr(),
        "OPTIONS",
        "/send/4",
        &format!("Origin: {origin}\r\n"),
    );
    assert_eq!(status(&head), 204, "{head}");
    assert_eq!(
        header_value(&head, "access-control-allow-origin"),
        Some(origin.clone())
    );
    assert!(header_value(&head, "access-control-allow-headers")
        .unwrap()
        .contains("Authorization"));
    // Without the token the page can read its 401, and so ask for it.
    let bare = format!("Origin: {origin}\r\n");
    let (head, _) = request(server.admin_addr(), "POST", "/dashboard/ticket", &bare);
    assert_eq!(status(&head), 401, "{head}");
    assert_eq!(
        header_value(&head, "access-control-allow-origin"),
        Some(origin.clone())
    );
    let (head, _) = request(server.admin_addr(), "POST", "/dashboard/ticket", &from_page);
    assert_eq!(
        header_value(&head, "access-control-allow-origin"),
        Some(origin.clone())
    );
    let (status_code, body) = admin_with(server.admin_addr(), "POST", "/send/4", b"hi", &from_page);
    assert_eq!(status_code, 200, "{body}");
    reader.expect("data: hi\n\n");
    // Another origin gets no allowance.
    let (head, _) = request(
        server.admin_addr(),
        "OPTIONS",
        "/send/4",
        "Origin: http://evil.example\r\n",
    );
    assert_eq!(
        header_value(&head, "access-control-allow-origin"),
        None,
        "{head}"
    );
}

#[test]
fn a_groups_stream_carries_the_sum_and_every_worker() {
    let group = Binary::start(&["--workers", "2", "--dashboard"]);
    let mut subs: Vec<Client> = (0..3)
        .map(|id| Client::get(group.listen, &format!("/sse/{id}")))
        .collect();
    for sub in &mut subs {
        sub.expect("text/event-stream");
    }
    assert!(group.stats_reach(Duration::from_secs(10), |s| s.logged_in == 3));
    let (_reader, event) = first_event(group.admin, "/stats/stream");
    assert_eq!(event["connections"], 3, "{event}");
    let workers = event["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{event}");
    let per_worker: u64 = workers
        .iter()
        .map(|w| w["connections"].as_u64().unwrap())
        .sum();
    assert_eq!(per_worker, 3);
    // Every worker allows the front's page to read its streams.
    let origin = format!("Origin: http://127.0.0.1:{}\r\n", group.admin.port());
    for id in 0..2 {
        let mut reader = Client::get_with(group.listen, &format!("/sse/{id}"), &origin);
        let head = reader.expect("\r\n\r\n");
        assert!(
            head.contains("Access-Control-Allow-Origin: http://127.0.0.1:"),
            "{head}"
        );
    }
}
