"""How much does ``exman.log`` cost, and how much does a crash lose?

    python bench/metrics.py [--calls 100000] [--repeat 5]

1. Cost: N calls of ``exman.log(loss=..., acc=...)`` against the floor of
   writing the same JSON lines to a plain file (``json.dumps`` + ``write``
   per call, flushed at the end). Target: at most 1.5x the floor.
2. Loss on a crash: a process logs one record every 10 ms and is killed
   with SIGKILL; the records on disk must cover all but (at most) the last
   second before the kill. Target: under 1 s lost.

Each variant runs in a fresh process, interleaved, best of ``--repeat``:
the ratio is what counts, never the absolute time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXMAN = textwrap.dedent(
    """
    import sys, time, exman
    root, n = sys.argv[1], int(sys.argv[2])
    args = exman.ExParser(root=root).parse_args([])
    log = exman.log
    t = time.perf_counter()
    for i in range(n):
        log(loss=1.0 / (i + 1), acc=i * 1e-6)
    exman.metrics.current().flush()
    print(time.perf_counter() - t)
    """
)

FLOOR = textwrap.dedent(
    """
    import json, sys, time
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path + "/plain.jsonl", "a") as f:
        t = time.perf_counter()
        for i in range(n):
            record = {"step": i, "time": round(time.time(), 3)}
            record.update(loss=1.0 / (i + 1), acc=i * 1e-6)
            f.write(json.dumps(record) + "\\n")
        f.flush()
        print(time.perf_counter() - t)
    """
)

CRASH = textwrap.dedent(
    """
    import sys, time, exman
    args = exman.ExParser(root=sys.argv[1]).parse_args([])
    print(args.root, flush=True)
    i = 0
    while True:
        exman.log(i=i, t=time.time())
        i += 1
        time.sleep(0.01)
    """
)


def timed(code: str, *argv: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cost(calls: int, repeat: int) -> float:
    best_exman = best_floor = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            best_exman = min(best_exman, timed(EXMAN, f"{tmp}/root{r}", str(calls)))
            best_floor = min(best_floor, timed(FLOOR, tmp, str(calls)))
    ratio = best_exman / best_floor
    print(
        f"{calls} calls: exman.log {best_exman * 1e6 / calls:.2f} us/call, "
        f"plain file {best_floor * 1e6 / calls:.2f} us/call, ratio {ratio:.2f} "
        f"(target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})"
    )
    return ratio


def crash_loss(seconds: float = 3.0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASH, f"{tmp}/root"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        run = Path(proc.stdout.readline().strip())
        time.sleep(seconds)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = (run / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])["t"] if lines else killed_at - seconds
    lost = killed_at - last
    print(
        f"SIGKILL after {seconds:.0f} s: {len(lines)} records on disk, the newest "
        f"{lost:.2f} s before the kill (target < 1 s: {'PASS' if lost < 1 else 'FAIL'})"
    )
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    print(f"# python bench/metrics.py --calls {opts.calls} --repeat {opts.repeat}")
    cost(opts.calls, opts.repeat)
    crash_loss()


if __name__ == "__main__":
    main()
