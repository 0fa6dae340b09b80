"""The keys of a sweep's tasks, kept so that a large sweep is not hashed again.

Planning a sweep checks, for each run it made, that the task it names has
the run's key still (:func:`exman.sweep.plan.locate`): a SHA-256 of the
command and the task's values per run, most of the time of a re-run of a
sweep whose 100,000 tasks are done. The keys are a function of the spec's
expansion alone (:meth:`~exman.sweep.expand.TaskList.definition`), so they
are stored under ``.exman/cache/tasks/``, one file per sweep name, with a
digest of that definition: a changed spec has another digest, and its keys
are made again. Like the index's cache, the file only saves time: a
missing or damaged one is ignored, and deleting it loses nothing.

**Format.** A header line ``exman-keys <format> <digest> <count> <adler32>``,
then the keys, :data:`~exman.sweep.expand.KEY_SIZE` hex digits each, in
task order. It is written atomically.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Mapping

from ..record.files import atomic_write, make_dir
from ..record.store import Root
from .expand import KEY_SIZE, Task, TaskList

__all__ = ["load_keys", "store_keys"]

#: bump whenever how a key is made changes
FORMAT = 1
_FOLDER = ("cache", "tasks")
_HEX = b"0123456789abcdef"


def _path(root: Root, name: str) -> str:
    stem = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return os.path.join(root.state, *_FOLDER, f"{stem}.keys")


def _header(tasks: TaskList, keys: bytes) -> bytes:
    digest = hashlib.sha256(tasks.definition().encode("utf-8")).hexdigest()
    return b"exman-keys %d %s %d %08x\n" % (
        FORMAT,
        digest.encode("ascii"),
        len(tasks),
        zlib.adler32(keys),
    )


def load_keys(root: Root, name: str, tasks: TaskList) -> bool:
    """Give ``tasks`` the keys stored for sweep ``name``, if they are theirs.

    :returns: whether they were found (valid, and of this very expansion).
    """
    try:
        with open(_path(root, name), "rb") as f:
            head = f.readline()
            keys = f.read(KEY_SIZE * len(tasks) + 1)
    except OSError:
        return False
    if (
        len(keys) != KEY_SIZE * len(tasks)
        or keys.translate(None, _HEX)
        or head != _header(tasks, keys)
    ):
        return False
    tasks.use_keys(keys)
    return True


def store_keys(
    root: Root, name: str, tasks: TaskList, known: Mapping[int, Task] = {}
) -> None:
    """Store the keys of ``tasks`` for sweep ``name`` (``known``: tasks made
    already); a root that cannot be written keeps none (they save time only)."""
    keys = tasks.keys(known)
    path = _path(root, name)
    try:
        make_dir(os.path.dirname(path), exist_ok=True)
        atomic_write(path, _header(tasks, keys) + keys)
    except OSError:
        pass
