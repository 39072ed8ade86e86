//! What to run next: the one or two command lines a user copies after
//! reading the table. When a limit needs a sysctl, `c1m-sysctl apply` with
//! the plan (as root); when it needs the run changed (more source
//! addresses, more processes), that change is made in every command that
//! follows; and when nothing is left in the way, the flood itself with the
//! addressing the check judged, so the run is the one that was checked.
//!
//! A failing limit that only a person can lift (not enough memory, a hard
//! RLIMIT_NOFILE with CAP_SYS_RESOURCE missing and no more processes
//! allowed) is named instead, with the check to run after.

use crate::limits::{Fix, PlanFix, Row, Status};
use crate::plan::Plan;
use c1m_common::BindMode;

/// The command lines to run next, in order, each with its lead-in.
pub(crate) fn commands(plan: &Plan, rows: &[Row], procs: u64) -> Vec<String> {
    let mut fixed = plan.clone();
    for change in rows
        .iter()
        .filter(|r| r.status != Status::Ok)
        .filter_map(|r| r.plan_fix.as_ref())
    {
        match change {
            PlanFix::Addresses {
                bind_mode,
                source_ips,
            } => {
                fixed.bind_mode = *bind_mode;
                fixed.source_ips = source_ips.clone();
            }
            PlanFix::Procs(n) => fixed.procs = Some(*n),
        }
    }
    let mut lines = Vec::new();
    if rows.iter().any(|r| matches!(r.fix, Fix::Set(_))) {
        lines.push(format!(
            "next (as root): c1m-sysctl apply {}",
            fixed.describe()
        ));
    }
    let by_hand: Vec<&str> = rows
        .iter()
        .filter(|r| r.status == Status::Fail && r.plan_fix.is_none())
        .filter(|r| !matches!(r.fix, Fix::Set(_)))
        .map(|r| r.name.as_str())
        .collect();
    let lead = if lines.is_empty() { "next" } else { "then" };
    if !by_hand.is_empty() {
        lines.push(format!(
            "{lead}: lift {} by hand (above), and check again: c1m-sysctl check {}",
            by_hand.join(", "),
            fixed.describe()
        ));
    } else if plan.role.has_client() {
        lines.push(format!("{lead}: {}", flood(&fixed, procs)));
    } else {
        lines.push(format!("{lead}: {}", serve(procs)));
    }
    lines
}

/// The floodtest command line of `plan` (the defaults left out), with
/// where the server processes come in when the plan needs several.
fn flood(plan: &Plan, procs: u64) -> String {
    let ports = match plan.destinations {
        1 => "8000".to_owned(),
        n => format!("8000-{}", 8000 + n.min(57_535) - 1),
    };
    let mut line = format!(
        "floodtest --url 'http://127.0.0.1:{ports}/test/{{id}}' --conns {}",
        plan.conns
    );
    if let Some(n) = plan.procs {
        line += &format!(" --procs {n}");
    }
    match plan.bind_mode {
        BindMode::Kernel => {}
        BindMode::NoPort => {
            line += &format!(" --bind-mode noport --source-ips {}", plan.source_ips)
        }
        BindMode::Explicit => {
            line += &format!(" --bind-mode explicit --source-ips {}", plan.source_ips);
            if plan.local_ports.first != 1024 || plan.local_ports.last != 65535 {
                line += &format!(" --local-ports {}", plan.local_ports);
            }
        }
    }
    if plan.role.has_server() {
        line += &format!(" (against {})", serve(procs));
    }
    line
}

/// The server side of the plan in words: how many processes share the
/// port.
fn serve(procs: u64) -> String {
    match procs {
        1 => "comet-server --listen 127.0.0.1:8000".to_owned(),
        n => format!("comet-server --workers {n}: a front and {n} workers on one port"),
    }
}
