"""The names exman puts on disk: run folders, run names, mark keys, ids.

Everything a user types that becomes part of a path (a ``--name``, a mark
key, an automark value) passes through here first, so that it names one
folder under the one it is put in, fits the file system's limit on a name,
and holds nothing a terminal would take for a command when it is listed.
"""

from __future__ import annotations

import itertools
import os
import re

from .errors import ExmanError

__all__ = [
    "MAX_ID",
    "NAME_MAX",
    "RUN_PLACES",
    "RUN_TEXT",
    "check_component",
    "check_key",
    "check_name",
    "control_chars",
    "path_component",
    "run_id",
    "run_ids",
    "sorted_by_id",
]

#: a run folder: ``<id>-<YYYY-mm-dd-HH-MM-SS>[-<name>]``; compiled as
#: :data:`RUN_PATTERN` by its first use (0.3 ms that a run's start, which
#: knows its id, does without)
RUN_TEXT = r"^(\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}(?:-|$)"
_run_pattern: re.Pattern[str] | None = None
_lines_pattern: re.Pattern[str] | None = None
#: where runs live; ``index`` and ``marked`` only hold links to them
RUN_PLACES = ("runs", "tmp", "fails")
#: ids stay below this, so that every id fits the index's 64-bit column
MAX_ID = 10**18
#: the longest file name (in bytes) that POSIX file systems take
NAME_MAX = 255
# C0 controls, DEL and C1 controls: newline, tab, ESC (terminal escapes)…
_CONTROL_TEXT = "[\x00-\x1f\x7f-\x9f]"


def __getattr__(name: str) -> re.Pattern[str]:
    if name == "RUN_PATTERN":
        return _compiled_run_pattern()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _compiled_run_pattern() -> re.Pattern[str]:
    global _run_pattern
    if _run_pattern is None:
        _run_pattern = re.compile(RUN_TEXT)
    return _run_pattern


def run_id(name: str) -> int | None:
    """The id of a run folder or index file name, or None if it is not one.

    A number too large to be an id exman gives (at least :data:`MAX_ID`)
    is no run's either.
    """
    m = (_run_pattern or _compiled_run_pattern()).match(name)
    if m is None:
        return None
    num = int(m.group(1))
    return num if num < MAX_ID else None


def run_ids(names: list[str]) -> list[int | None]:
    """:func:`run_id` of each of ``names``, in one pass of the pattern over
    them all when each is a run's (a root's listing: 10,000 names in a few
    milliseconds rather than a call each)."""
    global _lines_pattern
    text = "\n".join(names)
    if text.count("\n") == len(names) - 1:  # no name holds a newline
        if _lines_pattern is None:
            _lines_pattern = re.compile(RUN_TEXT, re.MULTILINE)
        # one match per line at most: each is anchored at a line's start
        found = _lines_pattern.findall(text)
        if len(found) == len(names):
            ints = list(map(int, found))
            if not ints or max(ints) < MAX_ID:
                nums: list[int | None] = [*ints]
                return nums
    return [run_id(name) for name in names]


def sorted_by_id(names: list[str], *, runs_only: bool = False) -> list[str]:
    """``names`` (distinct) in the order of their ids, names that are no
    run's first (each group by name), or left out with ``runs_only``."""
    nums = run_ids(names)
    key = {
        name: -1 if num is None else num
        for name, num in zip(names, nums)
        if num is not None or not runs_only
    }
    ordered = sorted(key, key=key.__getitem__)
    if len(set(key.values())) == len(key):  # the usual: no two ids alike
        return ordered
    # names with one id (no run's, or an id twice): by name among themselves
    out: list[str] = []
    for _, group in itertools.groupby(ordered, key=key.__getitem__):
        out += sorted(group)
    return out


def control_chars(text: str) -> list[str]:
    """The control characters in ``text`` (newline, tab, ESC…), as ``\\xNN``."""
    return sorted({f"\\x{ord(c):02x}" for c in re.findall(_CONTROL_TEXT, text)})


def check_name(name: str, what: str = "name") -> str:
    """Refuse a user-given name that could leave the folder it is put in.

    :raises ExmanError: the name is empty, contains a path separator, ``..``
        or a control character (a NUL byte, newline, tab, ESC…).
    """
    if not name.strip():
        raise ExmanError(f"{what} must not be empty")
    bad = [c for c in ("/", "\\") if c in name]
    if bad or ".." in name or name == ".":
        raise ExmanError(
            f"{what} {name!r} is refused: it must not contain '/', '\\' or '..'"
        )
    controls = control_chars(name)
    if controls:
        raise ExmanError(
            f"{what} {name!r} is refused: it contains control characters "
            f"({', '.join(controls)})"
        )
    return name


def check_component(part: str, what: str) -> str:
    """Refuse a folder name longer than the file system takes (255 bytes)."""
    size = len(os.fsencode(part))
    if size > NAME_MAX:
        raise ExmanError(
            f"{what} {part[:40]!r}… is {size} bytes long: a folder name "
            f"takes at most {NAME_MAX}"
        )
    return part


def path_component(value: object) -> str:
    """A value made safe as one folder name (used for automark values).

    ``str(value)`` with ``/``, ``\\``, ``%`` and control characters escaped
    as ``%XX``; ``.``, ``..`` and the empty string are escaped too so that
    the result always names a child of its parent folder. The length is
    not checked here: see :func:`check_component`.
    """
    text = str(value)
    out = text.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    out = re.sub(_CONTROL_TEXT, lambda m: f"%{ord(m.group()):02X}", out)
    out = out.replace("..", "%2E%2E")
    if out in ("", "."):
        out = "%2E" if out else "%00"
    return out


def check_key(key: str | os.PathLike[str]) -> tuple[str, ...]:
    """Split a mark key like ``best/lr`` into its parts, refusing escapes.

    :raises ExmanError: the key is absolute, empty, has a ``..`` part, a
        control character or a part longer than a folder name takes.
    """
    text = os.fspath(key)
    if not text or text.startswith(("/", "\\")) or os.path.isabs(text):
        raise ExmanError(f"mark key {text!r} must be a relative path like 'best/lr'")
    parts = tuple(p for p in re.split(r"[/\\]", text) if p not in ("", "."))
    if not parts or any(".." in p for p in parts):
        raise ExmanError(
            f"mark key {text!r} is refused: it must be a relative path "
            "without '..' parts"
        )
    controls = control_chars(text)
    if controls:
        raise ExmanError(
            f"mark key {text!r} is refused: it contains control characters "
            f"({', '.join(controls)})"
        )
    for part in parts:
        check_component(part, f"mark key {text!r}: the part")
    return parts
