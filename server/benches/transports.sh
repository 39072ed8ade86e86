#!/usr/bin/env bash
# The figures of issue 19, each transport beside the chunked /test in the
# clear: /ws in the clear, /ws over TLS (wss), /test over TLS (https).
#
#   memory:  user-space RSS per held connection at 10,000 and 19,000, the
#            server's (VmRSS after - before, once /stats says all logged in)
#            and floodtest's (its --json client_rss_bytes_per_conn);
#   latency: delivery p99 at 16,666 msg/s (msggen, uniform over 2,000 ids,
#            10 s) as floodtest measures it from the envelopes;
#   connect: streams opened per second over the ramp of 19,000 (floodtest's
#            connect_rate; handshakes included, client and server on the
#            same 2 cores).
#
#   server/benches/transports.sh              # all three, once each
#   FIGURES="memory" COUNTS="10000" server/benches/transports.sh
#
# The certificate is made at run time (examples/cert.rs, rcgen). Ports
# 18300-18301 on 127.0.0.1; fresh source addresses per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
FIGURES=${FIGURES:-"memory latency connect"}
COUNTS=${COUNTS:-"10000 19000"}
TRANSPORTS=${TRANSPORTS:-"test ws wss https"}
PORT=18300
ADMIN=127.0.0.1:18301
ulimit -n "$(ulimit -Hn)"

cargo build -q --release -p c1m-server -p c1m-floodtest -p c1m-msggen --bin comet-server --bin floodtest --bin msggen --example cert
BIN=$CARGO_TARGET_DIR/release
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$BIN/examples/cert" "$tmp"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
stat_of() { curl -s "http://$ADMIN/stats" | sed -n "s/.*\"$1\":\\([0-9]*\\).*/\\1/p"; }
json() { sed -n "s/^  \"$2\": \\([0-9.]*\\),\\{0,1\\}\$/\\1/p" "$1"; }
p99() { sed -n '/"latency_us"/,/}/s/.*"p99": \([0-9]*\).*/\1/p' "$1"; }

# url TRANSPORT: floodtest's URL and TLS flag for a transport.
url() {
    case $1 in
    test) echo "http://127.0.0.1:$PORT/test/{id}" ;;
    ws) echo "ws://127.0.0.1:$PORT/ws/{id}" ;;
    wss) echo "wss://localhost:$PORT/ws/{id} --ca $tmp/cert.pem" ;;
    https) echo "https://localhost:$PORT/test/{id} --ca $tmp/cert.pem" ;;
    esac
}

# start TRANSPORT: a comet-server, over TLS for wss and https.
start() {
    local tls=()
    [[ $1 == wss || $1 == https ]] && tls=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
    "$BIN/comet-server" --listen "127.0.0.1:$PORT" --admin "$ADMIN" --reactors 2 "${tls[@]}" >"$tmp/server.out" 2>&1 &
    server=$!; pids+=("$server")
    for _ in $(seq 100); do grep -q listening "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done
    grep -q listening "$tmp/server.out" || { cat "$tmp/server.out" >&2; exit 2; }
}

stop() { kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
round=0
for figure in $FIGURES; do
  for t in $TRANSPORTS; do
    case $figure in
    memory)
      for count in $COUNTS; do
        round=$((round + 1)); start "$t"; sleep 0.5
        before=$(rss_kb "$server")
        # shellcheck disable=SC2046
        "$BIN/floodtest" --url $(url "$t") --conns "$count" --bind-mode noport \
            --source-ips "127.3.$round.1-127.3.$round.2" --duration 4s --json "$tmp/f.json" >"$tmp/f.out" 2>&1 &
        flood=$!; pids+=("$flood")
        for _ in $(seq 600); do [[ "$(stat_of logged_in)" == "$count" ]] && break; sleep 0.1; done
        sleep 1
        after=$(rss_kb "$server")
        wait "$flood" || true
        printf 'memory %-5s %5d conns: server %5d B/conn, client %5s B/conn (logged in %s)\n' "$t" "$count" \
            $(( (after - before) * 1024 / count )) "$(json "$tmp/f.json" client_rss_bytes_per_conn)" "$(stat_of logged_in || echo ?)"
        stop
      done ;;
    latency)
      round=$((round + 1)); start "$t"
      # shellcheck disable=SC2046
      "$BIN/floodtest" --url $(url "$t") --conns 2000 --duration 14s --json "$tmp/l.json" >"$tmp/l.out" 2>&1 &
      flood=$!; pids+=("$flood")
      for _ in $(seq 300); do [[ "$(stat_of logged_in)" == 2000 ]] && break; sleep 0.1; done
      "$BIN/msggen" --target "http://$ADMIN" --ids 1-2000 --rate 16666 --duration 10s >"$tmp/m.out" 2>&1
      wait "$flood" || true
      printf 'latency %-5s 16666 msg/s to 2000 streams: p99 %s us, messages %s\n' "$t" "$(p99 "$tmp/l.json")" "$(json "$tmp/l.json" messages)"
      stop ;;
    connect)
      round=$((round + 1)); start "$t"
      # shellcheck disable=SC2046
      "$BIN/floodtest" --url $(url "$t") --conns 19000 --bind-mode noport \
          --source-ips "127.3.$round.1-127.3.$round.2" --duration 1s --json "$tmp/c.json" >"$tmp/c.out" 2>&1 || true
      printf 'connect %-5s 19000 streams: %s conn/s (ramp %s s)\n' "$t" "$(json "$tmp/c.json" connect_rate)" "$(json "$tmp/c.json" ramp_secs)"
      stop ;;
    esac
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
