"""What some tests need from the machine: in CI a missing piece fails them,
elsewhere it skips them."""

from __future__ import annotations

import importlib.util
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_torch() -> None:
    """Skip (fail in CI) without torch, which the ``test`` extra installs."""
    if importlib.util.find_spec("torch") is None:
        message = "torch is not installed (pip install -e '.[test]' installs it)"
        if IN_CI:
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
