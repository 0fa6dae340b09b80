"""The current run of this process: the last one ``parse_args()`` made.

``exman.log`` and ``exman.result`` write to it through
:mod:`exman.record.metrics`, which their first call imports: a run that
logs nothing does not pay for it at its start. A child process finds the
current run through the ``EXMAN_RUN`` environment variable, set here to the
run folder (children inherit it).
"""

from __future__ import annotations

import os
import sys

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .files import StrPath

__all__ = ["RUN_ENV", "moved", "set_current", "take"]

RUN_ENV = "EXMAN_RUN"

#: the run made current while metrics was not imported: (folder, resumed)
_pending: list[tuple[str, bool]] = []


def _metrics() -> object | None:
    return sys.modules.get(f"{__package__}.metrics")


def set_current(path: StrPath, *, resumed: bool = False) -> None:
    """Make ``path`` the current run of this process and of its children.

    :param resumed: the run continues an earlier attempt: a ``log`` call
        without a step goes on after the step of the last record.
    """
    metrics = _metrics()
    if metrics is not None:  # its recorders are in use: it takes the run now
        metrics.set_current(path, resumed=resumed)  # type: ignore[attr-defined]
        return
    _pending[:] = [(os.fspath(path), resumed)]
    os.environ[RUN_ENV] = os.fspath(path)


def take() -> tuple[str, bool] | None:
    """The run made current before metrics was imported, once."""
    return _pending.pop() if _pending else None


def moved(old: StrPath, new: StrPath) -> None:
    """A run folder was moved (to ``fails/``): the current run follows it."""
    metrics = _metrics()
    if metrics is not None:
        metrics.moved(old, new)  # type: ignore[attr-defined]
        return
    old, new = os.fspath(old), os.fspath(new)
    if _pending and _pending[0][0] == old:
        _pending[0] = (new, _pending[0][1])
    if os.environ.get(RUN_ENV) == old:
        os.environ[RUN_ENV] = new
