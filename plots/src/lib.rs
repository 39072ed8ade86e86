//! Draws memory-over-time, per-connection and flood charts as PNG, and markdown tables, from c1m CSVs
//!
//! Not built yet: issue #6.

use clap::Parser;

/// Draws memory-over-time, per-connection and flood charts as PNG, and markdown tables, from c1m CSVs
#[derive(Debug, Parser)]
#[command(name = "plots", version)]
pub struct Args {}

/// Runs the tool; until issue #6 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("plots is not implemented yet (issue #6)")
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
