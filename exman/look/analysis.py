"""The records the runs logged as one pandas frame: learning curves.

:meth:`exman.Index.metrics` is a thin wrapper around :func:`metrics_frame`;
the runs come from :meth:`exman.Index.info`. What the runs' outcomes give
when grouped and aggregated is :mod:`exman.look.aggregate`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from ..record.run import METRICS_FILE
from ..record.store import ExmanError
from .outcome import DamagedMetricsWarning, read_records

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathlib
    from typing import Any

    import pandas as pd

__all__ = ["as_names", "metrics_frame", "quoted"]

#: the first columns of :meth:`exman.Index.metrics`
LEADING = ("id", "step", "time")


def as_names(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    """``value`` (a name, a list of names or None) as a list, or None.

    :raises ExmanError: ``value`` holds something else than names.
    """
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise ExmanError(f"{what} must be a name or a list of names, not {value!r}")
    return names


def quoted(names: Sequence[str]) -> str:
    """``'a', 'b'`` for a message that lists choices; ``none`` for none."""
    return ", ".join(map(repr, names)) if names else "none"


# -- metrics -------------------------------------------------------------------
def metrics_frame(
    runs: Sequence[tuple[int, pathlib.Path]],
    names: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every record of the runs' ``metrics.jsonl`` as one long DataFrame.

    :param runs: ``(id, run folder)`` of each run, in the order wanted.
    :param names: the metrics to keep (None: all); records with none of
        them are left out.
    :raises ExmanError: a name in ``names`` was logged by none of the runs.
    """
    import pandas as pd

    wanted = as_names(names, "names")
    records: list[dict[str, Any]] = []
    ids: list[int] = []
    for num, folder in runs:
        path = os.path.join(folder, METRICS_FILE)
        try:
            got = read_records(path)
        except OSError as e:
            warnings.warn(
                f"exman: run {folder.name}: cannot read {METRICS_FILE}: "
                f"{e.strerror or e}; its metrics are left out",
                DamagedMetricsWarning,
                stacklevel=3,
            )
            continue
        if got.bad:
            more = ", …" if len(got.bad) > 5 else ""
            lines = ", ".join(map(str, got.bad[:5])) + more
            warnings.warn(
                f"exman: run {folder.name}: skipped {len(got.bad)} damaged "
                f"line(s) of {path} (line {lines}): not JSON objects",
                DamagedMetricsWarning,
                stacklevel=3,
            )
        records += got.records
        ids += [num] * len(got.records)
    frame = pd.DataFrame(records) if records else pd.DataFrame()
    del records
    if "id" in frame.columns:  # only a file written by hand can have it
        frame = frame.rename(columns={"id": "metric_id"})
    metrics = [c for c in frame.columns if c not in LEADING]
    if wanted is not None:
        unknown = [n for n in wanted if n not in metrics]
        if unknown:
            raise ExmanError(
                f"no run logged the metric(s) {quoted(unknown)}; the runs "
                f"logged: {quoted(metrics)}"
            )
        metrics = list(dict.fromkeys(wanted))
    frame.insert(0, "id", pd.Series(ids, dtype="int64"))
    if "step" not in frame.columns:
        frame["step"] = pd.Series([None] * len(frame), dtype="float64")
    if "time" in frame.columns:
        # written to the millisecond: through float seconds it would gain noise
        millis = (pd.to_numeric(frame["time"], errors="coerce") * 1000).round()
        frame["time"] = pd.to_datetime(millis, unit="ms", utc=True)
    else:
        utc = "datetime64[ns, UTC]"
        frame["time"] = pd.Series(pd.NaT, index=frame.index, dtype=utc)
    frame = frame[[*LEADING, *metrics]]
    if wanted is not None and len(frame):
        frame = frame.dropna(subset=metrics, how="all").reset_index(drop=True)
    return frame
