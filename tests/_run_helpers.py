"""Helpers shared by the tests of a run's life (safe_experiment, run status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
