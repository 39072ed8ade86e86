#!/usr/bin/env bash
# The test command: checks what the tests need on this machine, then runs
# every test in the workspace. `.ci/run` calls this; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start their own servers (an in-process comet-server, small
# Python streaming and WebSocket servers and clients as independent peers,
# nginx with nchan's WebSocket subscriber, python3 children whose memory
# memlog watches, nats-server on a free loopback port for the broker tests),
# and msggen's publishers are tested against the real push servers, each
# started on free loopback ports with a config of its own
# (c1m-pushsrv: pushsrv/src/configs.rs). Beyond cargo they need python3 with
# Debian's websockets module, openssl (TLS checks), nginx with nchan,
# pushpin, zurl, nats-server and redis-server. A minimal image may lack them:
# install them as root.
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || need+=(python3-websockets)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
[[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]] || need+=(libnginx-mod-nchan)
command -v pushpin >/dev/null 2>&1 || need+=(pushpin)
command -v zurl >/dev/null 2>&1 || need+=(zurl)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        # The packages' own services (nginx on :80, redis on :6379, pushpin)
        # are not wanted: the tests start their own on free loopback ports.
        # policy-rc.d exit 101 tells the package scripts not to start them.
        policy=/usr/sbin/policy-rc.d
        [[ -e $policy ]] || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && trap 'rm -f "$policy"' EXIT; }
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test.sh: missing ${need[*]}; install with: sudo apt-get install -y ${need[*]}" >&2
        exit 2
    fi
fi

# The dashboard's browser test (server/tests/browser.rs) drives headless
# Chromium; without it that test skips, loudly, so a failed install of the
# browser alone does not stop the other tests.
if ! command -v chromium >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
        echo "test.sh: could not install chromium: the dashboard's browser test will skip" >&2
fi

# Tests hold up to ~15,000 loopback connections per process.
ulimit -n "$(ulimit -Hn)"
cargo test --workspace --all-targets "$@"
