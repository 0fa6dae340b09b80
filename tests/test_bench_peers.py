"""``bench/peers.py`` stays runnable: the exman side, a few runs, one round."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_peers_measures_the_exman_side() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "bench/peers.py",
            "--system",
            "--no-peers",
            "--runs",
            "20",
            "--points",
            "100",
            "--reps",
            "1",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for row in ("(a) a script", "(b) 20 runs", "(c) 100 values", "(d) listing 20"):
        assert row in proc.stdout
    assert "exman first load / warm:" in proc.stdout
