//! Memory: TCP's buffer budget in pages (`tcp_mem`), the default buffer
//! each socket may fill (`tcp_rmem`/`tcp_wmem`), and the estimate of what the
//! connections cost at rest (`c1m_common::MemoryEstimate`) against
//! MemAvailable.

use super::{Context, Fix, Row, Status};
use crate::report::{bytes, count};
use anyhow::Result;
use c1m_common::KERNEL_BYTES_PER_SOCKET;

/// Above this share of MemAvailable the estimate leaves too little for page
/// cache and for messages queued in socket buffers.
const MEMORY_WARN_PERCENT: u64 = 80;

pub(super) fn tcp_mem(cx: &Context) -> Result<Option<Row>> {
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
        bytes(needed.saturating_mul(ps)),
        bytes(max.saturating_mul(ps))
    );
    let status = if max < needed {
        why +=
            ": past it the kernel drops segments ('TCP: out of memory -- consider tuning tcp_mem')";
        Status::Fail
    } else if pressure < needed {
        why += &format!(
            "; past pressure ({}) the kernel shrinks buffers and slows",
            bytes(pressure.saturating_mul(ps))
        );
        Status::Warn
    } else if mem_total.is_some_and(|t| max.saturating_mul(ps) > t) {
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
    if status == Status::Ok || max.saturating_mul(ps) > mem_total.unwrap_or(u64::MAX) {
        return Ok(Some(row));
    }
    // Pressure at the need, max half again above it, never past 3/4 of
    // RAM (the memory row fails first if the need itself is beyond that).
    let ram_cap = mem_total.map_or(u64::MAX, |t| t / ps * 3 / 4);
    let new_pressure = pressure.max(needed);
    let new_max = max
        .max(new_pressure)
        .max(needed.saturating_add(needed / 2).min(ram_cap));
    Ok(Some(row.fix(Fix::Set(vec![
        low.min(new_pressure),
        new_pressure,
        new_max,
    ]))))
}

pub(super) fn tcp_rmem(cx: &Context) -> Result<Option<Row>> {
    buffer_default(cx, "net.ipv4.tcp_rmem", "receive")
}

pub(super) fn tcp_wmem(cx: &Context) -> Result<Option<Row>> {
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
    let ceiling = default.saturating_mul(sockets);
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

pub(super) fn memory(cx: &Context) -> Result<Option<Row>> {
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
        bytes(est.server_user_bytes.saturating_add(est.client_user_bytes)),
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
