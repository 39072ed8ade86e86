//! The seed experiments as data: one [`Preset`] per experiment, and the
//! [`Plan`] a preset becomes once `--scale`, `--rate` and `--duration` are
//! applied.
//!
//! A preset says what the seed did (connections, pacing, addressing,
//! heartbeat, message rate, hold) and what it measured ([`SeedFigures`]),
//! so the report can put this run's figures beside the seed's. A run whose
//! connections are more than one process's descriptors hold gets a group
//! of worker processes (`comet-server --workers N`, [`Plan::workers`]):
//! they share the port, and each id is served by its owner worker, so
//! messages to random ids (Part 3's 16,666 msg/s at 1M) reach every
//! connection wherever the kernel put it.

use crate::target::{External, TargetKind};
use std::time::Duration;

/// How the flood client chooses its source addresses and ports
/// (`floodtest --bind-mode`, `--source-ips`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// One source IP, kernel-chosen ephemeral ports: enough for one server
    /// process here (fewer than 28K connections).
    Kernel,
    /// `source_ips` addresses from 127.0.0.2 up, each binding its local
    /// ports itself (Part 3's patched client: 17 IPs x 64,500 ports).
    Explicit { source_ips: u8 },
}

impl Addressing {
    /// The arguments that select this addressing, the same for `floodtest`
    /// and `c1m-sysctl check`.
    pub fn client_args(self) -> Vec<String> {
        match self {
            Addressing::Kernel => vec!["--bind-mode".into(), "kernel".into()],
            Addressing::Explicit { source_ips } => vec![
                "--bind-mode".into(),
                "explicit".into(),
                "--source-ips".into(),
                format!("127.0.0.2-127.0.0.{}", 1 + u32::from(source_ips)),
            ],
        }
    }

    /// A short description for the report.
    pub fn describe(self) -> String {
        match self {
            Addressing::Kernel => "one source IP, kernel-chosen ports".into(),
            Addressing::Explicit { source_ips } => {
                format!("{source_ips} source IPs, explicit local ports")
            }
        }
    }
}

/// The client stops opening connections for a while every `every`
/// connections (icomet's benchmark paused every 100K to read the memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub every: u64,
    pub secs: u64,
}

/// What the seed write-up itself reported for this experiment, as printed
/// there; `None` where the seed gave no such figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeedFigures {
    /// Which write-up the figures come from.
    pub source: &'static str,
    pub peak_conns: Option<&'static str>,
    pub server_bytes_per_conn: Option<&'static str>,
    pub server_and_kernel_bytes_per_conn: Option<&'static str>,
    pub connect_rate: Option<&'static str>,
    pub message_rate: Option<&'static str>,
    /// What each connection received without messages (Part 1's
    /// heartbeat chunks).
    pub chunks: Option<&'static str>,
}

/// One seed experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    /// One line for the report title and the first line printed, with
    /// `{conns}`, `{msgs}` and `{pause}` standing for the plan's figures, so
    /// a scaled run's title says what it ran ([`Plan::about`]).
    pub about: &'static str,
    pub conns: u64,
    /// New connections per second while ramping up.
    pub connect_rate: u64,
    pub addressing: Addressing,
    /// The server writes a chunk to every connection this often (Part 1).
    pub heartbeat: Option<Duration>,
    /// Messages per second to random ids once the connections are open
    /// (0: no `msggen`).
    pub message_rate: u64,
    /// Friends' events per second while the messages run (Part 3's
    /// subscription manager: `msggen --publish comet-events` from random
    /// users to comet-server's `POST /publish`, over a graph of the run's
    /// users, 50 friends on average); 0: none.
    pub event_rate: u64,
    /// How long the load is held once every connection is open.
    pub hold: Duration,
    pub pause: Option<Pause>,
    pub seed: SeedFigures,
}

/// Part 3's figures: c10k is its message rate at one process's scale.
const PART3_SEED: SeedFigures = SeedFigures {
    source: "Part 3 (libevent C node, 1M connections)",
    peak_conns: Some("1,000,000"),
    server_bytes_per_conn: None,
    server_and_kernel_bytes_per_conn: Some("40 KB (incl. kernel)"),
    connect_rate: Some("100/s"),
    message_rate: Some("16,666 msg/s"),
    chunks: None,
};

/// Every preset, in the order of the seeds.
pub(crate) const PRESETS: &[Preset] = &[
    Preset {
        name: "part1",
        about: "Part 1: {conns} connections, a chunk every 10 s each, memory per connection",
        conns: 10_000,
        connect_rate: 1_000,
        addressing: Addressing::Kernel,
        heartbeat: Some(Duration::from_secs(10)),
        message_rate: 0,
        event_rate: 0,
        hold: Duration::from_secs(30),
        pause: None,
        seed: SeedFigures {
            source: "Part 1 (mochiweb, 2008)",
            peak_conns: Some("10,000"),
            server_bytes_per_conn: Some("45 KB"),
            server_and_kernel_bytes_per_conn: None,
            connect_rate: Some("10/s (one every 100 ms)"),
            message_rate: None,
            chunks: Some("a chunk every 10 s per connection"),
        },
    },
    Preset {
        name: "part2",
        about: "Part 2: {conns} connections, {msgs} msg/s to random ids, memory over time",
        conns: 10_000,
        connect_rate: 1_000,
        addressing: Addressing::Kernel,
        heartbeat: None,
        message_rate: 1_000,
        event_rate: 0,
        hold: Duration::from_secs(180),
        pause: None,
        seed: SeedFigures {
            source: "Part 2 (mochiweb + router, hibernate, 24 h)",
            peak_conns: Some("10,000"),
            server_bytes_per_conn: Some("8 KB (after hibernate)"),
            server_and_kernel_bytes_per_conn: None,
            connect_rate: None,
            message_rate: Some("1,000 msg/s"),
            chunks: None,
        },
    },
    Preset {
        name: "c10k",
        about: "C10K: ramp to {conns} connections, then {msgs} msg/s to random ids, delivery latency",
        conns: 10_000,
        connect_rate: 2_000,
        addressing: Addressing::Kernel,
        heartbeat: None,
        message_rate: 16_666,
        event_rate: 0,
        hold: Duration::from_secs(60),
        pause: None,
        seed: PART3_SEED,
    },
    Preset {
        name: "part3",
        about: "Part 3: {conns} connections over 17 source IPs with explicit ports, {msgs} msg/s",
        conns: 1_000_000,
        // Part 3 opened 100 a second (about three hours to 1M); here the
        // ramp to 1M is meant to take 100 s, and `--rate 100` replays the
        // seed's pace.
        connect_rate: 10_000,
        addressing: Addressing::Explicit { source_ips: 17 },
        heartbeat: None,
        message_rate: 16_666,
        // Every user is online, so each event reaches all its publisher's
        // friends (~50 on average): 33 events/s are ~1,650 deliveries/s, a
        // tenth of the messages'. At 1M this machine has no more to spare
        // (the messages alone had p99 1.7 s): at 1,666 events/s (83,000
        // deliveries/s) the workers fell behind, p99 reached 92 s and new
        // connections timed out (2 December).
        event_rate: 33,
        hold: Duration::from_secs(600),
        pause: None,
        seed: PART3_SEED,
    },
    Preset {
        name: "icomet",
        about: "icomet C1000K: ramp to {conns} connections pausing every {pause}, memory per connection",
        conns: 1_000_000,
        connect_rate: 5_000,
        addressing: Addressing::Explicit { source_ips: 17 },
        heartbeat: None,
        message_rate: 0,
        event_rate: 0,
        hold: Duration::from_secs(60),
        pause: Some(Pause {
            every: 100_000,
            secs: 10,
        }),
        seed: SeedFigures {
            source: "icomet C1000K (ideawu)",
            peak_conns: Some("1,000,000"),
            server_bytes_per_conn: Some("2.7 KB"),
            server_and_kernel_bytes_per_conn: None,
            connect_rate: None,
            message_rate: None,
            chunks: None,
        },
    },
];

/// The preset called `name`.
pub fn find_preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The preset names, for error messages.
pub(crate) fn names() -> String {
    names_of(|_| true)
}

/// The preset called `name`, and a refusal, with the fix, of an option
/// it cannot take: what `experiment` and `experiment compare` check before
/// anything starts.
pub(crate) fn find_for(name: &str, msg_rate: Option<u64>) -> anyhow::Result<&'static Preset> {
    let Some(preset) = find_preset(name) else {
        anyhow::bail!("unknown preset {name:?}: choose one of {}", names());
    };
    if msg_rate.is_some() && preset.message_rate == 0 {
        anyhow::bail!(
            "--msg-rate: {name} sends no messages; it applies to {}",
            names_of(|p| p.message_rate > 0)
        );
    }
    Ok(preset)
}

fn names_of(which: impl Fn(&Preset) -> bool) -> String {
    PRESETS
        .iter()
        .filter(|p| which(p))
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Changes to a preset given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overrides {
    /// Multiplies connections, rates and the pause step.
    pub scale: Option<f64>,
    /// New connections per second, after scaling.
    pub connect_rate: Option<u64>,
    /// Replaces the hold time.
    pub hold: Option<Duration>,
    /// Replaces the messages per second, whatever the scale (for a preset
    /// that sends messages; [`find_for`] refuses it for one that sends none).
    pub message_rate: Option<u64>,
}

/// What one run does: a preset with the command line's changes applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The preset run.
    pub preset: &'static Preset,
    /// Fraction of the preset's connections (`--scale`).
    pub scale: f64,
    /// Connections to hold: the preset's, scaled.
    pub conns: u64,
    /// Connections opened per second.
    pub connect_rate: u64,
    /// Messages per second msggen sends (0: none).
    pub message_rate: u64,
    /// msggen's `--tick` (`--msg-tick`); `None`: msggen's default.
    pub msg_tick: Option<Duration>,
    /// Friends' events per second (0: none): the preset's, scaled.
    pub event_rate: u64,
    /// How long the connections are held once open.
    pub hold: Duration,
    /// Pauses during the ramp, if the preset has them.
    pub pause: Option<Pause>,
    /// comet-server worker processes (`--workers`; 1: a plain server); 1
    /// from [`Plan::new`], set from [`Plan::workers_needed`].
    pub workers: u64,
    /// The NATS the server joins (`--broker`), if the user gave one.
    pub broker: Option<String>,
    /// The server measured (`--target`); comet from [`Plan::new`].
    pub target: TargetKind,
    /// Where an external server is (`--target external`).
    pub external: External,
    /// The floodtest agents that run the client side, if any (`--agents`).
    pub agents: Option<FloodAgents>,
}

/// `--agents` and `--agents-broker`: floodtest's side on other machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodAgents {
    /// How many agents, or their names (`floodtest --agents`).
    pub wanted: String,
    /// Where they and the controller meet (`floodtest --broker`).
    pub broker: String,
}

impl Plan {
    /// Applies `overrides` to `preset`. A scaled count never drops to zero
    /// unless the preset's was zero (no messages stays no messages).
    pub fn new(preset: &'static Preset, overrides: Overrides) -> Plan {
        let scale = overrides.scale.unwrap_or(1.0);
        let scaled = |n: u64| {
            if n == 0 {
                0
            } else {
                ((n as f64 * scale).round() as u64).max(1)
            }
        };
        Plan {
            preset,
            scale,
            conns: scaled(preset.conns),
            connect_rate: overrides
                .connect_rate
                .unwrap_or_else(|| scaled(preset.connect_rate)),
            message_rate: match preset.message_rate {
                0 => 0,
                _ => overrides
                    .message_rate
                    .unwrap_or_else(|| scaled(preset.message_rate)),
            },
            msg_tick: None,
            event_rate: scaled(preset.event_rate),
            hold: overrides.hold.unwrap_or(preset.hold),
            pause: preset.pause.map(|p| Pause {
                every: scaled(p.every),
                secs: p.secs,
            }),
            workers: 1,
            broker: None,
            target: TargetKind::Comet,
            external: External::default(),
            agents: None,
        }
    }

    /// Whether friends' events run: the preset has them, the server is
    /// comet-server (the only one with a friends graph), not joined to a
    /// broker (`--friends` is refused with `--broker`), and messages run.
    pub fn friends_events(&self) -> bool {
        self.event_rate > 0
            && self.message_rate > 0
            && self.target == TargetKind::Comet
            && self.broker.is_none()
    }

    /// Worker processes needed when each may hold `fd_limit` descriptors.
    /// Each is planned 5% under its limit: the kernel's SO_REUSEPORT hash
    /// spreads new connections unevenly, and a connection waits on the
    /// worker that accepted it until it is handed to its id's owner.
    pub fn workers_needed(&self, fd_limit: u64) -> u64 {
        let one = c1m_common::conns_per_process(fd_limit).max(1);
        if self.conns <= one {
            1
        } else {
            self.conns.div_ceil((one * 95 / 100).max(1))
        }
    }

    /// What this run does, in one line: the preset's description with the
    /// plan's own figures, and the scale when it is not the preset's.
    pub fn about(&self) -> String {
        let pause = self.pause.map_or(0, |p| p.every);
        let line = self
            .preset
            .about
            .replace("{conns}", &c1m_common::thousands(self.conns))
            .replace("{msgs}", &c1m_common::thousands(self.message_rate))
            .replace("{pause}", &c1m_common::thousands(pause));
        if self.scale == 1.0 {
            line
        } else {
            format!("{line} (scale {})", self.scale)
        }
    }

    /// How long opening every connection should take at the connect rate,
    /// pauses included.
    pub fn ramp(&self) -> Duration {
        let opening = self.conns as f64 / self.connect_rate.max(1) as f64;
        let pauses = self
            .pause
            .map(|p| (self.conns.saturating_sub(1) / p.every.max(1)) * p.secs)
            .unwrap_or(0);
        Duration::from_secs_f64(opening) + Duration::from_secs(pauses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, overrides: Overrides) -> Plan {
        Plan::new(find_preset(name).unwrap(), overrides)
    }

    #[test]
    fn presets_have_unique_names_and_sane_figures() {
        for (i, p) in PRESETS.iter().enumerate() {
            assert!(PRESETS[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert!(p.conns > 0 && p.connect_rate > 0);
            assert!(!p.seed.source.is_empty());
        }
        assert_eq!(names(), "part1, part2, c10k, part3, icomet");
        assert!(find_preset("c1m").is_none());
        let err = find_for("c1m", None).unwrap_err().to_string();
        assert!(err.contains("choose one of part1"), "{err}");
        let err = find_for("part1", Some(100)).unwrap_err().to_string();
        assert!(err.contains("applies to part2, c10k, part3"), "{err}");
        assert_eq!(find_for("c10k", Some(100)).unwrap().name, "c10k");
    }

    #[test]
    fn unscaled_plan_is_the_preset() {
        let p = plan("c10k", Overrides::default());
        assert_eq!(
            (p.conns, p.connect_rate, p.message_rate),
            (10_000, 2_000, 16_666)
        );
        assert_eq!(p.hold, Duration::from_secs(60));
        assert_eq!(p.workers_needed(20_000), 1);
        assert_eq!(p.ramp(), Duration::from_secs(5));
    }

    #[test]
    fn scale_multiplies_connections_and_rates() {
        let p = plan(
            "c10k",
            Overrides {
                scale: Some(0.1),
                ..Overrides::default()
            },
        );
        assert_eq!(
            (p.conns, p.connect_rate, p.message_rate),
            (1_000, 200, 1_667)
        );
        // Part 1 sends no messages: scaling keeps it at none.
        let p1 = plan(
            "part1",
            Overrides {
                scale: Some(0.001),
                ..Overrides::default()
            },
        );
        assert_eq!((p1.conns, p1.connect_rate, p1.message_rate), (10, 1, 0));
        // A tiny scale never drops a count to zero.
        let tiny = plan(
            "part2",
            Overrides {
                scale: Some(1e-9),
                ..Overrides::default()
            },
        );
        assert_eq!(
            (tiny.conns, tiny.connect_rate, tiny.message_rate),
            (1, 1, 1)
        );
    }

    #[test]
    fn overrides_replace_rate_and_hold() {
        let p = plan(
            "part2",
            Overrides {
                scale: Some(0.5),
                connect_rate: Some(250),
                hold: Some(Duration::from_secs(3)),
                message_rate: Some(40_000),
            },
        );
        assert_eq!(
            (p.conns, p.connect_rate, p.message_rate),
            (5_000, 250, 40_000)
        );
        assert_eq!(p.hold, Duration::from_secs(3));
        assert_eq!(p.ramp(), Duration::from_secs(20));
    }

    #[test]
    fn the_title_follows_the_scale() {
        let title = |name: &str, scale: f64| {
            plan(
                name,
                Overrides {
                    scale: Some(scale),
                    ..Overrides::default()
                },
            )
            .about()
        };
        assert_eq!(
            title("icomet", 1.0),
            "icomet C1000K: ramp to 1,000,000 connections pausing every 100,000, memory per connection"
        );
        // A 50,000 run no longer says "ramp to 1M".
        assert_eq!(
            title("icomet", 0.05),
            "icomet C1000K: ramp to 50,000 connections pausing every 5,000, memory per connection (scale 0.05)"
        );
        assert!(title("c10k", 0.1).starts_with("C10K: ramp to 1,000 connections, then 1,667 msg/s"));
        for p in PRESETS {
            let about = Plan::new(p, Overrides::default()).about();
            assert!(!about.contains('{'), "{about}");
        }
    }

    #[test]
    fn million_presets_need_many_servers_until_scaled_down() {
        let p3 = plan("part3", Overrides::default());
        // 19,936 connections per process under 20,000 descriptors.
        assert_eq!(p3.workers_needed(20_000), 53);
        assert_eq!(p3.workers_needed(1_100_000), 1);
        assert_eq!(
            Addressing::Explicit { source_ips: 17 }.client_args(),
            [
                "--bind-mode",
                "explicit",
                "--source-ips",
                "127.0.0.2-127.0.0.18"
            ]
        );
        let small = plan(
            "icomet",
            Overrides {
                scale: Some(0.01),
                ..Overrides::default()
            },
        );
        assert_eq!(small.conns, 10_000);
        assert_eq!(small.workers_needed(20_000), 1);
        assert_eq!(
            small.pause,
            Some(Pause {
                every: 1_000,
                secs: 10
            })
        );
        // 10,000 at 50/s is 200 s, plus 9 pauses of 10 s.
        assert_eq!(small.ramp(), Duration::from_secs(290));
    }
}
