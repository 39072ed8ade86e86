#!/usr/bin/env bash
# Benchmark 2: new connections per second, each a full HTTP stream open
# (connect, request, 200 head) against comet-server. Prints the ramp rate
# (streams opened / first connect to last head) of 3 runs of 19,000
# connections, unpaced, and the median. Target: >= 10,000/s.
source "$(dirname "$0")/common.sh"
PORT=18130
start_servers 1 "$PORT" 18131
echo "floodtest connect rate (comet-server on 127.0.0.1:$PORT, 19,000 connections, median of 3)"
rates=()
for run in 1 2 3; do
    "$BIN/floodtest" --url "http://127.0.0.1:$PORT/test/{id}" --conns 19000 \
        --bind-mode noport --source-ips "127.0.2.$((run * 2 - 1))-127.0.2.$((run * 2))" --duration 1s \
        --json "$WORK/rate.json" >"$WORK/rate.out" 2>&1 || { cat "$WORK/rate.out"; exit 1; }
    rates+=("$(json "$WORK/rate.json" connect_rate | cut -d. -f1)")
done
m=$(printf '%s\n' "${rates[@]}" | median)
verdict=$([[ $m -ge 10000 ]] && echo PASS || echo FAIL)
echo "connect_rate runs=[${rates[*]}] median=$m/s target>=10000 $verdict"
[[ $verdict == PASS ]]
