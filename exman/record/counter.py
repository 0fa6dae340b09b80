"""``.exman/counter``: the last id handed out, and when it was written.

Two lines: the id, then the modification times of ``runs/`` and ``tmp/``
when it was written (see :meth:`exman.record.store.Root.allocate`). A file
that does not read exactly so (damaged, edited by hand, an absurd id) is
taken as missing, and the run folders decide the next id.
"""

from __future__ import annotations

import re

from .names import MAX_ID

__all__ = ["MAX_BYTES", "format_counter", "read_counter"]

#: a counter is two short lines; anything longer is not one
MAX_BYTES = 4096
_ID = re.compile(r"\d{1,18}\Z")


def read_counter(path: str) -> tuple[int, str] | None:
    """``(last id, stamp)`` from the counter file, or None when it is missing
    or not a valid counter (a run folder scan must decide then).

    :raises OSError: the file exists but cannot be read.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(raw) > MAX_BYTES:
        return None
    try:
        lines = raw.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return None
    first = lines[0].strip()
    if not _ID.match(first) or int(first) >= MAX_ID:
        return None
    return int(first), lines[1] if len(lines) > 1 else ""


def format_counter(last: int, stamp: str) -> str:
    """The text of a counter file."""
    return f"{last}\n{stamp}\n"
