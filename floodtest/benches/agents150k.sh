#!/usr/bin/env bash
# Three floodtest agents holding 150,000 connections in total against a
# comet-server group (`--workers auto`), coordinated over a real nats-server
# by one controller (`floodtest --agents 3`): issue 21's figure at scale.
#
# Each agent is its own process on this machine with its own source address
# (127.0.4.1, 127.0.5.1, 127.0.6.1, explicit ports: 50,000 each past one
# process's 20,000 descriptors, so 3 `--procs` children each). Checks, from
# the merged JSON: peak open 150,000, and every counter the sum of the
# agents' own summaries, and the merged p99 the p99 of the merged
# histograms (jq rebuilds nothing: the p99 check is the test's,
# tests/agents.rs; here the per-agent p99s must bracket it). Also measures
# the controller's RSS and CPU and the NATS messages per second per agent
# (nats-server's /varz in_msgs over the hold).
#
# Loopback only: NATS 127.0.0.1:18170 (monitor 18171), server
# 127.0.0.1:18160 (admin 18161). Bounded: the ramp may take 180 s, the hold
# is 30 s; every process started is stopped on any exit. Needs jq and
# nats-server. Last line: `agents150k: PASS|FAIL`, exit 0 or 1.
source "$(dirname "$0")/common.sh"
CONNS=${CONNS:-150000}
NATS_PORT=18170
PORT=18160
command -v jq >/dev/null || { echo "agents150k: needs jq (apt-get install jq)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "agents150k: needs nats-server (apt-get install nats-server)" >&2; exit 2; }

nats-server -a 127.0.0.1 -p "$NATS_PORT" -m $((NATS_PORT + 1)) >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
"$BIN/comet-server" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$((PORT + 1))" \
    --workers auto --max-conns $((CONNS + 1000)) >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
    grep -q listening "$WORK/server.log" && grep -q "Server is ready" "$WORK/nats.log" && break
    sleep 0.1
done
broker="nats://127.0.0.1:$NATS_PORT"
for k in 0 1 2; do
    "$BIN/floodtest" agent --broker "$broker" --name "agent$k" --source-ips "127.0.$((4 + k)).1" \
        >"$WORK/agent$k.out" 2>"$WORK/agent$k.err" &
    PIDS+=($!)
done
for k in 0 1 2; do
    for _ in $(seq 100); do
        grep -q "waiting for work" "$WORK/agent$k.err" && break
        sleep 0.1
    done
done
start=$(date +%s.%N)
"$BIN/floodtest" --agents 3 --broker "$broker" --url "http://127.0.0.1:$PORT/test/{id}" \
    --conns "$CONNS" --bind-mode explicit --duration 30s --report-interval 1s \
    --json "$WORK/merged.json" >"$WORK/controller.out" 2>"$WORK/controller.err" &
controller=$!
PIDS+=("$controller")
for _ in $(seq 1800); do
    grep -q "ramp done" "$WORK/controller.err" && break
    kill -0 "$controller" 2>/dev/null || break
    sleep 0.1
done
ramped=$(date +%s.%N)
varz() { curl -s "http://127.0.0.1:$((NATS_PORT + 1))/varz" | jq "$1"; }
cpu() { awk '{print $14 + $15}' "/proc/$controller/stat"; }
in0=$(varz .in_msgs)
bytes0=$(varz .in_bytes)
cpu0=$(cpu)
t0=$(date +%s.%N)
sleep 20
in1=$(varz .in_msgs)
bytes1=$(varz .in_bytes)
cpu1=$(cpu)
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$controller/status")
code=0
wait "$controller" || code=$?
end=$(date +%s.%N)
cat "$WORK/controller.err" "$WORK/controller.out"
tck=$(getconf CLK_TCK)
# Into NATS per agent: its report and the controller's beat to it, a second each.
awk -v a="$in0" -v b="$in1" -v ba="$bytes0" -v bb="$bytes1" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" \
    -v tck="$tck" -v rss="$rss" 'BEGIN {s = t1 - t0; printf "controller over %.0f s of the hold: RSS %d KiB, CPU %.2f%% of a core; NATS messages in %.1f/s, %.2f/s per agent (report + beat), %.0f B/s per agent\n", s, rss, (c1 - c0) / tck / s * 100, (b - a) / s, (b - a) / s / 3, (bb - ba) / s / 3}'
j=$WORK/merged.json
if [[ ! -s $j ]]; then
    echo "agents150k: FAIL: no merged summary, controller exit $code"
    exit 1
fi
sums=$(jq -r '[.open, ([.agents[].summary.open] | add), .opened, ([.agents[].summary.opened] | add),
    .held, ([.agents[].summary.held] | add), .chunks, ([.agents[].summary.chunks] | add),
    .failed_total, ([.agents[].summary.failed_total] | add)] | @tsv' "$j")
read -r open aopen opened aopened held aheld chunks achunks failed afailed <<<"$sums"
p99=$(jq '.connect_us.p99' "$j")
range=$(jq -r '[.agents[].summary.connect_us.p99] | "\(min) \(max)"' "$j")
echo "merged: open $open (agents $aopen), opened $opened ($aopened), held $held ($aheld), chunks $chunks ($achunks), failed $failed ($afailed); connect p99 ${p99}us, agents' p99 $range us"
echo "ramp $(awk -v a="$start" -v b="$ramped" 'BEGIN {printf "%.1f", b - a}') s, run $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s"
read -r lo hi <<<"$range"
if [[ $code -eq 0 && $open -ge $CONNS && $open == "$aopen" && $opened == "$aopened" && $held == "$aheld" \
    && $chunks == "$achunks" && $failed == "$afailed" && $p99 -ge $lo && $p99 -le $hi ]]; then
    echo "agents150k: PASS: $open of $CONNS held over 3 agents, merged = sum of the agents"
else
    echo "agents150k: FAIL: controller exit $code"
    exit 1
fi
