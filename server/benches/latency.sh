#!/usr/bin/env bash
# Delivery latency side by side, in one sitting (issue 17): the c10k
# preset (10,000 streams held by floodtest, 16,666 msg/s to random ids) run
# against
#   comet        comet-server, msggen's batches (`--publish comet`)
#   comet-each   comet-server, one keep-alive POST per message (`--publish comet-each`)
#   nchan        nginx+nchan, one keep-alive POST per message (its only way)
# and the loopback floor of the same moment (server/examples/floor.rs: one
# socket written at the same rate and read by a blocked reader, the latency
# no delivery on this machine can beat).
#
#   server/benches/latency.sh                  # RUNS=3 SECS=30
#   RUNS=5 SECS=60 server/benches/latency.sh
#
# Prints each run's p50/p99/p99.9/max, delivered and lost per server, then
# the medians over the runs and each server's ratio to nchan's. Every run
# is a whole `experiment` run (its folder is kept under OUT, default a new
# temporary folder, for the reports and charts). Needs nginx with the nchan
# module (scripts/test.sh installs it). The load average before and after is
# printed: on a shared machine compare the ratios, not the microseconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
SECS=${SECS:-30}
PORT=${PORT:-18040}
OUT=${OUT:-$(mktemp -d /tmp/latency.XXXXXX)}
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
ulimit -n "$(ulimit -Hn)"

cargo build -q --release --workspace --bins
cargo build -q --release -p c1m-server --example floor
BIN=$CARGO_TARGET_DIR/release
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; true; }
trap cleanup EXIT

echo "# out: $OUT; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
    dir=$OUT/$run
    mkdir -p "$dir"
    "$BIN/experiment" compare c10k --targets comet,nchan --duration "${SECS}s" \
        --out "$dir/compare" >"$dir/compare.log" 2>&1 ||
        echo "# run $run: experiment compare exited $? (see $dir/compare.log)"

    # comet-server with one POST per message: the same publisher shape as
    # nchan's. The runner cannot pick comet's publisher, so this server is
    # started here and measured as an external one.
    "$BIN/comet-server" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$((PORT + 1))" \
        >"$dir/comet-each.server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do grep -q "listening" "$dir/comet-each.server.log" && break; sleep 0.05; done
    "$BIN/experiment" c10k --target external --duration "${SECS}s" \
        --subscribe-url "http://127.0.0.1:$PORT/test/{id}" \
        --publish comet-each --publish-url "http://127.0.0.1:$((PORT + 1))" \
        --server-pid "$server" --out "$dir/comet-each" >"$dir/comet-each.log" 2>&1 ||
        echo "# run $run: experiment comet-each exited $? (see $dir/comet-each.log)"
    kill "$server" && wait "$server" 2>/dev/null || true
    server=

    "$BIN/examples/floor" --rate 16666 --secs "$SECS" >"$dir/floor.txt"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" "$RUNS" <<'EOF'
import json, os, re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
servers = {"comet": "compare/comet", "comet-each": "comet-each", "nchan": "compare/nchan"}
keys = ["p50", "p99", "p999", "max"]
rows = {name: [] for name in list(servers) + ["floor"]}
for run in range(1, runs + 1):
    base = os.path.join(out, str(run))
    for name, sub in servers.items():
        path = os.path.join(base, sub, "flood.json")
        try:
            s = json.load(open(path))
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
EOF
