#!/usr/bin/env bash
# The reliability suite (issue 13): faults, hostile input and overload tried
# on purpose against the real binaries, on loopback, every wait bounded. It
# covers what `cargo test` cannot express at this size or across processes:
# framing and smuggling shapes on both listeners, limits, half-closes, reset
# floods, slowloris while others are served, SIGKILL mid-run with floodtest
# --reconnect, nats-server killed under broker mode, reconnect with
# --history, and every tool's value flags at 0, 1, max, max+1, negative and
# garbage. Ends with a table (case, what was done, expected, observed,
# PASS/FAIL); exit 0 when every case passed, 1 when one failed, 2 on an
# error of the suite itself.
#
#   scripts/reliability.sh          # everything (~3 min here)
#   scripts/reliability.sh --fast   # the part under 3 minutes (.ci/run)
#   CASES="floods args" scripts/reliability.sh   # some cases only
#
# Uses the debug binaries (dependencies are optimised in the dev profile).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FAST=0
case ${1:-} in
--fast) FAST=1 ;;
"") ;;
*) echo "usage: scripts/reliability.sh [--fast]" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# BIN=folder runs the binaries there instead of building them.
if [[ -z ${BIN:-} ]]; then
    (cd "$ROOT" && cargo build -q -p c1m-server -p c1m-floodtest -p c1m-msggen -p c1m-sysctl \
        -p c1m-memlog -p c1m-plots -p c1m-experiments)
    BIN=$CARGO_TARGET_DIR/debug
fi
PEERS=$ROOT/scripts/reliability/peers.py
WORK=$(mktemp -d)
TABLE=$WORK/table.tsv
PIDS=()
ulimit -n "$(ulimit -Hn)"

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# row CASE DONE EXPECTED OBSERVED OK(0|1): one line of the table.
row() {
    local verdict=FAIL
    [[ $5 == 1 ]] && verdict=PASS
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$verdict" | tee -a "$TABLE"
}

# A free loopback port (the kernel's choice, released at once).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server NAME ARGS...: comet-server on free ports; sets SUB, ADMIN,
# SPID. Waits for its readiness line (at most 10 s).
start_server() {
    local name=$1 line
    shift
    "$BIN/comet-server" "$@" >"$WORK/$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 200); do
        line=$(grep -m1 listening "$WORK/$name.log" || true)
        [[ -n $line ]] && break
        sleep 0.05
    done
    [[ -n $line ]] || { cat "$WORK/$name.log" >&2; echo "reliability: comet-server $name did not start" >&2; exit 2; }
    SUB=$(awk '{print $4}' <<<"$line")
    ADMIN=$(awk '{print $6}' <<<"$line")
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# json FILE EXPR: a figure from a JSON document (python, like peers.py).
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$1" "$2"; }

# stat ADMIN EXPR: a figure from GET /stats.
stat() { curl -s --max-time 3 "http://$1/stats" >"$WORK/stats.json" && json "$WORK/stats.json" "$2"; }

# peers CASE ARGS...: a raw-socket case of peers.py against SUB/ADMIN/SPID.
peers() { python3 "$PEERS" "$SUB" "$ADMIN" "$SPID" "$@" | tee -a "$TABLE" || true; }

source "$ROOT/scripts/reliability/cases.sh"

START=$SECONDS
# CASES="floods args" runs only those (the names after case_ in cases.sh).
if [[ -n ${CASES:-} ]]; then
    for c in $CASES; do "case_$c"; done
else
    case_wire
    case_floods
    case_sigkill_standalone
    case_args
    if ((!FAST)); then
        case_sigkill_worker
        case_broker_restart
        case_slow_readers
    fi
fi

echo
echo "reliability: $(wc -l <"$TABLE") checks in $((SECONDS - START))s$( ((FAST)) && echo ' (--fast)')"
awk -F'\t' '{ printf "%-4s  %-44s  %s\n      did: %s | expected: %s\n", $5, $1, $4, $2, $3 }' "$TABLE"
failed=$(awk -F'\t' '$5 != "PASS"' "$TABLE" | wc -l)
if ((failed)); then
    echo "reliability: $failed check(s) failed"
    exit 1
fi
echo "reliability: every check passed"
