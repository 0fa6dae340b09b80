"""What an ``exman sweep`` search buys: TPE against random, and pruning.

The script is a noisy quadratic in two parameters (optimum 0 at ``x=1,
y=-2``) that logs a decreasing curve of its loss for ``--steps`` steps
(40 of 25 ms: a trial of about a second, long beside the tenths of a second
that pruning takes to act) and asks ``exman.should_stop()`` at each. For
each of ``--seeds`` study seeds, three searches of ``--trials`` trials each
run with ``exman sweep -j 2``:

* tpe: ``method: tpe``, no pruner;
* random: ``method: random``, no pruner (the same budget);
* tpe+median: ``method: tpe`` with ``pruner: median``.

Reported, as medians over the seeds: the best objective of each (the
lowest loss among completed trials), and the compute of each, counted in
steps run (records in the runs' ``metrics.jsonl``), not in seconds.

Targets: best tpe / best random <= 1 (TPE finds at least as good a point
at equal budget); steps tpe+median / steps tpe <= 0.8 (pruning saves a
fifth of the compute or more). The exit code is 1 when a target is missed.

Run ``python bench/search.py`` (10 seeds of 30 trials: several minutes) or
``--tiny`` (2 seeds of 6 trials, to check that it runs). It needs Optuna
in the interpreter running it (``pip install 'exman[search]'``) and runs
this tree's exman with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import PYTHON, REPO, child_env, header, scratch

SCRIPT = """\
import random, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--y", type=float, default=0.0)
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--sleep", type=float, default=0.025)
args = parser.parse_args()
loss = (args.x - 1) ** 2 + (args.y + 2) ** 2 + random.gauss(0, 0.01)
for step in range(args.steps):
    exman.log(step=step, loss=loss + 1 / (1 + step))
    if exman.should_stop():
        break
    time.sleep(args.sleep)
exman.result(loss=loss)
"""

VARIANTS = {
    "tpe": {"method": "tpe", "pruner": "none"},
    "random": {"method": "random", "pruner": "none"},
    "tpe+median": {"method": "tpe", "pruner": "median"},
}


def spec_text(name: str, seed: int, trials: int, steps: int, **search: str) -> str:
    command = f"{shlex.quote(PYTHON)} main.py --steps {steps}"
    return json.dumps(
        {
            "command": command,
            "name": name,
            "search": {
                **search,
                "trials": trials,
                "seed": seed,
                "objective": "loss",
                "grace": 0.5,
                "space": {
                    "x": {"low": -4, "high": 4},
                    "y": {"low": -4, "high": 4},
                },
            },
        }
    )


def outcome(root: Path, name: str) -> tuple[float, int]:
    """The best loss of the completed trials of sweep ``name``, and its steps."""
    best, steps = float("inf"), 0
    for place in ("runs", "fails"):
        for run in (root / place).glob("0*"):
            record = json.loads((run / "run.json").read_text())
            if (record.get("sweep") or {}).get("name") != name:
                continue
            metrics = run / "metrics.jsonl"
            if metrics.exists():
                steps += len(metrics.read_text().splitlines())
            if record.get("status") == "completed":
                loss = json.loads((run / "results.json").read_text())["loss"]
                best = min(best, loss)
    return best, steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="study seeds")
    parser.add_argument("--trials", type=int, default=30, help="trials per study")
    parser.add_argument("--steps", type=int, default=40, help="steps per trial")
    parser.add_argument(
        "--tiny", action="store_true", help="2 seeds of 6 trials of 5 steps"
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.seeds, args.trials, args.steps = 2, 6, 5
    header(
        "exman sweep search: tpe vs random, pruning",
        "bench/search.py",
        list(argv if argv is not None else sys.argv[1:]),
    )
    env = {**child_env(), "PYTHONPATH": str(REPO)}
    best: dict[str, list[float]] = {v: [] for v in VARIANTS}
    steps: dict[str, list[int]] = {v: [] for v in VARIANTS}
    with scratch("exman-bench-search-") as work:
        (work / "main.py").write_text(SCRIPT)
        for seed in range(args.seeds):
            for variant, search in VARIANTS.items():
                name = f"{variant.replace('+', '-')}-{seed}"
                spec = work / f"{name}.json"
                spec.write_text(
                    spec_text(name, seed, args.trials, args.steps, **search)
                )
                done = subprocess.run(
                    [PYTHON, "-m", "exman.sweep", spec.name, "-q", "-j", "2"],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {done.stdout}{done.stderr}")
                value, count = outcome(work / "exman", name)
                best[variant].append(value)
                steps[variant].append(count)
            print(
                f"seed {seed}: best "
                + ", ".join(f"{v} {best[v][-1]:.3g}" for v in VARIANTS)
                + "; steps "
                + ", ".join(f"{v} {steps[v][-1]}" for v in VARIANTS),
                flush=True,
            )
    med_best = {v: statistics.median(best[v]) for v in VARIANTS}
    med_steps = {v: statistics.median(steps[v]) for v in VARIANTS}
    print(f"\nmedian over {args.seeds} seeds of {args.trials} trials:")
    for v in VARIANTS:
        print(f"  {v:<11} best {med_best[v]:.4g}  steps {med_steps[v]:g}")
    failed = False
    checks = [
        ("best tpe / best random", med_best["tpe"], med_best["random"], 1.0),
        (
            "steps tpe+median / steps tpe",
            med_steps["tpe+median"],
            med_steps["tpe"],
            0.8,
        ),
    ]
    for label, num, den, limit in checks:
        ratio = num / den if den else float("inf")
        ok = ratio <= limit
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {ratio:.2f} (target <= {limit:g})")
    saved = 1 - med_steps["tpe+median"] / med_steps["tpe"] if med_steps["tpe"] else 0
    print(f"compute saved by pruning: {saved:.0%} of the steps")
    print(
        "best tpe+median / best tpe: "
        f"{med_best['tpe+median'] / med_best['tpe']:.2f} (what pruning cost in quality)"
        if med_best["tpe"]
        else ""
    )
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.pop("EXMAN_ROOT", None)
    sys.exit(main())
