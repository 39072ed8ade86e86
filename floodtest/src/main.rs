//! The `floodtest` binary: parses the command line and hands it to
//! [`c1m_floodtest::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = c1m_floodtest::Args::parse();
    match c1m_floodtest::run(args, argv) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("floodtest: {err:#}");
            ExitCode::from(2)
        }
    }
}
