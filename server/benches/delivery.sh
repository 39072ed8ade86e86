#!/usr/bin/env bash
# Delivery: messages through POST /send batches to random ids, received by
# 10,000 /test connections; the receiving client measures the rate and the
# latency from the envelopes' send timestamps (c1m_common::envelope).
#
#   server/benches/delivery.sh            # RUNS=3 flood runs, RUNS=3 paced runs
#   RUNS=5 SECS=10 RATE=16666 CONNS=10000 PORT=18020 server/benches/delivery.sh
#   NICE=-10 server/benches/delivery.sh   # server and client ahead of other work on a shared box
#
# Prints every RESULT line and the medians: delivered msg/s in flood mode
# (target >= 100,000) and p99 latency at RATE msg/s (target <= 5 ms). Each
# RESULT also gives the p99 oversleep of a 1 ms sleep during the run: the
# scheduler noise of the machine, under which no latency can fall. Then
# the same flood runs against the throughput floor (examples/bare_delivery.rs:
# each batch line written to its socket by the thread that read the batch,
# nothing else), and comet-server's rate as a share of the floor's.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
RUNS=${RUNS:-3}
SECS=${SECS:-5}
RATE=${RATE:-16666}
CONNS=${CONNS:-10000}
PORT=${PORT:-18020}
REACTORS=${REACTORS:-2}
NICE=${NICE:-0}
ADMIN=127.0.0.1:$((PORT + 1))

cargo build -q --release -p c1m-server --bin comet-server --example delivery --example bare_delivery
BIN=$CARGO_TARGET_DIR/release/comet-server
CLIENT=$CARGO_TARGET_DIR/release/examples/delivery
FLOOR=$CARGO_TARGET_DIR/release/examples/bare_delivery
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

echo "reactors: $REACTORS; nice: $NICE; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
nice -n "$NICE" "$BIN" --listen "127.0.0.1:$PORT" --admin "$ADMIN" --reactors "$REACTORS" >"$tmp/server.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening" "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done

run=0
one() { # mode rate
  run=$((run + 1))
  nice -n "$NICE" "$CLIENT" --addr "127.0.0.1:$PORT" --admin "$ADMIN" --conns "$CONNS" --secs "$SECS" --rate "$2" \
    --source "127.0.$((200 + run % 50)).$((2 + RANDOM % 200))" | tee -a "$tmp/$1"
}
for _ in $(seq "$RUNS"); do one flood 0; done
for _ in $(seq "$RUNS"); do one paced "$RATE"; done

kill "$server" && wait "$server" 2>/dev/null || true
nice -n "$NICE" "$FLOOR" --listen "127.0.0.1:$((PORT + 2))" --admin "127.0.0.1:$((PORT + 3))" \
    --conns "$CONNS" >"$tmp/floor.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening" "$tmp/floor.out" 2>/dev/null && break; sleep 0.05; done
for _ in $(seq "$RUNS"); do
  run=$((run + 1))
  nice -n "$NICE" "$CLIENT" --addr "127.0.0.1:$((PORT + 2))" --admin "127.0.0.1:$((PORT + 3))" \
    --conns "$CONNS" --secs "$SECS" --rate 0 \
    --source "127.0.$((200 + run % 50)).$((2 + RANDOM % 200))" | sed 's/^RESULT/FLOOR/' | tee -a "$tmp/floor"
done

median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
rate=$(sed -n 's/.*delivered_rate=\([0-9]*\).*/\1/p' "$tmp/flood" | median)
floor=$(sed -n 's/.*delivered_rate=\([0-9]*\).*/\1/p' "$tmp/floor" | median)
p99=$(sed -n 's/.* p99=\([0-9]*\) p999.*/\1/p' "$tmp/paced" | median)
echo "MEDIAN flood delivered: $rate msg/s (target >= 100000)"
echo "MEDIAN floor delivered: $floor msg/s; comet-server at $((100 * rate / floor))% of it (goal >= 80%)"
echo "MEDIAN p99 latency at $RATE msg/s: $p99 us (target <= 5000)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
