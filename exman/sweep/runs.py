"""The runs a sweep made, read from their ``run.json``.

Every run a sweep task made records the sweep's name, the task's number and
its key in its ``run.json``. :func:`scan_runs` finds those records in
``runs/`` and ``fails/`` (``tmp/`` runs never count); :func:`task_state`
gives a task its state from its runs.

A root of many runs is read as the index reads it (:mod:`exman.look.gather`):
through the cache under ``.exman/cache``, which holds each run's sweep
fields and status beside its parameters and is trusted, run by run, only
while the folder's inode and ctime are those it had when it was read; a
running run's status is read again every time. A run that the cache read
with a run.json that names no sweep is not looked at again (a run's sweep
fields are written with its first run.json and never change): so a sweep
of 100,000 done tasks is planned from one ``stat`` per run of a sweep, in a
root of a million runs as in one of its own, and what a sweep reads warms
the next ``Index.info()``. The runs made since a given id (a claim's) are
few and read from their ``run.json`` directly.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import pathlib
import warnings
from collections.abc import Collection, Sequence
from typing import NamedTuple

from ..look import columns
from ..look.cache import SkippedRunWarning
from ..look.gather import Load
from ..look.rows import Table
from ..record.run import RUN_FILE, effective_status
from ..record.store import Root, run_id

__all__ = ["PLACES", "RunInfo", "read_run", "scan_runs", "task_state"]

#: where the runs of a sweep can be; ``tmp/`` runs are never done
PLACES = ("runs", "fails")


class RunInfo(NamedTuple):
    """A run that a sweep task made, from its ``run.json``.

    A named tuple: a sweep of 100,000 done tasks makes as many, and a
    tuple is made several times faster than a frozen dataclass.
    """

    id: int
    #: the run folder (a string: a Path is made when asked for, since a
    #: sweep of 100,000 done tasks would spend seconds making them all)
    folder: str
    key: str
    status: str
    reason: str | None = None
    task: int | None = None
    #: the name of the sweep that made it
    sweep: str | None = None
    #: the script's ``volatile=True`` arguments
    volatile: tuple[str, ...] = ()
    #: the fingerprint of its code and where it was taken (see
    #: :mod:`exman.record.fingerprint`)
    code: str | None = None
    code_source: str | None = None

    @property
    def path(self) -> pathlib.Path:
        """The run folder."""
        return pathlib.Path(self.folder)


def read_run(path: pathlib.Path) -> RunInfo | None:
    """The sweep run in folder ``path``, or None when it is not one."""
    try:
        with open(path / RUN_FILE, "rb") as f:
            raw = f.read()
            beat = os.fstat(f.fileno()).st_mtime  # the run's heartbeat
    except OSError:
        return None
    if b'"sweep"' not in raw:  # most runs of a big root: no parse needed
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    sweep = record.get("sweep") if isinstance(record, dict) else None
    if not isinstance(sweep, dict) or not isinstance(sweep.get("key"), str):
        return None
    num = run_id(path.name)
    task = sweep.get("task")
    code = record.get("code")
    return RunInfo(
        id=num if num is not None else -1,
        folder=str(path),
        key=sweep["key"],
        status=effective_status(record, beat),
        reason=record.get("reason"),
        task=task if isinstance(task, int) else None,
        sweep=sweep.get("name") if isinstance(sweep.get("name"), str) else None,
        volatile=tuple(v for v in sweep.get("volatile") or () if isinstance(v, str)),
        code=code.get("fingerprint") if isinstance(code, dict) else None,
        code_source=code.get("source") if isinstance(code, dict) else None,
    )


def scan_runs(
    root: Root, keys: Collection[str] | None = None, *, after: int = 0
) -> dict[str, list[RunInfo]]:
    """The sweep runs of ``root`` by task key, each list sorted by run id.

    :param keys: keep only these keys (all when None).
    :param after: only runs with a larger id (the runs made since then),
        each read from its ``run.json``; 0: every run, through the cache.
    """
    found: dict[str, list[RunInfo]] = {}
    if after <= 0:
        unread = _scan_cached(root, keys, found)
        # the runs the index leaves out (a params.yaml missing, damaged or
        # not yet written) still count by their run.json, as they always did
        for folder in unread:
            _add(found, keys, read_run(pathlib.Path(folder)))
        return _sorted(found)
    for place in PLACES:
        try:
            entries = os.scandir(root.path / place)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                num = run_id(entry.name)
                if num is not None and num > after:
                    _add(found, keys, read_run(pathlib.Path(entry.path)))
    return _sorted(found)


def _add(
    found: dict[str, list[RunInfo]],
    keys: Collection[str] | None,
    info: RunInfo | None,
) -> None:
    if info is not None and (keys is None or info.key in keys):
        found.setdefault(info.key, []).append(info)


def _num(num: object, name: str) -> int:
    """A run's id: its ``id`` parameter, else the number of its folder."""
    return num if type(num) is int else _id(name)


def _id(name: str) -> int:
    num = run_id(name)
    return num if num is not None else -1


def _sorted(found: dict[str, list[RunInfo]]) -> dict[str, list[RunInfo]]:
    for runs in found.values():
        if len(runs) > 1:
            runs.sort(key=lambda r: r.id)
    return found


#: the statuses that are a task's state when they are its one run's
_OWN_STATE = frozenset({"completed", "pruned", "running", "failed"})
#: the record columns of the index's rows that a RunInfo takes, in the order
#: of its fields status, reason (the error), task, sweep, code, code_source
_FIELDS = ("status", "error", "task", "sweep", "code", "code_source")


def _scan_cached(
    root: Root, keys: Collection[str] | None, found: dict[str, list[RunInfo]]
) -> list[str]:
    """Add to ``found`` the sweep runs of ``root`` from the index's cache,
    checked run by run; return the run folders that gave no row.

    A run that the index skips (no usable ``params.yaml``) is left out,
    without the index's warning, and returned. ``RunInfo.reason`` is the
    last line of the run's traceback, or its recorded reason; ``volatile``
    is not filled (it is read from the runs a sweep makes, see
    :mod:`.outcome`).
    """
    load = Load(root, cache=True)
    for place in PLACES:
        load.add_place(place, wanted=_maybe_sweep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRunWarning)
        parts = load.run()
    for folder, rows in parts:
        record = rows.record
        wanted = [
            p
            for p, key in enumerate(record["task_key"])
            if key is not None and (keys is None or key in keys)
        ]
        if not wanted:
            continue
        # the cells of the wanted rows, column by column, then one run per row
        names = [rows.names[p] for p in wanted]
        nums = rows.params.get("id")
        ids = (
            map(_id, names)
            if nums is None
            else map(_num, columns.take(nums, wanted), names)
        )
        prefix = os.path.join(folder, "")
        status, *fields = (columns.take(record[c], wanted) for c in _FIELDS)
        reason, task, sweep, code, code_source = fields
        for info in map(
            RunInfo,
            ids,
            [prefix + name for name in names],
            columns.take(record["task_key"], wanted),
            ["unknown" if s is None else s for s in status],
            reason,
            task,
            sweep,
            itertools.repeat(()),
            code,
            code_source,
        ):
            found.setdefault(info.key, []).append(info)
    return [
        os.path.join(root.path, place, name)
        for place, names in load.unread.items()
        for name in names
    ]


def _maybe_sweep(table: Table) -> list[bool]:
    """Whether each cached run may be a sweep's: unless it was read with a
    run.json (which gave it a status) that names no task. A run's sweep
    fields are written with its first run.json and never change, so the
    others are not looked at again: a sweep of 100,000 tasks in a root of
    a million runs looks at its own runs, not at the million."""
    record = table.record
    statuses, keys = record.get("status"), record.get("task_key")
    if statuses is None or keys is None:
        return [True] * len(table)
    keyed = columns.each(keys, lambda key: key is not None)
    unread = columns.each(statuses, lambda status: status is None)  # no run.json
    if not any(unread):  # the usual: every run was read with its run.json
        return keyed
    return list(map(operator.or_, keyed, unread))


def task_state(runs: Sequence[RunInfo], held: bool = False) -> str:
    """The state of a task whose runs are ``runs``; ``held`` by a live launcher."""
    if len(runs) == 1 and not held:  # the usual task: one run
        status = runs[0].status
        return status if status in _OWN_STATE else "interrupted"
    statuses = {r.status for r in runs}
    if "completed" in statuses:
        return "completed"
    if "pruned" in statuses:
        return "pruned"
    if "running" in statuses or held:
        return "running"
    if "failed" in statuses:
        return "failed"
    if statuses:
        return "interrupted"  # interrupted, crashed, unknown
    return "pending"
