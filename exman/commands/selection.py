"""Which root and which runs a command is about.

* :func:`find_root` — ``--root``, else ``EXMAN_ROOT``, else the nearest of
  the current folder, its ``exman/`` (the root ``simpleroot(__file__)``
  makes next to a script), a parent or a parent's ``exman/`` that is an
  exman root (:func:`locate_root` also says which others qualified).
* :func:`parse_ids` — ``3``, ``3-7``, ``3,5,9-12`` (and lists of those) to ids.
* :func:`select` — the run folders of those ids, and the ids that have none.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterable, Mapping

from ..record.store import ROOT_ENV, RUN_PLACES, ExmanError, Root, StrPath, run_id

__all__ = [
    "ROOT_ENV",
    "NotARoot",
    "Selection",
    "find_root",
    "format_ids",
    "locate_root",
    "parse_ids",
    "root_candidates",
    "select",
]

#: a range wider than this is a typo, not a selection
MAX_RANGE = 1_000_000
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    Roots = Union[StrPath, Root]


class NotARoot(ExmanError):
    """The folder given (or found) is not an exman root."""


#: the folder ``exman.simpleroot(__file__)`` puts next to a script
SCRIPT_ROOT = "exman"


def root_candidates(cwd: StrPath | None = None) -> list[Root]:
    """The roots a command run in ``cwd`` can mean, the nearest first.

    From ``cwd`` up to ``/``, each folder is a candidate when it is an exman
    root itself (the command runs inside a root), then its ``exman/``
    sub-folder (the root ``simpleroot(__file__)`` puts next to a script).
    """
    start = pathlib.Path(os.path.abspath(os.getcwd() if cwd is None else cwd))
    found: dict[pathlib.Path, Root] = {}
    for folder in (start, *start.parents):
        for path in (folder, folder / SCRIPT_ROOT):
            root = Root(path)
            if path not in found and root.exists():
                found[path] = root
    return list(found.values())


def locate_root(
    root: Roots | None = None,
    *,
    cwd: StrPath | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Root, list[Root]]:
    """The root a command works on, and the other roots that qualified.

    ``--root`` (``root``), else ``EXMAN_ROOT``, else the nearest of
    :func:`root_candidates`; the others are returned so that the command
    can say which one it used.

    :raises NotARoot: see :func:`find_root`.
    :raises ExmanError: a sub-folder of the root is a symbolic link or a file
        (see :meth:`~exman.record.store.Root.check_layout`).
    """
    candidate: Root | None
    if isinstance(root, Root):
        candidate, origin = root, "the root given"
    elif root is not None:
        candidate, origin = Root(root), "--root"
    else:
        env = (os.environ if environ is None else environ).get(ROOT_ENV)
        candidate, origin = (Root(env), ROOT_ENV) if env else (None, "")
    if candidate is not None:
        if not candidate.exists():
            raise NotARoot(
                f"{candidate.path} ({origin}) is not an exman root: it has no "
                "runs/ and index/ folders"
            )
        return candidate.check_layout(), []
    found = root_candidates(cwd)
    if found:
        return found[0].check_layout(), found[1:]
    start = pathlib.Path(os.path.abspath(os.getcwd() if cwd is None else cwd))
    raise NotARoot(
        f"{start} is not inside an exman root, nor has it or a parent an "
        f"{SCRIPT_ROOT}/ root{_hint(start)}: run exman from the script's "
        f"folder or the root, pass --root PATH or set {ROOT_ENV}"
    )


def _hint(cwd: pathlib.Path) -> str:
    near = [p for p in cwd.glob(f"*/{SCRIPT_ROOT}") if Root(p).exists()]
    if near:
        rel = os.path.relpath(sorted(near)[0], cwd)
        return f" ({rel} is one: exman --root {rel} ...)"
    return ""


def find_root(
    root: Roots | None = None,
    *,
    cwd: StrPath | None = None,
    environ: Mapping[str, str] | None = None,
) -> Root:
    """The root a command works on.

    :param root: an explicit root (``--root``); it must exist.
    :param cwd: where to start looking (default: the current folder).
    :param environ: the environment (default: ``os.environ``) for ``EXMAN_ROOT``.
    :raises NotARoot: the given root is not an exman root, or none was given
        and neither ``EXMAN_ROOT`` nor :func:`root_candidates` give one.
    """
    return locate_root(root, cwd=cwd, environ=environ)[0]


def parse_ids(specs: Iterable[str | int] | str | int) -> list[int]:
    """Run ids from ``3``, ``3-7``, ``"3,5,9-12"`` or a list of those.

    The result keeps the order given, without repeats.

    :raises ExmanError: a part is not an id or a range, or a range is reversed
        or wider than a million ids.
    """
    if isinstance(specs, (str, int)):
        specs = [specs]
    ids: dict[int, None] = {}
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise ExmanError(f"run id {spec!r} is not a number")
        if isinstance(spec, int):
            if spec < 0:
                raise ExmanError(f"run id {spec} is negative")
            ids[spec] = None
            continue
        spec = re.sub(r"\s*-\s*", "-", spec)  # "3 - 7" is one range
        parts = [p for p in re.split(r"[,\s]+", spec) if p]
        if not parts:
            raise ExmanError(f"empty run id {spec!r}: give ids like 3, 3-7 or 3,5")
        for part in parts:
            m = _RANGE.match(part)
            if m is None:
                raise ExmanError(
                    f"{part!r} is not a run id: give ids like 3, 3-7 or 3,5,9-12"
                )
            first = int(m.group(1))
            last = first if m.group(2) is None else int(m.group(2))
            if last < first:
                raise ExmanError(f"range {part!r} is reversed: write {last}-{first}")
            if last - first >= MAX_RANGE:
                raise ExmanError(f"range {part!r} spans more than {MAX_RANGE} ids")
            ids.update(dict.fromkeys(range(first, last + 1)))
    return list(ids)


def format_ids(ids: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5, 9``."""
    nums = sorted(set(ids))
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out)


class Selection:
    """The runs some ids name: ``found`` (id -> folder) and ``missing`` ids."""

    def __init__(
        self,
        root: Root,
        found: dict[int, pathlib.Path] | None = None,
        missing: list[int] | None = None,
    ) -> None:
        self.root = root
        self.found: dict[int, pathlib.Path] = {} if found is None else found
        self.missing: list[int] = [] if missing is None else missing

    def place(self, num: int) -> str:
        """``runs``, ``tmp`` or ``fails``: where run ``num`` lives."""
        return self.found[num].parent.name


def select(
    root: Root, ids: Iterable[str | int] | str | int, places: Iterable[str] = RUN_PLACES
) -> Selection:
    """Find the folders of ``ids`` (see :func:`parse_ids`) in one pass.

    A run is looked for in ``places`` in that order (``runs``, ``tmp``,
    ``fails`` by default); the first folder with its id wins.

    :raises ExmanError: an id cannot be parsed.
    """
    wanted = parse_ids(ids)
    if not wanted:
        raise ExmanError("no run ids given")
    want = set(wanted)
    folders: dict[int, pathlib.Path] = {}
    for path in root.iter_runs(places):
        num = run_id(path.name)
        if num is not None and num in want:
            folders.setdefault(num, path)
    sel = Selection(root)
    for num in wanted:
        if num in folders:
            sel.found[num] = folders[num]
        else:
            sel.missing.append(num)
    return sel
