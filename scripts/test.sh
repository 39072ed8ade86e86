#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh machine, then
# runs every test in the workspace. `.ci/run` calls this; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

# Services the integration tests start themselves (an independent HTTP
# streaming server for floodtest's cross-server test). Installed only when
# missing, so repeated runs cost nothing.
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test.sh: missing ${need[*]}; install with: sudo apt-get install -y ${need[*]}" >&2
        exit 2
    fi
fi

# Tests hold up to ~15,000 loopback connections per process.
ulimit -n "$(ulimit -Hn)"
cargo test --workspace --all-targets "$@"
