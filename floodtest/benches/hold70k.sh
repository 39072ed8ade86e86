#!/usr/bin/env bash
# Benchmark 3 (Part 3's addressing): 70,000 connections to ONE ip:port from
# 3 source IPs with --bind-mode explicit, past the 64K ports of one source
# IP and the 20,000 descriptors of one process (floodtest --procs auto starts
# 4 children; 5 comet-server processes share the port with SO_REUSEPORT).
# CONNS=150000 runs the same past two source IPs' worth of ports.
#
# Counts the client-side ESTABLISHED sockets in /proc/net/tcp while the
# connections are held, then ends floodtest with SIGTERM (its clean summary).
# Loopback only: 127.0.0.1:18140 (admin ports from 18141), sources
# 127.0.3.1-3.
# Bounded: the ramp may take 90 s, floodtest holds 60 s at most; every
# process started is stopped on any exit. Last line: `hold70k: PASS|FAIL`,
# exit 0 or 1 (2 if the servers do not start). PROFILE=debug uses the
# binaries `cargo test` built instead of a release build (here as fast).
source "$(dirname "$0")/common.sh"
PORT=18140
CONNS=${CONNS:-70000}
start=$(date +%s.%N)
# Servers filled to 80% on average (the kernel's SO_REUSEPORT hash spreads
# connections unevenly): 5 for 70,000 under a 20,000-descriptor limit.
per_server=$((SERVER_CONNS * 4 / 5))
start_servers $(((CONNS + per_server - 1) / per_server)) "$PORT" $((PORT + 1))
"$BIN/floodtest" --url "http://127.0.0.1:$PORT/test/{id}" --conns "$CONNS" \
    --bind-mode explicit --source-ips 127.0.3.1-127.0.3.3 --procs auto \
    --duration 60s --report-interval 2s --json "$WORK/hold.json" >"$WORK/hold.out" 2>"$WORK/hold.err" &
flood=$!
PIDS+=("$flood")
for _ in $(seq 900); do
    grep -q "ramp done" "$WORK/hold.err" && break
    kill -0 "$flood" 2>/dev/null || break
    sleep 0.1
done
# Client-side sockets only: source 127.0.3.x, destination port $PORT, state
# 01 (ESTABLISHED); /proc/net/tcp writes addresses as little-endian hex.
dport=$(printf '%04X' "$PORT")
established=$(awk -v d=":$dport" '$2 ~ /^..03007F:/ && substr($3, 9) == d && $4 == "01"' /proc/net/tcp | wc -l)
kill -TERM "$flood" 2>/dev/null || true
code=0
wait "$flood" || code=$?
end=$(date +%s.%N)
cat "$WORK/hold.err" "$WORK/hold.out"
echo "established (client side, 127.0.3.0/24 -> :$PORT, from /proc/net/tcp): $established of $CONNS"
if [[ -s $WORK/hold.json ]]; then
    echo "floodtest: exit $code, peak open $(json "$WORK/hold.json" open), connect_rate $(json "$WORK/hold.json" connect_rate)/s, client_rss_bytes_per_conn $(json "$WORK/hold.json" client_rss_bytes_per_conn)"
fi
secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
if [[ $code -eq 0 && $established -ge $CONNS ]]; then
    echo "hold70k: PASS: $established of $CONNS established to one ip:port from 3 source IPs in ${secs}s"
else
    echo "hold70k: FAIL: $established of $CONNS established, floodtest exit $code, ${secs}s"
    exit 1
fi
