#!/usr/bin/env bash
# Rate accuracy: msggen --rate 16666 for 60 s into the counting sink, then the
# achieved rate, its error, and per-second rates and inter-send gaps, as msggen
# measured them (CSV) and as the sink counted them.
#
#   msggen/benches/rate.sh     # RATE=16666 DURATION=60s SENDERS=4 PORT=18200 TARGET=sink|comet
source "$(dirname "$0")/common.sh"
RATE=${RATE:-16666} DURATION=${DURATION:-60s} SENDERS=${SENDERS:-4} PORT=${PORT:-18200}
TARGET=${TARGET:-sink}
build
if [ "$TARGET" = comet ]; then
    start_comet "$PORT"
    echo "target: comet-server admin listener $URL"
else
    start_sink "$PORT"
    echo "target: counting sink $URL"
fi
CMD=("$BIN/msggen" --target "$URL" --ids 1-1M --rate "$RATE" --duration "$DURATION"
    --senders "$SENDERS" --report-interval 1s --csv "$OUT/rate.csv" --json "$OUT/rate.json" --no-progress)
echo "command: ${CMD[*]}"
"${CMD[@]}" >"$OUT/msggen.out" 2>"$OUT/msggen.err"
sleep 1.2 # let the sink print its last full second
python3 - "$OUT" "$RATE" <<'PY'
import csv, json, os, re, statistics as st, sys
out, rate = sys.argv[1], float(sys.argv[2])
s = json.load(open(f"{out}/rate.json"))
print(f"sent {s['sent']} of {s['released']} in {s['send_span_s']:.3f} s: achieved {s['achieved_rate']:.1f} msg/s, "
      f"error {100 * (s['achieved_rate'] / rate - 1):+.3f}%, failed {s['failed']}")
g = s["gap_us"]
print(f"gaps between writes (whole run): {g['count']} gaps, mean {g['mean']:.0f} us, p50 {g['p50']} p90 {g['p90']} "
      f"p99 {g['p99']} p99.9 {g['p999']} max {g['max']} us; {s['messages_per_write']:.1f} messages per write")
rows = list(csv.DictReader(open(f"{out}/rate.csv")))[:-1]  # the last record is the partial end
rates = [float(r["rate"]) for r in rows[1:]]  # second 1 includes the start
def spread(xs): return f"min {min(xs):.0f} median {st.median(xs):.0f} max {max(xs):.0f}"
print(f"per-second rate (msggen, {len(rates)} s): {spread(rates)}")
for k in ("gap_p50_us", "gap_p99_us", "gap_max_us"):
    xs = [int(r[k]) for r in rows]
    print(f"per-second {k}: {spread(xs)}")
log = f"{out}/sink.log"
text = open(log).read() if os.path.exists(log) else ""
sink = [int(m.group(1)) for m in re.finditer(r"second \d+ messages (\d+)", text)]
sink = [x for x in sink if x > 0][1:-1]  # drop the partial first and last seconds
if sink:
    print(f"per-second arrivals (sink, {len(sink)} s): {spread(sink)}")
PY
echo "files: $OUT"
