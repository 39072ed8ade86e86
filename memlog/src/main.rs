use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_memlog::Args::parse();
    match c1m_memlog::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("memlog: {err:#}");
            ExitCode::from(2)
        }
    }
}
