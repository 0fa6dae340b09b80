"""exman sweep under random SIGKILLs of its launcher: nothing lost, nothing doubled.

A launcher takes a 0.5 to 1 s to start; what matters is what happens after
it claims a task: starting the task's process and learning its pid. So most
kills come at a random instant just after a launcher's own first claim, the
others at a random instant before it, and the test counts how many kills
came after a task was claimed (it must be most of them).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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

#: kill points wanted: launchers killed while still alive
KILLS = 200
#: a killed launcher has claimed up to 2 tasks (-j 2): enough for every kill
TASKS = 300
#: how long after its claim a launcher may be killed (it starts the task,
#: records the pid, maybe claims a second one)
AFTER_CLAIM = 0.3
#: the share of kills at a random instant before the launcher's first claim
BEFORE_CLAIM = 0.25


class Launchers:
    """Start launchers and kill each at a random instant; count the kills."""

    def __init__(self, tmp_path: Path, spec: Path, tasks: Path) -> None:
        self.tmp_path, self.spec, self.tasks = tmp_path, spec, tasks
        self.startups = [0.5]  # seconds from a launcher's start to its claim
        self.kills = Counter[str]()

    def claimed_by(self, pid: int, seen: dict[str, int]) -> bool:
        """Whether a claim of the launcher ``pid`` is among the held claims."""
        try:
            entries = list(os.scandir(self.tasks))
        except FileNotFoundError:
            return False
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            try:
                changed = entry.stat().st_mtime_ns
                if seen.get(entry.name) == changed:
                    continue
                seen[entry.name] = changed
                record = json.loads(Path(entry.path).read_text())
            except (OSError, ValueError):
                continue  # replaced meanwhile: read at the next look
            if record.get("pid") == pid:
                return True
        return False

    def kill_one(self, seed: int) -> None:
        rng = random.Random(seed)
        proc = subprocess.Popen(
            [sys.executable, "-m", "exman.sweep", str(self.spec), "-j", "2"],
            cwd=self.tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        start = time.monotonic()
        when = "early"
        if rng.random() < BEFORE_CLAIM:
            time.sleep(rng.uniform(0.05, statistics.median(self.startups)))
        else:
            seen: dict[str, int] = {}
            while proc.poll() is None and time.monotonic() - start < 30:
                if self.claimed_by(proc.pid, seen):
                    self.startups.append(time.monotonic() - start)
                    when = "after claim"
                    time.sleep(rng.uniform(0, AFTER_CLAIM))
                    break
                time.sleep(0.002)
        if proc.poll() is None:
            self.kills[when] += 1
        else:
            self.kills["too late"] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(500)
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
    launchers = Launchers(tmp_path, spec, root / ".exman" / "tasks")
    seeds = 0
    deadline = time.monotonic() + 300
    with ThreadPoolExecutor(2) as pool:
        while (
            launchers.kills["early"] + launchers.kills["after claim"] < KILLS
            and time.monotonic() < deadline
        ):
            list(pool.map(launchers.kill_one, range(seeds, seeds + 20)))
            seeds += 20
    kills = launchers.kills
    assert kills["early"] + kills["after claim"] >= KILLS, kills
    # the instants that matter were hit: a claim taken, its task being started
    assert kills["after claim"] >= KILLS // 2, kills
    started = len(list(Root(root).iter_runs())) + len(Claims(Root(root)).held())
    assert started >= KILLS // 2, (started, kills)

    # the orphans finish on their own; then a sweep left alone does the rest
    end = time.monotonic() + 150
    while True:
        while Claims(Root(root)).held() and time.monotonic() < end:
            time.sleep(0.1)
        summary = sweep(spec, jobs=3)
        if summary.counts()["completed"] == TASKS or time.monotonic() > end:
            break
    assert summary.counts()["completed"] == TASKS, summary.text()
    runs = all_runs(root)
    started_by_key = Counter(r["sweep"]["key"] for r in runs)
    twice = {key: n for key, n in started_by_key.items() if n > 1}
    some = dict(list(twice.items())[:5])
    assert not twice, f"{len(twice)} tasks started more than once: {some}… ({kills})"
    assert len(started_by_key) == TASKS
    assert all(r.get("status") == "completed" for r in runs)
