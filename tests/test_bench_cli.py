"""The benchmarks stay runnable: ``bench/cli.py`` on a root of a few runs, one
round; ``bench/search.py`` in its tiny mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_bench_cli_prints_the_ratios() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "bench/cli.py", "--system", "--sizes", "20", "--reps", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # a target missed at 20 runs is noise on a busy machine, not a failure
    assert proc.returncode in (0, 1), proc.stderr
    assert "20 runs: exman ls / Index.info():" in proc.stdout
    assert "20 runs: exman ls csv / Index.info():" in proc.stdout


def test_bench_search_prints_the_ratios() -> None:
    """``bench/search.py --tiny``: two seeds of three small searches."""
    pytest.importorskip("optuna")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "bench/search.py", "--tiny"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # a missed target in 6 trials is chance, not a failure
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "best tpe / best random:" in proc.stdout
    assert "steps tpe+median / steps tpe:" in proc.stdout
    assert "compute saved by pruning:" in proc.stdout


def test_bench_report_prints_the_ratios() -> None:
    """``bench/report.py`` at 20 runs, without the browser."""
    pytest.importorskip("plotly")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "bench/report.py",
            "--system",
            "--sizes",
            "20",
            "--steps",
            "3",
            "--reps",
            "1",
            "--no-paint",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "20 runs: exman report / (Index.info() + Index.metrics()):" in proc.stdout
    assert "20 runs: exman ui's payload / (Index.info() + Index.metrics())" in (
        proc.stdout
    )
    assert "20 runs: report size" in proc.stdout
