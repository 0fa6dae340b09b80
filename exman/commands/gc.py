"""Cleaning a root: ``exman gc``.

Removes tmp runs (all, or those that ended longer ago than an age), links
whose run folder is gone, mark folders left empty, and what processes that
died left behind, with the resume records of runs no longer there (see
:mod:`exman.commands.leftovers`). Runs still running or being created are
kept.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re

from ..record.links import repoint_link
from ..record.removal import remove_tree
from ..record.run import Run
from ..record.store import ExmanError, Root, StrPath, run_id
from .changes import Report, as_root
from .leftovers import Leftover, find_leftovers, orphan_resume_records

__all__ = ["gc", "parse_age"]

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
    root: StrPath | Root,
    *,
    older_than: str | float | datetime.timedelta | None = None,
    dry_run: bool = False,
) -> Report:
    """Remove tmp runs, dangling links, empty mark folders and crash debris.

    Runs still running, and runs being created (a folder without run.json
    that changed in the last hour), are kept. Debris is what a process
    that died left (see :mod:`exman.commands.leftovers`): run folders
    without params.yaml and unfinished ``*.tmp`` files, once unchanged for
    an hour, and the resume records (``.exman/resume/``) of runs that are
    gone. An entry of ``runs/``, ``fails/`` or ``tmp/`` that is a
    symbolic link is refused and left alone; what cannot be removed is
    refused with the reason, and the rest goes on.

    :param older_than: only tmp runs that ended longer ago than this
        (``"7d"``, seconds or a timedelta); default: every tmp run.
    :param dry_run: change nothing; ``done`` lists what would go.
    :raises ExmanError: ``older_than`` is not understood.
    """
    root = as_root(root)
    age = None if older_than is None else parse_age(older_than)
    now = datetime.datetime.now().astimezone()
    report = Report(root, dry_run=dry_run)
    for link in root.run_links():
        report.add(
            "refused",
            run_id(link.name),
            link,
            f"{report.rel(link)} is a symbolic link, not a run folder: left alone",
        )
    debris = find_leftovers(root)
    incomplete = {item.path for item in debris if item.folder}
    going: list[pathlib.Path] = []
    for path in sorted(root.iter_runs(["tmp"])):
        if path in incomplete:
            continue
        run = Run(path)
        try:
            if run.being_created():
                report.add("unchanged", run.id, path, f"tmp run {run.id} is starting")
                continue
            if run.status == "running":
                report.add("unchanged", run.id, path, f"tmp run {run.id} is running")
                continue
            if age is not None and now - _ended(run) < age:
                continue
        except FileNotFoundError:  # deleted meanwhile by somebody else
            continue
        going.append(path)
        report.add("done", run.id, path, f"tmp run {run.id}: {report.rel(path)}")
    debris += orphan_resume_records(root, {path.name for path in going})
    for item in debris:
        num = run_id(item.path.name) if item.folder else None
        report.add("done", num, item.path, f"{item.what}: {report.rel(item.path)}")
    gone = {os.path.realpath(path) for path in going}
    links = [p for p in _entries(root.index) if p.is_symlink()]
    links += list(root.mark_links())
    dangling = [
        link
        for link in links
        if not os.path.exists(link)
        or os.path.realpath(link) in gone
        # an index link points at params.yaml inside the run folder
        or os.path.dirname(os.path.realpath(link)) in gone
    ]
    # marks of a run whose move to fails/ was cut short follow it there
    follow = [
        link
        for link in dangling
        if link.parent != root.index and (root.fails / link.name).is_dir()
    ]
    dangling = [link for link in dangling if link not in follow]
    for link in follow:
        report.add(
            "done",
            run_id(link.name),
            link,
            f"link {report.rel(link)} now points to fails/{link.name}",
        )
    for link in sorted(dangling):
        num = run_id(link.name.removesuffix(".yaml"))
        report.add("done", num, link, f"link {report.rel(link)}")
    empty = _empty_mark_dirs(root, {os.path.abspath(p) for p in dangling})
    for folder in empty:
        report.add("done", None, folder, f"empty folder {report.rel(folder)}/")
    if not dry_run:
        for link in follow:
            repoint_link(link, root.fails / link.name)
        _remove(root, report, dangling, going, debris, empty)
    return report


def _entries(folder: pathlib.Path) -> list[pathlib.Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _remove(
    root: Root,
    report: Report,
    links: list[pathlib.Path],
    runs: list[pathlib.Path],
    debris: list[Leftover],
    empty: list[pathlib.Path],
) -> None:
    """Remove what the report lists; what fails moves to ``refused``."""
    failed: dict[pathlib.Path, str] = {}
    for link in links:
        try:
            root.unlink(link)
        except (OSError, ExmanError) as e:
            failed[link] = _why(link, e)
    for path in runs:
        try:
            root.remove_run(path)
        except FileNotFoundError:
            pass  # deleted meanwhile by somebody else
        except (OSError, ExmanError) as e:
            failed[path] = _why(path, e)
    for item in debris:
        try:
            if item.folder:
                remove_tree(item.path)
            else:
                os.unlink(item.path)
        except FileNotFoundError:
            pass
        except (OSError, ExmanError) as e:
            failed[item.path] = _why(item.path, e)
    for folder in empty:
        root.prune_marks(folder)
        if folder.is_dir() and not any(folder.iterdir()):
            failed[folder] = f"cannot remove {folder}: it stays (a read-only root?)"
    if failed:
        kept = [c for c in report.done if c.path not in failed]
        for change in report.done:
            if change.path in failed:
                report.add("refused", change.id, change.path, failed[change.path])
        report.done[:] = kept


def _why(path: pathlib.Path, error: BaseException) -> str:
    if isinstance(error, OSError):
        return f"cannot remove {path}: {error.strerror or error}"
    return str(error)


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
