"""Run ids: the counter of the last one handed out, and the claim on each.

``.exman/counter`` holds two lines: the last id handed out, then the
modification times of ``runs/`` and ``tmp/`` when it was written (see
:meth:`exman.record.store.Root.allocate`). A file that does not read
exactly so (damaged, edited by hand, an absurd id) is taken as missing,
and the run folders decide the next id.

The counter is read and incremented under the root's lock, but ``flock``
does nothing on NFS mounts with ``nolock`` or ``local_lock`` (it succeeds
and excludes nobody), and two hosts could then read the same counter. So an
id belongs to the one process that creates its claim,
``.exman/ids/<id // 1000>/<id>``, an empty file made with ``O_EXCL``, which
is exclusive on local file systems and on NFS (version 3 and later). A
process that finds the claim taken takes the next id.

The claim is on the id alone, not on the run folder's name, which also
holds the time and the run's name (two runs with one id could differ in
both). A claim costs one file: creating a run stays O(1) in the number of
runs. Claims are never removed, as ids are never reused; a missing claim
folder (deleted, or a root older than claims) only means that the counter
alone decides, as it did before.
"""

from __future__ import annotations

import os
import pathlib

from .files import group_bits, make_dir, share
from .names import MAX_ID

__all__ = ["IDS_DIR", "MAX_BYTES", "claim_id", "format_counter", "read_counter"]

#: a counter is two short lines; anything longer is not one
MAX_BYTES = 4096
#: the most digits an id has (ids stay below :data:`~exman.record.names.MAX_ID`)
_ID_DIGITS = 18
IDS_DIR = "ids"
#: ids per claim folder, so that no folder grows past a thousand entries
BLOCK = 1000


# -- the counter ----------------------------------------------------------------
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
    if not 0 < len(first) <= _ID_DIGITS or not first.isdecimal():
        return None
    if int(first) >= MAX_ID:
        return None
    return int(first), lines[1] if len(lines) > 1 else ""


def format_counter(last: int, stamp: str) -> str:
    """The text of a counter file."""
    return f"{last}\n{stamp}\n"


# -- the claims -----------------------------------------------------------------
def claim_file(state: pathlib.Path, num: int) -> pathlib.Path:
    """Where the claim on id ``num`` lives under the state folder ``state``."""
    return state / IDS_DIR / str(num // BLOCK) / str(num)


def claim_id(state: pathlib.Path, num: int) -> bool:
    """Claim id ``num`` for this process.

    :param state: the root's ``.exman`` folder.
    :returns: True when this process now owns the id; False when another
        process claimed it first.
    """
    path = claim_file(state, num)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o444)
    except FileExistsError:
        return False
    except FileNotFoundError:  # the first id of its block: make the folder
        make_dir(path.parent, exist_ok=True)
        try:
            fd = os.open(path, flags, 0o444)
        except FileExistsError:
            return False
    try:
        share(fd, group_bits(path.parent))  # as everything in a shared root
    finally:
        os.close(fd)
    return True
