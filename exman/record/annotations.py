"""Tags and a note given to a run after the fact: its ``annotations.json``.

.. code-block:: json

    {"tags": ["baseline", "paper"], "note": "the lr was too high"}

A file of its own in the run folder, so that annotating a running run never
touches the files the run writes (``run.json`` above all); it moves with
the folder to ``fails/`` and stays when a run is taken out of the index and
restored. Written atomically, under the root's lock, which also keeps the
folder from moving meanwhile (see :func:`exman.record.removal.move_to_fails`).

Tags are labels, not paths: a tag is a word of letters, digits and
``_ . - + : @`` (any script's letters), at most :data:`MAX_TAG` characters.
"""

from __future__ import annotations

import json
import os
import re
import stat

from .errors import ExmanError
from .files import atomic_write

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .store import StrPath

__all__ = [
    "ANNOTATIONS_FILE",
    "MAX_NOTE",
    "MAX_TAG",
    "check_tag",
    "parse_annotations",
    "read_annotations",
    "write_annotations",
]

ANNOTATIONS_FILE = "annotations.json"
MAX_TAG = 64
#: a note longer than this is a file, not a note
MAX_NOTE = 64 << 10
_TAG = re.compile(r"[\w.+:@-]+")


def check_tag(tag: str) -> str:
    """``tag`` itself when it is a valid tag name.

    :raises ExmanError: an empty tag, one too long, or one with a character
        other than letters, digits and ``_ . - + : @`` (a space, a comma, a
        quote, ``/``…); the message names the tag.
    """
    if not isinstance(tag, str) or not tag:
        raise ExmanError(f"tag {tag!r}: a tag is a non-empty word")
    if len(tag) > MAX_TAG:
        raise ExmanError(f"tag {tag!r}: longer than {MAX_TAG} characters")
    if not _TAG.fullmatch(tag) or tag.startswith("-"):
        raise ExmanError(
            f"tag {tag!r}: use letters, digits and _ . - + : @ (not first: -), "
            "without spaces, commas, quotes or slashes"
        )
    return tag


def parse_annotations(data: bytes | str) -> tuple[list[str], str | None]:
    """The tags and note held in the text of an ``annotations.json``.

    Tolerant: what is not a valid tag or a string note is left out, so that a
    damaged file costs its own content, never the run.
    """
    try:
        value: Any = json.loads(data)
    except ValueError:
        return [], None
    if not isinstance(value, dict):
        return [], None
    raw = value.get("tags")
    tags = []
    if isinstance(raw, list):
        for tag in raw:
            try:
                tags.append(check_tag(tag))
            except ExmanError:
                continue
    note = value.get("note")
    return tags, note if isinstance(note, str) and note else None


def read_annotations(folder: StrPath) -> tuple[list[str], str | None]:
    """The tags and the note of the run in ``folder`` (``[]``, None: none).

    Anything but a regular file there (a link, a FIFO) holds none.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(os.path.join(folder, ANNOTATIONS_FILE), flags)
    except OSError:  # none, or a link (ELOOP)
        return [], None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [], None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return parse_annotations(f.read(MAX_NOTE * 8))
    finally:
        os.close(fd)


def write_annotations(folder: StrPath, tags: list[str], note: str | None) -> None:
    """Replace the annotations of the run in ``folder``; none at all removes
    the file. The caller holds the root's lock.

    :raises ExmanError: an invalid tag, or a note longer than :data:`MAX_NOTE`.
    """
    tags = [check_tag(tag) for tag in dict.fromkeys(tags)]
    if note is not None and len(note) > MAX_NOTE:
        raise ExmanError(
            f"the note has {len(note)} characters: at most {MAX_NOTE} (keep "
            "longer text in a file of the run folder)"
        )
    path = os.path.join(folder, ANNOTATIONS_FILE)
    if not tags and not note:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    data: dict[str, Any] = {"tags": tags, "note": note or None}
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
