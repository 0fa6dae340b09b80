"""Helpers shared by the sweep tests of every launcher (local, SLURM, Ray)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from exman.record.run import Run

PYTHON = shlex.quote(sys.executable)

#: arguments the sweep tests' scripts add to conftest's SCRIPT
EXTRA = """\
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--child", action="store_true")
parser.add_argument("--ignore_int", action="store_true")
"""


#: a script that checkpoints every step and starts again from its newest
#: checkpoint; a step, its checkpoint and its record are one (SIGTERM waits)
TRAIN = """\
import signal
import time

run = args.run
ckpt = run.last_checkpoint()
start = 0 if ckpt is None else int(ckpt.read_text()) + 1
with args.safe_experiment:
    print("attempt", run.attempt, "resumed", run.resumed, "from", start, flush=True)
    for step in range(start, args.epochs):
        time.sleep(args.sleep)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        (run.checkpoint_dir / f"step{step}.txt").write_text(str(step))
        exman.log(step=step, loss=1.0 / (step + 1))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    print("finished at", args.epochs, flush=True)
"""

TRAIN_EXTRA = """\
parser.add_argument("--sleep", type=float, default=0.0)
"""


def metric_steps(folder: Path) -> list[int]:
    """The steps of the records in a run's metrics.jsonl, in order."""
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def write_spec(folder: Path, file: str = "sweep.yaml", /, **data: Any) -> Path:
    """Write a sweep spec (``data``) into ``folder/file``; a default command."""
    data.setdefault("command", f"{PYTHON} main.py --epochs 2")
    path = folder / file
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def all_runs(root: Path) -> list[dict[str, Any]]:
    """The run.json of every run in runs/ then fails/, with its place and path."""
    out = []
    for place in ("runs", "fails"):
        for folder in sorted((root / place).glob("0*")):
            record = Run(folder).record()
            record.update(place=place, path=folder)
            out.append(record)
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2] != "Z"
    except OSError:
        return False


def wait_for(
    condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(interval)
