"""What creating a run costs rank 0 of a torchrun launch, over one process.

A worker builds an ExParser with four arguments and creates ``--runs`` runs
in a row, timing each ``parse_args()`` inside the process. It runs alone
(``python worker.py``) and as both ranks of ``torchrun --standalone
--nproc_per_node 2`` (rank 0 creates and publishes each run, rank 1 waits
for it and joins it), interleaved round by round. Rank 0's time is the one
compared: the other ranks wait for it by design.
Target: rank 0 adds at most 50 ms per run.

Run ``python bench/ranks.py`` (``--runs 20 --reps 2`` for a quick look);
it needs torch (``pip install -e '.[test]'``). The exit code is 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import PYTHON, REPO, Summary, child_env, header, interleaved, scratch

WORKER = """\
import json, os, sys, time
import exman

out, runs = sys.argv[1], int(sys.argv[2])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "root")
times = []
for i in range(runs):
    start = time.perf_counter()
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.parse_args(["--seed", str(i)])
    times.append(time.perf_counter() - start)
if int(os.environ.get("RANK", "0")) == 0:
    with open(out, "w") as f:
        json.dump(times, f)
"""

TARGET_MS = 50.0


def measure(cmd: Sequence[str], folder: Path, runs: int) -> float:
    """The median time of one run's creation by rank 0 (or the only process)."""
    out = folder / "times.json"
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    done = subprocess.run(
        [*cmd, str(folder / "worker.py"), str(out), str(runs)],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    times = json.loads(out.read_text())
    return statistics.median(times[1:])  # the first pays for the imports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=50, help="runs per launch (at least 2)"
    )
    parser.add_argument("--reps", type=int, default=3, help="rounds (after a warm-up)")
    args = parser.parse_args(argv)
    if args.runs < 2:
        # the first run of each launch pays for the imports and is left out
        parser.error(f"--runs must be at least 2, not {args.runs}")
    header(
        f"creating a run: rank 0 of torchrun (2 ranks) vs one process, "
        f"{args.runs} runs per launch",
        "bench/ranks.py",
        sys.argv[1:] if argv is None else argv,
    )
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("torch is needed: pip install -e '.[test]'")
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--standalone"]
    with scratch("exman-bench-ranks-") as folder:
        (folder / "worker.py").write_text(WORKER)
        variants = {
            "one process": lambda: measure([PYTHON], folder, args.runs),
            "torchrun rank 0": lambda: measure(
                [*torchrun, "--nproc_per_node", "2"], folder, args.runs
            ),
        }
        times = interleaved(variants, args.reps)
    single, rank0 = (
        Summary.of(times["one process"]),
        Summary.of(times["torchrun rank 0"]),
    )
    print(f"one process      {single}   (per run)")
    print(f"torchrun rank 0  {rank0}   (per run)")
    added = (rank0.median - single.median) * 1000
    print(f"ratio rank 0 / one process: {rank0.median / single.median:.2f}")
    ok = added <= TARGET_MS
    print(
        f"\n== targets\n{'PASS' if ok else 'FAIL'}  rank 0 adds {added:.2f} ms per run "
        f"(target <= {TARGET_MS:g} ms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
