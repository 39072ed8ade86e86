# Shared by the floodtest benchmark scripts: builds the release binaries,
# starts comet-server processes, reads JSON summaries, and on any exit
# (success, failure, Ctrl-C, TERM) stops every process the script started.
# Source it; it sets BIN and WORK. Needs only bash, coreutils, awk and
# cargo: no python, no ss.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# PROFILE=debug reuses the binaries `cargo test` has built (no release
# build on a fresh machine); the figures are then a debug build's.
PROFILE=${PROFILE:-release}
case $PROFILE in
release) (cd "$ROOT" && cargo build --release -q -p c1m-floodtest -p c1m-server) ;;
debug) (cd "$ROOT" && cargo build -q -p c1m-floodtest -p c1m-server) ;;
*) echo "PROFILE must be release or debug, not $PROFILE" >&2; exit 2 ;;
esac
BIN=$CARGO_TARGET_DIR/$PROFILE
WORK=$(mktemp -d)
# Every process started in the background; `cleanup` ends them.
PIDS=()
ulimit -n "$(ulimit -Hn)"

cleanup() {
    if ((${#PIDS[@]})); then
        kill "${PIDS[@]}" 2>/dev/null || true
        wait "${PIDS[@]}" 2>/dev/null || true
    fi
    PIDS=()
    rm -rf "$WORK"
}
trap cleanup EXIT
# A signal exits through the EXIT trap too.
trap 'exit 130' INT TERM HUP

# Connections one comet-server may hold: its descriptor limit less a margin,
# at most 19,000 (here the hard limit is 20,000).
SERVER_CONNS=$(( $(ulimit -Hn) - 100 < 19000 ? $(ulimit -Hn) - 100 : 19000 ))

# start_servers COUNT PORT ADMIN_BASE: COUNT comet-server processes sharing
# 127.0.0.1:PORT with SO_REUSEPORT (admin ports ADMIN_BASE+i), each holding
# at most SERVER_CONNS. Waits for each readiness line (at most 10 s).
start_servers() {
    local count=$1 port=$2 admin=$3 i
    for ((i = 0; i < count; i++)); do
        "$BIN/comet-server" --listen "127.0.0.1:$port" --admin "127.0.0.1:$((admin + i))" \
            --reuse-port --max-conns "$SERVER_CONNS" >"$WORK/server$i.log" 2>&1 &
        PIDS+=($!)
    done
    for ((i = 0; i < count; i++)); do
        for _ in $(seq 200); do
            grep -q listening "$WORK/server$i.log" && break
            sleep 0.05
        done
        grep -q listening "$WORK/server$i.log" || {
            cat "$WORK/server$i.log" >&2
            echo "comet-server $i did not start" >&2
            exit 2
        }
    done
}

# json FILE FIELD: a top-level number of a floodtest --json summary (the
# file is pretty-printed: top-level fields are the lines indented by 2).
json() {
    sed -n "s/^  \"$2\": \\([0-9.]*\\),\\{0,1\\}\$/\\1/p" "$1"
}

median() {
    sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
