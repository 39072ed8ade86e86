//! Another workspace package's binary for an integration test: `cargo
//! test -p c1m-msggen` builds msggen but not floodtest, which its tests
//! run as the subscribers (and floodtest's tests msggen as the publisher).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds `package`'s binary `bin` into the target folder and profile of
/// `beside` (the test's own `CARGO_BIN_EXE_*`), a no-op when it is fresh,
/// and returns its path; panics naming the command when the build fails.
/// `cargo` is the test's `env!("CARGO")`, `manifest_dir` its
/// `env!("CARGO_MANIFEST_DIR")`.
pub fn sibling_bin(
    cargo: &str,
    manifest_dir: &str,
    beside: &str,
    package: &str,
    bin: &str,
) -> PathBuf {
    // One build at a time: test threads asking at once would wait on
    // cargo's lock anyway.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(beside).parent().expect("a binary in a folder");
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut build = Command::new(cargo);
    build
        .arg("build")
        .arg("--target-dir")
        .arg(dir.parent().expect("a profile folder in a target folder"))
        .args(["-p", package, "--bin", bin]);
    if release {
        build.arg("--release");
    }
    let command = format!("{build:?}");
    let status = build
        .current_dir(manifest_dir)
        .status()
        .unwrap_or_else(|e| panic!("could not run {command}: {e}"));
    assert!(status.success(), "building {bin} failed: {command}");
    dir.join(bin)
}
