//! The `plots` binary: parses the command line and hands it to
//! [`c1m_plots::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_plots::Args::parse();
    match c1m_plots::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("plots: {err:#}");
            ExitCode::from(2)
        }
    }
}
