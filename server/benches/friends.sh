#!/usr/bin/env bash
# Part 3's subscription manager (issue 16's figures) at what one process
# holds here: the friends graph, fan-out of events to friends, broadcast.
#
#   server/benches/friends.sh                      # every figure, medians of RUNS=3
#   RUNS=1 USERS="100000" server/benches/friends.sh  # a quick look
#   PARTS=broadcast server/benches/friends.sh        # some of graph, fanout, broadcast
#
# Prints `uptime` before and after each figure (the machine is shared with
# other builds), every run, and the medians:
#  1. graph: for each of USERS (100K, 1M; 50 friends on average, `msggen
#     graph`): comet-server's load time (its own "loaded in" line, and the
#     wall time from exec to listening) and resident memory without and
#     with `--friends` (VmRSS once listening; the server's own "RSS +" line).
#  2. fan-out over the 1M-user graph to CONNS=19,000 /test connections held
#     by floodtest, the ids 1-19000: the graph gives the lowest ids the most
#     friends, so they are the online users events reach. Events from
#     publishers uniform over 1-1M (`msggen --publish comet-events`):
#     (a) --rate max, COUNT events: events/s and fan-out deliveries/s (the
#         deliveries msggen's `expected` says were queued, over the time from
#         the first event to comet-server's `fanout_out` reaching them);
#     (b) --rate RATE (1,666/s) for SECS: p99 delivery latency (floodtest,
#         from each event's send stamp) and loss (`expected - events`), and
#         per kind of thread its CPU and its wait for a CPU
#         (`server/benches/threads.py`).
#  3. broadcast: one POST /broadcast to the CONNS connections; the time from
#     the request to the last byte floodtest received (the message is an
#     event envelope stamped just before the request, so floodtest's
#     latency max is that time), and beside it the kernel's floor for the
#     same sockets (`examples/fan_floor.rs`, when CONNS fits one process).
#
# By default one process (2 reactors) serves the fan-out and the broadcast;
# WORKERS=N serves them from a group (`--workers N --friends`: the front
# holds the graph and fans each event out to the workers), the way to go
# past one process's descriptors (hard limit 20,000 here):
#
#   WORKERS=6 CONNS=100000 RUNS=1 USERS=100000 server/benches/friends.sh
#
# Past 28,000 connections floodtest binds 127.0.0.2-127.0.0.3 with explicit
# local ports (one source IP has ~28K ephemeral ports).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
RUNS=${RUNS:-3}
USERS=${USERS:-"100000 1000000"}
CONNS=${CONNS:-19000}
COUNT=${COUNT:-100000}
RATE=${RATE:-1666}
SECS=${SECS:-20}
BASE=${PORT:-19300}
WORKERS=${WORKERS:-}
PARTS=${PARTS:-"graph fanout broadcast"}
((SECS >= 2)) || { echo "friends.sh: SECS=$SECS: the paced events need at least 2 s" >&2; exit 2; }
if [ -n "$WORKERS" ]; then
  SERVING=(--workers "$WORKERS" --max-conns "$((CONNS * 11 / 10))")
else
  ((CONNS <= 19000)) || { echo "friends.sh: CONNS=$CONNS is past one process's descriptors: set WORKERS (a group)" >&2; exit 2; }
  SERVING=(--reactors 2)
fi
ADDRESSING=()
((CONNS <= 28000)) || ADDRESSING=(--bind-mode explicit --source-ips 127.0.0.2-127.0.0.3)
ulimit -n "$(ulimit -Hn)"

cargo build -q --release -p c1m-server -p c1m-floodtest -p c1m-msggen
cargo build -q --release -p c1m-server --example fan_floor
BIN=$CARGO_TARGET_DIR/release
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

load() { echo "uptime ($1): $(uptime)"; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
range_of() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
stat_of() { curl -s "http://$ADMIN/stats" | jq -r ".$1"; }
now_s() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

server() { # name args... -> $LISTEN $ADMIN $SPID $SECS_TO_LISTEN
  local name=$1; shift
  local t0; t0=$(now_s)
  "$BIN/comet-server" --listen 127.0.0.1:0 --admin 127.0.0.1:0 "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  SPID=$!; pids+=($SPID)
  for _ in $(seq 1200); do
    grep -q "listening" "$tmp/$name.out" 2>/dev/null && break
    kill -0 "$SPID" 2>/dev/null || { cat "$tmp/$name.err" >&2; exit 2; }
    sleep 0.02
  done
  SECS_TO_LISTEN=$(calc "round($(now_s) - $t0, 2)")
  LISTEN=$(awk '{print $4}' "$tmp/$name.out"); ADMIN=$(awk '{print $6}' "$tmp/$name.out")
}
stop_server() { kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true; }

flood() { # json: CONNS streams of ids 1-CONNS, returns once all are logged in ($FPID)
  "$BIN/floodtest" --url "http://$LISTEN/test/{id}" --conns "$CONNS" --ids "1-$CONNS" "${ADDRESSING[@]}" \
    --rate 20000 --duration 600s --report-interval 200ms --json "$1" >"$1.out" 2>"$1.err" &
  FPID=$!; pids+=($FPID)
  for _ in $(seq 1200); do
    [ "$(stat_of logged_in)" -ge "$CONNS" ] && return 0
    sleep 0.1
  done
  echo "friends.sh: only $(stat_of logged_in) of $CONNS logged in" >&2; exit 2
}
chunks_seen() { # floodtest's last interval line: Stats: {active,closed,chunks}
  tail -n 1 "$1.out" | sed -n 's/.*Stats: {[0-9]*,[0-9]*,\([0-9]*\)}.*/\1/p'
}
stop_flood_after() { # json chunks: waits (at most 60 s) until floodtest has read them, then stops it
  for _ in $(seq 600); do
    [ "$(chunks_seen "$1")" -ge "$2" ] 2>/dev/null && break
    sleep 0.1
  done
  kill -INT "$FPID"; wait "$FPID" 2>/dev/null || true
  # The next run counts its own logins only.
  for _ in $(seq 600); do [ "$(stat_of logged_in)" = 0 ] && break; sleep 0.05; done
}
wait_fanout() { # target: until /stats fanout_out reaches it (at most 120 s)
  for _ in $(seq 1200); do
    [ "$(stat_of fanout_out)" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "friends.sh: fanout_out $(stat_of fanout_out) never reached $1" >&2
}
events() { # json args...: msggen --publish comet-events from publishers 1-1M
  "$BIN/msggen" --target "http://$ADMIN" --publish comet-events --ids 1-1000000 \
    --no-progress --report-interval 60s --json "$1" "${@:2}" >"$1.out" 2>"$1.err"
}

echo "friends.sh: $PARTS; runs $RUNS, connections $CONNS, users $USERS, ${WORKERS:-no} workers; $(nproc) cores"

want() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- 1: the graph ----------------------------------------------------------
want graph || USERS=""
for users in $USERS; do
  load "before graph $users"
  "$BIN/msggen" graph --users "$users" --avg-friends 50 --seed 1 --out "$tmp/friends-$users.csv" \
    2>&1 | sed 's/^/  /'
  loads=(); walls=(); deltas=(); self=()
  for run in $(seq "$RUNS"); do
    server plain --reactors 2
    bare=$(rss_kb "$SPID"); stop_server
    server graph --reactors 2 --friends "$tmp/friends-$users.csv"
    with=$(rss_kb "$SPID"); stop_server
    line=$(grep "friends graph" "$tmp/graph.err")
    took=$(sed -n 's/.*loaded in \([0-9.]*\) s.*/\1/p' <<<"$line")
    grew=$(sed -n 's/.*(RSS +\([0-9]*\) bytes).*/\1/p' <<<"$line")
    echo "graph $users run $run: load ${took} s (exec to listening ${SECS_TO_LISTEN} s); VmRSS ${bare} kB without, ${with} kB with = +$(( (with - bare) / 1024 )) MiB; server: RSS +$((grew / 1048576)) MiB"
    loads+=("$took"); walls+=("$SECS_TO_LISTEN"); deltas+=("$(( (with - bare) * 1024 ))"); self+=("$grew")
  done
  echo "  $line"
  echo "FIGURE graph $users users x 50 friends: load $(median_of "${loads[@]}") s (runs $(range_of "${loads[@]}"); exec to listening $(median_of "${walls[@]}") s), resident +$(calc "round($(median_of "${deltas[@]}") / 1e6, 1)") MB (runs $(calc "round($(printf '%s\n' "${deltas[@]}" | sort -n | head -1) / 1e6, 1)")-$(calc "round($(printf '%s\n' "${deltas[@]}" | sort -n | tail -1) / 1e6, 1)"); server's own RSS + $(calc "round($(median_of "${self[@]}") / 1e6, 1)") MB)"
  load "after graph $users"
  [ "$users" = 1000000 ] || rm -f "$tmp/friends-$users.csv"
done

# ---- 2: fan-out ------------------------------------------------------------
if want fanout; then
  GRAPH=$tmp/friends-1000000.csv
  [ -f "$GRAPH" ] || "$BIN/msggen" graph --users 1000000 --avg-friends 50 --seed 1 --out "$GRAPH" >/dev/null 2>&1
  server fanout "${SERVING[@]}" --friends "$GRAPH"
  echo "fan-out server: ${SERVING[*]}; floodtest ${ADDRESSING[*]:-one source IP}"

  load "before fan-out at --rate max"
  rates=(); evrates=(); maxloss=()
  for run in $(seq "$RUNS"); do
    flood "$tmp/fmax$run.json"
    out0=$(stat_of fanout_out); t0=$(now_s)
    # Flat out, the admin answers a 1,000-event batch only once the reactors
    # have room for its ~12,000 deliveries: seconds. Past the 5 s default
    # --timeout msggen retries a batch the server may have fanned out
    # (counted as uncertain, and floodtest sees it twice).
    events "$tmp/mmax$run.json" --rate max --count "$COUNT" --timeout 60s
    expected=$(jq -r .expected "$tmp/mmax$run.json")
    wait_fanout $((out0 + expected)); t1=$(now_s)
    stop_flood_after "$tmp/fmax$run.json" $((CONNS + expected))
    got=$(jq -r .events "$tmp/fmax$run.json")
    secs=$(calc "$t1 - $t0")
    rate=$(calc "round($expected / $secs)"); evrate=$(calc "round($(jq -r .sent "$tmp/mmax$run.json") / $secs)")
    echo "fan-out max run $run: $(jq -r .sent "$tmp/mmax$run.json") events in $(calc "round($secs, 2)") s = $evrate events/s; expected $expected deliveries ($(calc "round($expected / $COUNT, 1)") per event), unheard $(jq -r .unheard "$tmp/mmax$run.json"), uncertain $(jq -r .uncertain "$tmp/mmax$run.json"); $rate deliveries/s; floodtest events $got, lost $((expected - got)); answer p99 $(jq -r .answer_us.p99 "$tmp/mmax$run.json") us, failed attempts $(jq -c .errors_by_class "$tmp/mmax$run.json"); slow-consumer closes $(stat_of slow_consumer_closes)"
    rates+=("$rate"); evrates+=("$evrate"); maxloss+=("$((expected - got))")
  done
  echo "FIGURE fan-out, $CONNS conns, 1M-user graph, --rate max: $(median_of "${rates[@]}") deliveries/s (runs $(range_of "${rates[@]}")) at $(median_of "${evrates[@]}") events/s; lost ${maxloss[*]}"
  load "after fan-out at --rate max"

  load "before fan-out at $RATE events/s"
  p99s=(); p50s=(); losses=()
  for run in $(seq "$RUNS"); do
    flood "$tmp/fpaced$run.json"
    out0=$(stat_of fanout_out)
    # Where the CPU went, per kind of thread, over the events but their
    # last second (msggen's threads end with them).
    python3 server/benches/threads.py snap "$tmp/threads$run"
    (sleep "$((SECS - 1))"; python3 server/benches/threads.py diff "$tmp/threads$run" >"$tmp/threads$run.txt") &
    tpid=$!
    events "$tmp/mpaced$run.json" --rate "$RATE" --duration "${SECS}s"
    wait "$tpid"
    expected=$(jq -r .expected "$tmp/mpaced$run.json")
    wait_fanout $((out0 + expected))
    stop_flood_after "$tmp/fpaced$run.json" $((CONNS + expected))
    got=$(jq -r .events "$tmp/fpaced$run.json")
    p99=$(jq -r .latency_us.p99 "$tmp/fpaced$run.json"); p50=$(jq -r .latency_us.p50 "$tmp/fpaced$run.json")
    echo "fan-out paced run $run: $(jq -r .sent "$tmp/mpaced$run.json") events at $(jq -r '.achieved_rate | floor' "$tmp/mpaced$run.json") events/s; expected $expected, floodtest events $got, lost $((expected - got)), uncertain $(jq -r .uncertain "$tmp/mpaced$run.json"); latency p50 $p50 us p99 $p99 us max $(jq -r .latency_us.max "$tmp/fpaced$run.json") us"
    cat "$tmp/threads$run.txt"
    p99s+=("$p99"); p50s+=("$p50"); losses+=("$((expected - got))")
  done
  echo "FIGURE fan-out at $RATE events/s: p99 $(median_of "${p99s[@]}") us (runs $(range_of "${p99s[@]}")), p50 $(median_of "${p50s[@]}") us; lost ${losses[*]}"
  load "after fan-out at $RATE events/s"
else
  server broadcast "${SERVING[@]}"
fi

# ---- 3: broadcast ----------------------------------------------------------
load "before broadcast"
lasts=()
for run in $(seq "$RUNS"); do
  flood "$tmp/fb$run.json"
  before=$(stat_of broadcast_out)
  # Stamped just before the request is written: floodtest's latency of it
  # is, per connection, the time from the request to its bytes arriving.
  python3 - "$ADMIN" "$run" <<'EOF'
import http.client, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
conn.connect()
payload = b"broadcast"
body = b"[c1e 0 4242 %s %d %d|%s]" % (sys.argv[2].encode(), time.time_ns() // 1000, len(payload), payload)
conn.request("POST", "/broadcast", body)
assert conn.getresponse().status == 200
EOF
  stop_flood_after "$tmp/fb$run.json" $((CONNS * 2))
  got=$(jq -r .events "$tmp/fb$run.json"); last=$(jq -r .latency_us.max "$tmp/fb$run.json")
  echo "broadcast run $run: written to $(( $(stat_of broadcast_out) - before )) connections, received by $got; request to last byte $last us (p50 $(jq -r .latency_us.p50 "$tmp/fb$run.json") us)"
  lasts+=("$last")
done
echo "FIGURE broadcast to $CONNS conns: request to last byte $(median_of "${lasts[@]}") us (runs $(range_of "${lasts[@]}"))"
if ((CONNS <= 19900)); then
  # The kernel's floor at the same moment: 2 threads writing one record to
  # each of CONNS loopback sockets, another process's 2 threads polling
  # them (server/examples/fan_floor.rs).
  floors=()
  while read -r line; do
    echo "  $line"
    floors+=("$(sed -n 's/.*last_us=\([0-9]*\).*/\1/p' <<<"$line")")
  done < <("$BIN/examples/fan_floor" --conns "$CONNS" --writers 2 --readers 2 --runs "$RUNS")
  echo "FIGURE broadcast floor, $CONNS loopback sockets, 2 writers, 2 readers: last record $(median_of "${floors[@]}") us (runs $(range_of "${floors[@]}"))"
fi
load "after broadcast"
stop_server
