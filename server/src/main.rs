//! The `comet-server` binary: parses the command line and hands it to
//! [`c1m_server::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = c1m_server::Args::parse();
    match c1m_server::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("comet-server: {err:#}");
            ExitCode::from(2)
        }
    }
}
