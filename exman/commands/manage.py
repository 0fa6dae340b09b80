"""The library behind the ``exman`` command: one function per subcommand.

``mark``, ``unmark``, ``delete`` and ``restore`` are here; ``gc``, ``show``,
``rerun``, ``ls``, ``diff``, ``note``, ``tag``, ``untag``, ``tail`` and the
root and id helpers live in their own modules and
are imported here, so that this module is the whole surface. Each function
changes the tree only through :class:`~exman.record.store.Root`, prints nothing,
and returns what it did (a :class:`~exman.commands.changes.Report` for the commands
that change runs).

.. code-block:: python

    from exman.commands import manage

    root = manage.find_root("path/to/exman")
    manage.mark(root, "best/lr", [3, "5-7"])
    manage.delete(root, ["12"], all=True)
"""

from __future__ import annotations

import os
import pathlib
import stat
from collections.abc import Iterable
from typing import Union

from ..record.run import Run
from ..record.store import ExmanError, Root, StrPath, check_key, run_id
from .annotate import note, tag, untag
from .changes import Change, Report, as_root
from .diff import diff
from .follow import Tail, tail
from .gc import gc, parse_age
from .listing import ls
from .rerun import Rerun, rerun
from .selection import (
    ROOT_ENV,
    NotARoot,
    Selection,
    find_root,
    format_ids,
    parse_ids,
    select,
)
from .show import RunDetails, show

__all__ = [
    "ROOT_ENV",
    "Change",
    "NotARoot",
    "Report",
    "Rerun",
    "RunDetails",
    "Tail",
    "delete",
    "diff",
    "find_root",
    "format_ids",
    "gc",
    "ls",
    "mark",
    "note",
    "parse_age",
    "parse_ids",
    "rerun",
    "restore",
    "select",
    "show",
    "tag",
    "tail",
    "unmark",
    "untag",
]

Ids = Union[Iterable[Union[str, int]], str, int]
RootLike = Union[StrPath, Root]


def _mark_dir(root: Root, key: StrPath) -> pathlib.Path:
    """The folder of ``key``, refusing keys that pass through a link.

    ``marked/best/<run>`` is a link to a run folder: a key
    ``best/<run>/x`` would put links inside that run.
    """
    folder = root.mark_dir(key)
    path = root.marked
    for part in check_key(key):
        path = path / part
        try:  # one lstat: a folder pruned meanwhile is simply not there
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(mode):
            raise ExmanError(
                f"mark key {os.fspath(key)!r} is refused: "
                f"{os.path.relpath(path, root.path)} is a run link, not a key folder"
            )
    return folder


# -- marks ------------------------------------------------------------------------
def mark(root: RootLike, key: StrPath, ids: Ids) -> Report:
    """Link runs under ``marked/<key>/`` (``Index(root).info(key)`` sees them).

    :param root: the root (a :class:`Root` or its folder).
    :param key: a relative key like ``best`` or ``best/lr``.
    :param ids: run ids: ``3``, ``"3-7"``, ``"3,5"`` or a list of those.
    :raises ExmanError: the key is absolute, contains ``..`` or passes
        through a run link; an id cannot be parsed.
    """
    root = as_root(root)
    folder = _mark_dir(root, key)
    with root.lock():  # a run moved to fails/ meanwhile is marked where it is
        return _mark(root, key, folder, ids)


def _mark(root: Root, key: StrPath, folder: pathlib.Path, ids: Ids) -> Report:
    sel = select(root, ids)
    report = Report(root, missing=sel.missing)
    for num, path in sel.found.items():
        link = folder / path.name
        if os.path.lexists(link):
            if os.path.realpath(link) == os.path.realpath(path):
                report.add("unchanged", num, link, f"run {num} is already marked")
                continue
            report.add(
                "refused",
                num,
                link,
                f"{report.rel(link)} exists and is not run {num}",
            )
            continue
        link = root.link_mark(key, path.name, place=sel.place(num))
        report.add("done", num, link, f"marked run {num}: {report.rel(link)}")
    return report


def unmark(root: RootLike, key: StrPath, ids: Ids) -> Report:
    """Remove the marks ``marked/<key>/<run>`` of runs (not deeper ones).

    Key folders left empty are removed. A mark whose run folder is gone
    can be removed too.

    :raises ExmanError: bad key or id.
    """
    root = as_root(root)
    folder = _mark_dir(root, key)
    wanted = parse_ids(ids)
    links: dict[int, pathlib.Path] = {}
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):  # no such key (or pruned)
        entries = []
    for entry in entries:
        num = run_id(entry.name)
        if num is not None and entry.is_symlink():
            links.setdefault(num, entry)
    absent = [num for num in wanted if num not in links]
    existing = select(root, absent).found if absent else {}
    report = Report(root)
    for num in wanted:
        if num in links:
            root.unlink_mark(key, links[num].name)
            report.add("done", num, links[num], f"unmarked run {num}")
        elif num in existing:
            report.add(
                "unchanged",
                num,
                existing[num],
                f"run {num} is not marked {os.fspath(key)!r}",
            )
        else:
            report.missing.append(num)
    return report


# -- delete and restore ----------------------------------------------------------
def _links_by_name(root: Root) -> dict[str, list[pathlib.Path]]:
    links: dict[str, list[pathlib.Path]] = {}
    for link in root.mark_links():
        links.setdefault(link.name, []).append(link)
    return links


def _index_orphans(root: Root, ids: Iterable[int]) -> dict[int, pathlib.Path]:
    """Index links of ``ids`` whose run folder is gone."""
    want = set(ids)
    found: dict[int, pathlib.Path] = {}
    if want and root.index.is_dir():
        for entry in root.index.iterdir():
            num = run_id(entry.name.removesuffix(".yaml"))
            if num in want and entry.is_symlink():
                found[num] = entry
    return found


def delete(root: RootLike, ids: Ids, *, all: bool = False) -> Report:
    """Remove runs from the index; with ``all``, remove them for good.

    Without ``all`` the run folders and their marks stay (as in exman
    0.1.9) and :func:`restore` puts the runs back. A run in ``fails/`` or
    ``tmp/`` is not in the index: nothing to do (reported as unchanged).
    With ``all`` the folders are deleted wherever they are, with their index
    link and every mark link to them; mark folders left empty go too. A run
    that is still running is refused.

    :param all: delete the run folders and every link to them.
    :raises ExmanError: an id cannot be parsed.
    """
    root = as_root(root)
    sel = select(root, ids)
    report = Report(root)
    marks = _links_by_name(root) if all else {}
    for num, path in sel.found.items():
        place = sel.place(num)
        if all and Run(path).being_created():
            report.add(
                "refused",
                num,
                path,
                f"run {num} is being created (no run.json yet): not deleted",
            )
        elif all and Run(path).status == "running":
            record = Run(path).record()
            report.add(
                "refused",
                num,
                path,
                f"run {num} is still running (pid {record.get('pid')} on "
                f"{record.get('host')}): stop it before deleting its folder",
            )
        elif all:
            links = [root.index_link(path.name), *marks.get(path.name, [])]
            try:
                gone = [link for link in links if root.unlink(link)]
                for link in gone:
                    if link.parent != root.index:
                        root.prune_marks(link.parent)
                root.remove_run(path)
            except (OSError, ExmanError) as e:  # the rest goes on
                why = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) else e
                report.add("refused", num, path, f"run {num} not deleted: {why}")
                continue
            report.add(
                "done",
                num,
                path,
                f"deleted run {num}: {report.rel(path)} and {len(gone)} link(s)",
            )
        elif place != "runs":
            report.add(
                "unchanged",
                num,
                path,
                f"run {num} is in {place}/, not in the index "
                f"(delete --all {num} removes its folder)",
            )
        elif root.unlink_index(path.name):
            report.add(
                "done",
                num,
                path,
                f"removed run {num} from the index (restore {num} puts it back)",
            )
        else:
            report.add("unchanged", num, path, f"run {num} is not in the index")
    orphans = _index_orphans(root, sel.missing)
    strays = {run_id(p.name): p for p in root.run_links()} if sel.missing else {}
    for num in sel.missing:
        if num in strays:
            report.add(
                "refused",
                num,
                strays[num],
                f"{report.rel(strays[num])} is a symbolic link, not a run folder: "
                "left alone",
            )
        elif num in orphans:
            root.unlink(orphans[num])
            report.add(
                "done", num, orphans[num], f"removed the index link of run {num}"
            )
        else:
            report.missing.append(num)
    return report


def restore(root: RootLike, ids: Ids) -> Report:
    """Put runs removed by :func:`delete` back in the index.

    Only runs in ``runs/`` can be indexed: a run in ``fails/`` or ``tmp/`` is
    refused with the reason.

    :raises ExmanError: an id cannot be parsed.
    """
    root = as_root(root)
    sel: Selection = select(root, ids)
    report = Report(root, missing=sel.missing)
    for num, path in sel.found.items():
        place = sel.place(num)
        if place != "runs":
            report.add(
                "refused",
                num,
                path,
                f"run {num} is in {place}/: only runs in runs/ can be in the index",
            )
        elif os.path.lexists(root.index_link(path.name)):
            report.add("unchanged", num, path, f"run {num} is already indexed")
        else:
            link = root.link_index(path.name)
            report.add("done", num, link, f"restored run {num} to the index")
    return report
