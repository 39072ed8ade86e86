#!/usr/bin/env bash
# Broker mode (issue 15's figures): comet-server groups joined by a real
# nats-server on loopback, loaded by floodtest and msggen.
#
#   server/benches/broker.sh                 # every figure, medians of RUNS=3 where cheap
#   RUNS=1 BIG=0 server/benches/broker.sh    # skip the 100,000-connection part
#
# Prints, with the load average before and after:
#  1. exactly once: 2 broker-mode servers + NATS, 20,000 connections split
#     between them, 100,000 messages to random ids at 16,666 msg/s; floodtest
#     must count 100,000 envelopes received and 0 lost (each id has one
#     connection, so a duplicate would show as more, a loss as fewer).
#  2. delivered msg/s and p99 latency at 16,666 msg/s: that broker pair
#     against one plain process (19,000 connections: one process's limit),
#     alternating in one run; the ratio.
#  3. memory per connection in broker mode (PSS of every comet-server
#     process, and of nats-server separately) at 19,000 (one server) and
#     100,000 connections, the latter for two schemes: (b) one group,
#     `--workers 6 --broker` (handoff, one NATS subscription per machine)
#     and (a) 6 standalone `--reuse-port --broker` servers, each receiving
#     every message and filtering locally; with their NATS deliveries per
#     delivered message and throughput.
#  4. NATS deliveries per delivered message on one machine and in a 3-node
#     cluster (routes on loopback, two groups on different nodes), from the
#     servers' /varz (out_msgs summed over nodes, routes included).
#  5. the handoff: ramp time and server CPU for 19,000 connections into one
#     process against a group of 2 workers (about half handed off), so CPU
#     per handed-off connection.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
RUNS=${RUNS:-3}
BIG=${BIG:-1}
RATE=${RATE:-16666}
BASE=${PORT:-19100}
command -v nats-server >/dev/null || { echo "broker.sh: needs nats-server (apt-get install nats-server)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

cargo build -q --release -p c1m-server -p c1m-floodtest -p c1m-msggen
BIN=$CARGO_TARGET_DIR/release
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); runs: $RUNS; rate: $RATE msg/s"
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
varz() { curl -s "http://127.0.0.1:$1/varz" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['in_msgs'], d['out_msgs'])"; }
stat_of() { curl -s "http://$1/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d$2)"; }

nats() { # client-port monitor-port [cluster-port routes]
  local args=(-a 127.0.0.1 -p "$1" -m "$2")
  [ $# -gt 2 ] && args+=(--cluster_name bench --cluster "nats://127.0.0.1:$3" --routes "$4")
  nats-server "${args[@]}" >"$tmp/nats-$1.log" 2>&1 &
  pids+=($!); NATS_PID=$!
  for _ in $(seq 100); do grep -q "Server is ready" "$tmp/nats-$1.log" && return; sleep 0.05; done
  echo "nats-server on $1 did not start" >&2; exit 2
}

server() { # name args... -> $LISTEN $ADMIN $SPID
  local name=$1; shift
  "$BIN/comet-server" --admin 127.0.0.1:0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  SPID=$!; pids+=($SPID)
  for _ in $(seq 200); do grep -q "listening" "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
  LISTEN=$(awk '{print $4}' "$tmp/$name.out"); ADMIN=$(awk '{print $6}' "$tmp/$name.out")
}

group_pids() { # admin -> front's workers' pids
  curl -s "http://$1/stats" | python3 -c "import json,sys; print(' '.join(str(w['pid']) for w in json.load(sys.stdin).get('workers', [])))"
}

wait_logged() { # admins... : waits until the sum of logged_in reaches $WANT
  for _ in $(seq 1200); do
    local sum=0
    for a in "$@"; do sum=$((sum + $(stat_of "$a" "['logged_in']"))); done
    [ "$sum" -ge "$WANT" ] && return 0
    sleep 0.1
  done
  echo "only $sum of $WANT logged in" >&2; return 1
}

flood() { # url conns json extra-args... (background; $FPID)
  "$BIN/floodtest" --url "$1" --conns "$2" --ids "1-$2" --rate 20000 --duration 600s \
    --report-interval 60s --json "$3" "${@:4}" >/dev/null 2>"$3.err" &
  FPID=$!; pids+=($FPID)
}

stop_flood() { kill -INT "$FPID"; wait "$FPID" 2>/dev/null || true; }

msggen() { # admin count json
  "$BIN/msggen" --target "http://$1" --ids "1-$CONNS" --rate "$RATE" --count "$2" \
    --no-progress --report-interval 60s --json "$3" >/dev/null 2>"$3.err"
}

median_of() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- 1 + 2: exactly once, and broker against one process -------------------
NP=$((BASE)); NM=$((BASE + 1))
nats "$NP" "$NM"
broker_rates=(); broker_p99=(); single_rates=(); single_p99=(); exact=()
for run in $(seq "$RUNS"); do
  P=$((BASE + 10 + run * 4))
  # two broker-mode servers on ports P and P+1; floodtest spreads over both
  server b1 --listen "127.0.0.1:$P" --broker "nats://127.0.0.1:$NP" --reactors 1; A1=$ADMIN; S1=$SPID
  server b2 --listen "127.0.0.1:$((P + 1))" --broker "nats://127.0.0.1:$NP" --reactors 1; A2=$ADMIN; S2=$SPID
  CONNS=20000; WANT=$CONNS
  flood "http://127.0.0.1:$P-$((P + 1))/test/{id}" "$CONNS" "$tmp/fb$run.json" --source-ips "127.0.$((100 + run)).2" --bind-mode noport
  wait_logged "$A1" "$A2"
  read -r in0 out0 < <(varz "$NM")
  msggen "$A1" 100000 "$tmp/mb$run.json"
  sleep 1
  read -r in1 out1 < <(varz "$NM")
  stop_flood
  got=$(jq_ "$tmp/fb$run.json" "d['messages']"); lost=$(jq_ "$tmp/fb$run.json" "d['lost']")
  span=$(jq_ "$tmp/mb$run.json" "d['send_span_s']"); sent=$(jq_ "$tmp/mb$run.json" "d['sent']")
  p99=$(jq_ "$tmp/fb$run.json" "d['latency_us']['p99']")
  rate=$(python3 -c "print(round($got / max($span, 1e-9)))")
  delivered_lines=$got
  echo "broker run $run: 2 servers + NATS, $CONNS conns: sent $sent, received $got, lost $lost, p99 ${p99} us, ${rate} msg/s delivered; NATS msgs in $((in1 - in0)) out $((out1 - out0)) (per delivered message $(python3 -c "print(round(($out1 - $out0) / max($delivered_lines, 1), 4))"), out/in $(python3 -c "print(round(($out1 - $out0) / max($in1 - $in0, 1), 2))"))"
  exact+=("$([ "$got" = "$sent" ] && [ "$lost" = 0 ] && echo yes || echo NO)")
  broker_rates+=("$rate"); broker_p99+=("$p99")
  kill -INT "$S1" "$S2"; wait "$S1" "$S2" 2>/dev/null || true

  # one plain process, the same load (19,000: one process's descriptors)
  server s1 --listen "127.0.0.1:$((P + 2))" --reactors 2; A=$ADMIN; S=$SPID
  CONNS=19000; WANT=$CONNS
  flood "http://$LISTEN/test/{id}" "$CONNS" "$tmp/fs$run.json" --source-ips "127.0.$((110 + run)).2" --bind-mode noport
  wait_logged "$A"
  msggen "$A" 100000 "$tmp/ms$run.json"
  sleep 1
  stop_flood
  got=$(jq_ "$tmp/fs$run.json" "d['messages']"); span=$(jq_ "$tmp/ms$run.json" "d['send_span_s']")
  p99=$(jq_ "$tmp/fs$run.json" "d['latency_us']['p99']"); rate=$(python3 -c "print(round($got / max($span, 1e-9)))")
  echo "single run $run: 1 process, $CONNS conns: received $got, p99 ${p99} us, ${rate} msg/s delivered"
  single_rates+=("$rate"); single_p99+=("$p99")
  kill -INT "$S"; wait "$S" 2>/dev/null || true
done
br=$(median_of "${broker_rates[@]}"); sr=$(median_of "${single_rates[@]}")
echo "FIGURE exactly once (2 servers + NATS, 20,000 conns, 100,000 msgs): ${exact[*]}"
echo "FIGURE delivered at $RATE msg/s: broker $br msg/s (p99 $(median_of "${broker_p99[@]}") us), single $sr msg/s (p99 $(median_of "${single_p99[@]}") us): ratio $(python3 -c "print(round($br / max($sr, 1), 3))")"

# ---- 3: memory per connection in broker mode -------------------------------
mem_case() { # label conns server-pids-cmd... (the servers are up; flood + measure)
  local label=$1 conns=$2 url=$3; shift 3
  local before=0 nb; nb=$(pss_kb "$NATS_PID")
  for p in $SERVER_PIDS; do before=$((before + $(pss_kb "$p"))); done
  CONNS=$conns; WANT=$conns
  flood "$url" "$conns" "$tmp/mem-$label.json" "$@"
  wait_logged $ADMINS
  sleep 2
  local after=0 na; na=$(pss_kb "$NATS_PID")
  for p in $SERVER_PIDS; do after=$((after + $(pss_kb "$p"))); done
  echo "FIGURE memory $label: $conns conns: comet-server PSS $before -> $after kB = $(( (after - before) * 1024 / conns )) B/conn; nats-server $nb -> $na kB = $(( (na - nb) * 1024 / conns )) B/conn; total $(( (after - before + na - nb) * 1024 / conns )) B/conn"
}
throughput_case() { # label admin
  read -r in0 out0 < <(varz "$NM")
  msggen "$2" 50000 "$tmp/mt-$1.json"
  sleep 1
  read -r in1 out1 < <(varz "$NM")
  stop_flood
  local got span; got=$(jq_ "$tmp/mem-$1.json" "d['messages']"); span=$(jq_ "$tmp/mt-$1.json" "d['send_span_s']")
  echo "FIGURE scheme $1: 50,000 msgs at $RATE msg/s: received $got, lost $(jq_ "$tmp/mem-$1.json" "d['lost']"), p99 $(jq_ "$tmp/mem-$1.json" "d['latency_us']['p99']") us, $(python3 -c "print(round($got / max($span, 1e-9)))") msg/s; NATS msgs out $((out1 - out0)) for $((in1 - in0)) in (out/in $(python3 -c "print(round(($out1 - $out0) / max($in1 - $in0, 1), 2))"), per delivered message $(python3 -c "print(round(($out1 - $out0) / max($got, 1), 4))"))"
}

P=$((BASE + 40))
server m1 --listen "127.0.0.1:$P" --broker "nats://127.0.0.1:$NP" --reactors 2
SERVER_PIDS=$SPID; ADMINS=$ADMIN
mem_case 19k 19000 "http://$LISTEN/test/{id}" --source-ips 127.0.120.2 --bind-mode noport
throughput_case 19k "$ADMIN"
kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true

if [ "$BIG" = 1 ]; then
  SRC=(--source-ips 127.0.130.2-127.0.130.9 --bind-mode explicit)
  # (b) one group: front + 6 workers, handoff, one subscription
  server g6 --listen "127.0.0.1:$((P + 1))" --workers 6 --max-conns 110000 --broker "nats://127.0.0.1:$NP"
  SERVER_PIDS="$SPID $(group_pids "$ADMIN")"; ADMINS=$ADMIN; G=$SPID
  mem_case group-100k 100000 "http://$LISTEN/test/{id}" "${SRC[@]}"
  throughput_case group-100k "$ADMIN"
  kill -INT "$G"; wait "$G" 2>/dev/null || true
  sleep 2
  # (a) 6 standalone servers on one port, every message to each
  SERVER_PIDS=""; ADMINS=""
  for k in 1 2 3 4 5 6; do
    server "r$k" --listen "127.0.0.1:$((P + 2))" --reuse-port --broker "nats://127.0.0.1:$NP" --reactors 1
    SERVER_PIDS="$SERVER_PIDS $SPID"; ADMINS="$ADMINS $ADMIN"; first=${first:-$ADMIN}
  done
  mem_case reuseport-100k 100000 "http://$LISTEN/test/{id}" --source-ips 127.0.131.2-127.0.131.9 --bind-mode explicit
  throughput_case reuseport-100k "$first"
  for p in $SERVER_PIDS; do kill -INT "$p"; done; sleep 2
fi
kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true

# ---- 4: the 3-node cluster ------------------------------------------------
C=$((BASE + 60))
routes="nats://127.0.0.1:$((C + 2)),nats://127.0.0.1:$((C + 5)),nats://127.0.0.1:$((C + 8))"
declare -a NODE_M
for k in 0 1 2; do
  nats "$((C + 3 * k))" "$((C + 3 * k + 1))" "$((C + 3 * k + 2))" "$routes"; NODE_M[k]=$((C + 3 * k + 1))
done
sleep 2   # routes form
server c1 --listen "127.0.0.1:$((C + 20))" --broker "nats://127.0.0.1:$C" --reactors 1; CA1=$ADMIN; CS1=$SPID
server c3 --listen "127.0.0.1:$((C + 21))" --broker "nats://127.0.0.1:$((C + 6))" --reactors 1; CA3=$ADMIN; CS3=$SPID
CONNS=2000; WANT=$CONNS
flood "http://127.0.0.1:$((C + 20))-$((C + 21))/test/{id}" "$CONNS" "$tmp/fc.json" --source-ips 127.0.140.2 --bind-mode noport
wait_logged "$CA1" "$CA3"
sum_varz() { local i=0 o=0; for m in "${NODE_M[@]}"; do read -r a b < <(varz "$m"); i=$((i + a)); o=$((o + b)); done; echo "$i $o"; }
read -r ci0 co0 < <(sum_varz)
RATE=2000 msggen "$CA1" 10000 "$tmp/mc.json"
sleep 1
read -r ci1 co1 < <(sum_varz)
stop_flood
got=$(jq_ "$tmp/fc.json" "d['messages']")
echo "FIGURE 3-node cluster: 2 groups on nodes 1 and 3, $CONNS conns, 10,000 msgs posted on node 1's group: received $got, lost $(jq_ "$tmp/fc.json" "d['lost']"); NATS msgs out (sum over nodes, routes included) $((co1 - co0)) for $((ci1 - ci0)) in: per delivered message $(python3 -c "print(round(($co1 - $co0) / max($got, 1), 4))")"
kill -INT "$CS1" "$CS3"; wait "$CS1" "$CS3" 2>/dev/null || true

# ---- 5: the handoff -------------------------------------------------------
H=$((BASE + 80))
for setup in single group; do
  if [ $setup = single ]; then
    server h1 --listen "127.0.0.1:$H" --reactors 1; PIDS=$SPID
  else
    server h2 --listen "127.0.0.1:$((H + 1))" --workers 2; PIDS="$(group_pids "$ADMIN")"
  fi
  HS=$SPID; t0=0; for p in $PIDS; do t0=$((t0 + $(cpu_ticks "$p"))); done
  CONNS=19000; WANT=$CONNS
  "$BIN/floodtest" --url "http://$LISTEN/test/{id}" --conns 19000 --ids 1-19000 --duration 10s \
    --source-ips "127.0.150.$([ $setup = single ] && echo 2 || echo 3)" --bind-mode noport --json "$tmp/h-$setup.json" >/dev/null 2>&1 || true
  t1=0; for p in $PIDS; do t1=$((t1 + $(cpu_ticks "$p"))); done
  handed=$(stat_of "$ADMIN" ".get('handed_off', 0)")
  ramp=$(jq_ "$tmp/h-$setup.json" "d['ramp_secs']")
  echo "handoff $setup: 19,000 connections opened in $ramp s ($(python3 -c "print(round(19000 / max($ramp, 1e-9)))")/s), server CPU $(( (t1 - t0) * 10 )) ms, handed off $handed"
  eval "cpu_$setup=$(( (t1 - t0) * 10 )); handed_$setup=$handed"
  kill -INT "$HS"; wait "$HS" 2>/dev/null || true
done
echo "FIGURE handoff: $(python3 -c "print(round(($cpu_group - $cpu_single) * 1000 / max($handed_group, 1), 1))") us of server CPU per handed-off connection (10 ms clock ticks)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
