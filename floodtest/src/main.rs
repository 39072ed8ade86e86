//! The `floodtest` binary: parses the command line and hands it to
//! [`c1m_floodtest::run`] (or, for `floodtest agent ...`, to
//! [`c1m_floodtest::run_agent`]); everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = if argv.first().map(String::as_str) == Some("agent") {
        let args = c1m_floodtest::AgentArgs::parse_from(std::env::args().skip(1));
        c1m_floodtest::run_agent(args)
    } else {
        let args = c1m_floodtest::Args::parse();
        c1m_floodtest::run(args, argv)
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("floodtest: {err:#}");
            ExitCode::from(2)
        }
    }
}
