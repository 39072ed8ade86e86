//! A worker of a group: the standalone server, started by the front with
//! hidden arguments, its admin API on the abstract Unix socket
//! `c1m-<front pid>-<index>.admin` (only the front uses it), stopped by the
//! front's SIGTERM, and by the kernel's when the front dies
//! (`PR_SET_PDEATHSIG`), so no worker outlives its group.

use std::os::linux::net::SocketAddrExt;
use std::process::ExitCode;

use anyhow::Context;
use c1m_common::{Repeat, StopSignals};

use super::supervise::WORKER_READY;
use crate::config::{socket_name, Args};

/// Runs worker `membership.index` until SIGTERM.
pub(crate) fn run_worker(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.to_config()?;
    let membership = config.membership.context("a worker needs --worker-index")?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
        .context("asking for SIGTERM when the front ends")?;
    // The front may have died before the request above took effect.
    if std::os::unix::process::parent_id() != membership.group {
        anyhow::bail!("the front (pid {}) is gone", membership.group);
    }
    c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let signals = StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Ignore)
        .context("installing SIGINT/SIGTERM handlers")?;
    let subscriber = crate::bind(args.listen, args.backlog, true)
        .with_context(|| format!("binding subscriber address {}", args.listen))?;
    let name = socket_name(membership.group, membership.index, "admin");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let admin = std::os::unix::net::UnixListener::bind_addr(&addr)
        .with_context(|| format!("binding the admin socket @{name}"))?;
    let server = crate::start_with(config, subscriber, crate::AdminSocket::Unix(admin))
        .context("starting the worker")?;
    println!("{WORKER_READY}{} ready", membership.index);
    signals.wait();
    server.shutdown().context("stopping")?;
    Ok(ExitCode::SUCCESS)
}
