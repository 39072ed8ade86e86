//! Finding the sibling binaries the runner starts.
//!
//! `cargo build --release` puts every binary of the workspace in one
//! folder, so the runner looks beside its own executable unless `--bin-dir`
//! says otherwise. A missing binary is reported before anything starts,
//! with the command that builds it.
//!
//! Started by `cargo run` (cargo sets `CARGO` and `CARGO_MANIFEST_DIR`),
//! the runner first has cargo build the tools into the same target folder
//! and profile: `cargo run --bin experiment` builds only the runner, and a
//! fresh clone would otherwise stop at "not found", or an old build would
//! run stale tools. A fresh build is a no-op that costs well under a second.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A binary the runner starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `comet-server`.
    Server,
    /// `floodtest`.
    Floodtest,
    /// `msggen`.
    Msggen,
    /// `memlog`.
    Memlog,
    /// `plots`.
    Plots,
    /// `c1m-sysctl`.
    Sysctl,
}

impl Tool {
    /// Every tool, in the order a run starts them.
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
pub(crate) struct Tools {
    dir: PathBuf,
}

impl Tools {
    /// The tools in `dir`, or beside the running executable; every one must
    /// be there.
    pub(crate) fn locate(dir: Option<&Path>) -> anyhow::Result<Tools> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => {
                let dir = std::env::current_exe()
                    .context("finding the experiment executable")?
                    .parent()
                    .context("the experiment executable has no folder")?
                    .to_path_buf();
                let cargo = std::env::var_os("CARGO").map(PathBuf::from);
                // Only a `cargo run` of this very package: CARGO and
                // CARGO_MANIFEST_DIR may be inherited from another one.
                let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
                    .map(PathBuf::from)
                    .filter(|d| d == Path::new(env!("CARGO_MANIFEST_DIR")));
                if let Some(build) = cargo_build_beside(&dir, cargo, manifest_dir) {
                    run_build(build)?;
                }
                dir
            }
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
    pub(crate) fn path(&self, tool: Tool) -> PathBuf {
        self.dir.join(tool.binary())
    }
}

/// The `cargo build` that puts the tools in `exe_dir` (`<target>/<profile>`),
/// when this process was started by cargo (`cargo` and `manifest_dir` from
/// its environment); `None` otherwise.
fn cargo_build_beside(
    exe_dir: &Path,
    cargo: Option<PathBuf>,
    manifest_dir: Option<PathBuf>,
) -> Option<Command> {
    let (cargo, manifest_dir) = (cargo?, manifest_dir?);
    let profile = exe_dir.file_name()?.to_str()?;
    let target_dir = exe_dir.parent()?;
    // Cargo marks every target folder with this file; an executable copied
    // elsewhere (and started with CARGO set for another reason) is left alone.
    if !target_dir.join("CACHEDIR.TAG").is_file() {
        return None;
    }
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--profile")
        // cargo's `dev` profile builds into `debug/`.
        .arg(if profile == "debug" { "dev" } else { profile });
    for tool in Tool::ALL {
        cmd.arg("-p").arg(tool.package());
    }
    Some(cmd)
}

fn run_build(mut build: Command) -> anyhow::Result<()> {
    let shown: Vec<String> = std::iter::once(build.get_program())
        .chain(build.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!("experiment: building the tools: {}", shown.join(" "));
    let status = build.status().context("running cargo to build the tools")?;
    if !status.success() {
        bail!("building the tools failed ({status}): fix the build error above and run again");
    }
    Ok(())
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

    #[test]
    fn under_cargo_the_tools_are_built_into_the_runners_folder_and_profile() {
        let target = tempfile::tempdir().unwrap();
        let t = target.path().to_str().unwrap().to_owned();
        std::fs::create_dir(target.path().join("release")).unwrap();
        let not_a_target_dir = format!("{t}/release");
        assert!(
            cargo_build_beside(
                Path::new(&not_a_target_dir),
                Some("/bin/cargo".into()),
                Some("/src/experiments".into())
            )
            .is_none(),
            "no CACHEDIR.TAG: not cargo's folder"
        );
        std::fs::write(target.path().join("CACHEDIR.TAG"), "").unwrap();
        let args = |exe_dir: &str| -> Option<Vec<String>> {
            let cmd = cargo_build_beside(
                Path::new(exe_dir),
                Some("/bin/cargo".into()),
                Some("/src/experiments".into()),
            )?;
            assert_eq!(cmd.get_program(), "/bin/cargo");
            Some(
                cmd.get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            )
        };
        let release = args(&format!("{t}/release")).unwrap().join(" ");
        assert!(
            release.starts_with(&format!(
                "build --manifest-path /src/experiments/Cargo.toml --target-dir {t} --profile release -p "
            )),
            "{release}"
        );
        for tool in Tool::ALL {
            assert!(
                release.contains(&format!("-p {}", tool.package())),
                "{release}"
            );
        }
        let debug = args(&format!("{t}/debug")).unwrap().join(" ");
        assert!(debug.contains("--profile dev "), "{debug}");
        let release_dir = format!("{t}/release");
        let release_dir = Path::new(&release_dir);
        assert!(cargo_build_beside(release_dir, None, Some("/m".into())).is_none());
        assert!(cargo_build_beside(release_dir, Some("c".into()), None).is_none());
    }
}
