//! Reference comet server: chunked, SSE and long-poll subscribers, a sharded router and an admin API, lean at rest
//!
//! Not built yet: issue #3.

use clap::Parser;

/// Reference comet server: chunked, SSE and long-poll subscribers, a sharded router and an admin API, lean at rest
#[derive(Debug, Parser)]
#[command(name = "comet-server", version)]
pub struct Args {}

/// Runs the tool; until issue #3 lands it says so and fails.
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("comet-server is not implemented yet (issue #3)")
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
