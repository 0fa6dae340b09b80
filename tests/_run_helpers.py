"""Helpers shared by the tests of a run's life and of the ``exman`` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import exman


def the_run(root: Path) -> Path:
    """The one run folder of the root, wherever it is."""
    found = list(exman.Root(root).iter_runs())
    assert len(found) == 1, found
    return found[0]


def record(folder: Path) -> dict[str, Any]:
    """The run.json of a run folder."""
    data: dict[str, Any] = json.loads((folder / "run.json").read_text())
    return data


def exman_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``exman`` console script in a real process, without EXMAN_ROOT."""
    found = shutil.which("exman", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("the exman console script is not installed")
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    return subprocess.run(
        [found, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )
