//! `--target`: which push server a run measures. `comet` is comet-server,
//! started as before; `nchan` and `pushpin` are started from their Debian
//! binaries with the config `c1m_pushsrv` generates (the one the tests
//! use) on free loopback ports; `external` is a server the user runs,
//! named by its subscribe URL, publish API and processes.
//!
//! Each target decides three things: what floodtest is given (its
//! `--preset`), what msggen is given (its `--publish`), and which
//! processes memlog follows. What cannot run is refused here, before
//! anything starts, with the fix.

use anyhow::bail;
use c1m_pushsrv::Server;
use std::net::SocketAddr;

/// The server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// comet-server, started by the runner.
    Comet,
    /// nginx with nchan, started by the runner.
    Nchan,
    /// Pushpin (with its zurl and a GRIP origin), started by the runner.
    Pushpin,
    /// A server you run: --subscribe-url, --publish-url, --server-pid or --pgrep.
    External,
}

impl TargetKind {
    /// The name on the command line and in folder names.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Comet => "comet",
            TargetKind::Nchan => "nchan",
            TargetKind::Pushpin => "pushpin",
            TargetKind::External => "external",
        }
    }

    /// The Debian server it starts, if any.
    pub(crate) fn packaged(self) -> Option<Server> {
        match self {
            TargetKind::Nchan => Some(Server::Nchan),
            TargetKind::Pushpin => Some(Server::Pushpin),
            TargetKind::Comet | TargetKind::External => None,
        }
    }

    /// floodtest's `--preset` and msggen's `--publish` for a server the
    /// runner started (the same names in both tools).
    pub(crate) fn preset(self) -> &'static str {
        self.name()
    }
}

/// `--target external`: where the user's server is.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct External {
    /// With --target external: the subscriber URL floodtest opens
    /// (`http://HOST:PORT/sub/{id}`, or a base with --subscribe-preset)
    #[arg(long, value_name = "URL")]
    pub subscribe_url: Option<String>,
    /// With --target external: floodtest's --preset for it (nchan,
    /// pushpin, icomet, centrifugo, mercure: path and stream mode)
    #[arg(long, value_name = "SERVER")]
    pub subscribe_preset: Option<String>,
    /// With --target external: msggen's --publish API (comet, nchan,
    /// pushpin, icomet, centrifugo, mercure, nats, redis, http)
    #[arg(long, value_name = "KIND")]
    pub publish: Option<String>,
    /// With --target external: the publish API's URL (msggen's --target)
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// With --target external: the server's process ids for memlog
    /// (repeatable)
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,
    /// With --target external: memlog follows every process whose command
    /// line contains PATTERN
    #[arg(long, value_name = "PATTERN")]
    pub pgrep: Option<String>,
}

impl External {
    fn given(&self) -> Option<&'static str> {
        [
            (self.subscribe_url.is_some(), "--subscribe-url"),
            (self.subscribe_preset.is_some(), "--subscribe-preset"),
            (self.publish.is_some(), "--publish"),
            (self.publish_url.is_some(), "--publish-url"),
            (!self.server_pid.is_empty(), "--server-pid"),
            (self.pgrep.is_some(), "--pgrep"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// The port subscribers connect to (memlog counts connections on it).
    pub(crate) fn subscribe_port(&self) -> anyhow::Result<u16> {
        let url = self.subscribe_url.as_deref().unwrap_or_default();
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.split('/').next().unwrap_or(rest));
        let port = authority.and_then(|a| a.rsplit_once(':')).map(|(_, p)| p);
        match port.map(|p| p.split('-').next().unwrap_or(p).parse::<u16>()) {
            Some(Ok(port)) if port > 0 => Ok(port),
            _ => bail!(
                "--subscribe-url {url:?}: expected http://HOST:PORT/PATH (memlog counts the \
                 connections on PORT)"
            ),
        }
    }
}

/// Refuses, before anything starts, a target this machine or this command
/// line cannot run: a server not installed, `external` without what it
/// needs, flags that belong to another target.
pub(crate) fn check(
    kind: TargetKind,
    external: &External,
    sends_messages: bool,
    comet_flags: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(why) = kind.packaged().and_then(Server::missing) {
        bail!("--target {}: {why}", kind.name());
    }
    if kind != TargetKind::Comet {
        if let Some(flag) = comet_flags {
            bail!(
                "{flag} is comet-server's; --target {} runs one server as it is",
                kind.name()
            );
        }
    }
    if kind != TargetKind::External {
        if let Some(flag) = external.given() {
            bail!("{flag} is for --target external (a server you run); leave it out or add --target external");
        }
        return Ok(());
    }
    if external.subscribe_url.is_none() {
        bail!(
            "--target external needs --subscribe-url (the URL floodtest opens, e.g. \
             http://127.0.0.1:8080/sub/{{id}})"
        );
    }
    external.subscribe_port()?;
    if sends_messages && external.publish_url.is_none() {
        bail!(
            "--target external needs --publish-url (and --publish KIND unless it is comet-server's \
             API) for this preset's messages"
        );
    }
    if external.server_pid.is_empty() && external.pgrep.is_none() {
        bail!("--target external needs --server-pid PID or --pgrep PATTERN, so memlog can follow the server");
    }
    if let Some(pid) = external
        .server_pid
        .iter()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    {
        bail!("--server-pid {pid}: no such process");
    }
    Ok(())
}

/// floodtest's arguments that say where and what it subscribes to.
pub(crate) fn flood_args(
    kind: TargetKind,
    external: &External,
    subscribe: SocketAddr,
) -> Vec<String> {
    let mut args = Vec::new();
    if kind == TargetKind::External {
        args.extend([
            "--url".to_owned(),
            external.subscribe_url.clone().unwrap_or_default(),
        ]);
        if let Some(p) = &external.subscribe_preset {
            args.extend(["--preset".to_owned(), p.clone()]);
        }
    } else {
        args.extend(["--preset".to_owned(), kind.preset().to_owned()]);
        args.extend(["--target".to_owned(), subscribe.to_string()]);
    }
    args
}

/// msggen's arguments that say where and through which API it publishes.
pub(crate) fn msggen_args(
    kind: TargetKind,
    external: &External,
    publish: SocketAddr,
) -> Vec<String> {
    let mut args = vec!["--target".to_owned()];
    match kind {
        TargetKind::External => {
            args.push(external.publish_url.clone().unwrap_or_default());
            if let Some(p) = &external.publish {
                args.extend(["--publish".to_owned(), p.clone()]);
            }
        }
        _ => {
            args.push(format!("http://{publish}"));
            args.extend(["--publish".to_owned(), kind.preset().to_owned()]);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn external(line: &[&str]) -> External {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            e: External,
        }
        Cli::try_parse_from(std::iter::once("x").chain(line.iter().copied()))
            .unwrap()
            .e
    }

    #[test]
    fn external_without_what_it_needs_is_refused_with_the_flag() {
        let none = External::default();
        let err = check(TargetKind::External, &none, true, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--target external needs --subscribe-url"),
            "{err}"
        );
        let sub = external(&["--subscribe-url", "http://127.0.0.1:8080/sub/{id}"]);
        let err = check(TargetKind::External, &sub, true, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs --publish-url"), "{err}");
        let err = check(TargetKind::External, &sub, false, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--server-pid PID or --pgrep PATTERN"), "{err}");
        let mine = std::process::id().to_string();
        let ok = external(&[
            "--subscribe-url",
            "http://127.0.0.1:8080/sub/{id}",
            "--server-pid",
            &mine,
        ]);
        check(TargetKind::External, &ok, false, None).unwrap();
        assert_eq!(ok.subscribe_port().unwrap(), 8080);
        let bad = external(&["--subscribe-url", "127.0.0.1/sub", "--pgrep", "nginx"]);
        let err = check(TargetKind::External, &bad, false, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected http://HOST:PORT/PATH"), "{err}");
    }

    #[test]
    fn flags_of_another_target_are_refused() {
        let sub = external(&["--publish-url", "http://x:1"]);
        let err = check(TargetKind::Comet, &sub, true, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--publish-url is for --target external (a server you run); leave it out or add --target external"
        );
        let err = check(TargetKind::External, &sub, true, Some("--workers"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--workers is comet-server's"), "{err}");
    }

    #[test]
    fn each_tool_gets_the_servers_preset_and_publisher() {
        let addr: SocketAddr = "127.0.0.1:7999".parse().unwrap();
        let none = External::default();
        assert_eq!(
            flood_args(TargetKind::Nchan, &none, addr),
            ["--preset", "nchan", "--target", "127.0.0.1:7999"]
        );
        assert_eq!(
            msggen_args(TargetKind::Pushpin, &none, addr),
            ["--target", "http://127.0.0.1:7999", "--publish", "pushpin"]
        );
        let e = external(&[
            "--subscribe-url",
            "http://h:1",
            "--subscribe-preset",
            "mercure",
            "--publish",
            "mercure",
            "--publish-url",
            "http://h:1",
        ]);
        assert_eq!(
            flood_args(TargetKind::External, &e, addr),
            ["--url", "http://h:1", "--preset", "mercure"]
        );
        assert_eq!(
            msggen_args(TargetKind::External, &e, addr),
            ["--target", "http://h:1", "--publish", "mercure"]
        );
    }
}
