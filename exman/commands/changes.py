"""What a command did: a :class:`Report` of changes, by kind.

The library functions behind the ``exman`` command return one; the command
prints it and turns it into an exit code.
"""

from __future__ import annotations

import os
import pathlib
from collections import namedtuple

from ..record.store import Root, StrPath
from .selection import find_root

__all__ = ["Change", "Report", "as_root"]

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, NamedTuple

    Kind = Literal["done", "unchanged", "refused"]


if TYPE_CHECKING:

    class Change(NamedTuple):
        id: int | None
        path: pathlib.Path
        message: str

else:
    Change = namedtuple("Change", ("id", "path", "message"))
Change.__doc__ = "One thing a command did (or would do, or refused): a run or a path."


class Report:
    """What a command did.

    ``done``: changes made (or, with ``dry_run``, that would be made);
    ``unchanged``: runs already in the state asked for; ``refused``: runs
    found that cannot be handled, with the reason; ``missing``: ids with no
    run in the root.
    """

    def __init__(
        self,
        root: Root,
        done: list[Change] | None = None,
        unchanged: list[Change] | None = None,
        refused: list[Change] | None = None,
        missing: list[int] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.root = root
        self.done: list[Change] = [] if done is None else done
        self.unchanged: list[Change] = [] if unchanged is None else unchanged
        self.refused: list[Change] = [] if refused is None else refused
        self.missing: list[int] = [] if missing is None else missing
        self.dry_run = dry_run

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{kind}={len(getattr(self, kind))}"
            for kind in ("done", "unchanged", "refused", "missing")
        )
        return f"Report({self.root.path}, {counts})"

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
