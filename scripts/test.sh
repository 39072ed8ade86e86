#!/usr/bin/env bash
# The test command: checks what the tests need on this machine, then runs
# every test in the workspace. `.ci/run` calls this; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start their own servers (an in-process comet-server, a small
# Python streaming server as floodtest's independent peer, python3 children
# whose memory memlog watches), so python3 is the one program they need
# beyond cargo. A minimal image may lack it: install it as root.
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
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
