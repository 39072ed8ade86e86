//! Finding the sibling binaries the runner starts.
//!
//! `cargo build --release` puts every binary of the workspace in one
//! folder, so the runner looks beside its own executable unless `--bin-dir`
//! says otherwise. A missing binary is reported before anything starts,
//! with the command that builds it.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// A binary the runner starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Server,
    Floodtest,
    Msggen,
    Memlog,
    Plots,
    Sysctl,
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::Sysctl,
        Tool::Server,
        Tool::Memlog,
        Tool::Floodtest,
        Tool::Msggen,
        Tool::Plots,
    ];

    /// The executable's file name.
    pub fn binary(self) -> &'static str {
        match self {
            Tool::Server => "comet-server",
            Tool::Floodtest => "floodtest",
            Tool::Msggen => "msggen",
            Tool::Memlog => "memlog",
            Tool::Plots => "plots",
            Tool::Sysctl => "c1m-sysctl",
        }
    }

    /// The cargo package that builds it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Server => "c1m-server",
            Tool::Floodtest => "c1m-floodtest",
            Tool::Msggen => "c1m-msggen",
            Tool::Memlog => "c1m-memlog",
            Tool::Plots => "c1m-plots",
            Tool::Sysctl => "c1m-sysctl",
        }
    }
}

/// Where the tools are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    dir: PathBuf,
}

impl Tools {
    /// The tools in `dir`, or beside the running executable; every one must
    /// be there.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Tools> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .context("finding the experiment executable")?
                .parent()
                .context("the experiment executable has no folder")?
                .to_path_buf(),
        };
        let tools = Tools { dir };
        let missing: Vec<Tool> = Tool::ALL
            .into_iter()
            .filter(|t| !tools.path(*t).is_file())
            .collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|t| t.binary()).collect();
            bail!(
                "{} not found in {}: build the tools together with `cargo build --release` \
                 (or pass --bin-dir with the folder that holds them)",
                names.join(", "),
                tools.dir.display()
            );
        }
        Ok(tools)
    }

    /// The path of `tool`'s executable.
    pub fn path(&self, tool: Tool) -> PathBuf {
        self.dir.join(tool.binary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_the_build_command() {
        let dir = tempfile::tempdir().unwrap();
        for t in [Tool::Server, Tool::Floodtest, Tool::Plots, Tool::Sysctl] {
            std::fs::write(dir.path().join(t.binary()), "").unwrap();
        }
        let err = Tools::locate(Some(dir.path())).unwrap_err().to_string();
        assert!(err.starts_with("memlog, msggen not found in "), "{err}");
        assert!(err.contains("`cargo build --release`"), "{err}");
        std::fs::write(dir.path().join("msggen"), "").unwrap();
        std::fs::write(dir.path().join("memlog"), "").unwrap();
        let tools = Tools::locate(Some(dir.path())).unwrap();
        assert_eq!(tools.path(Tool::Sysctl), dir.path().join("c1m-sysctl"));
    }
}
