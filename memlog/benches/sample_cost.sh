#!/usr/bin/env bash
# How long one memlog sample takes at 10,000 and 19,000 ESTABLISHED sockets
# on one port, and the linear extrapolation to 1M connections.
#
#   memlog/benches/sample_cost.sh [--steps 0,10000,19000] [--samples 31] [--port 18300] [--comet]
#
# Opens the connections with python3 holders (benches/hold.py: SO_REUSEPORT
# listeners and clients from 127.0.0.11+, all on loopback), which end when
# the benchmark does. Prints medians in ms, wall and CPU. With --comet the
# listener is an in-process comet-server and a sample with --server-stats
# (the server's /stats instead of a count) is timed too.
#
# As root it runs in a network namespace of its own with a private TCP hash
# table (net.ipv4.tcp_child_ehash_entries, set only for the instant the
# namespace is created): the kernel's walk then visits this benchmark's
# sockets only, not the TIME_WAIT and live sockets of whatever else runs on
# the machine, which on a shared machine swing the figures several-fold.
# MEMLOG_BENCH_SHARED=1 runs in the current namespace instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)"
cargo build --quiet --release -p c1m-memlog --example sample_cost
bin="${CARGO_TARGET_DIR:-target}/release/examples/sample_cost"

if [[ $(id -u) -ne 0 || -n "${MEMLOG_BENCH_SHARED:-}" ]]; then
    echo "# in the shared network namespace: other sockets on this machine are walked too"
    exec "$bin" "$@"
fi

ns="memlog-bench-$$"
old=$(sysctl -n net.ipv4.tcp_child_ehash_entries)
sysctl -qw net.ipv4.tcp_child_ehash_entries=262144
created=0
ip netns add "$ns" && created=1
sysctl -qw net.ipv4.tcp_child_ehash_entries="$old"
((created)) || exit 2
trap 'ip netns del "$ns"' EXIT
ip netns exec "$ns" ip link set lo up
echo "# in network namespace $ns with its own TCP hash (262,144 buckets, as the host's)"
ip netns exec "$ns" "$bin" "$@"
