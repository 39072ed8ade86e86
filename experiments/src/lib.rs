//! Runs a whole seed experiment (server, memlog, floodtest, msggen, plots) and writes its report
//!
//! Not built yet: issue #8.

use clap::Parser;

/// Runs a whole seed experiment (server, memlog, floodtest, msggen, plots) and writes its report
#[derive(Debug, Parser)]
#[command(name = "experiment", version)]
pub struct Args {}

/// Runs the tool; until issue #8 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("experiment is not implemented yet (issue #8)")
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
