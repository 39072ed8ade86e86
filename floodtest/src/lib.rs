//! Flood client: holds many long-lived HTTP streams past 64K per source IP and measures delivery latency and loss
//!
//! Not built yet: issue #4.

use clap::Parser;

/// Flood client: holds many long-lived HTTP streams past 64K per source IP and measures delivery latency and loss
#[derive(Debug, Parser)]
#[command(name = "floodtest", version)]
pub struct Args {}

/// Runs the tool; until issue #4 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("floodtest is not implemented yet (issue #4)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }
}
