"""The overhead of ``exman sweep`` over the plainest parallel launcher.

200 tasks of an ExParser script that parses its arguments and does nothing,
run with ``exman sweep spec.yaml -j 2``, against ``xargs -P 2`` running the
same 200 commands (each with the environment the sweep gives its task, so
the children do exactly the same work). Every round starts from an empty
root. The sweep's extra work: its own start-up, expanding and planning the
spec, a claim and a log file per task, finding the run each task made.
Target: sweep / xargs <= 1.2.

Run ``python bench/sweep.py`` (``--tasks 50 --reps 2`` for a quick look;
``--system`` to run the sweep and its tasks with the interpreter running the
benchmark rather than ``bench/.venv-exman-dev``); the exit code is 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
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
    scratch,
)

SCRIPT = """\
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--model", default="mlp")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
"""


def spec_text(tasks: int, python: str) -> str:
    lrs = [round(0.001 * (i + 1), 6) for i in range(tasks)]
    return f"command: {shlex.quote(python)} main.py\ngrid:\n  lr: {json.dumps(lrs)}\n"


def xargs_lines(folder: Path, python: str) -> str:
    """The sweep's tasks as ``VAR=… python main.py`` lines for ``xargs env``."""
    dry = subprocess.run(
        [python, "-m", "exman.sweep", "spec.yaml", "--dry-run"],
        cwd=folder,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in dry.stdout.splitlines() if not line.startswith("#")]
    # root "exman" (relative) -> the xargs variant's own root
    return "".join(
        line.replace("EXMAN_ROOT=exman ", "EXMAN_ROOT=xargs-root ", 1) + "\n"
        for line in lines
    )


def timed(cmd: Sequence[str], folder: Path, fresh: Path, expected: int) -> float:
    """The wall time of ``cmd`` from an empty root ``fresh``; checks its runs."""
    shutil.rmtree(fresh, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        list(cmd),
        cwd=folder,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} failed ({done.returncode}):\n{done.stdout}"
        )
    runs = len(list((fresh / "runs").iterdir()))
    if runs != expected:
        raise RuntimeError(f"{shlex.join(cmd)} made {runs} runs, not {expected}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3, help="rounds (after a warm-up)")
    add_system(parser)
    args = parser.parse_args(argv)
    header(
        f"exman sweep vs xargs -P {args.jobs}: {args.tasks} tasks of an empty "
        "ExParser script",
        "bench/sweep.py",
        sys.argv[1:] if argv is None else argv,
    )
    if shutil.which("xargs") is None:
        raise SystemExit("xargs is needed for this benchmark")
    # this tree's exman, for the sweep and its tasks
    python = PYTHON if args.system else dev_python()
    with scratch("exman-bench-sweep-") as folder:
        (folder / "main.py").write_text(SCRIPT)
        (folder / "spec.yaml").write_text(spec_text(args.tasks, python))
        (folder / "tasks.txt").write_text(xargs_lines(folder, python))
        jobs = str(args.jobs)
        variants = {
            "exman sweep": lambda: timed(
                [python, "-m", "exman.sweep", "spec.yaml", "-j", jobs, "-q"],
                folder,
                folder / "exman",
                args.tasks,
            ),
            "xargs": lambda: timed(
                ["xargs", "-P", jobs, "-L", "1", "-a", "tasks.txt", "env"],
                folder,
                folder / "xargs-root",
                args.tasks,
            ),
        }
        times = interleaved(variants, args.reps)
    sweep_t, xargs_t = Summary.of(times["exman sweep"]), Summary.of(times["xargs"])
    print(f"exman sweep  {sweep_t}")
    print(f"xargs        {xargs_t}")
    per_task = (sweep_t.median - xargs_t.median) / args.tasks * args.jobs
    print(f"overhead per task (wall, x{args.jobs} jobs): {per_task * 1000:.2f} ms")
    targets = Targets()
    targets.check("exman sweep / xargs", sweep_t, xargs_t, 1.2, at_most=True)
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
