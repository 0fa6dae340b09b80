"""Moving and removing run folders: to ``fails/``, deleted, abandoned.

Links follow a run that moves, readers see a run being deleted whole or
not at all, and errors name the full path of what could not be removed.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, Union

from .errors import ExmanError
from .files import make_dir
from .links import repoint_link
from .names import RUN_PLACES, run_id

StrPath = Union[str, "os.PathLike[str]"]


class Root(Protocol):
    """What is used here of :class:`exman.record.store.Root` (which uses
    this module, so it cannot be imported here)."""

    path: pathlib.Path

    @property
    def fails(self) -> pathlib.Path: ...

    def index_link(self, name: str) -> pathlib.Path: ...

    def mark_links(self) -> Iterator[pathlib.Path]: ...

    def lock(self, timeout: float = -1) -> AbstractContextManager[Any]: ...


__all__ = ["abandon", "move_to_fails", "remove_run", "remove_tree"]


def _points_to(link: pathlib.Path, folder: pathlib.Path) -> bool:
    try:
        target = os.readlink(link)
    except OSError:
        return False
    return os.path.normpath(os.path.join(link.parent, target)) == str(folder)


def remove_tree(path: StrPath) -> None:
    """``shutil.rmtree`` whose errors name the full path of the file.

    :raises ExmanError: something in the tree cannot be removed.
    """

    def fail(func: object, name: str, info: object) -> None:
        error = info[1] if isinstance(info, tuple) else info
        reason = getattr(error, "strerror", None) or str(error)
        raise ExmanError(f"cannot delete {os.path.abspath(name)}: {reason}")

    shutil.rmtree(path, onerror=fail)


def move_to_fails(root: Root, path: StrPath) -> pathlib.Path:
    """Move a failed run's folder to ``fails/``; its links follow it.

    Its index link is removed (``fails/`` is not in the index); every
    mark link to it, automarks and marks added by ``exman mark`` while it
    ran alike, is pointed at its new place. Done under the root's lock,
    which :func:`exman.commands.manage.mark` takes too, so that no mark
    is made to the old place meanwhile.

    :returns: the folder's new place.
    """
    folder = pathlib.Path(os.path.abspath(path))
    name = folder.name
    target = root.fails / name
    with root.lock():
        make_dir(root.fails, exist_ok=True)
        os.replace(folder, target)
        try:
            os.unlink(root.index_link(name))
        except FileNotFoundError:
            pass
        for link in root.mark_links():
            if link.name == name and _points_to(link, folder):
                repoint_link(link, target)
    return target


def abandon(root: Root, name: str, path: StrPath) -> None:
    """Undo a run whose creation failed: its links, then its folder.

    Best effort (the disk may be full, the root read-only): what cannot
    be removed is left for ``exman gc``.
    """
    links = [
        root.index_link(name),
        *(p for p in root.mark_links() if p.name == name),
    ]
    for link in links:
        try:
            os.unlink(link)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def remove_run(root: Root, path: StrPath) -> None:
    """Delete a run folder of this root with everything in it.

    The folder is first renamed to ``.deleting-<id>-<pid>`` beside it,
    so that readers see the whole run or none of it; ``exman gc``
    finishes what a process killed meanwhile left.

    :raises ExmanError: ``path`` is not a run folder in ``runs/``,
        ``tmp/`` or ``fails/`` (a symbolic link is none), or it cannot be
        deleted (the message names the file).
    """
    folder = pathlib.Path(os.path.abspath(path))
    places = [root.path / place for place in RUN_PLACES]
    num = run_id(folder.name)
    if (
        folder.parent not in places
        or num is None
        or folder.is_symlink()
        or not folder.is_dir()
    ):
        raise ExmanError(f"{folder} is not a run folder of {root.path}")
    trash = folder.with_name(f".deleting-{num}-{os.getpid()}")
    try:
        os.rename(folder, trash)
    except OSError as e:
        raise ExmanError(f"cannot delete {folder}: {e.strerror}") from None
    remove_tree(trash)
