"""What processes that died left in a root, for ``exman gc`` to clean.

A process killed at any instant leaves the old state or the new one, but
it can leave debris beside them:

* a run folder without ``params.yaml`` (killed between making the folder
  and writing the file), in ``runs/``, ``fails/`` or ``tmp/``;
* ``<file>.<pid>.<thread>.tmp``: a file being written atomically (params,
  run.json, results, the counter, the cache, sweep records), or a mark
  link being re-pointed;
* ``.deleting-<id>-<pid>``: a run folder being deleted (see
  :meth:`~exman.record.store.Root.remove_run`);
* ``.exman/launches/*.json``: what rank 0 of a distributed launch told the
  other ranks (see :mod:`exman.record.ranks`), which they read within
  seconds and never again;
* ``.exman/resume/<key>.json`` naming a run that is no longer in the root
  (deleted, or a tmp run that ``gc`` removes), or no run of that task (see
  :mod:`exman.record.resume`): no attempt can continue it
  (:func:`orphan_resume_records`).

Something is debris only when the process that made it is gone and it has
not changed for :data:`~exman.record.run.CREATION_GRACE` seconds: nothing a
live process is writing is ever taken, even one on another host (whose
pid means nothing here) as long as it keeps writing.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any

from ..record.ranks import LAUNCHES
from ..record.resume import RESUME_DIR
from ..record.run import CREATION_GRACE, Run, pid_alive
from ..record.store import RUN_PLACES, STATE_DIR, Root, run_id

__all__ = ["Leftover", "find_leftovers", "orphan_resume_records"]

#: what atomic writes leave while they write: ``<file>.<pid>.<thread>.tmp``
TMP_FILE = re.compile(r"\.(\d+)\.\d+\.tmp\Z")
#: a run folder renamed to be deleted: ``.deleting-<id>-<pid>``
TRASH = re.compile(r"\A\.deleting-\d+-(\d+)\Z")


@dataclass(frozen=True)
class Leftover:
    """One piece of debris: its path and what it is, for the report."""

    path: pathlib.Path
    what: str
    folder: bool


def _stale(path: str, pid: int | None, grace: float, now: float) -> bool:
    if pid is not None and pid_alive(pid):
        return False
    try:
        changed = os.lstat(path).st_mtime
    except FileNotFoundError:
        return False
    return now - changed >= grace


def _tmp_files(folder: str, grace: float, now: float) -> Iterator[Leftover]:
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            m = TMP_FILE.search(entry.name)
            if (
                m is not None
                and not entry.is_dir(follow_symlinks=False)
                and _stale(entry.path, int(m.group(1)), grace, now)
            ):
                yield Leftover(pathlib.Path(entry.path), "unfinished file", False)


def find_leftovers(root: Root, grace: float = CREATION_GRACE) -> list[Leftover]:
    """The debris of dead processes in ``root`` (see the module docstring).

    :param grace: seconds something must have stayed unchanged.
    """
    now = time.time()
    found: list[Leftover] = []
    for place in RUN_PLACES:
        folder = root.path / place
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            continue
        with entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in sorted(names):
            path = folder / name
            trash = TRASH.match(name)
            if trash is not None and is_dir:
                if _stale(str(path), int(trash.group(1)), grace, now):
                    found.append(Leftover(path, "half-deleted run folder", True))
                continue
            if not is_dir or run_id(name) is None:
                continue
            if Run(path).incomplete(grace):
                found.append(
                    Leftover(path, "incomplete run folder (no params.yaml)", True)
                )
            else:
                found += _tmp_files(str(path), grace, now)
    found += _old_launches(root.state / LAUNCHES, grace, now)
    # the state, and the links being re-pointed under marked/
    for top in (root.path / STATE_DIR, root.marked):
        for here, _, _ in os.walk(top):  # links are not followed
            found += _tmp_files(here, grace, now)
    return found


def _old_launches(folder: pathlib.Path, grace: float, now: float) -> list[Leftover]:
    """Launch records unchanged for ``grace`` seconds: their ranks joined long ago."""
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    with entries:
        for entry in entries:
            if not entry.name.endswith(".json") or not entry.is_file(
                follow_symlinks=False
            ):
                continue
            try:
                changed = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if now - changed >= grace:
                found.append(
                    Leftover(pathlib.Path(entry.path), "old launch record", False)
                )
    return found


def orphan_resume_records(root: Root, going: Set[str] = frozenset()) -> list[Leftover]:
    """The records of ``.exman/resume/`` that name no run of their task.

    A record names its run by folder name; the run is looked for in
    ``runs/``, then ``fails/``, then ``tmp/`` (the order a run moves in, so
    a move to ``fails/`` meanwhile is not missed). A record that cannot be
    read is kept only while it may still be being written.

    :param going: names of run folders about to be removed (tmp runs of
        the same ``gc``): their records go with them.
    """
    folder = root.state / RESUME_DIR
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with entries:
        files = [
            pathlib.Path(e.path)
            for e in entries
            if e.name.endswith(".json") and e.is_file(follow_symlinks=False)
        ]
    now = time.time()
    found = []
    for path in sorted(files):
        what = _why_orphan(root, path, going, now)
        if what is not None:
            found.append(Leftover(path, what, False))
    return found


def _why_orphan(
    root: Root, path: pathlib.Path, going: Set[str], now: float
) -> str | None:
    try:
        data: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = None
    name = data.get("run") if isinstance(data, dict) else None
    if not isinstance(name, str) or run_id(name) is None or "/" in name:
        if _stale(str(path), None, CREATION_GRACE, now):
            return "unreadable resume record"
        return None
    if name in going:
        return "resume record of a removed run"
    key = path.name[: -len(".json")]
    for place in ("runs", "fails", "tmp"):
        folder = root.path / place / name
        if folder.is_dir() and not folder.is_symlink():
            record = Run(folder).record()
            sweep = record.get("sweep")
            if not record or (isinstance(sweep, dict) and sweep.get("key") == key):
                return None  # its run (or one being created: run.json comes)
            return f"resume record naming run {name}, not a run of its task"
    return f"resume record of run {name}, which is gone"
