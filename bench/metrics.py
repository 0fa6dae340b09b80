"""How much does ``exman.log`` cost, and how much does a crash lose?

    python bench/metrics.py [--calls 100000] [--repeat 5] [--runs 100] [--steps 1000]

1. Cost: N calls of ``exman.log(loss=..., acc=...)`` against the floor of
   writing the same JSON lines to a plain file (``json.dumps`` + ``write``
   per call, flushed at the end). Target: at most 1.5x the floor.
2. Loss on a crash: a process logs one record every 10 ms and is killed
   with SIGKILL; the records on disk must cover all but (at most) the last
   second before the kill. Target: under 1 s lost.
3. Reading them back: ``Index(root).metrics()`` on R runs of S records each
   against the floor of ``json.loads`` per line and one ``pandas.DataFrame``
   of the records (target: at most 1.5x the floor), and what the outcome
   columns cost a cold ``Index(root).info()`` (no cache): the same root with
   and without results.json and metrics.jsonl, reported per run.

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

from _common import make_root

EXMAN = textwrap.dedent(
    """
    import sys, time, exman
    root, n = sys.argv[1], int(sys.argv[2])
    args = exman.ExParser(root=root).parse_args([])
    log = exman.log
    t = time.perf_counter()
    for i in range(n):
        log(loss=1.0 / (i + 1), acc=i * 1e-6)
    exman.record.metrics.current().flush()
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


def last_line(code: str, *argv: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def timed(code: str, *argv: str) -> float:
    return float(last_line(code, *argv))


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


#: argv: root, mode ("exman" or "floor"); prints the seconds and the rows
READ = textwrap.dedent(
    """
    import json, os, sys, time
    import pandas as pd
    root, mode = sys.argv[1], sys.argv[2]
    import exman
    index = exman.Index(root)
    runs = index.info()  # not counted: the same list of runs for both
    t = time.perf_counter()
    if mode == "exman":
        frame = index.metrics()
    else:
        records, ids = [], []
        for num, folder in zip(runs.id.tolist(), runs.root.tolist()):
            with open(os.path.join(folder, "metrics.jsonl"), "rb") as f:
                got = [json.loads(line) for line in f]
            records += got
            ids += [num] * len(got)
        frame = pd.DataFrame(records)
        frame.insert(0, "id", ids)
    print(time.perf_counter() - t, len(frame))
    """
)

#: argv: root; prints the seconds of a cold info()
COLD = textwrap.dedent(
    """
    import os, shutil, sys, time
    import pandas
    shutil.rmtree(os.path.join(sys.argv[1], ".exman", "cache"), ignore_errors=True)
    t = time.perf_counter()
    import exman
    exman.Index(sys.argv[1]).info()
    print(time.perf_counter() - t)
    """
)


def _outcome_root(path: Path, runs: int, steps: int, outcome: bool) -> Path:
    root = make_root(path, runs, records=True)
    if outcome:
        start = time.time()
        for folder in sorted((root / "runs").iterdir()):
            lines = [
                json.dumps(
                    {
                        "step": s,
                        "time": round(start + s, 3),
                        "loss": 1 / (s + 1),
                        "acc": s / steps,
                    }
                )
                for s in range(steps)
            ]
            (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
            (folder / "results.json").write_text(json.dumps({"loss": 1 / steps}))
    return root


def reading(runs: int, steps: int, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = _outcome_root(Path(tmp, "root"), runs, steps, True)
        best = {"exman": float("inf"), "floor": float("inf")}
        for _ in range(repeat):
            for mode in best:
                seconds, rows = last_line(READ, str(root), mode).split()
                assert int(rows) == runs * steps, rows
                best[mode] = min(best[mode], float(seconds))
        ratio = best["exman"] / best["floor"]
        print(
            f"Index.metrics() of {runs} runs x {steps} records: "
            f"{best['exman']:.3f} s, json.loads per line + DataFrame "
            f"{best['floor']:.3f} s, ratio {ratio:.2f} "
            f"(target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})"
        )
        cold = 20 * runs
        plain = _outcome_root(Path(tmp, "plain"), cold, 0, False)
        full = _outcome_root(Path(tmp, "full"), cold, steps, True)
        times = {"without": float("inf"), "with": float("inf")}
        for _ in range(repeat):
            for mode, where in (("without", plain), ("with", full)):
                times[mode] = min(times[mode], float(timed(COLD, str(where))))
        extra = (times["with"] - times["without"]) / cold * 1e6
        print(
            f"cold Index.info() of {cold} runs: {times['without']:.3f} s without "
            f"results and metrics, {times['with']:.3f} s with them "
            f"({steps} records each): {extra:.0f} us more per run"
        )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    opts = parser.parse_args()
    print(
        f"# python bench/metrics.py --calls {opts.calls} --repeat {opts.repeat} "
        f"--runs {opts.runs} --steps {opts.steps}"
    )
    cost(opts.calls, opts.repeat)
    crash_loss()
    reading(opts.runs, opts.steps, opts.repeat)


if __name__ == "__main__":
    main()
