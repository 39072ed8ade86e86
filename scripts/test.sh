#!/usr/bin/env bash
# The test command: checks what the tests need on this machine, then runs
# every test in the workspace. `.ci/run` calls this; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start their own servers (an in-process comet-server, small
# Python streaming and WebSocket servers and clients as independent peers,
# nginx with nchan's WebSocket subscriber, python3 children whose memory
# memlog watches), so beyond cargo they need python3 with Debian's
# websockets module, nginx with nchan, and openssl (TLS checks). A minimal
# image may lack them: install them as root.
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || need+=(python3-websockets)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]] || need+=(libnginx-mod-nchan)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
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
