use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_floodtest::Args::parse();
    match c1m_floodtest::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("floodtest: {err:#}");
            ExitCode::from(2)
        }
    }
}
