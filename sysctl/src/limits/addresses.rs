//! Addresses: the 4-tuples the client can open (`ip_local_port_range` via
//! `common::capacity`), reusing TIME_WAIT ports, and conntrack's table of
//! connections when the module is loaded.

use super::{Context, Fix, PlanFix, Row, Status};
use crate::plan::loopback_sources;
use crate::probe::join;
use crate::report::count;
use anyhow::Result;
use c1m_common::PortRange;
use c1m_common::{AddressPlan, BindMode};

/// The widest sensible ephemeral range: every unprivileged port.
const WIDEST_PORTS: PortRange = PortRange {
    first: 1024,
    last: 65535,
};

pub(super) fn port_range(cx: &Context) -> Result<Option<Row>> {
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
        let sources = loopback_sources(ips);
        let fix = format!("use --source-ips {sources} ({ips} addresses)");
        let change = PlanFix::Addresses {
            bind_mode: BindMode::Explicit,
            source_ips: sources.parse()?,
        };
        return Ok(Some(
            Row::new(
                NAME,
                current,
                format!("{ips} source IPs"),
                Status::Fail,
                format!("{why}; {fix}"),
            )
            .plan_fix(fix, change),
        ));
    }

    // Ports each (source IP, destination) pair must offer.
    let per_pair = match plan.bind_mode {
        BindMode::Kernel => plan.destinations,
        _ => plan.source_ips.len().saturating_mul(plan.destinations),
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
    let sources = loopback_sources(ips_here);
    let widen = if range == WIDEST_PORTS {
        String::new()
    } else {
        format!(", or widen the range to 1024-65535 and use {ips_widest} addresses")
    };
    let fix = format!("use {mode}--source-ips {sources} ({ips_here} addresses){widen}");
    let why = format!("{why}, short of {}: {fix}", count(conns));
    let change = PlanFix::Addresses {
        bind_mode: BindMode::NoPort,
        source_ips: sources.parse()?,
    };
    Ok(Some(
        Row::new(NAME, current, needed, Status::Fail, why).plan_fix(fix, change),
    ))
}

pub(super) fn tw_reuse(cx: &Context) -> Result<Option<Row>> {
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

pub(super) fn conntrack_max(cx: &Context) -> Result<Option<Row>> {
    const NAME: &str = "net.netfilter.nf_conntrack_max";
    let Some(current) = cx.probe.int(NAME)? else {
        return Ok(None);
    };
    let tracked = cx
        .probe
        .int("net.netfilter.nf_conntrack_count")?
        .unwrap_or(0);
    // One entry per connection, both ends of a loopback one included.
    let needed = cx.plan.conns.saturating_add(tracked);
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
