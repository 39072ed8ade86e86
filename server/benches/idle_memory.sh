#!/usr/bin/env bash
# Idle memory: user-space RSS per idle connection of the release comet-server.
#
# For each count (default 10,000 and 19,000) and each of RUNS runs (default
# 3): start the server, read its VmRSS, open COUNT idle /test connections
# from two `hold` client processes (one process may hold at most 20,000
# descriptors here), wait until /stats says all are logged in, read VmRSS
# again, print (after - before) / COUNT. Then the median per count.
#
#   server/benches/idle_memory.sh                  # system allocator build
#   FEATURES=mimalloc server/benches/idle_memory.sh
#   COUNTS="10000 19000" RUNS=3 PORT=18000 server/benches/idle_memory.sh
#
# Uses ports PORT and PORT+1 on 127.0.0.1, source addresses 127.0.R.K so
# that TIME_WAIT from one run never blocks the next.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
COUNTS=${COUNTS:-"10000 19000"}
RUNS=${RUNS:-3}
PORT=${PORT:-18000}
FEATURES=${FEATURES:-}
REACTORS=${REACTORS:-2}
# Seconds between the last login and the second RSS reading. Within the
# first --header-timeout (10 s) each connection still has a 16-byte deadline
# entry; SETTLE=12 measures after they are freed.
SETTLE=${SETTLE:-1}
ADMIN=127.0.0.1:$((PORT + 1))

cargo build -q --release -p c1m-server ${FEATURES:+--features "$FEATURES"} --bin comet-server --example hold
BIN=$CARGO_TARGET_DIR/release/comet-server
HOLD=$CARGO_TARGET_DIR/release/examples/hold
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
logged_in() { curl -s "http://$ADMIN/stats" | sed -n 's/.*"logged_in":\([0-9]*\).*/\1/p'; }

echo "allocator: ${FEATURES:-system}; reactors: $REACTORS; settle: ${SETTLE}s; other load on the machine: $(cut -d' ' -f1-3 /proc/loadavg)"
round=0
for count in $COUNTS; do
  results=()
  for run in $(seq 1 "$RUNS"); do
    round=$((round + 1))
    "$BIN" --listen "127.0.0.1:$PORT" --admin "$ADMIN" --reactors "$REACTORS" >"$tmp/server.out" 2>&1 &
    server=$!; pids+=("$server")
    for _ in $(seq 100); do grep -q "listening" "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done
    sleep 0.5
    before=$(rss_kb "$server")
    half=$((count / 2))
    clients=()
    for k in 0 1; do
      n=$half; [ "$k" = 1 ] && n=$((count - half))
      "$HOLD" --addr "127.0.0.1:$PORT" --conns "$n" --first-id $((k * half)) \
        --source "127.0.$round.$((k + 2))" >"$tmp/hold$k.out" 2>&1 &
      clients+=($!); pids+=($!)
    done
    for _ in $(seq 600); do [ "$(logged_in)" = "$count" ] && break; sleep 0.1; done
    got=$(logged_in)
    [ "$got" = "$count" ] || { echo "only $got of $count connections logged in" >&2; cat "$tmp"/hold*.out >&2; exit 1; }
    sleep "$SETTLE"
    after=$(rss_kb "$server")
    per=$(( (after - before) * 1024 / count ))
    printf '%6d conns  run %d: RSS %6d kB -> %6d kB  = %5d B/conn\n' "$count" "$run" "$before" "$after" "$per"
    results+=("$per")
    kill "${clients[@]}" 2>/dev/null || true
    kill -INT "$server"; wait "$server" 2>/dev/null || true
  done
  median=$(printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  echo "MEDIAN $count connections: $median B/conn user-space RSS (target <= 1024)"
done
