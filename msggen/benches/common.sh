# Shared by the msggen benchmark scripts: builds the binaries, starts a
# target (the counting sink example, or comet-server's admin listener) and
# stops it on exit. Source it; it sets BIN, OUT and after start_target, URL.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
OUT=${OUT:-$(mktemp -d /tmp/msggen-bench.XXXXXX)}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

build() {
    (cd "$ROOT" && cargo build --release -q -p c1m-msggen --bin msggen --example sink)
}

# wait_for FILE PATTERN: until the readiness line appears (10 s at most).
wait_for() {
    for _ in $(seq 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "no '$2' in $1" >&2
    cat "$1" >&2
    return 1
}

# start_sink PORT: the counting sink; sets URL.
start_sink() {
    "$BIN/examples/sink" "127.0.0.1:$1" >"$OUT/sink.log" 2>&1 &
    PIDS+=($!)
    wait_for "$OUT/sink.log" "listening"
    URL="http://127.0.0.1:$1"
}

# start_comet PORT: comet-server with its admin listener on PORT and
# subscribers on PORT+1; sets URL. Fails if it cannot be built.
start_comet() {
    (cd "$ROOT" && cargo build --release -q -p c1m-server) || return 1
    "$BIN/comet-server" --admin "127.0.0.1:$1" --listen "127.0.0.1:$(($1 + 1))" >"$OUT/comet.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && { URL="http://127.0.0.1:$1"; return 0; }
        sleep 0.05
    done
    echo "comet-server did not listen on $1" >&2
    cat "$OUT/comet.log" >&2
    return 1
}
