"""SIGKILL at random instants inside ``parse_args`` and ``safe_experiment``.

Hundreds of runs are killed wherever they happen to be (making the folder,
writing params.yaml or run.json, linking, logging metrics, writing
results, moving to fails/). Afterwards the root must load, list and clean,
the index must hold only whole runs, and the counter must still give a
fresh id.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import exman
from exman.commands import manage
from exman.record.store import Root

SCRIPT = """\
import sys
import exman

print("imported", flush=True)
parser = exman.ExParser(root=sys.argv[1], automark=["group"])
parser.add_argument("--group", default="g")
parser.add_argument("--fail", action="store_true")
args = parser.parse_args(sys.argv[2:])
with args.safe_experiment:
    for step in range(50):
        exman.log(step, loss=1 / (step + 1))
    exman.result(loss=0.5)
    print("trained")
    if args.fail:
        raise ValueError("asked to fail")
"""

#: kill points wanted: processes killed while still alive
KILLS = 200


def _start(script: Path, root: Path, rng: random.Random) -> subprocess.Popen[str]:
    args = [str(root), "--group", rng.choice("ab")]
    if rng.random() < 0.25:
        args.append("--tmp")
    if rng.random() < 0.3:
        args.append("--fail")
    if rng.random() < 0.3:
        args += ["--name", "named"]
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "imported\n"
    return proc


def _lifetime(script: Path, root: Path) -> float:
    """How long a run takes from ``import exman`` to its end, uncut."""
    times = []
    for _ in range(3):
        proc = _start(script, root, random.Random(0))
        start = time.perf_counter()
        proc.communicate(timeout=60)
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def _kill_one(script: Path, root: Path, seed: int, span: float) -> bool:
    """Start a run, SIGKILL it at a random instant; True if it was still alive."""
    rng = random.Random(seed)
    proc = _start(script, root, rng)
    time.sleep(rng.uniform(0, span))
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return alive


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_anywhere_in_parse_args_and_safe_experiment(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "main.py"
    script.write_text(SCRIPT)
    span = _lifetime(script, root) * 1.1
    kills = seeds = 0
    deadline = time.monotonic() + 200
    with ThreadPoolExecutor(3) as pool:
        while kills < KILLS and time.monotonic() < deadline:
            batch = range(seeds, seeds + 30)
            seeds += 30
            kills += sum(pool.map(lambda s: _kill_one(script, root, s, span), batch))
    assert kills >= KILLS, f"only {kills} kill points in time"

    # the index and the marks only ever link whole runs: no warning at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = exman.Index(root)
        listed = index.info()
        for key in ("group/a", "group/b"):
            try:
                index.info(key)
            except exman.index.MarkNotFound:
                pass
    assert listed.id.is_unique
    # every place loads; a folder killed before its params.yaml is skipped
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        everything = exman.Index(root, cache=False).info(failed=True, tmp=True)
    assert everything.id.is_unique
    for args in (["ls"], ["ls", "--failed", "--tmp", "--format", "json"]):
        proc = subprocess.run(
            [sys.executable, "-m", "exman", "--root", str(root), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    # an hour later (the processes are long dead), gc leaves a clean root
    hours_ago = time.time() - 2 * 3600
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(here, name)
            os.utime(path, (hours_ago, hours_ago), follow_symlinks=False)
    report = manage.gc(root)
    assert not report.refused, report.refused
    leftovers = [
        os.path.join(here, name)
        for here, dirs, files in os.walk(root)
        for name in dirs + files
        if name.endswith(".tmp") or name.startswith(".deleting-")
    ]
    assert leftovers == []
    store = Root(root)
    assert all((p / "params.yaml").exists() for p in store.iter_runs())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exman.Index(root, cache=False).info(failed=True)
    # the counter gives a fresh id, above every folder of every place
    highest = max(int(p.name.split("-")[0]) for p in store.iter_runs())
    place = store.allocate()
    assert place.id > highest
    assert [p for p in store.iter_runs() if p.name.startswith(f"{place.id:06d}-")] == [
        place.path
    ]
    # and a normal run still works
    done = subprocess.run(
        [sys.executable, str(script), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
