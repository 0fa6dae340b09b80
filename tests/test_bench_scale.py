"""``bench/scale.py`` stays runnable: a root of a few runs, one round."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _scale(*flags: str, tasks: int = 200) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "bench/scale.py", "--system", "--runs", "200", *flags],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # a missed target at 200 runs on a busy machine is noise, not a failure
    assert proc.returncode in (0, 1), proc.stderr
    for line in (
        f"{tasks} tasks: sweep --status / 3 s",
        f"{tasks} tasks: sweep (no-op re-run) / 3 s",
        "warm Index.info() of 1,000,000 runs / 10 s",
        "200 runs: peak memory of a warm load / DataFrame",
        "creation: in a 200-run root / in an empty root",
    ):
        assert line in proc.stdout, proc.stdout
    return proc.stdout


def test_bench_scale_prints_every_goal() -> None:
    _scale("--reps", "1")


def test_bench_scale_keeps_its_root_for_the_next_run(tmp_path: Path) -> None:
    """``--work``: the root is built once; the next run measures it again,
    with the runs the first one's creation step added to it."""
    work = tmp_path / "work"
    first = _scale("--reps", "1", "--work", str(work))
    assert "built a root of 200 runs" in first
    made = sorted(os.listdir(work / "root" / "runs"))
    assert len(made) > 200
    second = _scale("--reps", "1", "--work", str(work))
    assert "using the root of 200 runs built before" in second
    assert "built a root" not in second
    assert set(made) <= set(os.listdir(work / "root" / "runs"))
    # other numbers build it again
    third = _scale("--reps", "1", "--tasks", "100", "--work", str(work), tasks=100)
    assert "built a root of 200 runs, 100 of them" in third
