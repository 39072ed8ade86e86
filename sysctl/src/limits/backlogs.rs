//! Queues connections wait in: the accept queue (`somaxconn`), the SYN
//! queue (`tcp_max_syn_backlog`) and the per-CPU receive queue
//! (`netdev_max_backlog`). Short queues slow a ramp-up; they rarely stop it.

use super::{Context, Fix, Row, Status};
use crate::report::count;
use anyhow::Result;

/// The listen backlog `comet-server` asks for (its `--backlog` default);
/// `net.core.somaxconn` silently cuts any larger request down to itself.
pub(crate) const SERVER_BACKLOG: u64 = 4096;

pub(super) fn somaxconn(cx: &Context) -> Result<Option<Row>> {
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

pub(super) fn syn_backlog(cx: &Context) -> Result<Option<Row>> {
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

pub(super) fn netdev_backlog(cx: &Context) -> Result<Option<Row>> {
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
