"""The files of a run folder as a reader sees them: their list, a log's end.

Shared by ``exman show`` and the views; nothing here imports pandas.
"""

from __future__ import annotations

import os
import pathlib
import stat

from ..record.store import StrPath

__all__ = ["MAX_FILES", "list_files", "tail"]

#: files listed at most, so that a run with 100,000 checkpoints stays readable
MAX_FILES = 200


def tail(path: StrPath, lines: int = 20, *, block: int = 8192) -> list[str]:
    """The last ``lines`` lines of a text file, read from its end.

    :raises OSError: the file cannot be read.
    """
    if lines <= 0:
        return []
    # O_NONBLOCK: a FIFO planted as log.txt must not hang the command
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return []
    with open(fd, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, data = end, b""
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


def list_files(
    path: pathlib.Path, limit: int = MAX_FILES
) -> tuple[list[tuple[str, int]], int]:
    """The files below ``path``: ``(relative path, size or -1)`` for the first
    ``limit``, and how many more there are.

    Each folder's files in name order, then its subfolders. Links are
    listed as files (with their own size), never followed.
    """
    out: list[tuple[str, int]] = []
    extra = 0

    def visit(prefix: str, folder: str) -> None:
        nonlocal extra
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        dirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append(entry)
            elif len(out) >= limit:
                extra += 1
            else:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except OSError:
                    size = -1
                out.append((prefix + entry.name, size))
        for entry in dirs:
            visit(f"{prefix}{entry.name}/", entry.path)

    visit("", os.fspath(path))
    return out, extra
