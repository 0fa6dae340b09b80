"""Managing the runs of a root: mark, unmark, delete, restore, gc.

Each function here is one ``exman`` subcommand; it changes the tree only
through :class:`~exman.store.Root`, prints nothing and returns a
:class:`Report` of what it did, what was already so, what it refused and
which ids it did not find. ``show``, ``rerun`` and ``ls`` live in their own
modules and are imported here, so that this module is the whole surface.

.. code-block:: python

    from exman import manage

    root = manage.find_root("path/to/exman")
    manage.mark(root, "best/lr", [3, "5-7"])
    manage.delete(root, ["12"], all=True)
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union

from .listing import ls
from .rerun import Rerun, rerun
from .run import Run
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
from .store import ExmanError, Root, StrPath, check_key, run_id

__all__ = [
    "ROOT_ENV",
    "Change",
    "NotARoot",
    "Report",
    "Rerun",
    "RunDetails",
    "delete",
    "find_root",
    "format_ids",
    "gc",
    "ls",
    "mark",
    "parse_age",
    "parse_ids",
    "rerun",
    "restore",
    "select",
    "show",
    "unmark",
]

Ids = Union[Iterable[Union[str, int]], str, int]
RootLike = Union[StrPath, Root]


@dataclass(frozen=True)
class Change:
    """One thing a command did (or would do, or refused): a run or a path."""

    id: int | None
    path: pathlib.Path
    message: str


@dataclass
class Report:
    """What a command did.

    ``done``: changes made (or, with ``dry_run``, that would be made);
    ``unchanged``: runs already in the state asked for; ``refused``: runs
    found that cannot be handled, with the reason; ``missing``: ids with no
    run in the root.
    """

    root: Root
    done: list[Change] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Every id was found and handled."""
        return not self.missing and not self.refused

    def _add(
        self, bucket: list[Change], num: int | None, path: StrPath, msg: str
    ) -> None:
        bucket.append(Change(num, pathlib.Path(path), msg))


def _root(root: RootLike) -> Root:
    return root if isinstance(root, Root) else find_root(root)


def _rel(root: Root, path: StrPath) -> str:
    return os.path.relpath(path, root.path)


def _mark_dir(root: Root, key: StrPath) -> pathlib.Path:
    """The folder of ``key``, refusing keys that pass through a link.

    ``marked/best/<run>`` is a link to a run folder: a key
    ``best/<run>/x`` would put links inside that run.
    """
    folder = root.mark_dir(key)
    path = root.marked
    for part in check_key(key):
        path = path / part
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise ExmanError(
                f"mark key {os.fspath(key)!r} is refused: "
                f"{_rel(root, path)} is a run link, not a key folder"
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
    root = _root(root)
    folder = _mark_dir(root, key)
    sel = select(root, ids)
    report = Report(root, missing=sel.missing)
    for num, path in sel.found.items():
        link = folder / path.name
        if os.path.lexists(link):
            if os.path.realpath(link) == os.path.realpath(path):
                report._add(report.unchanged, num, link, f"run {num} is already marked")
                continue
            report._add(
                report.refused,
                num,
                link,
                f"{_rel(root, link)} exists and is not run {num}",
            )
            continue
        link = root.link_mark(key, path.name, place=sel.place(num))
        report._add(report.done, num, link, f"marked run {num}: {_rel(root, link)}")
    return report


def unmark(root: RootLike, key: StrPath, ids: Ids) -> Report:
    """Remove the marks ``marked/<key>/<run>`` of runs (not deeper ones).

    Key folders left empty are removed. A mark whose run folder is gone
    can be removed too.

    :raises ExmanError: bad key or id.
    """
    root = _root(root)
    folder = _mark_dir(root, key)
    wanted = parse_ids(ids)
    links: dict[int, pathlib.Path] = {}
    if folder.is_dir():
        for entry in folder.iterdir():
            num = run_id(entry.name)
            if num is not None and entry.is_symlink():
                links.setdefault(num, entry)
    absent = [num for num in wanted if num not in links]
    existing = select(root, absent).found if absent else {}
    report = Report(root)
    for num in wanted:
        if num in links:
            root.unlink_mark(key, links[num].name)
            report._add(report.done, num, links[num], f"unmarked run {num}")
        elif num in existing:
            report._add(
                report.unchanged,
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
    link and every mark link to them; mark folders left empty go too.

    :param all: delete the run folders and every link to them.
    :raises ExmanError: an id cannot be parsed.
    """
    root = _root(root)
    sel = select(root, ids)
    report = Report(root)
    marks = _links_by_name(root) if all else {}
    for num, path in sel.found.items():
        place = sel.place(num)
        if all:
            links = [root.index_link(path.name), *marks.get(path.name, [])]
            gone = [link for link in links if root.unlink(link)]
            for link in gone:
                if link.parent != root.index:
                    root.prune_marks(link.parent)
            root.remove_run(path)
            report._add(
                report.done,
                num,
                path,
                f"deleted run {num}: {_rel(root, path)} and {len(gone)} link(s)",
            )
        elif place != "runs":
            report._add(
                report.unchanged,
                num,
                path,
                f"run {num} is in {place}/, not in the index "
                f"(delete --all {num} removes its folder)",
            )
        elif root.unlink_index(path.name):
            report._add(
                report.done,
                num,
                path,
                f"removed run {num} from the index (restore {num} puts it back)",
            )
        else:
            report._add(report.unchanged, num, path, f"run {num} is not in the index")
    orphans = _index_orphans(root, sel.missing)
    for num in sel.missing:
        if num in orphans:
            root.unlink(orphans[num])
            report._add(
                report.done, num, orphans[num], f"removed the index link of run {num}"
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
    root = _root(root)
    sel: Selection = select(root, ids)
    report = Report(root, missing=sel.missing)
    for num, path in sel.found.items():
        place = sel.place(num)
        if place != "runs":
            report._add(
                report.refused,
                num,
                path,
                f"run {num} is in {place}/: only runs in runs/ can be in the index",
            )
        elif os.path.lexists(root.index_link(path.name)):
            report._add(report.unchanged, num, path, f"run {num} is already indexed")
        else:
            link = root.link_index(path.name)
            report._add(report.done, num, link, f"restored run {num} to the index")
    return report


# -- gc ---------------------------------------------------------------------------
_AGE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(value: str | float | datetime.timedelta) -> datetime.timedelta:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` or seconds.

    :raises ExmanError: any other text.
    """
    if isinstance(value, datetime.timedelta):
        return value
    if isinstance(value, (int, float)):
        return datetime.timedelta(seconds=value)
    m = _AGE.match(value)
    if m is None:
        raise ExmanError(
            f"age {value!r} is not understood: write 90s, 30m, 12h, 7d or 2w"
        )
    return datetime.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def _ended(run: Run) -> datetime.datetime:
    """When a run last did something: finished, else started, else its folder."""
    record = run.record()
    for key in ("finished", "started"):
        try:
            return datetime.datetime.fromisoformat(str(record[key])).astimezone()
        except (KeyError, TypeError, ValueError):
            continue
    stamp = run.path.stat().st_mtime
    return datetime.datetime.fromtimestamp(stamp).astimezone()


def gc(
    root: RootLike,
    *,
    older_than: str | float | datetime.timedelta | None = None,
    dry_run: bool = False,
) -> Report:
    """Remove tmp runs, dangling links and empty mark folders.

    :param older_than: only tmp runs that ended longer ago than this
        (``"7d"``, seconds or a timedelta); default: every tmp run. Runs still
        running are kept.
    :param dry_run: change nothing; ``done`` lists what would go.
    :raises ExmanError: ``older_than`` is not understood.
    """
    root = _root(root)
    age = None if older_than is None else parse_age(older_than)
    now = datetime.datetime.now().astimezone()
    report = Report(root, dry_run=dry_run)
    going: list[pathlib.Path] = []
    for path in sorted(root.iter_runs(["tmp"])):
        run = Run(path)
        if run.status == "running":
            report._add(report.unchanged, run.id, path, f"tmp run {run.id} is running")
            continue
        if age is not None and now - _ended(run) < age:
            continue
        going.append(path)
        report._add(report.done, run.id, path, f"tmp run {run.id}: {_rel(root, path)}")
    gone = {os.path.realpath(path) for path in going}
    links = [p for p in root.index.glob("*") if p.is_symlink()]
    links += list(root.mark_links())
    dangling = [
        link
        for link in links
        if not os.path.exists(link)
        or os.path.realpath(link) in gone
        # an index link points at params.yaml inside the run folder
        or os.path.dirname(os.path.realpath(link)) in gone
    ]
    for link in sorted(dangling):
        num = run_id(link.name.removesuffix(".yaml"))
        report._add(report.done, num, link, f"link {_rel(root, link)}")
    empty = _empty_mark_dirs(root, {os.path.abspath(p) for p in dangling})
    for folder in empty:
        report._add(report.done, None, folder, f"empty folder {_rel(root, folder)}/")
    if not dry_run:
        for link in dangling:
            root.unlink(link)
        for path in going:
            root.remove_run(path)
        for folder in empty:
            root.prune_marks(folder)
    return report


def _empty_mark_dirs(root: Root, removed: set[str]) -> list[pathlib.Path]:
    """Folders under ``marked/`` that are empty once ``removed`` links are gone."""
    empty: set[str] = set()
    out: list[pathlib.Path] = []
    for folder, dirs, files in os.walk(root.marked, topdown=False):
        if os.path.abspath(folder) == os.path.abspath(root.marked):
            continue
        children = [os.path.abspath(os.path.join(folder, n)) for n in (*dirs, *files)]
        if all(c in removed or c in empty for c in children):
            empty.add(os.path.abspath(folder))
            out.append(pathlib.Path(folder))
    return out
