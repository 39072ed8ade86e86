//! The `experiment` binary: parses the command line and hands it to
//! [`c1m_experiments::run`]; everything else lives in the library.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `experiment compare PRESET ...` has its own command line; anything
    // else is one run.
    let mut argv = std::env::args_os();
    let result = if std::env::args_os().nth(1).is_some_and(|a| a == "compare") {
        let program = argv.next();
        argv.next();
        let args = c1m_experiments::CompareArgs::parse_from(program.into_iter().chain(argv));
        c1m_experiments::compare(args)
    } else {
        c1m_experiments::run(c1m_experiments::Args::parse())
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("experiment: {err:#}");
            ExitCode::from(2)
        }
    }
}
