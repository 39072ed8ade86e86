//! msggen's Centrifugo, Mercure, icomet and `http` template publishers
//! against small fakes of those HTTP APIs that check every request as the
//! servers' documentation specifies it (method, path, fields, body), and
//! the connection pool sizing itself to a slow per-message API.

#[path = "common/run.rs"]
mod run;

use c1m_common::{decode_envelope, MsggenSummary};
use percent_encoding::percent_decode_str;
use run::msggen_json;
use std::collections::HashMap;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the fake read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    /// Field names lower-cased.
    fields: HashMap<String, String>,
    body: Vec<u8>,
}

/// What the fake answers: status, body.
type Answer = fn(&Request) -> (u16, &'static str);

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<Request>>,
    connections: AtomicU64,
}

/// A keep-alive HTTP/1.1 server answering every request with `answer`,
/// after `delay`.
async fn fake(answer: Answer, delay: Duration) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            shared.connections.fetch_add(1, Relaxed);
            let seen = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let (request, used) = loop {
                        if let Some(parsed) = parse(&buf) {
                            break parsed;
                        }
                        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    };
                    buf.drain(..used);
                    tokio::time::sleep(delay).await;
                    let (status, body) = answer(&request);
                    seen.requests.lock().unwrap().push(request);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let whole = [head.as_bytes(), body.as_bytes()].concat();
                    if stream.write_all(&whole).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// A whole request at the start of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Request, usize)> {
    const LIMITS: c1m_http::HeadLimits = c1m_http::HeadLimits::new(64 * 1024, 32);
    let mut slots = c1m_http::HeaderSlots::new();
    let head =
        c1m_http::parse_request(buf, &LIMITS, &mut slots).expect("msggen writes valid requests")?;
    let length = match head.body {
        c1m_http::BodyFraming::Length(n) => n as usize,
        _ => 0,
    };
    if buf.len() < head.len + length {
        return None;
    }
    let fields = head
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let request = Request {
        method: head.method.to_owned(),
        target: head.target.to_owned(),
        fields,
        body: buf[head.len..head.len + length].to_vec(),
    };
    Some((request, head.len + length))
}

async fn run(args: String) -> (Output, MsggenSummary) {
    tokio::task::spawn_blocking(move || msggen_json(&args))
        .await
        .unwrap()
}

/// The envelope `text` holds whole, checked to be for `id`.
fn envelope_for(text: &[u8], id: &str) {
    let (envelope, used) = decode_envelope(text).unwrap().expect("an envelope");
    assert_eq!(
        used,
        text.len(),
        "only the envelope: {:?}",
        String::from_utf8_lossy(text)
    );
    assert_eq!(envelope.header.id.to_string(), id);
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8().unwrap().into_owned()
}

/// `name=value` pairs of a query or form, percent-decoded.
fn pairs(text: &str) -> HashMap<String, String> {
    text.split('&')
        .map(|pair| {
            let (n, v) = pair.split_once('=').expect("name=value");
            (decode(n), decode(v))
        })
        .collect()
}

/// Centrifugo's server API: `POST /api/publish`, `X-API-Key`, JSON
/// `{"channel": ..., "data": ...}`; an error comes back with status 200
/// and an `error` object.
#[tokio::test]
async fn centrifugo_publishes_as_its_http_api_says() {
    let (url, seen) = fake(|_| (200, r#"{"result":{}}"#), Duration::ZERO).await;
    let (output, summary) = run(format!(
        "--target {url} --publish centrifugo --token k3y --channel news:{{id}} --ids 1-20 \
         --rate 1000 --count 50"
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!((summary.sent, summary.publish.as_str()), (50, "centrifugo"));
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 50, "one message per request");
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/api/publish")
        );
        assert_eq!(r.fields["x-api-key"], "k3y");
        assert_eq!(r.fields["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 2, "channel and data only: {body}");
        let channel = object["channel"].as_str().unwrap();
        let id = channel.strip_prefix("news:").unwrap();
        envelope_for(object["data"].as_str().unwrap().as_bytes(), id);
    }

    let (url, _) = fake(
        |_| (200, r#"{"error":{"code":102,"message":"unknown channel"}}"#),
        Duration::ZERO,
    )
    .await;
    let (output, summary) = run(format!(
        "--target {url} --publish centrifugo --ids 1-20 --rate 1000 --count 10"
    ))
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(summary.failed_by_class.get("api_error"), Some(&10));
    assert_eq!(
        summary.retries, 0,
        "the same publish would be refused again"
    );
    assert!(summary
        .first_error
        .unwrap()
        .detail
        .contains("unknown channel"));
}

/// A Mercure hub: `POST /.well-known/mercure`, a form with `topic` and
/// `data`, and a publisher JWT (HS256 over `mercure.publish`) signed with
/// the hub's key.
#[tokio::test]
async fn mercure_publishes_a_form_with_a_signed_jwt() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (url, seen) = fake(|_| (200, "urn:uuid:5e94c686"), Duration::ZERO).await;
    let (output, summary) = run(format!(
        "--target {url} --publish mercure --jwt-key hub-s3cret --channel https://c1m.test/u/{{id}} \
         --ids 1-20 --rate 1000 --count 30"
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(summary.sent, 30);
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 30);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"hub-s3cret");
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/.well-known/mercure")
        );
        assert_eq!(
            r.fields["content-type"],
            "application/x-www-form-urlencoded"
        );
        let jwt = r.fields["authorization"].strip_prefix("Bearer ").unwrap();
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let tag = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(
            ring::hmac::verify(&key, input.as_bytes(), &tag).is_ok(),
            "signed with the key"
        );
        let claims = URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(claims["mercure"]["publish"], serde_json::json!(["*"]));
        let form = pairs(std::str::from_utf8(&r.body).unwrap());
        assert_eq!(form.len(), 2, "topic and data: {form:?}");
        let id = form["topic"].strip_prefix("https://c1m.test/u/").unwrap();
        envelope_for(form["data"].as_bytes(), id);
    }
}

/// icomet: `GET /push?cname=...&content=...`, the content JSON-encoded
/// without its quotes; it answers `{"type":"ok"}`.
#[tokio::test]
async fn icomet_pushes_in_the_query() {
    let (url, seen) = fake(|_| (200, "{\"type\":\"ok\"}\n"), Duration::ZERO).await;
    let (output, summary) = run(format!(
        "--target {url} --publish icomet --ids 1-20 --rate 1000 --count 30"
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(summary.sent, 30);
    for r in seen.requests.lock().unwrap().iter() {
        assert_eq!(r.method, "GET");
        assert!(r.body.is_empty() && !r.fields.contains_key("content-length"));
        let query = r.target.strip_prefix("/push?").unwrap();
        let q = pairs(query);
        let content: String = serde_json::from_str(&format!("\"{}\"", q["content"])).unwrap();
        envelope_for(content.as_bytes(), &q["cname"]);
    }
}

/// `--publish http`: the method, the URL and body templates and every
/// `--header`, for any other API.
#[tokio::test]
async fn http_templates_shape_the_request() {
    let (url, seen) = fake(|_| (204, ""), Duration::ZERO).await;
    // Literal braces in a template are doubled.
    let args = r#"--target URL/q/{id}?m={body_urlencoded} --publish http --method PUT
                  --body {{"to":"{id}","m":{body_json}}} --header X-Token:t0k --ids 1-20
                  --rate 1000 --count 30"#;
    let (output, summary) = run(args.replace("URL", &url)).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary.sent, 30);
    for r in seen.requests.lock().unwrap().iter() {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.fields["x-token"], "t0k");
        let (path, query) = r.target.split_once('?').unwrap();
        let id = path.strip_prefix("/q/").unwrap();
        envelope_for(pairs(query)["m"].as_bytes(), id);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["to"], id);
        envelope_for(body["m"].as_str().unwrap().as_bytes(), id);
    }
}

/// A per-message API that takes 4 ms to answer holds 2,000 msg/s only on
/// about 8 connections at once (Little's law): the pool grows to that by
/// itself, and no further than the answer times it met need. The bound is
/// taken from the slowest answer measured, not the fake's 4 ms: on a busy
/// machine a stalled answer rightly opens more (CI saw 110 after one), but
/// a pool that opened one per message would pass 4,000.
#[tokio::test]
async fn connections_grow_to_what_the_rate_and_answer_time_need() {
    let (url, seen) = fake(|_| (201, ""), Duration::from_millis(4)).await;
    let (output, summary) = run(format!(
        "--target {url} --publish nchan --ids 1-1000 --rate 2000 --duration 2s --senders 2"
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(summary.sent, 4000);
    let achieved = summary.achieved_rate;
    assert!(
        (achieved / 2000.0 - 1.0).abs() < 0.03,
        "achieved {achieved}"
    );
    let conns = summary.connections;
    let slowest_s = summary.answer_us.max as f64 / 1e6;
    let needed_at_worst = (2000.0 * slowest_s).ceil() as u64 + 8;
    assert!(
        (8..=needed_at_worst).contains(&conns),
        "{conns} connections at most, answers up to {slowest_s} s: {:?}",
        summary.answer_us
    );
    assert_eq!(summary.connects, seen.connections.load(Relaxed));
    assert!(summary.answer_us.p50 >= 4000, "{:?}", summary.answer_us);
}
