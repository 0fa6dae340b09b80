"""What a command did: a :class:`Report` of changes, by kind.

The library functions behind the ``exman`` command return one; the command
prints it and turns it into an exit code.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from typing import Literal

from ..record.store import Root, StrPath
from .selection import find_root

__all__ = ["Change", "Report", "as_root"]

Kind = Literal["done", "unchanged", "refused"]


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

    def add(self, kind: Kind, num: int | None, path: StrPath, message: str) -> None:
        """Record a change of ``kind`` (``done``, ``unchanged`` or ``refused``)."""
        bucket: list[Change] = getattr(self, kind)
        bucket.append(Change(num, pathlib.Path(path), message))

    def rel(self, path: StrPath) -> str:
        """``path`` relative to the root, for messages."""
        return os.path.relpath(path, self.root.path)


def as_root(root: StrPath | Root) -> Root:
    """``root`` itself, or the root found from a folder (see ``find_root``)."""
    return root.check_layout() if isinstance(root, Root) else find_root(root)
