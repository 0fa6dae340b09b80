"""exman sweep under random SIGKILLs of its launcher: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from _sweep_helpers import PYTHON, all_runs, write_spec

from exman.record.store import Root
from exman.sweep import sweep
from exman.sweep.claims import Claims

#: slow imports before parse_args: the launcher may die before it learns the pid
SLOW_START = """\
import sys, time
time.sleep(float(sys.argv[1]))
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=int, default=0)
args = parser.parse_args(sys.argv[2:])
"""

KILLS = 200
TASKS = 150


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_random_sigkills_of_the_launcher_complete_every_task_exactly_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "main.py").write_text(SLOW_START)
    root = tmp_path / "exman"
    spec = write_spec(
        tmp_path,
        command=f"{PYTHON} main.py 1.0",
        grid={"x": list(range(TASKS))},
    )
    rng = random.Random(12)
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "exman.sweep", str(spec), "-j", "3"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # from before the first claim to well after the first tasks started
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the orphans finish on their own; then a sweep left alone does the rest
    end = time.monotonic() + 120
    while True:
        while Claims(Root(root)).held() and time.monotonic() < end:
            time.sleep(0.1)
        summary = sweep(spec, jobs=2)
        if summary.counts()["completed"] == TASKS or time.monotonic() > end:
            break
    assert summary.counts()["completed"] == TASKS, summary.text()
    runs = all_runs(root)
    started = Counter(r["sweep"]["key"] for r in runs)
    twice = {key: n for key, n in started.items() if n > 1}
    assert not twice, f"tasks started more than once: {twice}"
    assert len(started) == TASKS
    assert all(r.get("status") == "completed" for r in runs)
