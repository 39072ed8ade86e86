use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_experiments::Args::parse();
    match c1m_experiments::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("experiment: {err:#}");
            ExitCode::from(2)
        }
    }
}
