"""How fast ``exman ls`` lists a root, against ``Index(root).info()`` on it.

For roots of 1,000 / 10,000 / 100,000 runs (built by hand: params.yaml,
run.json and the index links), each of these runs as a new process,
interleaved, ``--reps`` times (the median is reported), with its output
going to a pipe nobody reads (``/dev/null``):

* info: ``python -c "import exman; exman.Index(root).info()"``, the load
  that ``exman ls`` makes too;
* ls: ``exman ls`` (the table);
* ls csv: ``exman ls --format csv``.

The whole process is timed on every side: the interpreter's start and the
imports of exman and pandas are in each. A first round fills the index
cache and is not counted, so every load is warm.

Targets: ls and ls csv at most 1.5x info, at each size. The exit code is 1
when a target is missed.

Run ``python bench/cli.py`` (``--sizes 1000,10000`` and ``--reps 3`` for a
shorter run; ``--system`` with the interpreter running the benchmark
instead of ``bench/.venv-exman-dev``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from _common import (
    PYTHON,
    Summary,
    Targets,
    add_system,
    dev_python,
    interleaved,
    make_root,
    run_wall,
    scratch,
    start,
)

TARGET = 1.5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="runs per root")
    parser.add_argument("--reps", type=int, default=5, help="timed rounds per size")
    add_system(parser)
    args = start(parser, argv, "exman ls vs Index(root).info()", "bench/cli.py")
    python = PYTHON if args.system else dev_python()
    targets = Targets()
    with scratch("exman-bench-cli-") as work:
        for n in (int(s) for s in args.sizes.split(",")):
            root = str(make_root(work / f"root-{n}", n, records=True))
            info = [python, "-c", f"import exman; exman.Index({root!r}).info()"]
            ls = [python, "-m", "exman", "--root", root, "ls"]
            variants = {
                "info": lambda cmd=info: run_wall(cmd),
                "ls": lambda cmd=ls: run_wall(cmd),
                "ls csv": lambda cmd=ls: run_wall([*cmd, "--format", "csv"]),
            }
            times = interleaved(variants, reps=args.reps)
            summaries = {name: Summary.of(t) for name, t in times.items()}
            print(f"\n== {n:,} runs")
            for name, summary in summaries.items():
                print(f"{name:<8} {summary}")
            for name in ("ls", "ls csv"):
                targets.check(
                    f"{n:,} runs: exman {name} / Index.info()",
                    summaries[name],
                    summaries["info"],
                    TARGET,
                    at_most=True,
                )
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
