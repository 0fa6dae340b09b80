"""exman at scale: a root of many runs, a sweep of many tasks all done.

A root of ``--runs`` finished runs (100,000 by default) is built by hand
(``_common.make_root``: params.yaml, run.json with the copy of the
parameters, the index links), the first ``--tasks`` of them (all by
default) being the completed runs of the tasks of a sweep spec (a grid of
two arguments, ``--tasks`` / 100 values by 100). Then, each in new processes,
interleaved, ``--reps`` rounds (medians):

* ``exman sweep spec.yaml --status``, the whole process;
* ``exman sweep spec.yaml``, a re-run with every task done (nothing to
  launch), the whole process;
* the warm ``Index(root).info()`` (cache in place; ``import exman``
  counted, pandas' import not; its CPU time printed beside), and its peak
  memory (tracemalloc) against the DataFrame's size;
* creating a run in this root against an empty one, in one process (as
  ``startup.py`` times it).

Targets: status and the no-op re-run at most 3 s each (the goal is set
for 100,000 tasks; a smaller sweep is held to the same 3 s; their CPU time
is printed beside, since a busy machine stretches the wall time); the
warm load at most 10 s at 1,000,000 runs (from 100,000 runs on, the time
scaled up linearly to 1,000,000 is judged, and said to be an
extrapolation); peak memory at most 2 x the DataFrame (from 10,000 runs
on);
creation in this root at most 1.2 x that in an empty root. The exit code
is 1 when a target is missed.

Run ``python bench/scale.py`` (``--runs 1000000`` for the full goal, which
needs about 20 GB of disk and half an hour to build: ``--work DIR`` keeps
the root for the next run; ``--runs 200 --reps 1`` to see that it runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from _common import (
    PYTHON,
    REPO,
    Summary,
    Targets,
    add_system,
    child_env,
    dev_python,
    interleaved,
    make_root,
    ms,
    run_wall,
    scratch,
    start,
)
from index import MEMORY, OURS, child
from startup import create_times, step

SCRIPT = """\
import exman

parser = exman.ExParser()
parser.add_argument("--x", type=int, default=0)
parser.add_argument("--y", type=int, default=0)
args = parser.parse_args()
"""

#: the absolute goals: seconds at this many tasks or runs
STATUS_GOAL = (3.0, 100_000)
LOAD_GOAL = (10.0, 1_000_000)
#: a smaller load is not judged against the goal: its fixed costs would be
#: multiplied too
EXTRAPOLATE_FROM = 100_000


def _children_cpu() -> float:
    """User and system time of the waited-for children so far, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def task_keys(python: str, spec: pathlib.Path) -> list[str]:
    """The keys of the spec's tasks, as the exman under test makes them."""
    code = (
        "import json, sys\nfrom exman.sweep.spec import load_spec\n"
        "print(json.dumps([t.key for t in load_spec(sys.argv[1]).tasks()]))\n"
    )
    done = subprocess.run(
        [python, "-c", code, str(spec)],
        cwd=spec.parent,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    keys: list[str] = json.loads(done.stdout)
    return keys


def build(work: pathlib.Path, python: str, runs: int, tasks: int) -> pathlib.Path:
    """The spec of a sweep of ``tasks`` tasks and a root of ``runs`` runs.

    A root built before in ``work`` for the same numbers is used again
    (``--work``): a million runs take half an hour to build.
    """
    (work / "main.py").write_text(SCRIPT)
    root = work / "root"
    spec = work / "spec.yaml"
    # two axes, as a large sweep has them (a list of 100,000 values is not
    # what anyone writes, and parsing it would be most of the time)
    ys = 100 if tasks % 100 == 0 else 1
    spec.write_text(
        f"name: scale\ncommand: {python} main.py\nroot: {root}\ngrid:\n"
        f"  x: {json.dumps(list(range(tasks // ys)))}\n"
        f"  y: {json.dumps(list(range(ys)))}\n"
    )
    built = work / "built.json"
    wanted = {"runs": runs, "tasks": tasks}
    if built.exists() and json.loads(built.read_text()) == wanted:
        print(f"using the root of {runs:,} runs built before in {work}", flush=True)
        return spec
    if root.exists():
        shutil.rmtree(root)
    keys = task_keys(python, spec)
    started = time.perf_counter()
    make_root(root, runs, records=True, sweep=("scale", keys))
    built.write_text(json.dumps(wanted))
    print(
        f"built a root of {runs:,} runs, {tasks:,} of them the tasks of the "
        f"sweep, in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the root")
    parser.add_argument(
        "--tasks", type=int, help="tasks of the sweep (default: --runs; at most that)"
    )
    parser.add_argument("--reps", type=int, default=3, help="timed rounds")
    parser.add_argument(
        "--work",
        type=pathlib.Path,
        help="build the root in this folder and keep it; a later run with the "
        "same --runs and --tasks uses it again (default: a temporary folder)",
    )
    add_system(parser)
    args = start(parser, argv, "exman at scale", "bench/scale.py")
    tasks = args.runs if args.tasks is None else args.tasks
    if not 1 <= tasks <= args.runs:
        parser.error(f"--tasks must be 1..{args.runs} (--runs), not {tasks}")
    python = PYTHON if args.system else dev_python()
    targets = Targets()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    place = (
        scratch("exman-bench-scale-")
        if args.work is None
        else contextlib.nullcontext(args.work.resolve())
    )
    with place as work:
        spec = build(work, python, args.runs, tasks)
        root = work / "root"
        sweep = [python, "-m", "exman", "sweep", str(spec)]
        # runs made by an earlier round's creation step stay in a kept root
        rows = sum(1 for _ in os.scandir(root / "index"))

        cpu: dict[str, list[float]] = {}

        def load() -> float:
            out = child(python, OURS, [str(root), "warm"], work)
            if out["rows"] != rows:
                raise RuntimeError(f"the load gave {out['rows']} rows")
            cpu.setdefault("Index.info() warm", []).append(float(out["cpu"]))
            return float(out["seconds"])

        # the first load writes the cache; the first re-run writes the sweep's
        # records: neither is what a user waits for every time
        child(python, OURS, [str(root), "cold"], work)
        run_wall([*sweep, "-q"], cwd=work)

        def whole(name: str, *flags: str) -> Callable[[], float]:
            def go() -> float:
                before = _children_cpu()
                wall = run_wall([*sweep, *flags], cwd=work)
                cpu.setdefault(name, []).append(_children_cpu() - before)
                return wall

            return go

        times = interleaved(
            {
                "sweep --status": whole("sweep --status", "--status"),
                "sweep (no-op re-run)": whole("sweep (no-op re-run)", "-q"),
                "Index.info() warm": load,
            },
            reps=args.reps,
        )
        stats = {name: Summary.of(t) for name, t in times.items()}
        for name, s in stats.items():
            # on a busy machine the CPU time says what a quiet one would take
            used = (
                f"   CPU median {ms(Summary.of(cpu[name]).median)}"
                if name in cpu
                else ""
            )
            print(f"{name:22s} {s}{used}")
        goal, at = STATUS_GOAL
        for name in ("sweep --status", "sweep (no-op re-run)"):
            label = f"{tasks:,} tasks: {name} / {goal:g} s"
            if tasks < at:
                label += f" (the goal is for {at:,} tasks)"
            targets.check(label, stats[name], Summary.of([goal]), 1.0, at_most=True)
        goal, at = LOAD_GOAL
        warm = stats["Index.info() warm"]
        scaled = Summary.of([warm.median * at / args.runs])
        label = f"warm Index.info() of {at:,} runs / {goal:g} s"
        if args.runs != at:
            label += f" (extrapolated linearly from {args.runs:,} runs)"
        if args.runs >= EXTRAPOLATE_FROM:
            targets.check(label, scaled, Summary.of([goal]), 1.0, at_most=True)
        else:  # the fixed costs of a small load would be multiplied too
            targets.note(
                f"{label}: {scaled.median / goal:.2f} (no target below "
                f"{EXTRAPOLATE_FROM:,} runs)"
            )
        trace = child(python, MEMORY, [str(root), "warm", "trace"], work)
        print(
            f"warm load: DataFrame {trace['df'] / 1e6:.1f} MB, peak traced "
            f"{trace['peak'] / 1e6:.1f} MB"
        )
        label = f"{args.runs:,} runs: peak memory of a warm load / DataFrame"
        peak, df = Summary.of([trace["peak"]]), Summary.of([trace["df"]])
        if args.runs >= 10_000:
            targets.check(label, peak, df, 2.0, at_most=True)
        else:  # the fixed part of a load's memory weighs on a small frame
            targets.note(
                f"{label}: {peak.median / df.median:.2f} (no target below 10,000 runs)"
            )
        made = create_times(
            python,
            work,
            [step("empty root", work / "empty"), step("this root", root)],
            max(args.reps * 5, 5),
        )
        for name, s in made.items():
            print(f"creation, {name:12s} {s}")
        targets.check(
            f"creation: in a {args.runs:,}-run root / in an empty root",
            made["this root"],
            made["empty root"],
            1.2,
            at_most=True,
        )
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
