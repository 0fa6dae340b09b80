"""A reader that closes the pipe early (``exman ls | head``) ends exman quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import exman


@pytest.fixture
def root(root: Path) -> Path:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    for lr in ("0.1", "0.2"):
        with parser.parse_args(["--lr", lr]).safe_experiment:
            exman.log(0, loss=1.0)
            print("a line of the log")
    return root


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["ls", "--format", "csv"],
        ["ls", "--format", "json"],
        ["show", "1"],
        ["mark", "best", "1"],
        ["diff", "1", "2"],
        ["tail", "1"],
        ["tail", "-f", "--metrics", "1"],
        ["tag", "1", "best"],
    ],
)
def test_closed_pipe_ends_quietly_with_status_0(root: Path, argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before exman writes a byte
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "exman", "--root", str(root), *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert "pipe" not in proc.stderr.lower() and "Traceback" not in proc.stderr
