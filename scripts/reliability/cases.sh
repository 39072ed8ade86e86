# The cases of scripts/reliability.sh (sourced: it defines BIN, WORK, FAST,
# row, start_server, stop, stat, json, peers, free_port). Each case adds
# rows to the table and never exits on a failed check.

# Framing and smuggling shapes on both listeners, limits and ids at and
# past them, reconnect with --history: one server, answers at once (ids 7
# and 8 have a message in their history, so a long-poll answers).
case_wire() {
    start_server wire --listen 127.0.0.1:0 --admin 127.0.0.1:0 --history 100 --max-id 1000000 \
        --poll-timeout 2s --header-timeout 3s
    curl -s -XPOST --data-binary hello "http://$ADMIN/send/7" >/dev/null
    curl -s -XPOST --data-binary hello "http://$ADMIN/send/8" >/dev/null
    peers framing
    peers limits 1000000
    peers history 100
    stop "$SPID"
}

# Half-close, reset floods, slowloris on both listeners while others are
# served.
case_floods() {
    local n=2000 rounds=3
    ((FAST)) || { n=5000; rounds=5; }
    start_server floods --listen 127.0.0.1:0 --admin 127.0.0.1:0 --header-timeout 2s --history 10
    curl -s -XPOST --data-binary hello "http://$ADMIN/send/7" >/dev/null
    peers half-close 300
    peers reset-flood "$n" "$rounds"
    peers slowloris 300 100 2
    stop "$SPID"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
    local limit=$1 end
    shift
    end=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

logged_in_is() { [[ $(stat "$ADMIN" 'd["logged_in"]' 2>/dev/null) == "$1" ]]; }

# flood NAME URL CONNS DURATION [ARGS...]: floodtest in the background with
# --json $WORK/NAME.json; sets FPID.
flood() {
    local name=$1 url=$2 conns=$3 duration=$4
    shift 4
    "$BIN/floodtest" --url "$url" --conns "$conns" --duration "$duration" \
        --report-interval 60s --json "$WORK/$name.json" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    FPID=$!
    PIDS+=("$FPID")
}

# closes_row NAME WHAT: the closes floodtest counted by class after a kill.
closes_row() {
    local name=$1 what=$2 want=$3 rc=$4 by_server reset
    by_server=$(json "$WORK/$name.json" 'd["failed"]["closed_by_server"]')
    reset=$(json "$WORK/$name.json" 'd["failed"]["reset"]')
    row "SIGKILL $what: closes counted" "floodtest --json after the kill" \
        "closed_by_server + reset >= $want, exit 0 (all held at the end)" \
        "closed_by_server $by_server, reset $reset, held $(json "$WORK/$name.json" 'd["held"]'), exit $rc" \
        "$(((by_server + reset >= want) && rc == 0 ? 1 : 0))"
}

# A whole standalone server killed with SIGKILL mid-run and started again on
# the same ports: floodtest counts the closes and comes back with backoff
# and jitter.
case_sigkill_standalone() {
    local n=300 port aport rc=0
    port=$(free_port)
    aport=$(free_port)
    start_server kill1 --listen "127.0.0.1:$port" --admin "127.0.0.1:$aport"
    flood kill "http://127.0.0.1:$port/test/{id}" "$n" 12s --reconnect --reconnect-backoff 1s
    if ! wait_for 20 logged_in_is "$n"; then
        row "SIGKILL server" "$n streams" "$n held before the kill" "$(stat "$ADMIN" 'd["logged_in"]')" 0
        return
    fi
    kill -9 "$SPID"
    # Gone, listener and all, before the new one binds the same ports.
    wait "$SPID" 2>/dev/null || true
    start_server kill2 --listen "127.0.0.1:$port" --admin "127.0.0.1:$aport"
    peers reconnects "$n" 1 "standalone"
    wait "$FPID" || rc=$?
    closes_row kill "standalone" "$n" "$rc"
    stop "$SPID"
}

# A worker of a --workers group killed with SIGKILL mid-run: the front
# restarts it under its index and its clients come back.
case_sigkill_worker() {
    local n=300 rc=0 pid restarts
    start_server group --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 2
    flood worker "http://$SUB/test/{id}" "$n" 14s --reconnect --reconnect-backoff 1s
    if ! wait_for 30 logged_in_is "$n"; then
        row "SIGKILL worker" "$n streams" "$n held before the kill" "$(stat "$ADMIN" 'd["logged_in"]')" 0
        return
    fi
    pid=$(stat "$ADMIN" 'd["workers"][0]["pid"]')
    kill -9 "$pid"
    wait_for 20 logged_in_is "$n" || true
    restarts=$(stat "$ADMIN" 'd["group"]["restarts"]')
    row "SIGKILL worker: restarted" "kill -9 worker 0 (pid $pid) of 2" "restarts 1, all $n logged in again" \
        "restarts $restarts, logged in $(stat "$ADMIN" 'd["logged_in"]')" \
        "$([[ $restarts == 1 ]] && logged_in_is "$n" && echo 1 || echo 0)"
    wait "$FPID" || rc=$?
    closes_row worker "worker" $((n / 4)) "$rc"
    stop "$SPID"
}

# Broker mode: nats-server killed with SIGKILL and started again mid-run
# while msggen sends; delivery resumes, nothing twice, the rest counted.
case_broker_restart() {
    local n=200 nport nats rc=0 before after
    command -v nats-server >/dev/null || { row "broker restart" "-" "nats-server installed" "missing" 0; return; }
    nport=$(free_port)
    nats-server -a 127.0.0.1 -p "$nport" >"$WORK/nats.log" 2>&1 &
    nats=$!
    PIDS+=("$nats")
    wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nport" 2>/dev/null
    start_server broker --listen 127.0.0.1:0 --admin 127.0.0.1:0 --broker "nats://127.0.0.1:$nport"
    flood broker "http://$SUB/test/{id}" "$n" 16s
    wait_for 20 logged_in_is "$n"
    # --stop-after 0: msggen rides through the outage instead of giving up
    # after 20 refusals in a row.
    "$BIN/msggen" --target "http://$ADMIN" --ids "1-$n" --rate 200 --duration 12s --no-progress \
        --stop-after 0 --json "$WORK/msggen.json" >"$WORK/msggen.out" 2>&1 &
    local mpid=$!
    PIDS+=("$mpid")
    sleep 4
    before=$(stat "$ADMIN" 'd["messages_out"]')
    kill -9 "$nats"
    wait "$nats" 2>/dev/null || true
    sleep 2
    nats-server -a 127.0.0.1 -p "$nport" >"$WORK/nats2.log" 2>&1 &
    nats=$!
    PIDS+=("$nats")
    # Two seconds to reconnect, then four of msggen's run at 200/s.
    sleep 2
    local resumed
    resumed=$(stat "$ADMIN" 'd["messages_out"]')
    wait "$mpid" || true
    after=$(stat "$ADMIN" 'd["messages_out"]')
    wait "$FPID" || rc=$?
    local sent got lost reconnects connected undeliverable
    sent=$(json "$WORK/msggen.json" 'd["sent"]')
    got=$(json "$WORK/broker.json" 'd["messages"]')
    lost=$(json "$WORK/broker.json" 'd["lost"]')
    reconnects=$(stat "$ADMIN" 'd["broker"]["reconnects"]')
    connected=$(stat "$ADMIN" 'd["broker"]["connected"]')
    undeliverable=$(stat "$ADMIN" 'd["broker"]["undeliverable"]')
    row "broker: nats-server restarted" "kill -9 nats at 4s, restarted at 6s, msggen 200/s for 12s" \
        "reconnected; delivery resumes at >= half the rate (400 of the last 4 s's 800)" \
        "connected $connected, reconnects $reconnects, delivered $before at the kill, $resumed 2 s after the restart, $after at the end" \
        "$([[ $connected == True && $((after - resumed)) -ge 400 ]] && echo 1 || echo 0)"
    row "broker: nothing twice, the rest counted" "floodtest and msggen summaries" \
        "received <= sent (accepted); the refused counted (msggen failed, server undeliverable)" \
        "sent $sent, failed $(json "$WORK/msggen.json" 'd["failed"]'), retries $(json "$WORK/msggen.json" 'd["retries"]'), undeliverable $undeliverable; received $got, lost $lost" \
        "$(python3 -c "import sys; s,g=int('$sent'),int('$got'); print(int(g <= s))")"
    stop "$SPID"
}

# Slow readers closed at --max-pending while the others' p99 stays within
# 2x of a run without them.
case_slow_readers() {
    # A socket that is not read holds ~4 MB in the kernel (the server's
    # autotuned send buffer) before the server has any unsent byte of its
    # own, so the readers' ids get 12 KiB messages at 1,000/s (~5 MB each
    # in 9 s) beside the 2 KiB ones whose latency is compared.
    local n=200 readers=20 p99_alone p99_with closes
    for with in 0 1; do
        start_server slow$with --listen 127.0.0.1:0 --admin 127.0.0.1:0 --max-pending 16k
        flood slow$with "http://$SUB/test/{id}" "$n" 12s
        wait_for 20 logged_in_is "$n"
        ((with)) && python3 - "$SUB" "$readers" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for i in range(1, int(sys.argv[2]) + 1):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(f"GET /test/{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    socks.append(s)
time.sleep(14)
PY
        ((with)) && PIDS+=($!)
        "$BIN/msggen" --target "http://$ADMIN" --ids "1-$readers" --senders 2 --rate 1000 --size 12k \
            --duration 9s --no-progress >"$WORK/slowbulk$with.out" 2>&1 &
        local bulk=$!
        PIDS+=("$bulk")
        "$BIN/msggen" --target "http://$ADMIN" --ids "1-$n" --rate 2000 --size 2k --duration 9s \
            --no-progress >"$WORK/slowgen$with.out" 2>&1 || true
        wait "$bulk" || true
        wait "$FPID" || true
        closes=$(stat "$ADMIN" 'd["slow_consumer_closes"]')
        if ((with)); then
            p99_with=$(json "$WORK/slow1.json" 'd["latency_us"]["p99"]')
        else
            p99_alone=$(json "$WORK/slow0.json" 'd["latency_us"]["p99"]')
        fi
        stop "$SPID"
    done
    row "slow readers" "$readers readers that never read beside $n floodtest streams, 2,000 msg/s of 2 KiB (and 1,000/s of 12 KiB to the readers' ids)" \
        "the $readers closed at --max-pending 16k (and no stream); others' p99 <= 2x alone" \
        "slow-consumer closes $closes; p99 ${p99_with} us with, ${p99_alone} us alone" \
        "$(((closes == readers) && (p99_with <= 2 * p99_alone) ? 1 : 0))"
}

# Every tool's value flags at 0, 1, max, max+1, negative and garbage.
case_args() {
    start_server args --listen 127.0.0.1:0 --admin 127.0.0.1:0
    python3 "$ROOT/scripts/reliability/args.py" "$BIN" "$( ((FAST)) && echo fast || echo full)" \
        "$SUB" "$ADMIN" | tee -a "$TABLE" || true
    stop "$SPID"
}
