#!/usr/bin/env python3
"""Where the CPU went during a bench's window, per kind of thread.

    threads.py snap FILE     # at the window's start
    threads.py diff FILE     # at its end: a table against FILE

Reads /proc/<pid>/task/<tid>/schedstat (time on CPU, time waiting for a
CPU, times scheduled) and the voluntary/involuntary context switches of
every thread of comet-server, floodtest and msggen; threads are summed by
process role (front or worker of a group, floodtest's parent or child)
and thread name without its number. `wait/run` is the mean time a thread
waited for a CPU each time it was woken: on a busy machine this, not the
code, is what a delivery's latency is made of. Nothing is sampled in
between, so it costs nothing while the bench runs. A thread that ended
within the window is not counted: take the end before the tools stop.
"""
import json
import os
import sys
import time

NAMES = ("comet-server", "floodtest", "msggen")


def role(comm, argv):
    if comm == "comet-server":
        return "worker" if "--worker-index" in argv else "server"
    if comm == "floodtest":
        return "flood-child" if any(a.startswith("--child") for a in argv) else "floodtest"
    return comm


def read(path):
    with open(path) as f:
        return f.read()


def snap():
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = read(f"/proc/{pid}/comm").strip()
            if comm not in NAMES:
                continue
            kind = role(comm, read(f"/proc/{pid}/cmdline").split("\0"))
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            task = f"/proc/{pid}/task/{tid}"
            try:
                name = read(f"{task}/comm").strip()
                run_ns, wait_ns, runs = map(int, read(f"{task}/schedstat").split())
                status = dict(
                    line.split(":\t", 1) for line in read(f"{task}/status").splitlines() if ":\t" in line
                )
            except OSError:
                continue
            key = f"{kind}/{name.rstrip('0123456789-') or name}"
            row = out.setdefault(key, [0, 0, 0, 0, 0, 0])
            for i, v in enumerate(
                (
                    run_ns,
                    wait_ns,
                    runs,
                    int(status["voluntary_ctxt_switches"]),
                    int(status["nonvoluntary_ctxt_switches"]),
                    1,
                )
            ):
                row[i] += v
    return out


def diff(before, after, secs):
    print(f"  per thread kind over {secs:.1f} s:")
    print(f"  {'threads':26} {'n':>3} {'cpu %':>6} {'runs/s':>8} {'wait/run us':>11} {'cpu/run us':>10} {'preempted/s':>11}")
    total = 0.0
    for key in sorted(after):
        was = before.get(key, [0] * 6)
        d = [a - b for a, b in zip(after[key], was)]
        if d[2] <= 0:
            continue
        cpu = 100 * d[0] / 1e9 / secs
        total += cpu
        print(
            f"  {key:26} {after[key][5]:3} {cpu:6.1f} {d[2] / secs:8.0f} "
            f"{d[1] / d[2] / 1e3:11.1f} {d[0] / d[2] / 1e3:10.1f} {d[4] / secs:11.0f}"
        )
    print(f"  {'all of them':26} {'':3} {total:6.1f}  (% of one core; {os.cpu_count()} cores)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "snap":
        with open(sys.argv[2], "w") as f:
            json.dump({"at": time.monotonic(), "threads": snap()}, f)
    elif len(sys.argv) == 3 and sys.argv[1] == "diff":
        with open(sys.argv[2]) as f:
            start = json.load(f)
        now = snap()
        diff(start["threads"], now, time.monotonic() - start["at"])
    else:
        sys.exit(__doc__)
