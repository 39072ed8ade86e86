use clap::Parser;
use std::process::ExitCode;

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
