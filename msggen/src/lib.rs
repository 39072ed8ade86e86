//! Message generator: envelope-wrapped messages to random ids at a precise rate, and a friends graph
//!
//! Not built yet: issue #5.

use clap::Parser;

/// Message generator: envelope-wrapped messages to random ids at a precise rate, and a friends graph
#[derive(Debug, Parser)]
#[command(name = "msggen", version)]
pub struct Args {}

/// Runs the tool; until issue #5 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("msggen is not implemented yet (issue #5)")
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
