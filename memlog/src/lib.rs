//! Samples memory (RSS, PSS, kernel) and connection counts of server processes into CSV
//!
//! Not built yet: issue #6.

use clap::Parser;

/// Samples memory (RSS, PSS, kernel) and connection counts of server processes into CSV
#[derive(Debug, Parser)]
#[command(name = "memlog", version)]
pub struct Args {}

/// Runs the tool; until issue #6 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("memlog is not implemented yet (issue #6)")
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
