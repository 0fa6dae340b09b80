"""A new run: its folder, params.yaml, run.json and links, in that order.

run.json also carries a copy of the parameters that readers use while
params.yaml is unchanged (see :mod:`exman.record.snapshot`).

The id and folder come from the root (:meth:`Root.allocate`); params.yaml
is written before run.json so that a run with a status always has its
parameters; the links come last, so a reader of ``index/`` never finds a
run without both files.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable

from . import heartbeat, snapshot
from .params import PARAMS_FILE, TIME_FORMAT, dump_params, dumper
from .run import DIFF_FILE, Run
from .store import ExmanError, Root, RunPlace, atomic_write, check_name

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .vcs import GitState

__all__ = ["MAX_NAME_BYTES", "NewRun", "check_run_name", "create_run"]

#: a longer --name would not fit in a folder name (255 bytes) with id and time
MAX_NAME_BYTES = 200


def check_run_name(name: str, option: str = "--name") -> str:
    """``name`` if it can be part of a run's folder name.

    :param option: the flag it was given with, for the message.
    :raises ExmanError: it leaves the folder (``/``, ``..``) or is too long.
    """
    check_name(name, option)
    size = len(os.fsencode(name))
    if size > MAX_NAME_BYTES:
        raise ExmanError(
            f"{option} is too long: {size} bytes, at most {MAX_NAME_BYTES} fit "
            "in a folder name"
        )
    return name


class NewRun:
    """What :func:`create_run` made."""

    # a plain class: dataclasses (and the inspect it imports) would cost
    # every run's start more than this whole module
    __slots__ = ("links", "place", "run", "text")

    def __init__(self, place: RunPlace, run: Run, text: str) -> None:
        self.place = place
        self.run = run
        #: the text of its params.yaml
        self.text = text
        #: the links made to it (index/, marked/)
        self.links: list[pathlib.Path] = []


def create_run(
    store: Root,
    params: dict[str, Any],
    *,
    tmp: bool,
    name: str | None,
    zfill: int,
    git: GitState | None,
    record: dict[str, Any],
    automark: Iterable[tuple[str, object]] | None = None,
    started: Callable[[Run], object] | None = None,
    abandoned: Callable[[Run], object] | None = None,
    code: Callable[[], dict[str, Any] | None] | None = None,
) -> NewRun:
    """Create a run of ``params`` in ``store`` and record it as running.

    :param params: the arguments; ``root`` (and ``commit``/``dirty`` with
        ``git``) are added to them.
    :param tmp: put it in ``tmp/``, neither indexed nor marked.
    :param name: the name added to its folder name.
    :param record: more fields of its run.json (``command``, ``sweep``…).
    :param automark: ``(argument, value)`` pairs it is marked under.
    :param started: called with the run as soon as it is recorded as
        running, before the links (so that a failure there is the run's).
    :param abandoned: called with the run when its creation failed after
        ``started`` and the half-made run is removed again.
    :param code: gives the ``code`` field of its run.json (None: no field),
        called just before run.json is written: what it waits for (git
        commands) runs while the folder and params.yaml are made.
    :raises ExmanError: an automark value cannot be a folder name, a bad
        ``EXMAN_HEARTBEAT``, a root that cannot hold runs; nothing is made.
    """
    every = heartbeat.interval()  # a bad EXMAN_HEARTBEAT stops us before the run
    # PyYAML imported (tens of ms) before the folder exists, not between it
    # and run.json: a kill there would leave a folder without a record
    dumper()
    key = None
    if automark is not None and not tmp:
        # before anything is created: a value may not fit a folder name
        key = store.automark_key(automark)
    store.ensure()
    place = store.allocate(tmp=tmp, name=name, zfill=zfill)
    try:
        made = _fill(store, place, params, tmp, git, record, key, every, started, code)
        place.flushed()  # its id on the disk too, flushed while it was filled
        return made
    except BaseException:
        # nothing half-made stays behind: no folder without params.yaml
        if abandoned is not None:
            abandoned(Run(place.path))
        store.abandon(place.name, place.path)
        raise


def _fill(
    store: Root,
    place: RunPlace,
    params: dict[str, Any],
    tmp: bool,
    git: GitState | None,
    record: dict[str, Any],
    key: pathlib.Path | None,
    every: float,
    started: Callable[[Run], object] | None,
    code: Callable[[], dict[str, Any] | None] | None,
) -> NewRun:
    params["root"] = place.relpath.as_posix()
    if git is not None:
        params["commit"] = git.commit
        params["dirty"] = git.dirty
    text = dump_params(params, time=place.time, id=place.id)
    params_file = place.path / PARAMS_FILE
    atomic_write(params_file, text, durable=True)
    copy = snapshot.make(
        params, place.time.strftime(TIME_FORMAT), place.id, str(params_file)
    )
    if copy is not None:
        record = {**record, snapshot.FIELD: copy}
    found = code() if code is not None else None
    if found is not None:
        record = {**record, "code": found}
    run = Run(place.path)
    run.start(heartbeat=every, id=place.id, **record)
    if started is not None:
        started(run)
    if git is not None and git.diff:
        atomic_write(place.path / DIFF_FILE, git.diff)
    made = NewRun(place, run, text)
    if not tmp:
        made.links.append(store.link_index(place.name))
        if key is not None:
            made.links.append(store.link_mark(key.as_posix(), place.name))
    return made
