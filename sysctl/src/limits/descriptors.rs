//! Descriptors: the system-wide file table, the per-process ceiling
//! (`fs.nr_open`) and this process's RLIMIT_NOFILE, against the processes
//! per role the plan (or `--procs auto`) splits the connections over.

use super::{at_least, Context, Fix, PlanFix, Row, Status};
use crate::report::count;
use anyhow::Result;
use c1m_common::{conns_per_process, fds_per_process, procs_needed};

pub(super) fn file_max(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "fs.file-max";
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(Some(Row::unreadable(NAME, cx.probe)));
    };
    // fs.file-nr: allocated, free, max. What is open now stays open.
    let open_now = cx.probe.int("fs.file-nr")?.unwrap_or(0);
    let sockets = cx.plan.sockets();
    let needed = sockets.saturating_add(open_now);
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

pub(super) fn nr_open(cx: &Context) -> Result<Option<Row>> {
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

pub(super) fn nofile_hard(cx: &Context) -> Result<Option<Row>> {
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
                "--procs auto: {} processes per role of {each} connections each, since the hard limit holds {} per process; floodtest --procs auto does this, the server needs {} worker processes on one port (comet-server --workers)",
                cx.procs,
                count(conns_per_process(hard)),
                cx.procs
            );
            let fix = format!(
                "run comet-server --workers {} (a front and its workers on one port) and floodtest --procs auto, or raise the hard limit to {} (LimitNOFILE= / limits.conf) for one process per role",
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
        Row::new(NAME, limit(hard), count(per_process), Status::Fail, why)
            .plan_fix(fix, PlanFix::Procs(procs)),
    ))
}

pub(super) fn nofile_soft(cx: &Context) -> Result<Option<Row>> {
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
