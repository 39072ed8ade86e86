#!/usr/bin/env bash
# How long one memlog sample takes at 10,000 and 19,000 ESTABLISHED sockets
# on one port, and the linear extrapolation to 1M connections.
#
#   memlog/benches/sample_cost.sh [--steps 10000,19000] [--samples 21] [--port 18300]
#
# Opens the connections with python3 holders (benches/hold.py: SO_REUSEPORT
# listeners and clients from 127.0.0.11+, all on loopback), which end when
# the benchmark does. Prints medians in ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)"
exec cargo run --quiet --release -p c1m-memlog --example sample_cost -- "$@"
