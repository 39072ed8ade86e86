#!/usr/bin/env bash
# Max throughput into the batch endpoint: msggen --rate max, RUNS times, into
# comet-server's admin listener when it builds (TARGET=comet, the default),
# or into the counting sink (TARGET=sink); prints each run and the median.
#
#   msggen/benches/throughput.sh           # COUNT=3M SENDERS=4 RUNS=3 PORT=18210
source "$(dirname "$0")/common.sh"
COUNT=${COUNT:-3M} SENDERS=${SENDERS:-4} RUNS=${RUNS:-3} PORT=${PORT:-18210} TARGET=${TARGET:-comet}
SIZE=${SIZE:-32} DIST=${DIST:-uniform}
build
if [ "$TARGET" = comet ] && start_comet "$PORT"; then
    echo "target: comet-server admin listener $URL (no subscribers: every message is 'dropped')"
else
    start_sink "$PORT"
    echo "target: counting sink $URL"
fi
for run in $(seq "$RUNS"); do
    CMD=("$BIN/msggen" --target "$URL" --ids 1-1M --rate max --count "$COUNT" --senders "$SENDERS"
        --size "$SIZE" --dist "$DIST" --generator-id "$run" --json "$OUT/run$run.json" --no-progress)
    [ "$run" = 1 ] && echo "command: ${CMD[*]}"
    "${CMD[@]}" >"$OUT/run$run.out" 2>"$OUT/run$run.err" || true
    python3 -c "import json,sys; s=json.load(open('$OUT/run$run.json')); print(f\"run $run: sent {s['sent']} failed {s['failed']} in {s['send_span_s']:.2f} s = {s['achieved_rate']:.0f} msg/s, {s['messages_per_write']:.0f} messages per batch\")"
done
python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rates = [json.load(open(f"{out}/run{i}.json"))["achieved_rate"] for i in range(1, runs + 1)]
print(f"median of {runs}: {statistics.median(rates):.0f} msg/s")
PY
echo "files: $OUT"
