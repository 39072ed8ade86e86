#!/usr/bin/env bash
# Delivery latency side by side, in one sitting (issue 17): the c10k
# preset (10,000 streams held by floodtest, 16,666 msg/s to random ids) run
# against
#   comet        comet-server, msggen's batches (`--publish comet`)
#   comet-each   comet-server, one keep-alive POST per message (`--publish comet-each`)
#   nchan        nginx+nchan, one keep-alive POST per message (its only way)
# and the loopback floor of the same moment (server/examples/floor.rs: one
# socket written at the same rate and read by a blocked reader, the latency
# no delivery on this machine can beat). Then the highest rate each
# sustains: the rate doubled from 33,332 msg/s (10 s holds) until a run
# loses or fails a message, falls 3% short of the rate, or delivers less
# than 99% of what was sent, then the gap halved twice. For comet-each it
# also counts the hops: the server's thread switches per message.
#
#   server/benches/latency.sh                  # RUNS=3 SECS=30, then the search
#   RUNS=5 SECS=60 MAX_SECS=20 server/benches/latency.sh
#   MAX=0 server/benches/latency.sh            # no search
#   BASELINE=/tmp/old/comet-server MAX=0 server/benches/latency.sh
#                                               # also comet-each-base: that binary, one POST per message
#   TICK=100us server/benches/latency.sh        # msggen releases every 100us (its default, 1ms, sends bursts)
#
# Prints each run's p50/p99/p99.9/max, delivered and lost per server, then
# the medians over the runs and each server's ratio to nchan's, then each
# server's highest sustained rate. Every run is a whole `experiment` run
# (its folder is kept under OUT, default a new temporary folder, for the
# reports and charts). Needs nginx with the nchan module (scripts/test.sh
# installs it). The load average before and after is printed: on a shared
# machine compare the ratios, not the microseconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
SECS=${SECS:-30}
MAX=${MAX:-1}
MAX_SECS=${MAX_SECS:-10}
PORT=${PORT:-18040}
OUT=${OUT:-$(mktemp -d /tmp/latency.XXXXXX)}
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
ulimit -n "$(ulimit -Hn)"

if [[ -n ${BASELINE:-} && ! -x $BASELINE ]]; then
    echo "latency.sh: BASELINE=$BASELINE is not an executable comet-server; give the path of another build's binary" >&2
    exit 2
fi

cargo build -q --release --workspace --bins
cargo build -q --release -p c1m-server --example floor
BIN=$CARGO_TARGET_DIR/release
SERVERS="comet comet-each${BASELINE:+ comet-each-base} nchan"
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; true; }
trap cleanup EXIT

# One c10k run of NAME at RATE msg/s held SECS, into DIR.
one() {
    local name=$1 rate=$2 secs=$3 dir=$4
    local common=(c10k --duration "${secs}s" --msg-rate "$rate" --out "$dir" ${TICK:+--msg-tick "$TICK"})
    case $name in
    comet | nchan)
        "$BIN/experiment" "${common[@]}" --target "$name" >"$dir.log" 2>&1 ;;
    comet-each | comet-each-base)
        # comet-server with one POST per message: the same publisher shape
        # as nchan's. The runner cannot pick comet's publisher, so this
        # server is started here and measured as an external one
        # (comet-each-base: the BASELINE binary, for a before/after).
        local binary=$BIN/comet-server
        [[ $name == comet-each-base ]] && binary=$BASELINE
        "$binary" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$((PORT + 1))" \
            >"$dir.server.log" 2>&1 &
        server=$!
        for _ in $(seq 100); do grep -q "listening" "$dir.server.log" && break; sleep 0.05; done
        local code=0
        "$BIN/experiment" "${common[@]}" --target external \
            --subscribe-url "http://127.0.0.1:$PORT/test/{id}" \
            --publish comet-each --publish-url "http://127.0.0.1:$((PORT + 1))" \
            --server-pid "$server" >"$dir.log" 2>&1 || code=$?
        # The hops, counted: every switch of the server's threads (slept
        # and woken, or preempted; ramp included), for the messages carried.
        cat /proc/"$server"/task/*/status | awk '/voluntary_ctxt_switches/ { n += $2 } END { print n }' \
            >"$dir.switches"
        kill "$server" && wait "$server" 2>/dev/null || true
        server=
        return $code ;;
    esac
}

echo "# msggen tick: ${TICK:-1ms (its default)}"
echo "# out: $OUT; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
    mkdir -p "$OUT/$run"
    for name in $SERVERS; do
        one "$name" 16666 "$SECS" "$OUT/$run/$name" ||
            echo "# run $run: $name exited $? (see $OUT/$run/$name.log)"
    done
    "$BIN/examples/floor" --rate 16666 --secs "$SECS" >"$OUT/$run/floor.txt"
done

# Whether the run in DIR at RATE kept up: nothing lost or failed, the rate
# reached, what was sent delivered.
sustained() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d, rate = sys.argv[1], float(sys.argv[2])
try:
    flood = json.load(open(f"{d}/flood.json"))
    sent = json.load(open(f"{d}/msggen.json"))
except (OSError, ValueError):
    sys.exit(1)
ok = (flood["lost"] == 0 and sent["failed"] == 0
      and sent["achieved_rate"] >= 0.97 * rate
      and flood["messages"] >= 0.99 * sent["sent"])
sys.exit(0 if ok else 1)
PY
}

if [[ $MAX == 1 ]]; then
    mkdir -p "$OUT/max"
    for name in $SERVERS; do
        best=16666 over=
        for rate in 33332 66664 133328 266656 533312 1066624; do
            one "$name" "$rate" "$MAX_SECS" "$OUT/max/$name-$rate" || true
            if sustained "$OUT/max/$name-$rate" "$rate"; then best=$rate; else over=$rate; break; fi
        done
        # Two halvings of the gap between the last rate kept and the first missed.
        for _ in 1 2; do
            [[ -n $over ]] || break
            rate=$(((best + over) / 2))
            one "$name" "$rate" "$MAX_SECS" "$OUT/max/$name-$rate" || true
            if sustained "$OUT/max/$name-$rate" "$rate"; then best=$rate; else over=$rate; fi
        done
        echo "$name $best" >>"$OUT/max/best"
    done
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" "$RUNS" "$SERVERS" <<'EOF'
import json, os, re, statistics, sys
out, runs, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
keys = ["p50", "p99", "p999", "max"]
rows = {name: [] for name in servers + ["floor"]}
for run in range(1, runs + 1):
    base = os.path.join(out, str(run))
    for name in servers:
        try:
            s = json.load(open(os.path.join(base, name, "flood.json")))
        except (OSError, ValueError):
            print(f"run {run} {name}: no flood.json")
            continue
        lat = s["latency_us"]
        row = {k: lat[k] for k in keys} | {"messages": s["messages"], "lost": s["lost"]}
        rows[name].append(row)
        print(f"run {run} {name:<10} p50 {row['p50']:>6} us  p99 {row['p99']:>7} us  "
              f"p99.9 {row['p999']:>7} us  max {row['max']:>8} us  delivered {row['messages']:>9,}  lost {row['lost']}")
    line = open(os.path.join(base, "floor.txt")).read()
    floor = {k: int(v) for k, v in re.findall(r"(p50|p99|p999|max)=(\d+)", line)}
    rows["floor"].append(floor)
    print(f"run {run} {'floor':<10} p50 {floor['p50']:>6} us  p99 {floor['p99']:>7} us  "
          f"p99.9 {floor['p999']:>7} us  max {floor['max']:>8} us")

def med(name, k):
    values = [r[k] for r in rows[name]]
    return statistics.median(values) if values else None

switches = {}
for name in ("comet-each", "comet-each-base"):
    for run in range(1, runs + 1):
        try:
            n = int(open(os.path.join(out, str(run), f"{name}.switches")).read())
            s = json.load(open(os.path.join(out, str(run), name, "flood.json")))
            switches.setdefault(name, []).append(n / max(s["messages"], 1))
        except (OSError, ValueError):
            pass

print(f"\nMEDIANS of {runs} run(s), microseconds (ratio to nchan's):")
for name in rows:
    cells = []
    for k in keys:
        v, n = med(name, k), med("nchan", k)
        ratio = f" ({v / n:.2f}x)" if v is not None and n else ""
        cells.append(f"{k} {v if v is not None else '-'}{ratio}")
    lost = sum(r.get("lost", 0) for r in rows[name])
    extra = f"  lost {lost}" if name != "floor" else ""
    print(f"{name:<10} " + "  ".join(cells) + extra)

for name, per_message in switches.items():
    print(f"{name}: {statistics.median(per_message):.2f} switches of the server's threads per message delivered (ramp included)")

best = os.path.join(out, "max", "best")
if os.path.exists(best):
    found = dict(line.split() for line in open(best))
    print("\nHIGHEST rate sustained (doubled from 33,332 msg/s, then the gap halved twice; 16666: none above it):")
    for name, rate in found.items():
        ratio = f" ({int(rate) / int(found['nchan']):.1f}x nchan's)" if "nchan" in found else ""
        print(f"{name:<10} {int(rate):>9,} msg/s{ratio}")
EOF
