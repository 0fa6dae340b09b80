"""The benchmarks stay runnable: ``bench/startup.py``, ``index.py``,
``metrics.py``, ``aggregate.py``, ``ranks.py`` and ``sweep.py`` at their
tiniest sizes, with this interpreter (``--system``: no virtual environment
is made, nothing is installed) and without exman 0.1.9.

A target missed at these sizes on a busy machine is noise, not a failure
(exit code 1); a benchmark that crashes or stops printing its ratios is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _requires import need_torch

REPO = Path(__file__).resolve().parent.parent


def bench(script: str, *args: str, timeout: float = 120) -> str:
    """Run ``bench/<script>`` with ``args``; its stdout, once it has run to
    the end (exit code 0, or 1 for a missed target, without a traceback)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # no virtual environment was made for it
    assert ".venv-" not in proc.stdout, proc.stdout
    return proc.stdout


def verdict(label: str, stdout: str) -> None:
    """A PASS or FAIL line for the target ``label`` is in ``stdout``."""
    pattern = rf"^(PASS|FAIL)  {re.escape(label)}"
    assert re.search(pattern, stdout, re.MULTILINE), stdout


def test_bench_startup_prints_the_ratios() -> None:
    out = bench(
        "startup.py", "--only", "startup", "--no-orig", "--system", "--reps", "1"
    )
    assert "\n  exman / (floor + pathlib): " in out
    assert "\n  exman in a git work tree / exman: " in out
    verdict("startup: exman / floor (configargparse parse + import yaml): ", out)
    assert "modules the floor does not import: " in out
    assert "== targets" in out


def test_bench_startup_creation_prints_the_ratio() -> None:
    out = bench(
        "startup.py",
        *("--only", "creation", "--no-orig", "--system", "--runs", "20"),
        *("--reps", "1"),
    )
    assert "durability (fsync of params.yaml" in out
    assert "20-run root without counter (made by 0.1.9): first run" in out
    verdict("creation: exman in a 20-run root / in an empty root: ", out)
    assert "== targets" in out


def test_bench_index_prints_the_ratios() -> None:
    """The fewest rounds ``bench/index.py`` takes (3), at 20 runs."""
    out = bench("index.py", "--no-orig", "--system", "--sizes", "20", "--reps", "3")
    assert "20 runs: cold / floor (C parse) " in out
    assert "exman returns every run" not in out
    for mode in ("warm", "cold"):
        assert f"memory, {mode}: DataFrame " in out
    assert "== targets" in out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_metrics_prints_the_ratios() -> None:
    """The fewest rounds ``bench/metrics.py`` takes (3), on 2 runs: the
    three kills of its crash test take 2 s each."""
    out = bench(
        "metrics.py",
        *("--system", "--calls", "100", "--repeat", "3"),
        *("--runs", "2", "--steps", "10"),
        timeout=280,
    )
    verdict("exman.log / plain file: ", out)
    verdict("SIGKILL loses under 1 s of records", out)
    verdict("Index.metrics() / json.loads per line + DataFrame: ", out)
    assert "cold Index.info() of 40 runs: " in out
    assert "== targets" in out


def test_bench_aggregate_prints_the_ratio() -> None:
    """``bench/aggregate.py`` runs in its own process with this tree."""
    out = bench("aggregate.py", "--runs", "50", "--reps", "1")
    assert "50 runs in 1 groups" in out
    verdict("summarize / floor: ", out)
    assert "(table / floor: " in out


def test_bench_ranks_prints_the_cost_of_rank_0() -> None:
    """Two runs per launch (the first is left out), one round."""
    need_torch()
    out = bench("ranks.py", "--runs", "2", "--reps", "1")
    assert "ratio rank 0 / one process: " in out
    verdict("rank 0 adds ", out)


def test_bench_sweep_prints_the_ratio() -> None:
    out = bench("sweep.py", "--system", "--tasks", "2", "--reps", "1")
    assert "overhead per task (wall, x2 jobs): " in out
    verdict("exman sweep / xargs: ", out)
    assert "== targets" in out
