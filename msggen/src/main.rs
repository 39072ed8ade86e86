use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_msggen::Args::parse();
    match c1m_msggen::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("msggen: {err:#}");
            ExitCode::from(2)
        }
    }
}
