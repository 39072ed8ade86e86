#!/usr/bin/env bash
# Friends' events across groups joined by NATS (`--broker --friends`):
# what carrying each event once per group costs, against one process
# holding the same connections without a broker, in one sitting.
#
#   server/benches/broker_events.sh              # medians of RUNS=3
#   RUNS=1 USERS=100000 server/benches/broker_events.sh
#
# Setup: a nats-server (Debian's, with its monitoring port) on a free
# loopback port; NGROUPS=2 standalone comet-servers (`--reactors 1 --broker
# --friends`, the same USERS graph, 50 friends on average), each holding
# CONNS/NGROUPS /test connections from its own floodtest (ids 1-CONNS, the
# graph's best-connected users); msggen posts events to the first group
# only, from publishers uniform over 1-USERS. The baseline is one
# comet-server (`--reactors 2 --friends`, no broker) holding all CONNS.
#
# For each:
#  (a) --rate max, COUNT events: deliveries/s (the servers' summed
#      `fanout_out` over the time from the first event to the last
#      delivery queued) and lost (`fanout_out` minus floodtest's events);
#  (b) --rate RATE for SECS: p50/p99 delivery latency (the worst of the
#      floodtests) and lost;
#  and for the broker: NATS bytes out per event (monitoring's `out_bytes`),
#  beside what the other design, a router expanding each event into one
#  `id<TAB>event` line per friend for every group, would carry (the same
#  events' measured size and friend count).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
RUNS=${RUNS:-3}
USERS=${USERS:-1000000}
CONNS=${CONNS:-19000}
NGROUPS=${NGROUPS:-2}
COUNT=${COUNT:-50000}
RATE=${RATE:-1666}
SECS=${SECS:-20}
command -v nats-server >/dev/null || { apt-get update -qq && apt-get install -y -qq nats-server >/dev/null; }
ulimit -n "$(ulimit -Hn)"

cargo build -q --release -p c1m-server -p c1m-floodtest -p c1m-msggen
BIN=$CARGO_TARGET_DIR/release
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

load() { echo "uptime ($1): $(uptime)"; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
range_of() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
calc() { python3 -c "print($1)"; }
now_s() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stat_of() { curl -s "http://$1/stats" | jq -r ".$2"; }
sum_stat() { local t=0 a; for a in "${ADMINS[@]}"; do t=$((t + $(stat_of "$a" "$1"))); done; echo "$t"; }
varz() { curl -s "http://127.0.0.1:$MPORT/varz" | jq -r ".$1"; }

NPORT=$(free_port); MPORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NPORT" -m "$MPORT" >"$tmp/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$MPORT/varz" >/dev/null && break; sleep 0.05; done

GRAPH=$tmp/friends.csv
"$BIN/msggen" graph --users "$USERS" --avg-friends 50 --seed 1 --out "$GRAPH" >/dev/null 2>&1

LISTENS=(); ADMINS=(); SPIDS=()
start_servers() { # args... for every server of the setup (one per NGROUPS or one)
  LISTENS=(); ADMINS=(); SPIDS=()
  local n=$1; shift
  for i in $(seq "$n"); do
    "$BIN/comet-server" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --friends "$GRAPH" "$@" \
      >"$tmp/s$i.out" 2>"$tmp/s$i.err" &
    SPIDS+=($!); pids+=($!)
    for _ in $(seq 1500); do
      grep -q "listening" "$tmp/s$i.out" 2>/dev/null && break
      kill -0 "${SPIDS[-1]}" 2>/dev/null || { cat "$tmp/s$i.err" >&2; exit 2; }
      sleep 0.02
    done
    LISTENS+=("$(awk '{print $4}' "$tmp/s$i.out")"); ADMINS+=("$(awk '{print $6}' "$tmp/s$i.out")")
  done
}
stop_servers() { for p in "${SPIDS[@]}"; do kill -INT "$p"; wait "$p" 2>/dev/null || true; done; }

FPIDS=()
flood() { # name: each server's share of ids 1-CONNS, one floodtest each
  FPIDS=()
  local n=${#LISTENS[@]} share=$((CONNS / ${#LISTENS[@]})) i
  for i in $(seq 0 $((n - 1))); do
    local lo=$((i * share + 1)) hi=$(((i + 1) * share))
    "$BIN/floodtest" --url "http://${LISTENS[$i]}/test/{id}" --conns "$share" --ids "$lo-$hi" \
      --rate 20000 --duration 600s --report-interval 200ms --json "$tmp/$1-$i.json" \
      >"$tmp/$1-$i.out" 2>"$tmp/$1-$i.err" &
    FPIDS+=($!); pids+=($!)
  done
  for _ in $(seq 1200); do [ "$(sum_stat logged_in)" -ge $((share * n)) ] && return 0; sleep 0.1; done
  echo "broker_events.sh: only $(sum_stat logged_in) logged in" >&2; exit 2
}
settle() { # until the summed fanout_out stops moving for 1 s (at most 120 s); prints when it last moved
  local last=-1 moved now
  moved=$(now_s)
  for _ in $(seq 1200); do
    now=$(sum_stat fanout_out)
    if [ "$now" != "$last" ]; then last=$now; moved=$(now_s); fi
    [ "$(calc "$(now_s) - $moved > 1.0")" = True ] && break
    sleep 0.1
  done
  echo "$moved"
}
stop_flood() { # name: stops the floodtests once they read what was queued; prints events received
  local want=$1 i got=0
  for _ in $(seq 600); do
    got=0
    for i in $(seq 0 $((${#FPIDS[@]} - 1))); do
      got=$((got + $(tail -n 1 "$tmp/$2-$i.out" | sed -n 's/.*Stats: {[0-9]*,[0-9]*,\([0-9]*\)}.*/\1/p')))
    done
    [ "$got" -ge "$want" ] && break
    sleep 0.1
  done
  for p in "${FPIDS[@]}"; do kill -INT "$p"; wait "$p" 2>/dev/null || true; done
  for _ in $(seq 600); do [ "$(sum_stat logged_in)" = 0 ] && break; sleep 0.05; done
}
events_got() { local t=0 i; for i in $(seq 0 $((${#FPIDS[@]} - 1))); do t=$((t + $(jq -r .events "$tmp/$1-$i.json"))); done; echo "$t"; }
worst() { local w=0 i v; for i in $(seq 0 $((${#FPIDS[@]} - 1))); do v=$(jq -r ".latency_us.$2" "$tmp/$1-$i.json"); ((v > w)) && w=$v; done; echo "$w"; }

measure() { # label
  local label=$1 rates=() losses=() p99s=() p50s=() plosses=()
  bytes=(); ins=()
  load "before $label"
  for run in $(seq "$RUNS"); do
    flood "m$run"
    local out0 t0 t1 ob0 om0 ib0 queued got
    out0=$(sum_stat fanout_out); ob0=$(varz out_bytes); om0=$(varz out_msgs); ib0=$(varz in_bytes); t0=$(now_s)
    "$BIN/msggen" --target "http://${ADMINS[0]}" --publish comet-events --ids "1-$USERS" \
      --rate max --count "$COUNT" --timeout 60s --no-progress --json "$tmp/msg$run.json" \
      >"$tmp/msg$run.out" 2>&1
    t1=$(settle)
    queued=$(($(sum_stat fanout_out) - out0))
    stop_flood $((CONNS / ${#LISTENS[@]} * ${#LISTENS[@]} + queued)) "m$run"
    got=$(events_got "m$run")
    local rate; rate=$(calc "round($queued / ($t1 - $t0))")
    local line="$label max run $run: $COUNT events, $queued deliveries queued, $got received, lost $((queued - got)); $rate deliveries/s"
    if [ "$label" = broker ]; then
      local b m i
      b=$(($(varz out_bytes) - ob0)); m=$(($(varz out_msgs) - om0)); i=$(($(varz in_bytes) - ib0))
      line+="; NATS in $(calc "round($i / $COUNT, 1)") bytes per event, out $m messages, $(calc "round($b / $COUNT, 1)") bytes per event"
      bytes+=("$(calc "$b / $COUNT")"); ins+=("$(calc "$i / $COUNT")")
    fi
    echo "$line"
    rates+=("$rate"); losses+=("$((queued - got))")
  done
  echo "FIGURE $label, $CONNS conns, $USERS-user graph, --rate max: $(median_of "${rates[@]}") deliveries/s (runs $(range_of "${rates[@]}")); lost ${losses[*]}"
  if [ "$label" = broker ]; then
    # The other design, a router expanding each event into one
    # `id<TAB>event` line per friend for every group (where a friend is
    # connected is not known to it), from the same events: a line per
    # friend about as long as the publisher's line (the bytes in per event).
    local degree
    degree=$(calc "2 * ($(wc -l <"$GRAPH") - 1) / $USERS")
    echo "FIGURE broker: NATS bytes per event in $(calc "round($(median_of "${ins[@]}"), 1)"), out $(calc "round($(median_of "${bytes[@]}"), 1)") (runs $(range_of "${bytes[@]}")) over $NGROUPS groups; expanded per friend it would be ~$(calc "round($degree * $(median_of "${ins[@]}") * $NGROUPS)") out ($(calc "round($degree, 1)") friends per user)"
  fi
  for run in $(seq "$RUNS"); do
    flood "p$run"
    local out0 queued got
    out0=$(sum_stat fanout_out)
    "$BIN/msggen" --target "http://${ADMINS[0]}" --publish comet-events --ids "1-$USERS" \
      --rate "$RATE" --duration "${SECS}s" --no-progress --json "$tmp/pmsg$run.json" >"$tmp/pmsg$run.out" 2>&1
    settle >/dev/null
    queued=$(($(sum_stat fanout_out) - out0))
    stop_flood $((CONNS / ${#LISTENS[@]} * ${#LISTENS[@]} + queued)) "p$run"
    got=$(events_got "p$run")
    local p50 p99; p50=$(worst "p$run" p50); p99=$(worst "p$run" p99)
    echo "$label paced run $run: $(jq -r .sent "$tmp/pmsg$run.json") events at $(jq -r '.achieved_rate | floor' "$tmp/pmsg$run.json")/s, $queued deliveries queued, $got received, lost $((queued - got)); latency p50 $p50 us p99 $p99 us (worst floodtest)"
    p99s+=("$p99"); p50s+=("$p50"); plosses+=("$((queued - got))")
  done
  echo "FIGURE $label at $RATE events/s: p99 $(median_of "${p99s[@]}") us (runs $(range_of "${p99s[@]}")), p50 $(median_of "${p50s[@]}") us; lost ${plosses[*]}"
  load "after $label"
}

echo "broker_events.sh: runs $RUNS, $CONNS connections, $USERS users, $NGROUPS groups; $(nproc) cores"
start_servers 1 --reactors 2
measure baseline
stop_servers
start_servers "$NGROUPS" --reactors 1 --broker "nats://127.0.0.1:$NPORT"
for a in "${ADMINS[@]}"; do
  for _ in $(seq 100); do [ "$(stat_of "$a" broker.connected)" = true ] && break; sleep 0.05; done
done
measure broker
stop_servers
