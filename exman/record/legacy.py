"""exman 0.1.9's public names that the parser keeps for old code.

``exman.parser`` re-exports them: the module constants, :func:`yaml_file`,
:func:`represent_as_str`, and what ``ExParser.num_ex()`` and
``ExParser.max_ex()`` count. docs/changes.rst lists the names that could
not keep their meaning.
"""

from __future__ import annotations

import os

from .names import RUN_PATTERN, run_id
from .store import DIR_TIME_FORMAT, Root

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = [
    "DIR_FORMAT",
    "DIR_PATTERN",
    "EXT",
    "FOLDER_DEFAULT",
    "TIME_FORMAT_DIR",
    "max_ex",
    "num_ex",
    "represent_as_str",
    "yaml_file",
]

FOLDER_DEFAULT = "exman"
EXT = "yaml"
TIME_FORMAT_DIR = DIR_TIME_FORMAT
DIR_FORMAT = "{num}-{time}"
DIR_PATTERN = RUN_PATTERN


def yaml_file(name: str) -> str:
    """``name + ".yaml"``: the name of a run's link in ``index/``."""
    return f"{name}.{EXT}"


def represent_as_str(dumper: Any, data: Any, tostr: Callable[[Any], str] = str) -> Any:
    """A YAML representer that writes ``tostr(data)`` as a string."""
    return dumper.represent_str(str(tostr(data)))


def num_ex(store: Root) -> int:
    """The number of run folders in ``runs/`` of ``store``."""
    try:
        with os.scandir(store.runs) as entries:
            return sum(1 for e in entries if run_id(e.name) is not None)
    except FileNotFoundError:
        return 0


def max_ex(store: Root) -> int:
    """The highest run id handed out in ``store`` (0 if none): the counter,
    or a run folder made past it (by exman 0.1.9 on the same root)."""
    return max(store.last_id(), store._scan_max_id())
