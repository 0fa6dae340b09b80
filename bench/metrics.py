"""How much does ``exman.log`` cost, and how much does a crash lose?

    python bench/metrics.py [--calls 100000] [--repeat 5] [--runs 100] [--steps 1000]
                            [--system]

1. Cost: N calls of ``exman.log(loss=..., acc=...)`` against the floor of
   writing the same JSON lines to a plain file (``json.dumps`` + ``write``
   per call, flushed at the end). Target: at most 1.5x the floor.
2. Loss on a crash: a process logs one record every 10 ms and is killed
   with SIGKILL, ``--repeat`` times; the records on disk must cover all but
   (at most) the last second before the kill, every time. Target: under
   1 s lost.
3. Reading them back: ``Index(root).metrics()`` on R runs of S records each
   against the floor of ``json.loads`` per line and one ``pandas.DataFrame``
   of the records (target: at most 1.5x the floor), and what the outcome
   columns cost a cold ``Index(root).info()`` (no cache): the same root with
   and without results.json and metrics.jsonl, reported per run.

Each variant runs in a fresh process of ``bench/.venv-exman-dev`` (this
tree's exman; with ``--system``, of the interpreter running the benchmark),
interleaved, ``--repeat`` times; medians are compared: the ratio is what
counts, never the absolute time. The exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    PYTHON,
    Summary,
    Targets,
    add_system,
    child_env,
    dev_python,
    header,
    interleaved,
    make_root,
    scratch,
)

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


def last_line(python: str, code: str, *argv: str) -> str:
    out = subprocess.run(
        [python, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    )
    return out.stdout.strip().splitlines()[-1]


def timed(python: str, code: str, *argv: str) -> float:
    return float(last_line(python, code, *argv))


def cost(python: str, work: Path, calls: int, repeat: int, targets: Targets) -> None:
    rounds = iter(range(10**9))
    variants = {
        "exman.log": lambda: timed(
            python, EXMAN, f"{work}/root{next(rounds)}", str(calls)
        ),
        "plain file": lambda: timed(python, FLOOR, str(work), str(calls)),
    }
    times = {k: Summary.of(v) for k, v in interleaved(variants, repeat).items()}
    ours, floor = times["exman.log"], times["plain file"]
    print(
        f"{calls} calls: exman.log {ours.median * 1e6 / calls:.2f} us/call, "
        f"plain file {floor.median * 1e6 / calls:.2f} us/call (medians of {repeat})"
    )
    targets.check("exman.log / plain file", ours, floor, 1.5, at_most=True)


def crash_loss(python: str, work: Path, repeat: int, seconds: float = 2.0) -> float:
    """Seconds between the newest record on disk and the SIGKILL; the worst
    of ``repeat`` kills."""
    losses = []
    for i in range(repeat):
        proc = subprocess.Popen(
            [python, "-c", CRASH, f"{work}/crash{i}"],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert proc.stdout is not None
        try:
            run = Path(proc.stdout.readline().strip())
            logging_since = time.time()
            time.sleep(seconds)
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        path = run / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        last = json.loads(lines[-1])["t"] if lines else logging_since
        losses.append(killed_at - last)
    print(
        f"SIGKILL after {seconds:.0f} s, {repeat} times: the newest record on disk "
        f"was {statistics.median(losses):.2f} s (median), {max(losses):.2f} s "
        "(worst) older than the kill"
    )
    return max(losses)


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


def reading(
    python: str, work: Path, runs: int, steps: int, repeat: int, targets: Targets
) -> None:
    root = _outcome_root(work / "root", runs, steps, True)

    def read(mode: str) -> float:
        seconds, rows = last_line(python, READ, str(root), mode).split()
        if int(rows) != runs * steps:
            raise RuntimeError(f"{mode}: {rows} rows, not {runs * steps}")
        return float(seconds)

    times = interleaved(
        {name: functools.partial(read, name) for name in ("exman", "floor")}, repeat
    )
    ours, floor = Summary.of(times["exman"]), Summary.of(times["floor"])
    print(
        f"Index.metrics() of {runs} runs x {steps} records: {ours.median:.3f} s, "
        f"json.loads per line + DataFrame {floor.median:.3f} s (medians of {repeat})"
    )
    targets.check(
        "Index.metrics() / json.loads per line + DataFrame",
        ours,
        floor,
        1.5,
        at_most=True,
    )
    cold = 20 * runs
    plain = _outcome_root(work / "plain", cold, 0, False)
    full = _outcome_root(work / "full", cold, steps, True)
    loads = interleaved(
        {
            "without": lambda: timed(python, COLD, str(plain)),
            "with": lambda: timed(python, COLD, str(full)),
        },
        repeat,
    )
    without, with_ = Summary.of(loads["without"]), Summary.of(loads["with"])
    extra = (with_.median - without.median) / cold * 1e6
    targets.note(
        f"cold Index.info() of {cold} runs: {without.median:.3f} s without "
        f"results and metrics, {with_.median:.3f} s with them ({steps} records "
        f"each): {extra:.0f} us more per run (medians of {repeat})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=5, help="rounds of each variant (at least 3)"
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    add_system(parser)
    opts = parser.parse_args(argv)
    if opts.repeat < 3:
        parser.error(f"--repeat must be at least 3 for a median, not {opts.repeat}")
    header("exman.log and Index.metrics()", "bench/metrics.py", argv)
    python = PYTHON if opts.system else dev_python()
    targets = Targets()
    with scratch("exman-bench-metrics-") as work:
        (work / "cost").mkdir()
        cost(python, work / "cost", opts.calls, opts.repeat, targets)
        lost = crash_loss(python, work, min(opts.repeat, 3))
        targets.require(
            f"SIGKILL loses under 1 s of records (worst {lost:.2f} s)", lost < 1
        )
        (work / "read").mkdir()
        reading(python, work / "read", opts.runs, opts.steps, opts.repeat, targets)
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
