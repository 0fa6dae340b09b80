"""Symbolic links between the folders of a root, safe under concurrency.

``index/`` and ``marked/`` hold relative links to run folders. Several
processes change them at once (``exman mark`` and ``unmark`` on one key,
automarks of runs starting together, a run moved to ``fails/``), so each
operation here tolerates the others: a key folder pruned between being
made and receiving a link is made again, a link removed by somebody else
is simply gone, and a link is re-pointed by renaming a new one over it.
"""

from __future__ import annotations

import _thread
import os
import pathlib
import stat
from collections.abc import Iterator

from .errors import ExmanError
from .files import make_dir

__all__ = ["make_link", "prune_empty", "remove_link", "repoint_link", "walk_links"]

#: attempts at making a link whose folder other processes keep pruning
ATTEMPTS = 50


def make_link(link: pathlib.Path, target: pathlib.Path, *, is_dir: bool) -> None:
    """Link ``link`` to ``target`` (relatively), making its folder if needed.

    A link already there to the same target is fine (another process made
    it).

    :raises FileExistsError: ``link`` exists and is something else.
    :raises ExmanError: the folder kept vanishing (pruned by others).
    """
    rel = os.path.relpath(target, link.parent)
    for _ in range(ATTEMPTS):
        try:
            make_dir(link.parent, exist_ok=True)
            link.symlink_to(rel, target_is_directory=is_dir)
            return
        except FileNotFoundError:
            continue  # its folder was pruned since it was made: again
        except FileExistsError:
            try:
                if os.readlink(link) == rel:
                    return
            except FileNotFoundError:
                continue  # removed meanwhile: make it again
            except OSError:
                pass
            raise
    raise ExmanError(f"cannot make the link {link}: its folder keeps vanishing")


def repoint_link(link: pathlib.Path, target: pathlib.Path) -> None:
    """Point the existing link ``link`` at ``target``, atomically."""
    rel = os.path.relpath(target, link.parent)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{_thread.get_ident()}.tmp")
    os.symlink(rel, tmp, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except BaseException:
        os.unlink(tmp)
        raise


def remove_link(path: pathlib.Path) -> bool:
    """Remove the symbolic link ``path``; False if it is already gone.

    :raises ExmanError: ``path`` is not a symbolic link.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISLNK(mode):
        raise ExmanError(f"{path} is not a link: exman removes only its links")
    try:
        os.unlink(path)
    except FileNotFoundError:  # somebody else removed it first
        return False
    return True


def prune_empty(folder: pathlib.Path, top: pathlib.Path) -> None:
    """Remove ``folder`` and its parents below ``top`` while they are empty."""
    path = folder
    while top in path.parents:
        try:
            path.rmdir()
        except OSError:  # not empty (or gone): the parents are not empty either
            return
        path = path.parent


def walk_links(top: pathlib.Path) -> Iterator[pathlib.Path]:
    """Every link below ``top``, dangling or not (links are not followed)."""
    for folder, dirs, files in os.walk(top):
        for entry in (*dirs, *files):
            path = pathlib.Path(folder, entry)
            if path.is_symlink():
                yield path
