#!/usr/bin/env bash
# Benchmark 1: client user-space memory per held connection.
# floodtest's --json reports the RSS growth from before the first connect
# to the peak, divided by the peak open connections; this prints the median
# of 3 runs at 10,000 and at 19,000 connections against one comet-server.
# Target: <= 1,024 B per connection.
source "$(dirname "$0")/common.sh"
PORT=18120
start_servers 1 "$PORT" 18121
echo "floodtest memory per held connection (comet-server on 127.0.0.1:$PORT, median of 3)"
for conns in 10000 19000; do
    results=()
    for run in 1 2 3; do
        # Fresh source IPs per run, so the last run's TIME_WAIT pairs are not in the way.
        base=$((conns / 1000 + run * 2))
        ips="127.0.1.$base-127.0.1.$((base + 1))"
        "$BIN/floodtest" --url "http://127.0.0.1:$PORT/test/{id}" --conns "$conns" \
            --bind-mode noport --source-ips "$ips" --duration 2s \
            --json "$WORK/mem.json" >"$WORK/mem.out" 2>&1 || { cat "$WORK/mem.out"; exit 1; }
        results+=("$(json "$WORK/mem.json" client_rss_bytes_per_conn)")
    done
    m=$(printf '%s\n' "${results[@]}" | median)
    verdict=$([[ $m -le 1024 ]] && echo PASS || echo FAIL)
    echo "conns=$conns client_rss_bytes_per_conn runs=[${results[*]}] median=$m target<=1024 $verdict"
    [[ $verdict == PASS ]] || failed=1
done
exit "${failed:-0}"
