"""A real small file system for the tests of a full disk and a read-only root.

Tests run as root in CI: they mount a ``tmpfs`` of a few hundred KiB and
unmount it when done. Elsewhere (not root, no mount) they are skipped with
the reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_fs(where: Path, size: str = "512k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (created) for the block."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, mode: str) -> None:
    """Remount the tmpfs at ``where`` read-only (``ro``) or read-write (``rw``)."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65536, 4096, 512, 64, 1):
            while True:
                try:
                    os.write(fd, b"x" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler
