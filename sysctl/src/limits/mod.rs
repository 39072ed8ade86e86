//! The table of limits: for each, where it lives, how the value a plan
//! needs is computed, and one line of why it matters. [`check`] runs the
//! table against a [`Probe`] and returns one [`Row`] per limit that applies
//! to the plan's role; `apply` and `print` act on the rows' [`Fix`].
//!
//! The figures behind "needed" come from `c1m_common::capacity` (ports,
//! descriptors per process, memory per connection), the same arithmetic
//! `floodtest` refuses an impossible run with.

mod addresses;
mod backlogs;
mod descriptors;
mod memory;

use crate::plan::Plan;
use crate::probe::Probe;
use addresses::{conntrack_max, port_range, tw_reuse};
use anyhow::Result;
use backlogs::{netdev_backlog, somaxconn, syn_backlog};
use c1m_common::{fds_per_process, BindMode, Ipv4List};
use descriptors::{file_max, nofile_hard, nofile_soft, nr_open};
use memory::{memory, tcp_mem, tcp_rmem, tcp_wmem};
use serde::Serialize;

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

/// A change to the run itself that lifts a limit, where no sysctl can:
/// what the next commands use instead of the plan as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanFix {
    /// The client's addressing: this bind mode and these source addresses
    /// (floodtest's and `check`'s `--bind-mode`, `--source-ips`).
    Addresses {
        bind_mode: BindMode,
        source_ips: Ipv4List,
    },
    /// This many processes per role (`--procs`).
    Procs(u64),
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
    /// The change to the run that lifts it, when that is the fix (the
    /// `manual` text says the same in words).
    #[serde(skip)]
    pub plan_fix: Option<PlanFix>,
}

impl Row {
    pub(crate) fn new(
        name: &str,
        current: String,
        needed: String,
        status: Status,
        why: String,
    ) -> Self {
        Self {
            name: name.to_owned(),
            current,
            needed,
            status,
            why,
            fix: Fix::None,
            plan_fix: None,
        }
    }

    fn fix(mut self, fix: Fix) -> Self {
        self.fix = fix;
        self
    }

    /// A manual fix that is a change to the run: `how` in words, `change`
    /// for the next commands.
    fn plan_fix(mut self, how: String, change: PlanFix) -> Self {
        self.fix = Fix::Manual(how);
        self.plan_fix = Some(change);
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
pub(crate) struct Context<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) probe: &'a Probe,
    pub(crate) page_size: u64,
    /// Processes per role, `--procs auto` resolved against the hard limit.
    pub(crate) procs: u64,
}

impl Context<'_> {
    /// Descriptors each process needs.
    pub(crate) fn fds_per_process(&self) -> u64 {
        fds_per_process(self.plan.conns, self.procs)
    }

    /// `--procs auto` chose more than one process per role.
    fn auto_split(&self) -> bool {
        self.plan.procs.is_none() && self.procs > 1
    }
}

/// One entry of the table.
pub(crate) struct Limit {
    /// The sysctl or label the row carries: a label for whoever reads the
    /// table (each row names itself).
    #[allow(dead_code)]
    pub(crate) name: &'static str,
    /// Judges the limit; `None` when it does not apply (role, module absent).
    pub(crate) check: fn(&Context) -> Result<Option<Row>>,
}

/// Every limit, in the order a run meets them: descriptors, addresses,
/// connection queues, TCP memory, tracking, then memory overall.
pub(crate) const LIMITS: &[Limit] = &[
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
pub(crate) fn check(plan: &Plan, probe: &Probe) -> Result<Vec<Row>> {
    let hard = probe.nofile()?.map(|(_, hard)| hard);
    let cx = Context {
        plan,
        probe,
        page_size: c1m_common::page_size(),
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
pub(crate) fn worst(rows: &[Row]) -> Status {
    rows.iter().map(|r| r.status).max().unwrap_or(Status::Ok)
}

fn at_least(current: u64, needed: u64) -> Status {
    if current >= needed {
        Status::Ok
    } else {
        Status::Fail
    }
}
