//! The `c1m-sysctl` binary: parses the command line and hands it to
//! [`c1m_sysctl::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

// Unlike the other tools, this one does not raise its soft RLIMIT_NOFILE at
// start-up: it holds no connections, and the soft limit it inherits is what
// it reports (what a third-party server started from the same shell gets).
fn main() -> ExitCode {
    let args = c1m_sysctl::Args::parse();
    match c1m_sysctl::run(args) {
        Ok(code) => code,
        // `c1m-sysctl check | head`: the reader left, nothing to report.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("c1m-sysctl: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
