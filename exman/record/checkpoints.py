"""Where a run keeps its checkpoints, and which one is the newest.

A run that may be stopped and continued (a SLURM requeue, ``resume: true``
in a local sweep, ``--resume-run``) saves its state under
``<run folder>/checkpoints/`` and, when it is resumed, loads the newest file
there. Nothing here knows what a checkpoint holds: exman only finds it.
"""

from __future__ import annotations

import os
import pathlib

from .files import make_dir
from .store import StrPath

__all__ = ["CHECKPOINT_DIR", "checkpoint_dir", "latest_checkpoint"]

#: the folder inside a run folder that ``args.run.checkpoint_dir`` names
CHECKPOINT_DIR = "checkpoints"
#: names of files still being written (``torch.save`` to a temporary name,
#: then a rename): never the newest checkpoint
_PARTIAL = (".tmp", ".part", ".partial")


def checkpoint_dir(run_folder: StrPath) -> pathlib.Path:
    """``<run_folder>/checkpoints``, created if it is not there yet."""
    path = pathlib.Path(run_folder) / CHECKPOINT_DIR
    make_dir(path, exist_ok=True)
    return path


def latest_checkpoint(folder: StrPath, pattern: str = "*") -> pathlib.Path | None:
    """The newest file in ``folder`` whose name matches ``pattern``.

    Newest by modification time, then by name (``step10`` after ``step9``:
    the digits compare as numbers). Hidden files and the names of files
    being written (``*.tmp``, ``*.part``, ``*.partial``) never count, so a
    checkpoint written to a temporary name and renamed is found only whole.

    :param folder: where the checkpoints are (``args.run.checkpoint_dir``).
    :param pattern: a shell pattern (``"*.pt"``).
    :returns: its path, or None when there is none (or no ``folder``).
    """
    import fnmatch  # not on the path of every run's start

    best: tuple[int, tuple[object, ...]] | None = None
    found: pathlib.Path | None = None
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.endswith(_PARTIAL):
                continue
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            try:
                if not entry.is_file():
                    continue
                when = entry.stat().st_mtime_ns
            except OSError:  # removed meanwhile
                continue
            rank = (when, _natural(name))
            if best is None or rank > best:
                best, found = rank, pathlib.Path(entry.path)
    return found


def _natural(name: str) -> tuple[object, ...]:
    """``name`` as a key in which runs of digits compare as numbers."""
    out: list[object] = []
    digits = ""
    text = ""
    for ch in name:
        if ch.isdigit():
            if text:
                out.append((1, text))
                text = ""
            digits += ch
        else:
            if digits:
                out.append((0, int(digits)))
                digits = ""
            text += ch
    if digits:
        out.append((0, int(digits)))
    if text:
        out.append((1, text))
    return tuple(out)
