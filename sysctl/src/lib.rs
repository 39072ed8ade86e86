//! Checks, applies and prints the kernel and process limits a connection test needs
//!
//! Not built yet: issue #7.

use clap::Parser;

/// Checks, applies and prints the kernel and process limits a connection test needs
#[derive(Debug, Parser)]
#[command(name = "c1m-sysctl", version)]
pub struct Args {}

/// Runs the tool; until issue #7 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("c1m-sysctl is not implemented yet (issue #7)")
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
