"""Notes and tags given to runs after the fact: ``exman note``, ``tag``, ``untag``.

They live in each run's ``annotations.json`` (see
:mod:`exman.record.annotations`); ``Index.info()`` shows them as the ``tags``
and ``note`` columns, ``exman show`` and ``exman ls`` print them.

.. code-block:: python

    from exman.commands import manage

    root = manage.find_root("path/to/exman")
    manage.tag(root, "3-5", ["baseline"])
    manage.note(root, 4, "the lr was too high")
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from typing import Callable, Optional, Union

from ..record.annotations import (
    check_tag,
    read_annotations,
    write_annotations,
)
from ..record.store import ExmanError, Root, StrPath
from .changes import Report, as_root
from .selection import format_ids, parse_ids, select

__all__ = ["edit_text", "note", "read_note", "tag", "untag"]

Ids = Union[Iterable[Union[str, int]], str, int]
Annotations = tuple[list[str], Optional[str]]


def _tags(names: Iterable[str] | str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ExmanError("no tags given: exman tag ID NAME...")
    return [check_tag(name) for name in names]


def _change(
    root: StrPath | Root,
    ids: Ids,
    change: str,
    update: Callable[[list[str], str | None], Annotations],
) -> Report:
    """Apply ``update(tags, note) -> (tags, note)`` to each run of ``ids``."""
    root = as_root(root)
    with root.lock():  # one writer at a time; no run moves to fails/ meanwhile
        sel = select(root, ids)
        report = Report(root, missing=sel.missing)
        for num, path in sel.found.items():
            tags, text = read_annotations(path)
            new_tags, new_text = update(tags, text)
            if (new_tags, new_text) == (tags, text):
                report.add("unchanged", num, path, f"run {num}: {change} already")
                continue
            write_annotations(path, new_tags, new_text)
            report.add("done", num, path, f"run {num}: {change}")
    return report


def tag(root: StrPath | Root, ids: Ids, names: Iterable[str] | str) -> Report:
    """Add tags to runs (each run keeps its tags in the order first given).

    :param ids: run ids: ``3``, ``"3-7"``, ``"3,5"`` or a list of those.
    :param names: the tags: words of letters, digits and ``_ . - + : @``.
    :raises ExmanError: an invalid tag (the message names it) or id.
    """
    wanted = _tags(names)

    def update(tags: list[str], text: str | None) -> Annotations:
        return list(dict.fromkeys([*tags, *wanted])), text

    return _change(root, ids, f"tagged {' '.join(wanted)}", update)


def untag(root: StrPath | Root, ids: Ids, names: Iterable[str] | str) -> Report:
    """Remove tags from runs; a tag a run does not have is reported unchanged.

    :raises ExmanError: an invalid tag or id.
    """
    gone = set(_tags(names))

    def update(tags: list[str], text: str | None) -> Annotations:
        return [t for t in tags if t not in gone], text

    return _change(root, ids, f"untagged {' '.join(sorted(gone))}", update)


def note(root: StrPath | Root, ids: Ids, text: str) -> Report:
    """Set the note of runs (replacing theirs); an empty text removes it.

    Trailing blank lines are dropped.

    :raises ExmanError: an id cannot be parsed, or the note is too long.
    """
    text = text.rstrip()
    what = "note set" if text else "note removed"

    def update(tags: list[str], old: str | None) -> Annotations:
        return tags, text or None

    return _change(root, ids, what, update)


def read_note(root: StrPath | Root, id: int | str) -> tuple[int, str | None]:
    """The id and the note of one run (None: it has none).

    :raises RunNotFound: no run has this id.
    :raises ExmanError: ``id`` names no run or several.
    """
    from ..record.store import RunNotFound

    root = as_root(root)
    nums = parse_ids(id)
    if len(nums) != 1:
        raise ExmanError(
            f"{format_ids(nums)}: give one run to show or edit its note "
            "(exman note 3-5 TEXT sets the note of several)"
        )
    sel = select(root, nums)
    if sel.missing:
        raise RunNotFound(f"run {sel.missing[0]} not found in {root.path}")
    num, path = next(iter(sel.found.items()))
    return num, read_annotations(path)[1]


def edit_text(text: str, *, editor: str | None = None, name: str = "note") -> str:
    """``text`` as the user left it in their editor (``$VISUAL``, ``$EDITOR``,
    else ``vi``), run on a temporary file as git does.

    :raises ExmanError: the editor cannot be started or exits with an error.
    """
    import shlex
    import subprocess
    import tempfile

    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ExmanError(f"EDITOR={command!r}: {e}") from None
    with tempfile.TemporaryDirectory(prefix="exman-") as folder:
        path = pathlib.Path(folder, f"{name}.txt")
        path.write_text(text + "\n" if text else "", encoding="utf-8")
        try:
            code = subprocess.call([*argv, str(path)])
        except OSError as e:
            raise ExmanError(
                f"EDITOR={command!r} cannot be started: {e.strerror}"
            ) from None
        if code != 0:
            raise ExmanError(
                f"EDITOR={command!r} exited with code {code}: the note is unchanged"
            )
        return path.read_text(encoding="utf-8", errors="replace")
