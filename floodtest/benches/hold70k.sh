#!/usr/bin/env bash
# Benchmark 3 (Part 3's addressing): 70,000 connections to ONE ip:port from
# 3 source IPs with --bind-mode explicit, past the 64K ports of one source
# IP and the 20,000 descriptors of one process (floodtest --procs auto starts
# 4 children; 5 comet-server processes share the port with SO_REUSEPORT).
# CONNS=150000 runs the same past two source IPs' worth of ports.
# Prints the ESTABLISHED count seen by `ss` while the connections are held.
source "$(dirname "$0")/common.sh"
PORT=18140
CONNS=${CONNS:-70000}
# One server process per 15,000 connections (each may hold 19,000; the
# kernel's SO_REUSEPORT hash spreads them unevenly): 5 for 70,000.
start_servers $(((CONNS + 14999) / 15000)) "$PORT" 18141
start=$(date +%s.%N)
"$BIN/floodtest" --url "http://127.0.0.1:$PORT/test/{id}" --conns "$CONNS" \
    --bind-mode explicit --source-ips 127.0.3.1-127.0.3.3 --procs auto \
    --duration 5s --report-interval 2s --json "$WORK/hold.json" >"$WORK/hold.out" 2>"$WORK/hold.err" &
flood=$!
for _ in $(seq 1200); do
    grep -q "ramp done" "$WORK/hold.err" && break
    kill -0 "$flood" 2>/dev/null || break
    sleep 0.1
done
sleep 1
# Client-side sockets only: their source is one of the 3 IPs (a server-side
# socket can also show dport 18140 when a client used 18140 as its port).
established=$(ss -Htn state established "( dport = :$PORT and src 127.0.3.0/24 )" | wc -l)
code=0
wait "$flood" || code=$?
cat "$WORK/hold.err" "$WORK/hold.out"
end=$(date +%s.%N)
echo "established (client side, 127.0.3.0/24 -> :$PORT, via ss): $established of $CONNS"
echo "floodtest: exit $code, peak open $(json "$WORK/hold.json" open), connect_rate $(json "$WORK/hold.json" connect_rate)/s, client_rss_bytes_per_conn $(json "$WORK/hold.json" client_rss_bytes_per_conn)"
echo "wall time $(python3 -c "print(round($end - $start, 1))")s"
[[ $code -eq 0 && $established -ge $CONNS ]]
