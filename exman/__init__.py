"""exman: every run of your script in its own folder, searchable from pandas.

The parse path (:class:`ExParser`) imports nothing heavy; :class:`Index`
and pandas are imported only when first used, and so is the parser itself
(configargparse, PyYAML): the ``exman`` command's listings do without it.
"""

from __future__ import annotations

from .record.errors import ExmanError, RunNotFound
from .record.run import Run
from .record.stop import should_stop
from .record.store import Root

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .index import Index
    from .parser import ArgumentError, ExParser, optional, simpleroot, str2bool
    from .record.checkpoints import latest_checkpoint
    from .record.metrics import NoCurrentRun, last_step, log, result
    from .record.params import ParamsError
    from .record.vcs import GitError
    from .sweep import sweep

__version__ = "0.2.0.dev0"

__all__ = [
    "ArgumentError",
    "ExParser",
    "ExmanError",
    "GitError",
    "Index",
    "NoCurrentRun",
    "ParamsError",
    "Root",
    "Run",
    "RunNotFound",
    "last_step",
    "latest_checkpoint",
    "log",
    "optional",
    "result",
    "should_stop",
    "simpleroot",
    "str2bool",
    "sweep",
]


_METRICS = ("NoCurrentRun", "last_step", "log", "result")
_PARSER = ("ArgumentError", "ExParser", "optional", "simpleroot", "str2bool")


def _submodule(name: str) -> Any:
    """``exman.<name>``, imported. Not ``from . import name``, which would
    ask this module's ``__getattr__`` first; nor importlib, which a run's
    start does not import otherwise."""
    import sys

    __import__(f"{__name__}.{name}")
    return sys.modules[f"{__name__}.{name}"]


def __getattr__(name: str) -> Any:
    if name in _PARSER:  # a script's first use; the exman command's listings skip it
        return getattr(_submodule("parser"), name)
    if name == "ParamsError":
        from .record.params import ParamsError

        return ParamsError
    # Index pulls in pandas: load it only when somebody asks for it.
    if name == "Index":
        from .index import Index

        return Index
    if name in _METRICS:  # its flush thread is for the runs that log
        from .record import metrics

        return getattr(metrics, name)
    if name == "GitError":  # git is asked for by few runs
        from .record.vcs import GitError

        return GitError
    if name == "latest_checkpoint":  # not on the path of every run's start
        from .record.checkpoints import latest_checkpoint

        return latest_checkpoint
    if name in ("index", "parser"):  # the modules, as 0.1.9 imported them eagerly
        return _submodule(name)
    if name == "sweep":
        # the package exman.sweep, callable as the function exman.sweep.sweep:
        # once imported, the package is what the attribute names anyway
        return _submodule(name)
    raise AttributeError(f"module 'exman' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazy names too: a notebook's completion of ``exman.`` lists them
    return sorted({*globals(), *__all__})
