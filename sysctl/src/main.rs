use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_sysctl::Args::parse();
    match c1m_sysctl::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("c1m-sysctl: {err:#}");
            ExitCode::from(2)
        }
    }
}
