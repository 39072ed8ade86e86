# Shared by the floodtest benchmark scripts: builds the release binaries,
# starts and stops comet-server processes, reads JSON summaries.
# Source it; it sets BIN and cleans up the servers on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release -q -p c1m-floodtest -p c1m-server)
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
SERVERS=()
ulimit -n "$(ulimit -Hn)"

stop_servers() {
    if ((${#SERVERS[@]})); then
        kill "${SERVERS[@]}" 2>/dev/null || true
        wait "${SERVERS[@]}" 2>/dev/null || true
    fi
    SERVERS=()
}
trap 'stop_servers; rm -rf "$WORK"' EXIT

# start_servers COUNT PORT ADMIN_BASE: COUNT comet-server processes sharing
# 127.0.0.1:PORT with SO_REUSEPORT (admin ports ADMIN_BASE+i); each holds at
# most 19,000 connections, under the 20,000-descriptor limit.
start_servers() {
    local count=$1 port=$2 admin=$3 i
    for ((i = 0; i < count; i++)); do
        "$BIN/comet-server" --listen "127.0.0.1:$port" --admin "127.0.0.1:$((admin + i))" \
            --reuse-port --max-conns 19000 >"$WORK/server$i.log" 2>&1 &
        SERVERS+=($!)
    done
    for ((i = 0; i < count; i++)); do
        for _ in $(seq 100); do
            grep -q listening "$WORK/server$i.log" && break
            sleep 0.05
        done
        grep -q listening "$WORK/server$i.log" || { cat "$WORK/server$i.log"; echo "comet-server $i did not start" >&2; exit 2; }
    done
}

# json FILE FIELD: one field of a floodtest --json summary.
json() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

median() {
    sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
