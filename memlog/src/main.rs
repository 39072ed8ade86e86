//! The `memlog` binary: parses the command line and hands it to
//! [`c1m_memlog::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_memlog::Args::parse();
    // memlog holds few descriptors, but the /proc fallback and netlink
    // socket must not fail on a low soft limit inherited from a shell.
    if let Err(err) = c1m_common::raise_nofile_to_hard() {
        eprintln!("memlog: warning: cannot raise RLIMIT_NOFILE: {err}");
    }
    match c1m_memlog::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("memlog: {err:#}");
            ExitCode::from(2)
        }
    }
}
