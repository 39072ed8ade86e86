//! The HTTP publish APIs: what request carries a message (or a batch) to
//! each server, and what its answer says. Every request is written by
//! `c1m_http::write_request_head`, every answer read by [`crate::http`];
//! this module is only the per-server shape:
//!
//! | kind | request | answer |
//! | --- | --- | --- |
//! | `comet` | `POST {base}/send`, `id<TAB>envelope` lines | `BatchAnswer` (dropped, rejected) |
//! | `comet-each` | `POST {base}/send/{id}`, the envelope | `SendAnswer` (0 connections: dropped) |
//! | `comet-events` | `POST {base}/publish`, `publisher<TAB>[c1e ...]` lines | `PublishBatchAnswer` (connections, unheard, rejected) |
//! | `nchan` | `POST {base}/pub/{channel}`, the envelope | 201 subscribers, 202 none (dropped) |
//! | `pushpin` | `POST {base}/publish/`, JSON `items` (a batch) | 200 |
//! | `icomet` | `GET {base}/push?cname={channel}&content={json, unquoted}` | `{"type":"ok"}` |
//! | `centrifugo` | `POST {base}/api/publish`, JSON `channel`, `data`; `X-API-Key` | `{"result":...}`, or `{"error":...}` (an error, status 200) |
//! | `mercure` | `POST {base}/.well-known/mercure`, form `topic`, `data`; bearer JWT | 200, the update's id |
//! | `http` | `--method` `--target` (a template) with `--body` | any 2xx |
//!
//! `--header` fields go on every request of every kind.

use super::template::{push_json_string, push_urlencoded, Template};
use super::{Fanout, Msg, Reply, Stamp};
use crate::failure::Failure;
use crate::http::{Answer, Target};
use c1m_common::{push_batch_line, BatchAnswer, PublishBatchAnswer, SendAnswer};
use c1m_http::write_request_head;
use std::fmt::Display;

/// Which Pushpin format a publish fills (the subscriber's transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushpinFormat {
    /// Appends the content to held streams (`Grip-Hold: stream`).
    #[default]
    HttpStream,
    /// Completes held long-polls with the body (`Grip-Hold: response`).
    HttpResponse,
}

impl std::str::FromStr for PushpinFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http-stream" => Ok(PushpinFormat::HttpStream),
            "http-response" => Ok(PushpinFormat::HttpResponse),
            _ => Err(format!("{s:?}: expected http-stream or http-response")),
        }
    }
}

/// The shape of one server's publish requests.
#[derive(Debug, Clone)]
pub(crate) enum HttpApi {
    CometBatch,
    CometEach,
    CometEvents,
    Nchan {
        channel: Template,
    },
    Pushpin {
        channel: Template,
        format: PushpinFormat,
    },
    Icomet {
        channel: Template,
    },
    Centrifugo {
        channel: Template,
    },
    Mercure {
        topic: Template,
    },
    Custom {
        method: String,
        path: Template,
        body: Template,
    },
}

/// An HTTP publisher: where, in what shape, with which extra fields.
#[derive(Debug, Clone)]
pub(crate) struct HttpPublisher {
    pub(crate) target: Target,
    pub(crate) api: HttpApi,
    /// Fields on every request: credentials, then `--header`s.
    pub(crate) fields: Vec<(String, String)>,
}

impl HttpPublisher {
    /// The method of every request (answers to `HEAD` have no body).
    pub(crate) fn method(&self) -> &str {
        match &self.api {
            HttpApi::Icomet { .. } => "GET",
            HttpApi::Custom { method, .. } => method,
            _ => "POST",
        }
    }

    /// Appends one request carrying `msgs` (one message unless the API
    /// batches); `scratch` holds the body and an envelope while it is made.
    pub(crate) fn write_request(
        &self,
        out: &mut Vec<u8>,
        msgs: &[Msg],
        stamp: &Stamp<'_>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            body,
            envelope,
            path,
        } = scratch;
        body.clear();
        path.clear();
        path.extend_from_slice(self.target.path.as_bytes());
        let mut content_type = None;
        let first = msgs[0];
        let refill = |envelope: &mut Vec<u8>, msg: Msg| {
            envelope.clear();
            stamp.envelope(msg, envelope);
        };
        match &self.api {
            HttpApi::CometBatch | HttpApi::CometEvents => {
                let endpoint: &[u8] = if matches!(self.api, HttpApi::CometEvents) {
                    b"/publish"
                } else {
                    b"/send"
                };
                path.extend_from_slice(endpoint);
                content_type = Some("text/plain");
                for &msg in msgs {
                    push_batch_line(body, msg.id, |out| stamp.envelope(msg, out)).expect(
                        "an envelope around a payload of letters and digits holds no newline",
                    );
                }
            }
            HttpApi::CometEach => {
                push_path(path, format_args!("/send/{}", first.id));
                content_type = Some("text/plain");
                stamp.envelope(first, body);
            }
            HttpApi::Nchan { channel } => {
                path.extend_from_slice(b"/pub/");
                push_urlencoded(path, channel.render_id(first.id).as_bytes());
                content_type = Some("text/plain");
                stamp.envelope(first, body);
            }
            HttpApi::Pushpin { channel, format } => {
                path.extend_from_slice(b"/publish/");
                content_type = Some("application/json");
                body.extend_from_slice(b"{\"items\":[");
                for (i, &msg) in msgs.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    refill(envelope, msg);
                    envelope.push(b'\n');
                    body.extend_from_slice(b"{\"channel\":");
                    push_json_string(body, channel.render_id(msg.id).as_bytes());
                    body.extend_from_slice(match format {
                        PushpinFormat::HttpStream => b",\"formats\":{\"http-stream\":{\"content\":",
                        PushpinFormat::HttpResponse => {
                            b",\"formats\":{\"http-response\":{\"body\":"
                        }
                    });
                    push_json_string(body, envelope);
                    body.extend_from_slice(b"}}}");
                }
                body.extend_from_slice(b"]}");
            }
            HttpApi::Icomet { channel } => {
                // icomet takes the content JSON-encoded without its quotes.
                refill(envelope, first);
                let mut json = Vec::with_capacity(envelope.len() + 2);
                push_json_string(&mut json, envelope);
                path.extend_from_slice(b"/push?cname=");
                push_urlencoded(path, channel.render_id(first.id).as_bytes());
                path.extend_from_slice(b"&content=");
                push_urlencoded(path, &json[1..json.len() - 1]);
            }
            HttpApi::Centrifugo { channel } => {
                path.extend_from_slice(b"/api/publish");
                content_type = Some("application/json");
                refill(envelope, first);
                body.extend_from_slice(b"{\"channel\":");
                push_json_string(body, channel.render_id(first.id).as_bytes());
                body.extend_from_slice(b",\"data\":");
                push_json_string(body, envelope);
                body.push(b'}');
            }
            HttpApi::Mercure { topic } => {
                path.extend_from_slice(b"/.well-known/mercure");
                content_type = Some("application/x-www-form-urlencoded");
                refill(envelope, first);
                body.extend_from_slice(b"topic=");
                push_urlencoded(body, topic.render_id(first.id).as_bytes());
                body.extend_from_slice(b"&data=");
                push_urlencoded(body, envelope);
            }
            HttpApi::Custom {
                path: template,
                body: body_template,
                ..
            } => {
                refill(envelope, first);
                path.clear();
                template.render(path, first.id, envelope);
                body_template.render(body, first.id, envelope);
            }
        }
        if path.is_empty() {
            path.push(b'/');
        }
        let path = String::from_utf8_lossy(path);
        let mut fields: Vec<(&str, &dyn Display)> = Vec::with_capacity(self.fields.len() + 1);
        if let Some(content_type) = &content_type {
            fields.push(("Content-Type", content_type));
        }
        for (name, value) in &self.fields {
            fields.push((name, value));
        }
        let method = self.method();
        let length = (!body.is_empty() || !matches!(method, "GET" | "HEAD")).then_some(body.len());
        write_request_head(out, method, &path, &self.target.host, &fields, length);
        out.extend_from_slice(body);
    }

    /// What an answer to a request of `n` messages says.
    pub(crate) fn read_answer(&self, answer: &Answer, n: u64) -> Result<Reply, Failure> {
        if !(200..300).contains(&answer.status) {
            return Err(Failure::status(
                answer.status,
                &answer.body,
                answer.retry_after,
            ));
        }
        let mut reply = Reply::default();
        match &self.api {
            HttpApi::CometBatch => {
                // comet-server's answer; another target's body tells nothing.
                if let Ok(a) = serde_json::from_slice::<BatchAnswer>(&answer.body) {
                    reply.rejected = a.rejected.min(n);
                    reply.dropped = a.dropped;
                }
            }
            HttpApi::CometEvents => {
                if let Ok(a) = serde_json::from_slice::<PublishBatchAnswer>(&answer.body) {
                    reply.rejected = a.rejected.min(n);
                    // A broker-mode server says neither (other groups'
                    // friends are not known where the event was posted).
                    reply.fanout =
                        a.connections
                            .zip(a.unheard)
                            .map(|(connections, unheard)| Fanout {
                                connections,
                                unheard,
                            });
                }
            }
            HttpApi::CometEach => {
                if let Ok(a) = serde_json::from_slice::<SendAnswer>(&answer.body) {
                    reply.dropped = Some(u64::from(a.connections == 0));
                }
            }
            // nchan: 201 Created when subscribers got it, 202 Accepted when
            // the channel had none.
            HttpApi::Nchan { .. } => {
                reply.dropped = match answer.status {
                    201 => Some(0),
                    202 => Some(1),
                    _ => None,
                };
            }
            HttpApi::Centrifugo { .. } => {
                // Centrifugo answers 200 and says in the body when it failed.
                let body: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
                if body.as_ref().is_some_and(|b| b.get("error").is_some()) {
                    return Err(Failure::api_error(&answer.body));
                }
            }
            _ => {}
        }
        Ok(reply)
    }
}

fn push_path(path: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = path.write_fmt(args);
}

/// Buffers a sender reuses for every request it writes.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    body: Vec<u8>,
    envelope: Vec<u8>,
    path: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::template::Allow;

    fn publisher(api: HttpApi) -> HttpPublisher {
        HttpPublisher {
            target: Target::parse("http://127.0.0.1:9/base").unwrap(),
            api,
            fields: vec![("X-Extra".into(), "1".into())],
        }
    }

    fn request(api: HttpApi, msgs: &[Msg]) -> String {
        // What `run` pairs with each API: events go to `/publish`.
        let kind = match api {
            HttpApi::CometEvents => c1m_common::EnvelopeKind::Event,
            _ => c1m_common::EnvelopeKind::Message,
        };
        let stamp = Stamp {
            kind,
            generator: 3,
            sent_us: 99,
            payload: b"hi",
        };
        let mut out = Vec::new();
        publisher(api).write_request(&mut out, msgs, &stamp, &mut Scratch::default());
        String::from_utf8(out).unwrap()
    }

    fn channel() -> Template {
        Template::parse("c{id}", Allow::Id).unwrap()
    }

    const ONE: [Msg; 1] = [Msg { id: 7, seq: 1 }];

    #[test]
    fn writes_each_apis_request() {
        let env = "[c1m 7 3 1 99 2|hi]";
        assert_eq!(
            request(HttpApi::CometEach, &ONE),
            format!("POST /base/send/7 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: text/plain\r\nX-Extra: 1\r\nContent-Length: 19\r\n\r\n{env}")
        );
        let two = [Msg { id: 7, seq: 1 }, Msg { id: 8, seq: 4 }];
        let batch = request(HttpApi::CometBatch, &two);
        assert!(
            batch.ends_with("\r\n\r\n7\t[c1m 7 3 1 99 2|hi]\n8\t[c1m 8 3 4 99 2|hi]\n"),
            "{batch}"
        );
        let events = request(HttpApi::CometEvents, &two);
        assert!(
            events.starts_with("POST /base/publish HTTP/1.1\r\n"),
            "{events}"
        );
        assert!(
            events.ends_with("\r\n\r\n7\t[c1e 7 3 1 99 2|hi]\n8\t[c1e 8 3 4 99 2|hi]\n"),
            "{events}"
        );
        let nchan = request(HttpApi::Nchan { channel: channel() }, &ONE);
        assert!(
            nchan.starts_with("POST /base/pub/c7 HTTP/1.1\r\n"),
            "{nchan}"
        );
        let icomet = request(HttpApi::Icomet { channel: channel() }, &ONE);
        assert_eq!(
            icomet,
            "GET /base/push?cname=c7&content=%5Bc1m%207%203%201%2099%202%7Chi%5D HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-Extra: 1\r\n\r\n"
        );
        let centrifugo = request(HttpApi::Centrifugo { channel: channel() }, &ONE);
        assert!(centrifugo.starts_with("POST /base/api/publish HTTP/1.1\r\n"));
        assert!(centrifugo.ends_with(&format!(
            "\r\n\r\n{{\"channel\":\"c7\",\"data\":\"{env}\"}}"
        )));
        let mercure = request(HttpApi::Mercure { topic: channel() }, &ONE);
        assert!(mercure.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        assert!(mercure.ends_with("\r\n\r\ntopic=c7&data=%5Bc1m%207%203%201%2099%202%7Chi%5D"));
        let custom = HttpApi::Custom {
            method: "PUT".into(),
            path: Template::parse("/q/{id}?m={body_urlencoded}", Allow::IdAndBody).unwrap(),
            body: Template::parse(r#"{{"m":{body_json}}}"#, Allow::IdAndBody).unwrap(),
        };
        let custom = request(custom, &ONE);
        assert!(custom.starts_with("PUT /q/7?m=%5Bc1m"), "{custom}");
        assert!(custom.ends_with(&format!("\r\n\r\n{{\"m\":\"{env}\"}}")));
    }

    #[test]
    fn pushpin_batches_items_in_either_format() {
        let two = [Msg { id: 7, seq: 1 }, Msg { id: 8, seq: 1 }];
        let api = |format| HttpApi::Pushpin {
            channel: channel(),
            format,
        };
        let stream = request(api(PushpinFormat::HttpStream), &two);
        let body = stream.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["items"][1]["channel"], "c8");
        assert_eq!(
            json["items"][0]["formats"]["http-stream"]["content"],
            "[c1m 7 3 1 99 2|hi]\n"
        );
        let response = request(api(PushpinFormat::HttpResponse), &two);
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            json["items"][1]["formats"]["http-response"]["body"],
            "[c1m 8 3 1 99 2|hi]\n"
        );
    }

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            body: body.to_vec(),
            reusable: true,
            retry_after: None,
        }
    }

    #[test]
    fn reads_what_each_answer_says() {
        let p = publisher(HttpApi::Nchan { channel: channel() });
        assert_eq!(
            p.read_answer(&answer(201, b""), 1).unwrap().dropped,
            Some(0)
        );
        assert_eq!(
            p.read_answer(&answer(202, b""), 1).unwrap().dropped,
            Some(1)
        );
        let f = p.read_answer(&answer(403, b"Forbidden"), 1).unwrap_err();
        assert_eq!((f.status, f.detail.as_str()), (Some(403), "Forbidden"));
        let each = publisher(HttpApi::CometEach);
        let idle = each.read_answer(&answer(200, br#"{"id":7,"connections":0}"#), 1);
        assert_eq!(idle.unwrap().dropped, Some(1));
        let batch = publisher(HttpApi::CometBatch);
        let reply = batch.read_answer(
            &answer(200, br#"{"accepted":3,"rejected":9,"dropped":1}"#),
            4,
        );
        assert_eq!(
            reply.unwrap(),
            Reply {
                dropped: Some(1),
                rejected: 4,
                fanout: None,
            }
        );
        let events = publisher(HttpApi::CometEvents).read_answer(
            &answer(
                200,
                br#"{"accepted":3,"rejected":1,"friends":9,"online":5,"connections":7,"unheard":1}"#,
            ),
            4,
        );
        assert_eq!(
            events.unwrap(),
            Reply {
                dropped: None,
                rejected: 1,
                fanout: Some(Fanout {
                    connections: 7,
                    unheard: 1
                }),
            }
        );
        // A broker-mode server's: accepted, the reach not known there.
        let brokered = publisher(HttpApi::CometEvents)
            .read_answer(
                &answer(200, br#"{"accepted":3,"rejected":1,"friends":9}"#),
                4,
            )
            .unwrap();
        assert_eq!((brokered.rejected, brokered.fanout), (1, None));
        // A `/send` answer is not an event answer: nothing is counted.
        let wrong = publisher(HttpApi::CometEvents)
            .read_answer(&answer(200, br#"{"accepted":3,"rejected":0}"#), 3)
            .unwrap();
        assert_eq!(wrong.fanout, None);
        let foreign = batch
            .read_answer(&answer(200, br#"{"dropped":2}"#), 4)
            .unwrap();
        assert_eq!(foreign, Reply::default());
        let c = publisher(HttpApi::Centrifugo { channel: channel() });
        assert!(c.read_answer(&answer(200, br#"{"result":{}}"#), 1).is_ok());
        let refused = c.read_answer(
            &answer(
                200,
                br#"{"error":{"code":102,"message":"unknown channel"}}"#,
            ),
            1,
        );
        assert_eq!(
            refused.unwrap_err().class,
            crate::failure::FailureClass::ApiError
        );
    }
}
