#!/usr/bin/env bash
# Runs every fuzz target of the workspace for a set time and keeps what it
# finds: http/fuzz codec (the HTTP codec), server/fuzz request (the
# subscriber request parser and router, the admin head parser, batch
# lines), common/fuzz envelopes (the envelope finder) and common/fuzz args
# (the shared argument parsers, ids, batch lines, friends files).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   # default 60, all
#
# libFuzzer through libfuzzer-sys, built by the installed nightly with the
# flags cargo-fuzz passes (SanitizerCoverage: inline 8-bit counters, PC
# table, compare tracing; `--cfg fuzzing`; debug assertions and overflow
# checks on), so cargo-fuzz itself need not be installed; no sanitizer
# (the code under test has no unsafe). A crash's input is copied to
# <crate>/fuzz/regressions/<target>/, to be committed: replay it with
# `<binary> <file>` (the script prints the command) and fix the code, then
# add the input to the crate's tests as a case. Prints one line per target:
# runs, coverage, corpus, time, crashes. Exit 1 when a target crashed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
ALL=(http:codec server:request common:envelopes common:args)
TARGETS=("${@:-${ALL[@]}}")
rustup toolchain list | grep -q '^nightly' || { echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 2; }
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
HOST=$(rustc +nightly -vV | awk '/^host:/ {print $2}')
crashed=0
for t in "${TARGETS[@]}"; do
    crate=${t%%:*}
    target=${t#*:}
    dir=$ROOT/$crate/fuzz
    # One target dir per fuzz workspace, beside the workspace's own.
    tdir=${CARGO_TARGET_DIR:-$ROOT/target}/fuzz-$crate
    # An explicit --target keeps RUSTFLAGS off the build scripts (they
    # would not link without libFuzzer), as cargo-fuzz does.
    (cd "$dir" && cargo +nightly build -q --release --bin "$target" --target-dir "$tdir" --target "$HOST")
    bin=$tdir/$HOST/release/$target
    corpus=$tdir/corpus/$target
    artifacts=$tdir/artifacts/$target/
    mkdir -p "$corpus" "$artifacts"
    log=$tdir/$target.log
    rc=0
    "$bin" "$corpus" -max_total_time="$SECS" -max_len=20000 -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$log" 2>&1 || rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    files=$(find "$corpus" -type f | wc -l)
    found=$(find "$artifacts" -type f | wc -l)
    echo "fuzz $crate/$target: ${runs} runs in ${SECS}s, ${cov:-cov ?}, corpus $files inputs, crashes $found"
    if ((found)) || ((rc)); then
        crashed=1
        mkdir -p "$dir/regressions/$target"
        for f in "$artifacts"*; do
            [[ -f $f ]] || continue
            cp "$f" "$dir/regressions/$target/"
            echo "  crash kept: $crate/fuzz/regressions/$target/$(basename "$f"); replay: $bin $f"
        done
        grep -m3 -E 'panicked|ERROR' "$log" | sed 's/^/  /' || true
    fi
done
exit "$crashed"
