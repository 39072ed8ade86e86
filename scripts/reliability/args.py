#!/usr/bin/env python3
"""Every value flag of every tool at 0, 1, max, max+1, negative, garbage and
absurd durations, for scripts/reliability.sh. A tool must refuse a value it
cannot use with an error and exit 2, or run with it (exit 0 or 1, or still
running when stopped after a short while): never a panic, another exit
code, or a refusal that says nothing. The flags are read from each tool's
--help, so a new flag is swept without editing this file.

    args.py BIN_DIR fast|full SUB_ADDR ADMIN_ADDR

SUB_ADDR and ADMIN_ADDR are a running comet-server's, so that floodtest's
and msggen's valid runs have a peer and run, rather than all stopping at a
refused connect.

Prints one tab-separated row per tool (case, done, expected, observed,
PASS/FAIL) and one per failing run.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

def tools(sub_addr, admin_addr):
    """(tool, subcommand words, base arguments that make a valid run
    harmless and short, whether the base run alone must run)."""
    return [
        ("comet-server", [], ["--listen=127.0.0.1:0", "--admin=127.0.0.1:0"], True),
        ("floodtest", [], [f"--url=http://{sub_addr}/test/{{id}}", "--conns=2", "--duration=1s"], True),
        ("msggen", [], [f"--target=http://{admin_addr}", "--ids=1-8", "--rate=10", "--duration=1s"], True),
        ("c1m-sysctl", ["check"], ["--conns=10k"], True),
        ("memlog", [], ["--pid=1", "--duration=1s"], True),
        # Flags are parsed before the input is read: a missing CSV ends a
        # run that took them.
        ("plots", ["memory"], ["--out=o.png", "missing.csv"], False),
        ("plots", ["per-conn"], ["--out=o.png", "missing.csv"], False),
        ("plots", ["flood"], ["--out=o.png", "missing.csv"], False),
        ("plots", ["table"], ["missing.csv"], False),
        # A folder without the tools: a run that took them stops before
        # starting any.
        ("experiment", [], ["part1", "--bin-dir=no-tools-here", "--out=out"], False),
    ]


FULL = ["0", "1", "-1", "18446744073709551615", "18446744073709551616", "x", "", "1ms",
        "99999999999999h", "1e999"]
FAST = ["0", "-1", "18446744073709551616", "x", "99999999999999h"]

# A run still going after this long took the value: it is stopped (TERM,
# then KILL) and counts as accepted.
RAN_FOR = 1.5


def flags(binary, sub):
    out = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, timeout=10).stdout
    # `      --rate <RATE>` and `  -n, --conns <N>`: flags that take a value.
    return sorted(set(re.findall(r"(--[a-z0-9-]+)[ =]<", out)))


def run(binary, argv, cwd):
    p = subprocess.Popen([binary, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    try:
        _, err = p.communicate(timeout=RAN_FOR)
        return p.returncode, err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        # The whole group: --workers and --procs start children.
        os.killpg(p.pid, signal.SIGTERM)
        try:
            _, err = p.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
        return "ran", err.decode(errors="replace")


def verdict(rc, err):
    """(kind, fault or None)."""
    if "panicked" in err or rc == 101:
        return "panic", "panicked: " + err.strip().splitlines()[0][:120] if err.strip() else "exit 101"
    if rc == "ran":
        return "ran", None
    if rc == 2:
        lines = [l for l in err.strip().splitlines() if l.strip()]
        # clap adds its hint and usage after a blank line; a tool's own error is one line.
        said = [l for l in lines if not l.startswith(("For more information", "Usage:", "  ", "tip:"))]
        if not said:
            return "refused", "exit 2 without a message"
        return "refused", None
    if rc in (0, 1):
        return "finished", None
    return "other", f"exit {rc}: {err.strip()[:120]}"


def main():
    bindir, mode, sub_addr, admin_addr = sys.argv[1:5]
    values = FAST if mode == "fast" else FULL
    ok = True
    with tempfile.TemporaryDirectory() as cwd, ThreadPoolExecutor(max_workers=4) as pool:
        for tool, sub, base, base_runs in tools(sub_addr, admin_addr):
            binary = os.path.join(bindir, tool)
            names = flags(binary, sub)
            # A sweep whose every run fails for another reason would prove
            # nothing: where it can, the base run alone must run.
            base_rc, base_err = run(binary, [*sub, *base], cwd)
            jobs = []
            for flag in names:
                kept = [a for a in base if not a.startswith(flag + "=")]
                for v in values:
                    argv = [*sub, *kept, f"{flag}={v}"]
                    jobs.append((argv, pool.submit(run, binary, argv, cwd)))
            counts, faults = {}, []
            for argv, job in jobs:
                kind, fault = verdict(*job.result())
                counts[kind] = counts.get(kind, 0) + 1
                if fault:
                    faults.append((argv, fault))
            if base_runs and base_rc not in ("ran", 0, 1):
                faults.append(([*sub, *base], f"the base run alone: exit {base_rc}: {base_err.strip()[:120]}"))
            for argv, fault in faults[:10]:
                print(f"args {tool}\t{' '.join(argv)}\texit 2 with an error, or runs\t{fault}\tFAIL", flush=True)
            tool = " ".join([tool, *sub])
            observed = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            good = not faults and counts.get("refused", 0) > 0
            ok &= good
            print(f"args {tool}\t{len(names)} value flags x {len(values)} values ({len(jobs)} runs)"
                  f"\tno panic; refused: exit 2 + error\t{observed}\t{'PASS' if good else 'FAIL'}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
