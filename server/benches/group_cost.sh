#!/usr/bin/env bash
# CPU per message through a group (`comet-server --workers N`), by
# process: what Part 3 at 1M pays on this machine's 2 cores. floodtest
# holds CONNS /test streams spread over the workers, msggen sends RATE
# msg/s for SECS, and the script reads every process's utime+stime from
# /proc before and after.
#
#   server/benches/group_cost.sh                  # the three configurations below
#   CONNS=53000 RATE=16666 SECS=30 server/benches/group_cost.sh
#   CONFIGS=w53-tick1ms server/benches/group_cost.sh   # one of them
#
# Configurations (one RESULT line each):
#   w53-tick1ms   53 workers, msggen's defaults (4 senders, 1 ms tick: ~4
#                 messages a batch, so each worker request carries ~1)
#   w53-batch50ms 53 workers, one sender releasing every 50 ms (~16
#                 messages per worker request): what coalescing would buy
#   w1-tick1ms    one worker holding 10,000 streams, msggen's defaults
# Per-second p50/p99 are the medians over the hold of floodtest's
# one-second latency percentiles; "messages per worker request" is the
# front's coalescing (`group.worker_sends` in its /stats).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
CONNS=${CONNS:-53000}
RATE=${RATE:-16666}
SECS=${SECS:-30}
PORT=${PORT:-18040}
OUT=${OUT:-$(mktemp -d /tmp/group_cost.XXXX)}
B=$CARGO_TARGET_DIR/release
cargo build -q --release -p c1m-server -p c1m-floodtest -p c1m-msggen
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

ticks() { # utime+stime (1/100 s) summed over the processes given
  local s=0 p f; for p in "$@"; do read -r -a f < "/proc/$p/stat" 2>/dev/null || continue; s=$((s + f[13] + f[14])); done; echo "$s"; }
tree() { echo "$1" $(pgrep -P "$1" || true); }

one() { # NAME WORKERS CONNS MSGGEN-ARGS...
  local name=$1 workers=$2 conns=$3; shift 3
  local dir=$OUT/$name admin=127.0.0.1:$((PORT + 1)); mkdir -p "$dir"
  "$B/comet-server" --listen 127.0.0.1:$PORT --admin $admin --workers "$workers" \
    --max-conns $((conns * 2)) > "$dir/server.log" 2>&1 &
  local server=$!; pids=($server)
  for _ in $(seq 100); do curl -sf "http://$admin/stats" > /dev/null && break; sleep 0.2; done
  "$B/floodtest" --preset comet --target 127.0.0.1:$PORT --conns "$conns" --ids "1-$conns" \
    --rate 10000 --duration $((SECS + 300))s --report-interval 1s --csv "$dir/flood.csv" \
    --json "$dir/flood.json" --bind-mode explicit --source-ips 127.0.0.2-127.0.0.5 > "$dir/flood.log" 2>&1 &
  local flood=$!; pids+=($flood)
  local open=0
  for _ in $(seq 600); do
    open=$(tail -1 "$dir/flood.csv" 2>/dev/null | cut -d, -f4 || true); [ "$open" = "$conns" ] && break; sleep 0.5
  done
  [ "$open" = "$conns" ] || { echo "$name: only $open of $conns open" >&2; return 1; }
  local servers floods s0 f0 t0 s1 f1 t1 m=0 f
  servers=$(tree $server); floods=$(tree $flood)
  s0=$(ticks $servers); f0=$(ticks $floods); t0=$(date +%s.%N)
  "$B/msggen" --target "http://$admin" --publish comet --ids "1-$conns" --rate "$RATE" \
    --duration "${SECS}s" --report-interval 1s --no-progress --timeout 30s --max-conns 128 \
    --json "$dir/msggen.json" "$@" > "$dir/msggen.log" 2>&1 &
  local gen=$!
  while kill -0 $gen 2>/dev/null; do read -r -a f < "/proc/$gen/stat" 2>/dev/null && m=$((f[13] + f[14])); sleep 0.5; done
  s1=$(ticks $servers); f1=$(ticks $floods); t1=$(date +%s.%N)
  curl -sf "http://$admin/stats" > "$dir/stats.json" || echo '{}' > "$dir/stats.json"
  kill -INT $flood; wait $flood || true; kill -INT $server; wait $server || true; pids=()
  python3 - "$name" "$dir" "$s0" "$s1" "$f0" "$f1" "$m" "$t0" "$t1" "$RATE" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import csv, json, statistics as st, sys
name, d = sys.argv[1:3]
s0, s1, f0, f1, m = map(int, sys.argv[3:8]); t0, t1, rate = map(float, sys.argv[8:11]); load = sys.argv[11]
el = t1 - t0; msgs = rate * el
rows = [r for r in csv.DictReader(open(f"{d}/flood.csv")) if float(r["message_rate"]) > 0][2:-2]
med = lambda k: st.median(int(r[k]) for r in rows) / 1000 if rows else float("nan")
lost = json.load(open(f"{d}/flood.json")).get("lost")
us = lambda t: t * 1e4 / msgs
stats = json.load(open(f"{d}/stats.json"))
sends = (stats.get("group") or {}).get("worker_sends")
per_send = f"{stats['messages_in'] / sends:.1f}" if sends else "n/a"
print(f"RESULT {name}: CPU us/msg server {us(s1-s0):.0f} floodtest {us(f1-f0):.0f} msggen {us(m):.0f}; "
      f"cores server {(s1-s0)/100/el:.2f}; per-second p50 {med('latency_p50_us'):.2f} ms p99 {med('latency_p99_us'):.1f} ms; "
      f"lost {lost}; messages per worker request {per_send}; load {load}")
PY
}

for config in ${CONFIGS:-w53-tick1ms w53-batch50ms w1-tick1ms}; do
  case $config in
    w53-tick1ms) one w53-tick1ms 53 "$CONNS" ;;
    w53-batch50ms) one w53-batch50ms 53 "$CONNS" --senders 1 --tick 50ms ;;
    w1-tick1ms) one w1-tick1ms 1 10000 ;;
    *) echo "unknown configuration $config (w53-tick1ms, w53-batch50ms, w1-tick1ms)" >&2; exit 2 ;;
  esac
done
echo "outputs in $OUT"
