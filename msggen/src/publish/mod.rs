//! Publishers: how messages reach a push server. One [`Publisher`] (chosen
//! by `--publish KIND`, or the scheme of `--target`) opens [`Lane`]s
//! (connections) and carries requests on them; everything else a run does
//! (the schedule, sequence numbers, retries, accounting) is the same for
//! every kind and lives in [`crate::sender`].
//!
//! A request carries one message for the per-message APIs (`comet-each`,
//! `nchan`, `icomet`, `centrifugo`, `mercure`, `http`) and a batch for the
//! others (`comet`'s `POST /send`, `comet-events`' `POST /publish`,
//! Pushpin's `items`, pipelined Redis
//! `PUBLISH`es, NATS publishes with one flush). HTTP lanes can pipeline
//! several requests per round (`--pipeline`).
//!
//! A lane at rest is its socket and a read buffer of a few KiB (an
//! `async-nats` client: its connection task and buffers, ~100 KiB).

mod http_api;
mod jwt;
mod resp;
pub(crate) mod template;

use crate::failure::{Failure, FailureClass};
use crate::http::{Answer, Conn, Target};
use c1m_common::{
    encode_envelope, encode_event, push_batch_line, EnvelopeKind, Header, HeaderField,
};
use clap::Args as ClapArgs;
use resp::RedisConn;
use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use template::{Allow, Template};

pub use http_api::PushpinFormat;
pub(crate) use http_api::Scratch;
use http_api::{HttpApi, HttpPublisher};

/// The publish API of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// comet-server's batch endpoint, `POST /send` (the default).
    Comet,
    /// comet-server's per-message endpoint, `POST /send/{id}`.
    CometEach,
    /// comet-server's event batch endpoint, `POST /publish`: each id is a
    /// publisher and its `[c1e ...]` event fans out to its online friends.
    CometEvents,
    /// nginx with nchan: `POST {base}/pub/{channel}`.
    Nchan,
    /// Pushpin's GRIP publish: `POST {base}/publish/`, JSON items.
    Pushpin,
    /// icomet: `GET {base}/push?cname={channel}&content=...`.
    Icomet,
    /// Centrifugo's HTTP API: `POST {base}/api/publish`.
    Centrifugo,
    /// A Mercure hub: `POST {base}/.well-known/mercure`.
    Mercure,
    /// A NATS server: publish to a subject (`nats://host:port`).
    Nats,
    /// A Redis server: `PUBLISH` to a channel (`redis://host:port`).
    Redis,
    /// Any HTTP API, from templates (`--method`, `--target`, `--body`).
    Http,
}

impl Kind {
    const ALL: [(Kind, &'static str); 11] = [
        (Kind::Comet, "comet"),
        (Kind::CometEach, "comet-each"),
        (Kind::CometEvents, "comet-events"),
        (Kind::Nchan, "nchan"),
        (Kind::Pushpin, "pushpin"),
        (Kind::Icomet, "icomet"),
        (Kind::Centrifugo, "centrifugo"),
        (Kind::Mercure, "mercure"),
        (Kind::Nats, "nats"),
        (Kind::Redis, "redis"),
        (Kind::Http, "http"),
    ];

    fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }

    /// True for the APIs whose one request carries one message.
    pub(crate) fn per_message(self) -> bool {
        !matches!(
            self,
            Kind::Comet | Kind::CometEvents | Kind::Pushpin | Kind::Nats | Kind::Redis
        )
    }

    /// True for comet-server's own endpoints.
    pub(crate) fn is_comet(self) -> bool {
        matches!(self, Kind::Comet | Kind::CometEach | Kind::CometEvents)
    }

    /// The envelope this kind sends: an event (`[c1e `) for
    /// `comet-events`, a message (`[c1m `) for every other.
    pub(crate) fn envelope(self) -> EnvelopeKind {
        match self {
            Kind::CometEvents => EnvelopeKind::Event,
            _ => EnvelopeKind::Message,
        }
    }

    /// The channel (subject, topic) template when `--channel` is not given.
    fn default_channel(self) -> &'static str {
        match self {
            Kind::Nats | Kind::Redis => "c1m.{id}",
            _ => "{id}",
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|(_, n)| *n).collect();
                format!("{s:?}: expected one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to publish: the API and what it needs besides `--target`.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct PublishArgs {
    /// The publish API: comet (comet-server's batch `POST /send`, the
    /// default for http:// targets), comet-each, comet-events (events
    /// from the ids to their friends, `POST /publish`), nchan, pushpin, icomet,
    /// centrifugo, mercure, nats (default for nats://), redis (default for
    /// redis://) or http (templates).
    #[arg(long)]
    pub publish: Option<Kind>,
    /// Channel, subject or topic of each message, with `{id}` for the
    /// subscriber id; default `{id}`, and `c1m.{id}` for nats and redis.
    #[arg(long)]
    pub channel: Option<String>,
    /// Method of `--publish http` requests; `--target` is then the URL
    /// template (`{id}`, `{body_urlencoded}`).
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// Body template of `--publish http` requests: `{id}`, `{body}` (the
    /// envelope), `{body_urlencoded}`, `{body_json}` (a JSON string).
    #[arg(long, default_value = "{body}")]
    pub body: String,
    /// An extra header on every HTTP request (`--header 'X-Key: v'`,
    /// repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<HeaderField>,
    /// Mercure: sign a publisher JWT with this HS256 key (or give the JWT
    /// itself with --token).
    #[arg(long, env = "MERCURE_JWT_KEY")]
    pub jwt_key: Option<String>,
    /// Pushpin: the format each item fills: http-stream (held streams) or
    /// http-response (held long-polls).
    #[arg(long, default_value = "http-stream")]
    pub pushpin_format: PushpinFormat,
}

/// One message of a request: its id and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
}

/// What every envelope of one write shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    /// A message to `id`, or an event from `id` (`--publish comet-events`).
    pub(crate) kind: EnvelopeKind,
    pub(crate) generator: u64,
    pub(crate) sent_us: u64,
    pub(crate) payload: &'a [u8],
}

impl Stamp<'_> {
    /// Appends `msg`'s envelope.
    pub(crate) fn envelope(&self, msg: Msg, out: &mut Vec<u8>) {
        let header = Header {
            id: msg.id,
            generator: self.generator,
            seq: msg.seq,
            sent_us: self.sent_us,
        };
        match self.kind {
            EnvelopeKind::Message => encode_envelope(&header, self.payload, out),
            EnvelopeKind::Event => encode_event(&header, self.payload, out),
        }
    }
}

/// What a server said of one request it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Messages that reached no subscriber, when the server says.
    pub(crate) dropped: Option<u64>,
    /// Messages it refused (comet-server's `rejected`).
    pub(crate) rejected: u64,
    /// For events: how far the accepted ones reached, when the server says.
    pub(crate) fanout: Option<Fanout>,
}

/// What comet-server said an event batch reached (`PublishBatchAnswer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fanout {
    /// Connection deliveries queued: what the subscribers should receive.
    pub(crate) connections: u64,
    /// Events whose publisher had no friend online.
    pub(crate) unheard: u64,
}

/// Where and how messages go.
#[derive(Debug, Clone)]
pub(crate) enum Publisher {
    Http(HttpPublisher),
    Nats {
        url: String,
        subject: Template,
        token: Option<String>,
    },
    Redis {
        addr: SocketAddr,
        channel: Template,
        password: Option<String>,
    },
    /// `--target -`: comet batch lines on standard output.
    Stdout,
}

/// One connection of a sender.
#[derive(Debug)]
pub(crate) enum Lane {
    Http(Conn),
    Nats(async_nats::Client),
    Redis(RedisConn),
    Stdout,
}

impl Publisher {
    /// The publisher `--target` and `args` describe, or why there is none.
    pub(crate) fn new(
        target: &str,
        args: &PublishArgs,
        token: Option<&str>,
    ) -> Result<(Self, Kind), String> {
        let by_scheme = if target.starts_with("nats://") {
            Kind::Nats
        } else if target.starts_with("redis://") {
            Kind::Redis
        } else {
            Kind::Comet
        };
        let kind = args.publish.unwrap_or(by_scheme);
        if target == "-" {
            if kind != Kind::Comet {
                return Err(format!(
                    "--target - writes comet batch lines; it does not take --publish {kind}"
                ));
            }
        } else {
            let scheme = match kind {
                Kind::Nats => "nats://",
                Kind::Redis => "redis://",
                _ => "http://",
            };
            if !target.starts_with(scheme) {
                return Err(format!(
                    "--publish {kind} needs a {scheme} --target, not {target:?}"
                ));
            }
        }
        let channel_text = args.channel.as_deref().unwrap_or(kind.default_channel());
        let channel =
            Template::parse(channel_text, Allow::Id).map_err(|e| format!("--channel: {e}"))?;
        if kind.is_comet() && args.channel.is_some() {
            return Err(format!(
                "--publish {kind} addresses comet-server's ids (subscribers, or publishers for comet-events); --channel is for the other kinds"
            ));
        }
        if kind != Kind::Http && (args.method != "POST" || args.body != "{body}") {
            return Err("--method and --body shape --publish http requests only".into());
        }
        if kind != Kind::Mercure && args.jwt_key.is_some() {
            return Err(
                "--jwt-key signs Mercure publisher tokens: use it with --publish mercure".into(),
            );
        }
        let publisher = match kind {
            _ if target == "-" => Publisher::Stdout,
            Kind::Nats => Publisher::Nats {
                url: target.to_owned(),
                subject: channel,
                token: token.map(str::to_owned),
            },
            Kind::Redis => {
                let authority = target["redis://".len()..].trim_end_matches('/');
                let with_port = if authority.contains(':') {
                    authority.to_owned()
                } else {
                    format!("{authority}:6379")
                };
                let addr = with_port
                    .to_socket_addrs()
                    .map_err(|e| format!("{target:?}: cannot resolve {with_port}: {e}"))?
                    .find(SocketAddr::is_ipv4)
                    .ok_or_else(|| format!("{target:?}: no IPv4 address"))?;
                Publisher::Redis {
                    addr,
                    channel,
                    password: token.map(str::to_owned),
                }
            }
            _ => Publisher::Http(http_publisher(kind, target, args, token, channel)?),
        };
        Ok((publisher, kind))
    }

    /// Opens one lane.
    pub(crate) async fn connect(&self) -> Result<Lane, Failure> {
        match self {
            Publisher::Http(p) => Ok(Lane::Http(Conn::connect(p.target.addr).await?)),
            Publisher::Nats { url, token, .. } => {
                let mut options = async_nats::ConnectOptions::new();
                if let Some(token) = token {
                    options = options.token(token.clone());
                }
                let client = options.connect(url.as_str()).await.map_err(|e| {
                    let class = match e.kind() {
                        async_nats::ConnectErrorKind::Io => FailureClass::Refused,
                        async_nats::ConnectErrorKind::TimedOut => FailureClass::Timeout,
                        _ => FailureClass::Io,
                    };
                    Failure::new(class, e.to_string())
                })?;
                Ok(Lane::Nats(client))
            }
            Publisher::Redis { addr, password, .. } => Ok(Lane::Redis(
                RedisConn::connect(*addr, password.as_deref()).await?,
            )),
            Publisher::Stdout => Ok(Lane::Stdout),
        }
    }

    /// True when `lane` was closed by its peer while idle (checked before
    /// reuse, so an idle timeout costs a reconnect, not a failed attempt).
    pub(crate) fn is_stale(lane: &Lane) -> bool {
        match lane {
            Lane::Http(conn) => conn.is_stale(),
            _ => false,
        }
    }

    /// Sends `jobs` on `lane`, one request each (pipelined on HTTP when
    /// there are several), stamped `stamp`, and pushes one result per job
    /// in order. Returns whether the lane can carry the next round.
    pub(crate) async fn exchange(
        &self,
        lane: &mut Lane,
        jobs: &[&[Msg]],
        stamp: &Stamp<'_>,
        scratch: &mut Scratch,
        results: &mut Vec<Result<Reply, Failure>>,
    ) -> bool {
        let mut out = Vec::new();
        match (self, lane) {
            (Publisher::Http(p), Lane::Http(conn)) => {
                for msgs in jobs {
                    p.write_request(&mut out, msgs, stamp, scratch);
                }
                let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
                let outcome = conn
                    .exchange(&out, jobs.len(), p.method(), &mut answers)
                    .await;
                let reusable = outcome.is_ok() && answers.last().is_some_and(|a| a.reusable);
                for (msgs, answer) in jobs.iter().zip(&answers) {
                    results.push(p.read_answer(answer, msgs.len() as u64));
                }
                // Requests not answered: the connection's failure, or its
                // close after an answer that said so.
                let unanswered = outcome.err().unwrap_or_else(|| {
                    Failure::new(
                        FailureClass::Closed,
                        "the server closed the connection before answering every pipelined request",
                    )
                });
                while results.len() < jobs.len() {
                    results.push(Err(unanswered.clone()));
                }
                reusable
            }
            (Publisher::Nats { subject, .. }, Lane::Nats(client)) => {
                let mut ok = true;
                for msgs in jobs {
                    let result = nats_publish(client, subject, msgs, stamp).await;
                    ok &= result.is_ok();
                    results.push(result);
                }
                ok
            }
            (Publisher::Redis { channel, .. }, Lane::Redis(conn)) => {
                let mut ok = true;
                for msgs in jobs {
                    out.clear();
                    let mut envelope = Vec::new();
                    for &msg in *msgs {
                        envelope.clear();
                        stamp.envelope(msg, &mut envelope);
                        resp::push_publish(
                            &mut out,
                            channel.render_id(msg.id).as_bytes(),
                            &envelope,
                        );
                    }
                    let result = conn.publish(&out, msgs.len()).await.map(|p| Reply {
                        dropped: Some(p.unheard),
                        ..Reply::default()
                    });
                    // An error reply leaves the connection in step; an I/O
                    // error does not.
                    ok &= result
                        .as_ref()
                        .map_or_else(|f| f.class == FailureClass::ApiError, |_| true);
                    results.push(result);
                }
                ok
            }
            (Publisher::Stdout, Lane::Stdout) => {
                for msgs in jobs {
                    out.clear();
                    for &msg in *msgs {
                        push_batch_line(&mut out, msg.id, |o| stamp.envelope(msg, o)).expect(
                            "an envelope around a payload of letters and digits holds no newline",
                        );
                    }
                    // A blocking write: tell tokio, so the other tasks move on.
                    let written = tokio::task::block_in_place(|| {
                        let mut stdout = std::io::stdout().lock();
                        stdout.write_all(&out)?;
                        stdout.flush()
                    });
                    results.push(written.map(|()| Reply::default()).map_err(Failure::from));
                }
                results.iter().all(Result::is_ok)
            }
            _ => unreachable!("a publisher opens only its own lanes"),
        }
    }
}

/// Publishes `msgs` and flushes them to the server. NATS core publishes
/// are not acknowledged: "sent" is "written to the server's socket".
async fn nats_publish(
    client: &async_nats::Client,
    subject: &Template,
    msgs: &[Msg],
    stamp: &Stamp<'_>,
) -> Result<Reply, Failure> {
    let io = |e: &dyn fmt::Display| Failure::new(FailureClass::Io, e.to_string());
    for &msg in msgs {
        let mut envelope = Vec::new();
        stamp.envelope(msg, &mut envelope);
        client
            .publish(subject.render_id(msg.id), envelope.into())
            .await
            .map_err(|e| io(&e))?;
    }
    client.flush().await.map_err(|e| io(&e))?;
    Ok(Reply::default())
}

/// The HTTP publisher of `kind`.
fn http_publisher(
    kind: Kind,
    url: &str,
    args: &PublishArgs,
    token: Option<&str>,
    channel: Template,
) -> Result<HttpPublisher, String> {
    let target = Target::parse(url)?;
    let mut fields = Vec::new();
    let api = match kind {
        Kind::Comet | Kind::CometEach | Kind::CometEvents => {
            if let Some(token) = token {
                fields.push(("Authorization".to_owned(), format!("Bearer {token}")));
            }
            match kind {
                Kind::Comet => HttpApi::CometBatch,
                Kind::CometEach => HttpApi::CometEach,
                _ => HttpApi::CometEvents,
            }
        }
        Kind::Nchan => HttpApi::Nchan { channel },
        Kind::Pushpin => HttpApi::Pushpin {
            channel,
            format: args.pushpin_format,
        },
        Kind::Icomet => HttpApi::Icomet { channel },
        Kind::Centrifugo => {
            if let Some(key) = token {
                fields.push(("X-API-Key".to_owned(), key.to_owned()));
            }
            HttpApi::Centrifugo { channel }
        }
        Kind::Mercure => {
            let jwt = match (&args.jwt_key, token) {
                (Some(key), None) => jwt::mercure_publisher_jwt(key.as_bytes()),
                (None, Some(token)) => token.to_owned(),
                (Some(_), Some(_)) => return Err("give --jwt-key or --token for Mercure, not both".into()),
                (None, None) => return Err("a Mercure hub needs a publisher JWT: give --jwt-key KEY (the hub's publisher key) or --token JWT".into()),
            };
            fields.push(("Authorization".to_owned(), format!("Bearer {jwt}")));
            HttpApi::Mercure { topic: channel }
        }
        Kind::Http => {
            let path = Template::parse(&target.path, Allow::IdAndBody)
                .map_err(|e| format!("--target: {e}"))?;
            if !path.is_url_safe() {
                return Err(
                    "--target: a URL can hold the message only as {body_urlencoded}".into(),
                );
            }
            if args.channel.is_some() {
                return Err("--publish http takes the channel in its --target template ({id}); --channel is for the named kinds".into());
            }
            let method = &args.method;
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "--method {method:?}: expected an upper-case method such as POST or PUT"
                ));
            }
            let body = Template::parse(&args.body, Allow::IdAndBody)
                .map_err(|e| format!("--body: {e}"))?;
            HttpApi::Custom {
                method: method.clone(),
                path,
                body,
            }
        }
        Kind::Nats | Kind::Redis => unreachable!("not an HTTP kind"),
    };
    if kind != Kind::Http && target.path.contains(['{', '}']) {
        return Err(format!("--target {url:?}: templates in the URL are for --publish http; --channel names the channel"));
    }
    for h in &args.headers {
        fields.push((h.name.clone(), h.value.clone()));
    }
    Ok(HttpPublisher {
        target,
        api,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(target: &str, extra: &[&str]) -> Result<(Publisher, Kind), String> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: PublishArgs,
            #[arg(long)]
            token: Option<String>,
        }
        let mut argv = vec!["t"];
        argv.extend_from_slice(extra);
        let cli = <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| e.to_string())?;
        Publisher::new(target, &cli.args, cli.token.as_deref())
    }

    #[test]
    fn kinds_come_from_the_flag_or_the_scheme() {
        let kind = |t, extra: &[&str]| publisher(t, extra).map(|(_, k)| k);
        assert_eq!(kind("http://127.0.0.1:1", &[]), Ok(Kind::Comet));
        assert_eq!(kind("nats://127.0.0.1:4222", &[]), Ok(Kind::Nats));
        assert_eq!(kind("redis://127.0.0.1", &[]), Ok(Kind::Redis));
        assert_eq!(
            kind("http://127.0.0.1:1", &["--publish", "nchan"]),
            Ok(Kind::Nchan)
        );
        for name in [
            "comet",
            "comet-each",
            "comet-events",
            "nchan",
            "pushpin",
            "icomet",
            "centrifugo",
            "http",
        ] {
            let k: Kind = name.parse().unwrap();
            assert_eq!(k.to_string(), name);
        }
        assert!("kafka".parse::<Kind>().unwrap_err().contains("comet-each"));
    }

    #[test]
    fn refuses_what_a_kind_cannot_use() {
        let err = |t, extra: &[&str]| publisher(t, extra).unwrap_err();
        assert!(err("http://127.0.0.1:1", &["--publish", "nats"]).contains("nats://"));
        assert!(err("nats://127.0.0.1:1", &["--publish", "nchan"]).contains("http://"));
        assert!(err("nats://127.0.0.1:1", &["--publish", "redis"]).contains("redis://"));
        assert!(err("-", &["--publish", "nchan"]).contains("comet batch lines"));
        assert!(err("http://127.0.0.1:1", &["--publish", "mercure"]).contains("--jwt-key"));
        assert!(err("http://127.0.0.1:1", &["--jwt-key", "k"]).contains("--publish mercure"));
        assert!(err("http://127.0.0.1:1", &["--method", "PUT"]).contains("--publish http"));
        assert!(err("http://127.0.0.1:1/pub/{id}", &["--publish", "nchan"]).contains("--channel"));
        assert!(
            err("http://127.0.0.1:1/{body}", &["--publish", "http"]).contains("{body_urlencoded}")
        );
        assert!(err(
            "http://127.0.0.1:1",
            &["--publish", "http", "--method", "p ut"]
        )
        .contains("upper-case"));
        assert!(err(
            "http://127.0.0.1:1",
            &["--publish", "nchan", "--channel", "{user}"]
        )
        .contains("{user}"));
        assert!(err("http://127.0.0.1:1", &["--channel", "x{id}"]).contains("comet-server's ids"));
    }

    #[test]
    fn credentials_go_where_each_api_wants_them() {
        let fields = |extra: &[&str]| match publisher("http://127.0.0.1:1", extra).unwrap().0 {
            Publisher::Http(p) => p.fields,
            _ => unreachable!(),
        };
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            fields(&["--token", "t"]),
            [pair("Authorization", "Bearer t")]
        );
        assert_eq!(
            fields(&[
                "--publish",
                "centrifugo",
                "--token",
                "k",
                "--header",
                "X-A: 1"
            ]),
            [pair("X-API-Key", "k"), pair("X-A", "1")]
        );
        let mercure = fields(&["--publish", "mercure", "--jwt-key", "secret"]);
        assert_eq!(mercure[0].0, "Authorization");
        assert_eq!(
            mercure[0].1,
            format!("Bearer {}", jwt::mercure_publisher_jwt(b"secret"))
        );
    }
}
