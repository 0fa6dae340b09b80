"""``exman.should_stop()``: whether a search asked this run to stop early.

A search that prunes a trial (see :mod:`exman.sweep.pruning`) creates a
file whose path the trial's process got in ``EXMAN_STOP_FILE``. The script
asks :func:`should_stop` as often as it likes (every step): the file is
looked for at most every :data:`CHECK_SECONDS`, so a call costs a clock
read. Once the file exists the answer stays ``True``.

A run asked to stop ends ``pruned`` rather than completed or interrupted
(:meth:`exman.record.run.Run.finish` asks :func:`requested`), whether the
script stopped by itself or was stopped from outside; a run that fails
with an error stays failed.

A look also writes the metrics the run logged since the last one, so that
the pruner judges the trial on its latest values. Nothing here imports
more than ``os``, ``sys`` and ``time``: it is on the path of every step
of a script.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["CHECK_SECONDS", "REASON", "STOP_ENV", "requested", "should_stop"]

#: the file whose existence asks the run of this process to stop
STOP_ENV = "EXMAN_STOP_FILE"
#: at most one look at the file in this many seconds
CHECK_SECONDS = 0.1
#: the reason recorded in the ``run.json`` of a pruned run
REASON = "stopped early by the search's pruner"

_state = {"next": 0.0, "stop": False}


def should_stop() -> bool:
    """Whether the sweep's pruner asked this run to stop.

    Call it every step; when it says ``True``, end the run as you would at
    its last step (save what you have, ``exman.result`` if you like). The
    run is recorded as ``pruned``. Outside a search it is always ``False``.
    """
    if _state["stop"]:
        return True
    now = time.monotonic()
    if now < _state["next"]:
        return False
    _state["next"] = now + CHECK_SECONDS
    # what was logged reaches the pruner now, not at the next flush
    metrics = sys.modules.get("exman.record.metrics")
    if metrics is not None:
        metrics.flush_current()
    if requested():
        _state["stop"] = True
    return bool(_state["stop"])


def requested() -> bool:
    """Whether the stop file of this process's run exists (looked at now)."""
    path = os.environ.get(STOP_ENV)
    return bool(path) and os.path.exists(path)  # type: ignore[arg-type]
