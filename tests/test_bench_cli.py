"""``bench/cli.py`` stays runnable: a root of a few runs, one round."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
