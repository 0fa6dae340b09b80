"""Claims on run ids: who gets an id where locks do not work.

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

__all__ = ["IDS_DIR", "claim_id"]

IDS_DIR = "ids"
#: ids per claim folder, so that no folder grows past a thousand entries
BLOCK = 1000


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
