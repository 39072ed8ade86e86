//! The table of limits: for each, where it lives, how the value a plan
//! needs is computed, and one line of why it matters. [`check`] runs the
//! table against a [`Probe`] and returns one [`Row`] per limit that applies
//! to the plan's role; `apply` and `print` act on the rows' [`Fix`].
//!
//! The figures behind "needed" come from `c1m_common::capacity` (ports,
//! descriptors per process, memory per connection), the same arithmetic
//! `floodtest` refuses an impossible run with.

use crate::plan::{loopback_sources, Plan};
use crate::probe::{join, page_size, Probe};
use crate::report::{bytes, count};
use anyhow::Result;
use c1m_common::capacity::{
    conns_per_process, fds_per_process, procs_needed, AddressPlan, BindMode,
    KERNEL_BYTES_PER_SOCKET,
};
use c1m_common::parse::PortRange;
use serde::Serialize;

/// The listen backlog `comet-server` asks for (its `--backlog` default);
/// `net.core.somaxconn` silently cuts any larger request down to itself.
pub const SERVER_BACKLOG: u64 = 4096;

/// The widest sensible ephemeral range: every unprivileged port.
const WIDEST_PORTS: PortRange = PortRange {
    first: 1024,
    last: 65535,
};

/// Above this share of MemAvailable the estimate leaves too little for page
/// cache and for messages queued in socket buffers.
const MEMORY_WARN_PERCENT: u64 = 80;

/// How a limit stands against the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    /// The run goes on but slower or closer to the edge.
    Warn,
    /// The run stops at this limit.
    Fail,
}

/// What can be done about a row; in JSON `"none"`, `{"set": [..]}`,
/// `{"suggest": [..]}` or `{"manual": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fix {
    /// Nothing to do.
    None,
    /// `apply` writes these values to the sysctl named by the row.
    Set(Vec<u64>),
    /// A lower value would help, but `apply` only raises limits: `print`
    /// shows it commented out for a person to decide.
    Suggest(Vec<u64>),
    /// Not a sysctl: what a person does instead.
    Manual(String),
}

/// One limit, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The sysctl name, or a label such as `RLIMIT_NOFILE (hard)`.
    pub name: String,
    pub current: String,
    pub needed: String,
    pub status: Status,
    pub why: String,
    pub fix: Fix,
}

impl Row {
    fn new(name: &str, current: String, needed: String, status: Status, why: String) -> Self {
        Self {
            name: name.to_owned(),
            current,
            needed,
            status,
            why,
            fix: Fix::None,
        }
    }

    fn fix(mut self, fix: Fix) -> Self {
        self.fix = fix;
        self
    }

    /// Attaches `fix` unless the row is already OK.
    fn fix_unless_ok(self, fix: Fix) -> Self {
        if self.status == Status::Ok {
            self
        } else {
            self.fix(fix)
        }
    }

    /// A row for a value this kernel does not expose where expected.
    fn unreadable(name: &str, probe: &Probe) -> Self {
        Self::new(
            name,
            "missing".into(),
            "-".into(),
            Status::Warn,
            format!("cannot read {}", probe.sysctl_path(name).display()),
        )
    }
}

/// What every limit's check gets.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub probe: &'a Probe,
    pub page_size: u64,
    /// Processes per role, `--procs auto` resolved against the hard limit.
    pub procs: u64,
}

impl Context<'_> {
    /// Descriptors each process needs.
    pub fn fds_per_process(&self) -> u64 {
        fds_per_process(self.plan.conns, self.procs)
    }

    /// `--procs auto` chose more than one process per role.
    fn auto_split(&self) -> bool {
        self.plan.procs.is_none() && self.procs > 1
    }
}

/// One entry of the table.
pub struct Limit {
    /// The sysctl or label the row carries.
    pub name: &'static str,
    /// Judges the limit; `None` when it does not apply (role, module absent).
    pub check: fn(&Context) -> Result<Option<Row>>,
}

/// Every limit, in the order a run meets them: descriptors, addresses,
/// connection queues, TCP memory, tracking, then memory overall.
pub const LIMITS: &[Limit] = &[
    Limit {
        name: "fs.file-max",
        check: file_max,
    },
    Limit {
        name: "fs.nr_open",
        check: nr_open,
    },
    Limit {
        name: "RLIMIT_NOFILE (hard)",
        check: nofile_hard,
    },
    Limit {
        name: "RLIMIT_NOFILE (soft)",
        check: nofile_soft,
    },
    Limit {
        name: "net.ipv4.ip_local_port_range",
        check: port_range,
    },
    Limit {
        name: "net.ipv4.tcp_tw_reuse",
        check: tw_reuse,
    },
    Limit {
        name: "net.core.somaxconn",
        check: somaxconn,
    },
    Limit {
        name: "net.ipv4.tcp_max_syn_backlog",
        check: syn_backlog,
    },
    Limit {
        name: "net.core.netdev_max_backlog",
        check: netdev_backlog,
    },
    Limit {
        name: "net.ipv4.tcp_mem",
        check: tcp_mem,
    },
    Limit {
        name: "net.ipv4.tcp_rmem",
        check: tcp_rmem,
    },
    Limit {
        name: "net.ipv4.tcp_wmem",
        check: tcp_wmem,
    },
    Limit {
        name: "net.netfilter.nf_conntrack_max",
        check: conntrack_max,
    },
    Limit {
        name: "memory",
        check: memory,
    },
];

/// Judges every limit that applies to `plan` on the tree `probe` reads.
pub fn check(plan: &Plan, probe: &Probe) -> Result<Vec<Row>> {
    let hard = probe.nofile()?.map(|(_, hard)| hard);
    let cx = Context {
        plan,
        probe,
        page_size: page_size(),
        procs: plan.procs_under(hard),
    };
    let mut rows = Vec::new();
    for limit in LIMITS {
        if let Some(row) = (limit.check)(&cx)? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The worst status among `rows`.
pub fn worst(rows: &[Row]) -> Status {
    rows.iter().map(|r| r.status).max().unwrap_or(Status::Ok)
}

fn at_least(current: u64, needed: u64) -> Status {
    if current >= needed {
        Status::Ok
    } else {
        Status::Fail
    }
}

fn file_max(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "fs.file-max";
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    // fs.file-nr: allocated, free, max. What is open now stays open.
    let open_now = cx.probe.int("fs.file-nr")?.unwrap_or(0);
    let sockets = cx.plan.sockets();
    let needed = sockets + open_now;
    let status = at_least(current, needed);
    let mut why = format!(
        "every socket is an open file system-wide: {} sockets + {} open now",
        count(sockets),
        count(open_now)
    );
    if status == Status::Fail {
        why += "; past it socket() and accept() fail with ENFILE";
    }
    let row = Row::new(NAME, count(current), count(needed), status, why);
    Ok(Some(row.fix_unless_ok(Fix::Set(vec![needed]))))
}

fn nr_open(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "fs.nr_open";
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let per_process = cx.fds_per_process();
    let status = at_least(current, per_process);
    let mut why = format!(
        "no process's RLIMIT_NOFILE may exceed it; {} process(es) per role need {} descriptors each",
        cx.procs,
        count(per_process)
    );
    if status == Status::Fail {
        why += &format!(
            "; raise it or split over --procs {}",
            procs_needed(cx.plan.conns, current)
        );
    }
    let row = Row::new(NAME, count(current), count(per_process), status, why);
    Ok(Some(row.fix_unless_ok(Fix::Set(vec![per_process]))))
}

fn nofile_hard(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "RLIMIT_NOFILE (hard)";
    let Some((_, hard)) = cx.probe.nofile()? else {
        return Ok(Some(missing_limits(NAME)));
    };
    let per_process = cx.fds_per_process();
    if hard >= per_process {
        let each = count(cx.plan.conns.div_ceil(cx.procs));
        if cx.auto_split() {
            // floodtest --procs auto splits the client the same way; the
            // server side needs as many processes sharing the port.
            let why = format!(
                "--procs auto: {} processes per role of {each} connections each, since the hard limit holds {} per process; floodtest --procs auto does this, the server needs {} processes on one port (SO_REUSEPORT)",
                cx.procs,
                count(conns_per_process(hard)),
                cx.procs
            );
            let fix = format!(
                "run {} server processes with --reuse-port, or raise the hard limit to {} (LimitNOFILE= / limits.conf) for one process per role",
                cx.procs,
                fds_per_process(cx.plan.conns, 1)
            );
            return Ok(Some(
                Row::new(NAME, limit(hard), count(per_process), Status::Warn, why)
                    .fix(Fix::Manual(fix)),
            ));
        }
        let why = format!(
            "descriptors a process started from here may open: {} process(es) per role x {each} connections each",
            cx.procs
        );
        return Ok(Some(Row::new(
            NAME,
            limit(hard),
            count(per_process),
            Status::Ok,
            why,
        )));
    }
    let procs = procs_needed(cx.plan.conns, hard);
    let holds = count(conns_per_process(hard));
    let (why, fix) = if cx.probe.cap_sys_resource()? {
        (
            format!(
                "holds {holds} connections per process; this process has CAP_SYS_RESOURCE: `ulimit -Hn {per_process}` before starting, or --procs {procs}"
            ),
            format!("run `ulimit -Hn {per_process} && ulimit -n {per_process}` in the shell that starts the tools, or use --procs {procs}"),
        )
    } else {
        (
            format!(
                "holds {holds} connections per process and cannot be raised without CAP_SYS_RESOURCE: use --procs {procs} per role"
            ),
            format!(
                "use --procs {procs} per role; or, as root, raise it for the tools' session: LimitNOFILE={per_process} in a systemd unit, or `* hard nofile {per_process}` in /etc/security/limits.conf and log in again"
            ),
        )
    };
    Ok(Some(
        Row::new(NAME, limit(hard), count(per_process), Status::Fail, why).fix(Fix::Manual(fix)),
    ))
}

fn nofile_soft(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "RLIMIT_NOFILE (soft)";
    let Some((soft, hard)) = cx.probe.nofile()? else {
        return Ok(Some(missing_limits(NAME)));
    };
    let per_process = cx.fds_per_process();
    if soft >= per_process || soft >= hard {
        let why = if soft >= per_process {
            "what a process started from here may open before raising it"
        } else {
            "at the hard limit, which is what binds (row above)"
        };
        let row = Row::new(
            NAME,
            limit(soft),
            count(per_process),
            Status::Ok,
            why.into(),
        );
        return Ok(Some(row));
    }
    let target = per_process.min(hard);
    let why = format!(
        "c1m tools raise it to the hard limit at start-up; any other server started from here needs `ulimit -n {target}` first"
    );
    Ok(Some(
        Row::new(NAME, limit(soft), count(per_process), Status::Warn, why).fix(Fix::Manual(
            format!(
            "run `ulimit -n {target}` before starting a server that does not raise its own limit"
        ),
        )),
    ))
}

fn missing_limits(name: &str) -> Row {
    Row::new(
        name,
        "missing".into(),
        "-".into(),
        Status::Warn,
        "cannot read proc/self/limits".into(),
    )
}

fn limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        count(value)
    }
}

fn port_range(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.ipv4.ip_local_port_range";
    if !cx.plan.role.has_client() {
        return Ok(None);
    }
    let Some([first, last]) = cx.probe.array::<2>(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let range = PortRange {
        first: u16::try_from(first).unwrap_or(u16::MAX),
        last: u16::try_from(last).unwrap_or(u16::MAX),
    };
    let current = format!("{first} {last}");
    let conns = cx.plan.conns;
    let addresses = cx.plan.addresses(range);
    let capacity = addresses.capacity();
    let plan = cx.plan;
    let dims = |ports: u32| match plan.bind_mode {
        BindMode::Kernel => format!(
            "{} ports x {} destination(s)",
            count(u64::from(ports)),
            plan.destinations
        ),
        _ => format!(
            "{} source IP(s) x {} ports x {} destination(s)",
            plan.source_ips.len(),
            count(u64::from(ports)),
            plan.destinations
        ),
    };

    if plan.bind_mode == BindMode::Explicit {
        let ports = plan.local_ports.len();
        let why = format!(
            "explicit bind walks --local-ports {}, not this range: {} = {}",
            plan.local_ports,
            dims(ports),
            count(capacity)
        );
        if capacity >= conns {
            return Ok(Some(Row::new(NAME, current, "-".into(), Status::Ok, why)));
        }
        let ips = addresses.source_ips_needed(conns);
        let fix = format!(
            "use --source-ips {} ({ips} addresses)",
            loopback_sources(ips)
        );
        return Ok(Some(
            Row::new(
                NAME,
                current,
                format!("{ips} source IPs"),
                Status::Fail,
                format!("{why}; {fix}"),
            )
            .fix(Fix::Manual(fix)),
        ));
    }

    // Ports each (source IP, destination) pair must offer.
    let per_pair = match plan.bind_mode {
        BindMode::Kernel => plan.destinations,
        _ => plan.source_ips.len() * plan.destinations,
    };
    let ports_needed = conns.div_ceil(per_pair.max(1));
    let needed = format!("{} ports", count(ports_needed));
    let why = format!("{} = {} connections", dims(range.len()), count(capacity));
    if capacity >= conns {
        return Ok(Some(Row::new(NAME, current, needed, Status::Ok, why)));
    }
    if ports_needed <= u64::from(WIDEST_PORTS.len()) {
        let target = vec![
            first.min(u64::from(WIDEST_PORTS.first)),
            u64::from(WIDEST_PORTS.last),
        ];
        let why = format!(
            "{why}, short of {}: widen it to {}",
            count(conns),
            join(&target, "-")
        );
        return Ok(Some(
            Row::new(NAME, current, needed, Status::Fail, why).fix(Fix::Set(target)),
        ));
    }
    // No range is wide enough: the fix is more source addresses.
    let widest = AddressPlan {
        bind_mode: BindMode::NoPort,
        ephemeral_ports: WIDEST_PORTS,
        ..addresses
    };
    let ips_widest = widest.source_ips_needed(conns);
    let ips_here = AddressPlan {
        bind_mode: BindMode::NoPort,
        ..addresses
    }
    .source_ips_needed(conns);
    let mode = if plan.bind_mode == BindMode::Kernel {
        "--bind-mode noport "
    } else {
        ""
    };
    let fix = format!(
        "use {mode}--source-ips {} ({ips_here} addresses), or widen the range to 1024-65535 and use {ips_widest} addresses",
        loopback_sources(ips_here)
    );
    let why = format!("{why}, short of {}: {fix}", count(conns));
    Ok(Some(
        Row::new(NAME, current, needed, Status::Fail, why).fix(Fix::Manual(fix)),
    ))
}

fn tw_reuse(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.ipv4.tcp_tw_reuse";
    if !cx.plan.role.has_client() {
        return Ok(None);
    }
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let loopback = cx.plan.source_ips.all_loopback();
    let base = "lets connect() take a port whose old connection is in TIME_WAIT (60 s, fixed: tcp_fin_timeout does not shorten it); matters when the client reconnects";
    let (status, why) = match current {
        1 => (Status::Ok, base.to_owned()),
        2 if loopback => (
            Status::Ok,
            format!("{base}; 2 = loopback only, and the sources are loopback"),
        ),
        2 => (
            Status::Warn,
            format!("{base}; 2 = loopback only, but the sources are not loopback"),
        ),
        _ => (
            Status::Warn,
            format!("{base}; off: a reconnect storm runs out of ports"),
        ),
    };
    let needed = if loopback { "1 or 2" } else { "1" };
    let row = Row::new(NAME, current.to_string(), needed.into(), status, why);
    Ok(Some(row.fix_unless_ok(Fix::Set(vec![1]))))
}

fn somaxconn(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.core.somaxconn";
    if !cx.plan.role.has_server() {
        return Ok(None);
    }
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let mut why = format!(
        "caps every listen() backlog; comet-server asks for {}",
        count(SERVER_BACKLOG)
    );
    let status = if current >= SERVER_BACKLOG {
        Status::Ok
    } else {
        why += &format!(
            " and gets {}: a burst of connects overflows the accept queue and SYNs are retried after 1 s, 3 s, ...",
            count(current)
        );
        Status::Warn
    };
    let row = Row::new(NAME, count(current), count(SERVER_BACKLOG), status, why);
    Ok(Some(row.fix_unless_ok(Fix::Set(vec![SERVER_BACKLOG]))))
}

fn syn_backlog(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.ipv4.tcp_max_syn_backlog";
    if !cx.plan.role.has_server() {
        return Ok(None);
    }
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let cookies = cx.probe.int("net.ipv4.tcp_syncookies")?.unwrap_or(0);
    let needed = format!("{} if syncookies=0", count(SERVER_BACKLOG));
    if cookies != 0 {
        let why = format!(
            "half-open connections; consulted only when tcp_syncookies=0, and it is {cookies}: an overflowing SYN queue answers with cookies instead of dropping"
        );
        return Ok(Some(Row::new(
            NAME,
            count(current),
            needed,
            Status::Ok,
            why,
        )));
    }
    let why = "half-open connections with tcp_syncookies=0: past 3/4 of it new SYNs are dropped and retried after 1 s".to_owned();
    if current >= SERVER_BACKLOG {
        return Ok(Some(Row::new(
            NAME,
            count(current),
            needed,
            Status::Ok,
            why,
        )));
    }
    Ok(Some(
        Row::new(NAME, count(current), needed, Status::Warn, why)
            .fix(Fix::Set(vec![SERVER_BACKLOG])),
    ))
}

fn netdev_backlog(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.core.netdev_max_backlog";
    // The kernel's default: loopback queues each sent packet here and the
    // sending thread drains the queue as it leaves the send path, so a
    // burst overflows it only on a real NIC.
    const NEEDED: u64 = 1000;
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let why = "per-CPU queue of received packets, loopback included; drops show in the 2nd column of /proc/net/softnet_stat; the seeds raised it to 2,500 for NIC bursts";
    if current >= NEEDED {
        return Ok(Some(Row::new(
            NAME,
            count(current),
            count(NEEDED),
            Status::Ok,
            why.into(),
        )));
    }
    Ok(Some(
        Row::new(
            NAME,
            count(current),
            count(NEEDED),
            Status::Warn,
            why.into(),
        )
        .fix(Fix::Set(vec![NEEDED])),
    ))
}

fn tcp_mem(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.ipv4.tcp_mem";
    let Some([low, pressure, max]) = cx.probe.array::<3>(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    let ps = cx.page_size;
    // A socket holding one unread message charges a whole page: the
    // accounting quantum. An idle socket with empty queues charges none.
    let sockets = cx.plan.sockets();
    let needed = sockets;
    let mem_total = cx.probe.meminfo()?.map(|m| m.total);
    let current = format!("{low} {pressure} {max}");
    let mut why = format!(
        "pages ({ps} B) of socket buffers for all TCP; one unread message per socket = {} pages ({}); max is {}",
        count(needed),
        bytes(needed * ps),
        bytes(max * ps)
    );
    let status = if max < needed {
        why +=
            ": past it the kernel drops segments ('TCP: out of memory -- consider tuning tcp_mem')";
        Status::Fail
    } else if pressure < needed {
        why += &format!(
            "; past pressure ({}) the kernel shrinks buffers and slows",
            bytes(pressure * ps)
        );
        Status::Warn
    } else if mem_total.is_some_and(|t| max * ps > t) {
        why += ": more than physical memory, so buffers can exhaust RAM before TCP backs off";
        Status::Warn
    } else {
        Status::Ok
    };
    let row = Row::new(
        NAME,
        current,
        format!("{} pages at max", count(needed)),
        status,
        why,
    );
    if status == Status::Ok || max * ps > mem_total.unwrap_or(u64::MAX) {
        return Ok(Some(row));
    }
    // Pressure at the need, max half again above it, never past 3/4 of
    // RAM (the memory row fails first if the need itself is beyond that).
    let ram_cap = mem_total.map_or(u64::MAX, |t| t / ps * 3 / 4);
    let new_pressure = pressure.max(needed);
    let new_max = max
        .max(new_pressure)
        .max((needed + needed / 2).min(ram_cap));
    Ok(Some(row.fix(Fix::Set(vec![
        low.min(new_pressure),
        new_pressure,
        new_max,
    ]))))
}

fn tcp_rmem(cx: &Context) -> Result<Option<Row>> {
    buffer_default(cx, "net.ipv4.tcp_rmem", "receive")
}

fn tcp_wmem(cx: &Context) -> Result<Option<Row>> {
    buffer_default(cx, "net.ipv4.tcp_wmem", "send")
}

/// tcp_rmem/tcp_wmem: the default buffer each socket may fill, times the
/// sockets, against half of available memory (send and receive buffers can
/// fill at once, so each kind gets half). Lowering it trades bulk
/// throughput for a bound on memory, a person's call: `apply` never lowers it.
fn buffer_default(cx: &Context, name: &str, kind: &str) -> Result<Option<Row>> {
    let Some([min, default, max]) = cx.probe.array::<3>(name)? else {
        return Ok(Some(Row::unreadable(name, cx.probe)));
    };
    let Some(mem) = cx.probe.meminfo()? else {
        return Ok(Some(missing_meminfo(name)));
    };
    let sockets = cx.plan.sockets().max(1);
    let budget = mem.available / 2;
    let ceiling = default * sockets;
    let fits = (budget / sockets).max(min);
    let current = format!("{min} {default} {max}");
    let needed = format!("default <= {} B", count(fits));
    let mut why = format!(
        "the {kind} buffer each socket may fill before the window closes: {} sockets x {} = {} vs {} (half of available; send and receive buffers fill together)",
        count(sockets),
        bytes(default),
        bytes(ceiling),
        bytes(budget)
    );
    if ceiling <= budget {
        return Ok(Some(Row::new(name, current, needed, Status::Ok, why)));
    }
    why += "; tcp_mem max is what stops it (drops, not OOM) if readers fall behind";
    Ok(Some(
        Row::new(name, current, needed, Status::Warn, why).fix(Fix::Suggest(vec![min, fits, max])),
    ))
}

fn conntrack_max(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.netfilter.nf_conntrack_max";
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(None);
    };
    let tracked = cx
        .probe
        .int("net.netfilter.nf_conntrack_count")?
        .unwrap_or(0);
    // One entry per connection, both ends of a loopback one included.
    let needed = cx.plan.conns + tracked;
    if current >= needed {
        let why = format!(
            "conntrack is loaded: one entry per tracked connection ({} tracked now)",
            count(tracked)
        );
        return Ok(Some(Row::new(
            NAME,
            count(current),
            count(needed),
            Status::Ok,
            why,
        )));
    }
    let (status, why) = if tracked > 0 {
        (
            Status::Fail,
            format!(
                "conntrack tracks connections here ({} now): past the max new ones are dropped ('nf_conntrack: table full, dropping packet')",
                count(tracked)
            ),
        )
    } else {
        (
            Status::Warn,
            "conntrack is loaded but tracks nothing now; if a firewall rule (state, NAT) starts tracking, new connections are dropped past the max".to_owned(),
        )
    };
    Ok(Some(
        Row::new(NAME, count(current), count(needed), status, why).fix(Fix::Set(vec![needed])),
    ))
}

fn memory(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "memory";
    let Some(mem) = cx.probe.meminfo()? else {
        return Ok(Some(missing_meminfo(NAME)));
    };
    let est = cx.plan.memory();
    let total = est.total();
    let mut user = Vec::new();
    if est.server_user_bytes > 0 {
        user.push(format!("{} B server", count(cx.plan.server_user_bytes)));
    }
    if est.client_user_bytes > 0 {
        user.push(format!("{} B client", count(cx.plan.client_user_bytes)));
    }
    let mut why = format!(
        "kernel {} B x {} sockets ({}) + user {} per connection ({}) = {} B per connection at rest",
        count(KERNEL_BYTES_PER_SOCKET),
        count(est.sockets),
        bytes(est.kernel_bytes),
        user.join(" + "),
        bytes(est.server_user_bytes + est.client_user_bytes),
        count(est.per_connection())
    );
    let status = if total > mem.available {
        why += "; the OOM killer ends the run";
        Status::Fail
    } else if total > mem.available / 100 * MEMORY_WARN_PERCENT {
        why += &format!(
            "; over {MEMORY_WARN_PERCENT}% of it leaves little for page cache and queued messages"
        );
        Status::Warn
    } else {
        Status::Ok
    };
    let row = Row::new(
        NAME,
        format!("{} available", bytes(mem.available)),
        bytes(total),
        status,
        why,
    );
    Ok(Some(row.fix_unless_ok(Fix::Manual(
            "plan fewer connections, lower --user-bytes-per-conn by trimming per-connection state, or add memory".into(),
        ))))
}

fn missing_meminfo(name: &str) -> Row {
    Row::new(
        name,
        "missing".into(),
        "-".into(),
        Status::Warn,
        "cannot read proc/meminfo".into(),
    )
}
