//! `--preset`: each push server's subscriber side as one flag. A preset is
//! a row of [`PRESETS`]: the request path (with `{id}`, and any connect
//! command the server wants in the URL) and the stream mode; `--url` (or
//! `--target HOST:PORT`) gives the server's base. An explicit flag wins
//! over the preset: a `--url` with a path keeps its path, a `--mode` its
//! mode. Resolved once, when the run is planned; nothing per connection.

use crate::args::Args;
use crate::stream::Mode;
use crate::target::Target;
use std::str::FromStr;

/// One server's subscriber request.
#[derive(Debug, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    /// The request target, `{id}` replaced by each connection's id.
    pub path: &'static str,
    pub mode: Mode,
}

/// The servers, their subscribe endpoints and how their streams frame
/// messages. The first is the default.
pub(crate) const PRESETS: &[Preset] = &[
    // comet-server's chunked stream (the seeds' /test/{id}).
    Preset {
        name: "comet",
        path: "/test/{id}",
        mode: Mode::Chunked,
    },
    // nchan's EventSource subscriber: floodtest asks for
    // text/event-stream, nchan answers with a comment and one event per
    // message.
    Preset {
        name: "nchan",
        path: "/sub/{id}",
        mode: Mode::Sse,
    },
    // Pushpin proxies to the origin's stream path; the origin's
    // `Grip-Hold: stream` makes it a chunked stream of what is published.
    Preset {
        name: "pushpin",
        path: "/stream/{id}",
        mode: Mode::Chunked,
    },
    // icomet's streaming endpoint: one JSON object per message. Read as
    // raw: the envelopes are found in any framing.
    Preset {
        name: "icomet",
        path: "/stream?cname={id}",
        mode: Mode::Raw,
    },
    // Centrifugo's unidirectional SSE: the connect command rides in
    // `cf_connect` (URL-encoded JSON), naming channel {id} in `subs`; the
    // server subscribes the connection only to what its token or connect
    // proxy grants.
    Preset {
        name: "centrifugo",
        path: "/connection/uni_sse?cf_connect=%7B%22subs%22%3A%7B%22{id}%22%3A%7B%7D%7D%7D",
        mode: Mode::Sse,
    },
    // Mercure's hub: an SSE subscription to topic {id} (anonymous, or with
    // `--header 'Authorization: Bearer JWT'`).
    Preset {
        name: "mercure",
        path: "/.well-known/mercure?topic={id}",
        mode: Mode::Sse,
    },
];

impl FromStr for &'static Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PRESETS.iter().find(|p| p.name == s).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            format!(
                "{s:?}: no such preset; expected one of {}",
                names.join(", ")
            )
        })
    }
}

/// The default `--url` without `--preset` or `--target`.
const DEFAULT_URL: &str = "http://127.0.0.1:8000";

/// What every connection asks for: `args`' `--url` or `--target` with the
/// preset's path unless the URL has its own, and `--mode` or the preset's.
pub(crate) fn resolve(args: &Args) -> Result<(Target, Mode), String> {
    let preset = args.preset.unwrap_or(&PRESETS[0]);
    let (mut target, path_given) = match (&args.url, &args.target) {
        // Without a preset a URL is the whole request, `/` included.
        (Some(url), _) => (url.clone(), url.path != "/" || args.preset.is_none()),
        (None, Some(addr)) => (format!("http://{addr}").parse::<Target>()?, false),
        (None, None) => (DEFAULT_URL.parse::<Target>()?, false),
    };
    if !path_given {
        target.path = preset.path.to_owned();
    }
    Ok((target, args.mode.unwrap_or(preset.mode)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolved(line: &str) -> (String, Mode) {
        let argv = std::iter::once("floodtest").chain(line.split_whitespace());
        let (t, mode) = resolve(&Args::try_parse_from(argv).unwrap()).unwrap();
        (format!("{}:{}{}", t.host, t.ports, t.path), mode)
    }

    #[test]
    fn a_preset_fills_path_and_mode_under_the_base() {
        assert_eq!(
            resolved("--preset nchan --url http://127.0.0.1:8080"),
            ("127.0.0.1:8080/sub/{id}".into(), Mode::Sse)
        );
        assert_eq!(
            resolved("--preset pushpin --target 127.0.0.1:7999"),
            ("127.0.0.1:7999/stream/{id}".into(), Mode::Chunked)
        );
        assert_eq!(
            resolved("--preset mercure --target localhost:3000"),
            (
                "localhost:3000/.well-known/mercure?topic={id}".into(),
                Mode::Sse
            )
        );
        assert_eq!(
            resolved("--preset icomet --target 127.0.0.1:8100-8199").0,
            "127.0.0.1:8100-8199/stream?cname={id}"
        );
        // Without a preset: comet-server's stream, as before presets.
        assert_eq!(
            resolved(""),
            ("127.0.0.1:8000/test/{id}".into(), Mode::Chunked)
        );
        assert_eq!(resolved("--target 127.0.0.1:9").0, "127.0.0.1:9/test/{id}");
    }

    #[test]
    fn an_explicit_flag_wins_over_the_preset() {
        assert_eq!(
            resolved("--preset nchan --url http://127.0.0.1:8080/live/{id} --mode chunked"),
            ("127.0.0.1:8080/live/{id}".into(), Mode::Chunked)
        );
        // With a preset a URL without a path is the base; otherwise a URL
        // is the whole request.
        assert_eq!(
            resolved("--preset comet --url http://127.0.0.1:8000").0,
            "127.0.0.1:8000/test/{id}"
        );
        assert_eq!(resolved("--url http://127.0.0.1:8000").0, "127.0.0.1:8000/");
        assert_eq!(
            resolved("--url http://127.0.0.1:8000/x").0,
            "127.0.0.1:8000/x"
        );
    }

    #[test]
    fn the_centrifugo_connect_command_names_the_channel() {
        let p: &Preset = "centrifugo".parse().unwrap();
        let (query, command) = p.path.split_once("cf_connect=").unwrap();
        assert_eq!(query, "/connection/uni_sse?");
        let command = command
            .replace("%7B", "{")
            .replace("%7D", "}")
            .replace("%22", "\"");
        assert_eq!(command.replace("%3A", ":"), r#"{"subs":{"{id}":{}}}"#);
    }

    #[test]
    fn an_unknown_preset_lists_the_known_ones() {
        let err = "nginx".parse::<&Preset>().unwrap_err();
        assert_eq!(
            err,
            r#""nginx": no such preset; expected one of comet, nchan, pushpin, icomet, centrifugo, mercure"#
        );
    }
}
